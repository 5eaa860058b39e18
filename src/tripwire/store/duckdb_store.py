"""The embedded store: one DuckDB file, no server.

DuckDB allows one writing process per file; the monitoring job (or, later, the server) owns it.
Rows go in and come out as Arrow tables, so history is never looped over in Python.
The methods whose SQL is the same in PostgreSQL are :class:`~tripwire.store.sql_store.SQLStore`'s.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Literal

import duckdb
import pyarrow as pa

from tripwire.errors import TripwireError
from tripwire.events import Event, Label, Rejected
from tripwire.layers.rows import MetricRow
from tripwire.store.common import (
    COMPUTED_AT,
    DROP_UNMOVED,
    KEEP_REVISIONS,
    METRIC_COLUMNS,
    PRODUCTION,
    QUARANTINE_INSERT,
    DuplicateEventsError,
    event_table,
    label_table,
    metric_table,
    naive_utc,
    newer_schema,
    now_utc,
    quarantine_rows,
)
from tripwire.store.schema import MIGRATIONS
from tripwire.store.sql_store import SQLStore

__all__ = ["PRODUCTION", "DuckDBStore"]


WAL_LIMIT = "256MB"  # the write-ahead log's size that starts a checkpoint


class DuckDBStore(SQLStore):
    """Metric history, window profiles, incidents and calibrations in one DuckDB file.

    Parameters
    ----------
    path
        The database file (created with its tables when missing), or ``":memory:"``.
    """

    dialect: Literal["duckdb"] = "duckdb"

    def __init__(self, path: str | Path) -> None:
        self.path = str(path)
        self.where = self.path  # how messages name this store
        self._depth = 0  # how deep inside transaction() the caller is
        try:
            # DuckDB checkpoints (compresses what the log holds into the file) whenever its
            # write-ahead log passes 16 MB; a collector taking tens of thousands of events a
            # second spent as much CPU checkpointing as writing. Fewer, larger checkpoints
            # cost half as much per event (benchmarks/README.md); the log replays on open.
            self.connection = duckdb.connect(self.path, config={"wal_autocheckpoint": WAL_LIMIT})
        except duckdb.Error as exc:
            raise TripwireError(f"{self.path}: cannot open the store: {exc}") from exc
        self._migrate()

    def close(self) -> None:
        self.connection.close()

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """Hold the statements inside together: all committed, or (on an error) none.

        Nested uses join the outermost transaction, because DuckDB has no savepoints; so a
        caller can wrap several store methods that each hold their own statements together.
        """
        if self._depth:
            self._depth += 1
            try:
                yield
            finally:
                self._depth -= 1
            return
        self.connection.execute("BEGIN")
        self._depth = 1
        try:
            yield
        except BaseException:
            self._depth = 0
            self.connection.execute("ROLLBACK")
            raise
        self._depth = 0
        self.connection.execute("COMMIT")

    def sql(self, statement: str, params: Sequence[object] = ()) -> list[tuple[Any, ...]]:
        """Run one statement written with ``?`` placeholders; the rows it returns."""
        return self.connection.execute(statement, list(params)).fetchall()

    def table(self, statement: str, params: Sequence[object], schema: pa.Schema) -> pa.Table:
        """The rows of one query written with ``?`` placeholders, as a table of ``schema``
        (DuckDB's own Arrow, whose types the schema's already are)."""
        return self.connection.sql(statement, params=list(params)).to_arrow_table().cast(schema)

    def _one_of(self, column: str, values: Sequence[object]) -> tuple[str, list[object]]:
        return f"{column} IN ({', '.join('?' for _ in values)})", list(values)

    def __enter__(self) -> DuckDBStore:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def _migrate(self) -> None:
        db = self.connection
        db.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")
        # fetchall, not fetchone: DuckDB refuses a relation query while a result is unfinished.
        ((latest,),) = db.execute("SELECT max(version) FROM schema_version").fetchall()
        current = latest or 0
        if current > len(MIGRATIONS):
            db.close()
            raise newer_schema(self.path, current, len(MIGRATIONS))
        for version in range(current + 1, len(MIGRATIONS) + 1):
            db.execute("BEGIN")
            db.execute(MIGRATIONS[version - 1])
            db.execute("INSERT INTO schema_version VALUES (?)", [version])
            db.execute("COMMIT")

    # -- windows and metric rows ---------------------------------------------------------

    def write_window(
        self,
        model: str,
        start: datetime,
        length: timedelta,
        rows: Sequence[MetricRow],
        profile: bytes,
        n_rows: int,
        namespace: str = PRODUCTION,
    ) -> None:
        """Store one window's profile and metric rows, replacing what it had (idempotent); the
        performance rows it replaces that moved are kept (see :meth:`revisions`)."""
        key = [model, namespace, naive_utc(start), int(length.total_seconds())]
        table = metric_table(rows)
        db = self.connection
        where = "model = ? AND namespace = ? AND window_start = ? AND window_seconds = ?"
        with self.transaction():
            earlier = db.execute(COMPUTED_AT, key).fetchall()
            if earlier:
                db.execute(KEEP_REVISIONS, [earlier[0][0], *key])
            db.execute(f"DELETE FROM metrics WHERE {where}", key)
            db.execute(f"DELETE FROM windows WHERE {where}", key)
            db.execute(
                "INSERT INTO windows VALUES (?, ?, ?, ?, ?, ?, ?)",
                [*key, n_rows, profile, now_utc()],
            )
            db.register("new_rows", table)
            db.execute(
                f"INSERT INTO metrics SELECT ?, ?, ?, ?, {', '.join(METRIC_COLUMNS)} FROM new_rows",
                key,
            )
            db.unregister("new_rows")
            if earlier:
                db.execute(DROP_UNMOVED, [*key, earlier[0][0]])

    # -- the prediction log --------------------------------------------------------------

    def write_events(self, events: Sequence[Event]) -> int:
        """Store events; one whose (model, event_id) is already stored is ignored, so a
        redelivered event is harmless. Returns how many were new."""
        if not events:
            return 0
        # The count DuckDB answers an INSERT with leaves out the rows the conflict skipped
        # (ids already stored, or repeated in the batch): cheaper than RETURNING them.
        ((inserted,),) = self._insert(events, "ON CONFLICT DO NOTHING")
        return int(inserted)

    def insert_events(self, events: Sequence[Event]) -> None:
        """Store events none of which is stored yet, or raise ``DuplicateEventsError`` (see
        ``Store.insert_events``). DuckDB then refuses the rest of the transaction."""
        if not events:
            return
        try:
            self._insert(events, "")
        except duckdb.ConstraintException as exc:
            raise DuplicateEventsError(str(exc)) from exc

    def _insert(self, events: Sequence[Event], on_conflict: str) -> list[tuple[Any, ...]]:
        db = self.connection
        db.register("new_events", event_table(events, now_utc()))
        # Left registered when the INSERT fails: in the transaction that the failure aborted,
        # DuckDB would refuse to unregister it too. The next insert's register replaces it.
        rows = db.execute(f"INSERT INTO events SELECT * FROM new_events {on_conflict}").fetchall()
        db.unregister("new_events")
        return rows

    def write_labels(self, labels: Sequence[Label]) -> int:
        """Store labels; a later label for the same event replaces the earlier one."""
        if not labels:
            return 0
        table = label_table(labels, now_utc())
        db = self.connection
        db.register("new_labels", table)
        try:
            db.execute("INSERT OR REPLACE INTO labels SELECT * FROM new_labels")
        finally:
            db.unregister("new_labels")
        return len(labels)

    def quarantine(self, model: str, source: str, rejected: Sequence[Rejected]) -> None:
        """Keep what failed validation, with the reason, so nothing is dropped silently."""
        if not rejected:
            return
        self.connection.executemany(QUARANTINE_INSERT, quarantine_rows(model, source, rejected))

    def events(
        self,
        model: str,
        since: datetime | None = None,
        until: datetime | None = None,
        role: str = "production",
    ) -> pa.Table:
        """Stored events in ``[since, until)`` with their labels (null until one arrives)."""
        where = "model = ? AND role = ?"
        params: list[object] = [model, role]
        if since is not None:
            where += " AND ts >= ?"
            params.append(naive_utc(since))
        if until is not None:
            where += " AND ts < ?"
            params.append(naive_utc(until))
        # The period's events first, so that the join hashes them and not every label of the
        # model: reads are a window at a time, and hashing all labels for each made a day's
        # read among 10M events and 7.7M labels cost 4x the CPU.
        query = (
            f"WITH e AS MATERIALIZED (SELECT * FROM events WHERE {where}) "
            "SELECT e.event_id, e.ts, e.prediction, e.latency_ms, e.status, e.cost, "
            "e.features, e.segments, e.metadata, l.label, "
            # When the label became known: as its sender said, else when it reached us.
            "coalesce(l.labelled_at, l.received_at) AS labelled_at "
            "FROM e LEFT JOIN labels l ON l.model = e.model AND l.event_id = e.event_id "
            # Ties by id: events logged in the same second come back in one order every read,
            # so a window's order-sensitive sketches are the same on every recheck.
            "ORDER BY e.ts, e.event_id"
        )
        return self.connection.sql(query, params=params).to_arrow_table()

    def expire_events(self, model: str, before: datetime) -> int:
        """Delete raw events (and their labels) older than ``before``; returns how many."""
        db = self.connection
        ((count,),) = db.execute(
            "SELECT count(*) FROM events WHERE model = ? AND ts < ?", [model, naive_utc(before)]
        ).fetchall()
        with self.transaction():
            db.execute(
                "DELETE FROM labels WHERE model = ? AND event_id IN "
                "(SELECT event_id FROM events WHERE model = ? AND ts < ?)",
                [model, model, naive_utc(before)],
            )
            db.execute("DELETE FROM events WHERE model = ? AND ts < ?", [model, naive_utc(before)])
        return int(count)

    # -- incidents ------------------------------------------------------------------------

    def save_incidents(self, model: str, incidents: pa.Table, namespace: str = PRODUCTION) -> None:
        """Replace the model's incidents with the ones derived from its history."""
        db = self.connection
        with self.transaction():
            db.execute(
                "DELETE FROM incidents WHERE model = ? AND namespace = ?", [model, namespace]
            )
            if incidents.num_rows:
                db.register("new_incidents", incidents)
                db.execute("INSERT INTO incidents BY NAME SELECT * FROM new_incidents")
                db.unregister("new_incidents")
