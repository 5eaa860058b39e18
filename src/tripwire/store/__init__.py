"""Where metric history, window profiles, incidents and calibrations live.

The embedded default is one DuckDB file (:class:`DuckDBStore`).
"""

from tripwire.store.duckdb_store import DuckDBStore

__all__ = ["DuckDBStore"]
