"""The HTTP collector: prediction events and labels in, validated, into the store.

Run it with ``tripwire serve``; embed it with ``create_app``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from tripwire.server.app import create_app

__all__ = ["create_app"]


def __getattr__(name: str) -> object:
    # The app (FastAPI, the store, DuckDB) is imported on first use, so that a parse worker,
    # which imports only tripwire.server.parsing, stays a small process.
    if name == "create_app":
        from tripwire.server.app import create_app

        return create_app
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
