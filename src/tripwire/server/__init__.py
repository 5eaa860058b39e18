"""The HTTP collector: prediction events and labels in, validated, into the store.

Run it with ``tripwire serve``; embed it with ``create_app``.
"""

from tripwire.server.app import create_app

__all__ = ["create_app"]
