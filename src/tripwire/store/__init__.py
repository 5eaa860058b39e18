"""Where metric history, window profiles, incidents and calibrations live.

The embedded default is one DuckDB file (:class:`DuckDBStore`); :class:`PostgresStore` keeps
the same tables in a PostgreSQL server, with the same methods, for stores several processes
share. It needs the ``postgres`` extra: ``pip install 'tripwire[postgres]'``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from tripwire.store.base import Store, open_store
from tripwire.store.common import DuplicateEventsError

if TYPE_CHECKING:
    from tripwire.store.duckdb_store import DuckDBStore
    from tripwire.store.postgres_store import PostgresStore

__all__ = ["DuckDBStore", "DuplicateEventsError", "PostgresStore", "Store", "open_store"]


def __getattr__(name: str) -> object:
    # DuckDB loads on first use too: the collector's parse workers import the stores' common
    # layout, not a database.
    if name == "DuckDBStore":
        from tripwire.store.duckdb_store import DuckDBStore

        return DuckDBStore
    # PostgresStore is imported on first use, so that tripwire without the postgres extra
    # (no psycopg, no ADBC) still imports, and DuckDB users never load the driver.
    if name == "PostgresStore":
        try:
            from tripwire.store.postgres_store import PostgresStore
        except ModuleNotFoundError as exc:
            if exc.name not in ("psycopg", "adbc_driver_manager", "adbc_driver_postgresql"):
                raise
            raise ImportError(
                f"PostgresStore needs {exc.name} (psycopg 3 and ADBC's PostgreSQL driver): "
                "pip install 'tripwire[postgres]'"
            ) from exc
        return PostgresStore
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
