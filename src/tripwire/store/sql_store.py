"""What the two stores do alike, written once: the methods whose SQL reads the same in DuckDB
and in PostgreSQL, over the few things each store does its own way.

A store built on :class:`SQLStore` provides :meth:`~SQLStore.sql` (one statement written with
``?`` placeholders, its rows), :meth:`~SQLStore.table` (the same, its rows as Arrow) and
:meth:`~SQLStore.transaction`; the connection, the
migrations, bulk writes and what differs by dialect stay in the store's own module.

Upserts are ``INSERT ... ON CONFLICT DO UPDATE``, which both databases run alike (DuckDB's
``INSERT OR REPLACE`` is its shorthand for the same).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from contextlib import AbstractContextManager
from datetime import datetime, timedelta
from typing import Any, ClassVar, Literal

import pyarrow as pa

from tripwire.store.common import (
    CALIBRATIONS,
    CONSUMER_UPSERT,
    CONSUMERS,
    CONSUMERS_QUERY,
    HISTORY,
    INCIDENTS,
    LATE,
    PRODUCTION,
    QUARANTINED,
    RELABELLED,
    REVISIONS,
    REVISIONS_QUERY,
    changed_since_computed,
    naive_utc,
    now_utc,
    state_digest,
    windows_used_json,
)


class SQLStore(ABC):
    """The methods of :class:`~tripwire.store.base.Store` that are the same query in every
    dialect, written against the primitives each store provides."""

    dialect: Literal["duckdb", "postgres"]

    # What ORDER BY writes after a text column for text to sort by byte value, as DuckDB sorts
    # it; PostgreSQL would follow the database's collation.
    text_order: ClassVar[str] = ""

    @abstractmethod
    def sql(self, statement: str, params: Sequence[object] = ()) -> list[tuple[Any, ...]]:
        """Run one statement written with ``?`` placeholders; the rows it returns."""

    @abstractmethod
    def table(self, statement: str, params: Sequence[object], schema: pa.Schema) -> pa.Table:
        """The rows of one query written with ``?`` placeholders, as a table of ``schema``,
        whose columns the query selects in order."""

    @abstractmethod
    def transaction(self) -> AbstractContextManager[None]:
        """Statements inside are committed together or not at all; uses may nest."""

    @abstractmethod
    def _one_of(self, column: str, values: Sequence[object]) -> tuple[str, list[object]]:
        """A condition that ``column`` holds one of ``values``, and its parameters."""

    def _by_bytes(self, *columns: str) -> str:
        """Text ``columns`` for ORDER BY, each sorted by byte value."""
        return ", ".join(column + self.text_order for column in columns)

    # -- windows and metric rows ---------------------------------------------------------

    def history(
        self,
        model: str,
        length: timedelta,
        metrics: Sequence[str] | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        namespace: str = PRODUCTION,
        *,
        features: Sequence[str] | None = None,
    ) -> pa.Table:
        """Metric rows of windows of ``length`` starting in ``[since, until)``, oldest first;
        of ``metrics`` and of ``features`` only ('' for the outputs' rows), when given."""
        query = (
            f"SELECT {', '.join(HISTORY.names)} FROM metrics "
            "WHERE model = ? AND namespace = ? AND window_seconds = ?"
        )
        params: list[object] = [model, namespace, int(length.total_seconds())]
        for column, values in (("metric", metrics), ("feature", features)):
            if values is not None:
                condition, bound = self._one_of(column, values)
                query += f" AND {condition}"
                params += bound
        if since is not None:
            query += " AND window_start >= ?"
            params.append(naive_utc(since))
        if until is not None:
            query += " AND window_start < ?"
            params.append(naive_utc(until))
        query += f" ORDER BY window_start, {self._by_bytes('segment', 'feature', 'metric')}"
        return self.table(query, params, HISTORY)

    def revisions(
        self, model: str, start: datetime, length: timedelta, namespace: str = PRODUCTION
    ) -> pa.Table:
        """How a window's performance rows moved as it was computed again (labels arriving):
        each earlier version that differs from the next, then the current one, by segment,
        feature and metric, oldest first; columns :data:`~tripwire.store.common.REVISIONS`."""
        key = [model, namespace, naive_utc(start), int(length.total_seconds())]
        order = f" ORDER BY {self._by_bytes('segment', 'feature', 'metric')}, computed_at"
        return self.table(REVISIONS_QUERY + order, key + key, REVISIONS)

    def window_starts(
        self, model: str, length: timedelta, namespace: str = PRODUCTION
    ) -> list[datetime]:
        rows = self.sql(
            "SELECT window_start FROM windows WHERE model = ? AND namespace = ? "
            "AND window_seconds = ? ORDER BY window_start",
            [model, namespace, int(length.total_seconds())],
        )
        return [r[0] for r in rows]

    def profiles(
        self,
        model: str,
        length: timedelta,
        since: datetime,
        until: datetime,
        namespace: str = PRODUCTION,
    ) -> list[tuple[datetime, bytes]]:
        """Stored window profiles in ``[since, until)``, to merge into a longer window."""
        rows = self.sql(
            "SELECT window_start, profile FROM windows WHERE model = ? AND namespace = ? "
            "AND window_seconds = ? AND window_start >= ? AND window_start < ? "
            "ORDER BY window_start",
            [model, namespace, int(length.total_seconds()), naive_utc(since), naive_utc(until)],
        )
        return [(start, bytes(blob)) for start, blob in rows]

    def save_reference(self, model: str, state: bytes, namespace: str = PRODUCTION) -> bool:
        """Keep ``model``'s fitted reference (the bytes ``Monitor.to_bytes`` gives), replacing
        the one kept before; False when that one was the same, which is then left alone."""
        digest = state_digest(state)
        if self.reference_digest(model, namespace) == digest:
            return False
        self.sql(
            "INSERT INTO reference_profiles VALUES (?, ?, ?, ?, ?) "
            "ON CONFLICT (model, namespace) DO UPDATE SET digest = excluded.digest, "
            "state = excluded.state, stored_at = excluded.stored_at",
            [model, namespace, digest, state, now_utc()],
        )
        return True

    def reference_digest(self, model: str, namespace: str = PRODUCTION) -> str | None:
        """The digest of ``model``'s kept reference (to tell whether it changed), or None."""
        rows = self.sql(
            "SELECT digest FROM reference_profiles WHERE model = ? AND namespace = ?",
            [model, namespace],
        )
        return str(rows[0][0]) if rows else None

    def reference(self, model: str, namespace: str = PRODUCTION) -> bytes | None:
        """``model``'s kept reference, as :meth:`save_reference` was given it, or None."""
        rows = self.sql(
            "SELECT state FROM reference_profiles WHERE model = ? AND namespace = ?",
            [model, namespace],
        )
        return bytes(rows[0][0]) if rows else None

    # -- the prediction log --------------------------------------------------------------

    def quarantined(self, model: str) -> pa.Table:
        return self.table(
            f"SELECT {', '.join(QUARANTINED.names)} FROM quarantine WHERE model = ? ORDER BY id",
            [model],
            QUARANTINED,
        )

    def first_event(self, model: str, since: datetime | None = None) -> datetime | None:
        """The timestamp of the model's earliest stored production event (at or after
        ``since``, when given), naive UTC."""
        query = "SELECT min(ts) FROM events WHERE model = ? AND role = 'production'"
        params: list[object] = [model]
        if since is not None:
            query += " AND ts >= ?"
            params.append(naive_utc(since))
        ((first,),) = self.sql(query, params)
        return first  # type: ignore[no-any-return]

    def relabelled_windows(
        self, model: str, length: timedelta, since: datetime | None = None
    ) -> list[datetime]:
        """Starts of the model's production windows of ``length`` holding an event whose
        label was received after the window's rows were computed (naive UTC); of the labels
        received at or after ``since`` only, when given."""
        return changed_since_computed(self.sql, self.dialect, model, length, RELABELLED, since)

    def late_windows(
        self, model: str, length: timedelta, since: datetime | None = None
    ) -> list[datetime]:
        """Starts of the model's production windows of ``length`` holding an event received
        after the window's rows were computed: one that arrived after its grace (naive UTC);
        of the events received at or after ``since`` only, when given."""
        return changed_since_computed(self.sql, self.dialect, model, length, LATE, since)

    # -- abnormal windows and calibrations -----------------------------------------------

    def mark_abnormal(self, model: str, start: datetime, reason: str) -> None:
        """Keep a window out of calibration (a known outage, a holiday, a test)."""
        self.sql(
            "INSERT INTO abnormal_windows VALUES (?, ?, ?) "
            "ON CONFLICT (model, window_start) DO UPDATE SET reason = excluded.reason",
            [model, naive_utc(start), reason],
        )

    def abnormal_windows(self, model: str) -> set[datetime]:
        rows = self.sql("SELECT window_start FROM abnormal_windows WHERE model = ?", [model])
        return {r[0] for r in rows}

    def save_calibration(
        self,
        model: str,
        metric: str,
        feature: str,
        segment: str,
        threshold: float,
        quantile: float,
        floor: float,
        windows_used: Sequence[datetime],
    ) -> None:
        self.sql(
            "INSERT INTO calibrations VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) "
            "ON CONFLICT (model, metric, feature, segment) DO UPDATE SET "
            "threshold = excluded.threshold, quantile = excluded.quantile, "
            "floor = excluded.floor, windows_used = excluded.windows_used, "
            "computed_at = excluded.computed_at",
            [
                model,
                metric,
                feature,
                segment,
                threshold,
                quantile,
                floor,
                windows_used_json(windows_used),
                now_utc(),
            ],
        )

    def calibrations(self, model: str) -> pa.Table:
        return self.table(
            f"SELECT {', '.join(CALIBRATIONS.names)} FROM calibrations WHERE model = ? "
            f"ORDER BY {self._by_bytes('metric', 'feature', 'segment')}",
            [model],
            CALIBRATIONS,
        )

    # -- incidents ------------------------------------------------------------------------

    def incidents(self, model: str, namespace: str = PRODUCTION) -> pa.Table:
        return self.table(
            f"SELECT {', '.join(INCIDENTS.names)} FROM incidents "
            f"WHERE model = ? AND namespace = ? ORDER BY opened_at, {self._by_bytes('rule')}",
            [model, namespace],
            INCIDENTS,
        )

    # -- queue consumers ------------------------------------------------------------------

    def record_consumer(
        self, source: str, stream: str, group: str, lag: int | None, stored: int
    ) -> None:
        """Keep a queue consumer's report on its group: its lag replaces the group's, the
        events it stored since its last report add to the group's count."""
        self.sql(CONSUMER_UPSERT, [source, stream, group, lag, stored, now_utc()])

    def consumers(self) -> pa.Table:
        """Every consumer group's latest report, by source, stream and group; columns
        :data:`~tripwire.store.common.CONSUMERS`."""
        order = f" ORDER BY {self._by_bytes('source', 'stream', 'group_id')}"
        return self.table(CONSUMERS_QUERY + order, [], CONSUMERS)
