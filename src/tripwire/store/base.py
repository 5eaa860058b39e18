"""What every store offers: the one interface the job, the collector, the scheduler and the
commands are written against, whichever database is behind it."""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import AbstractContextManager
from datetime import datetime, timedelta
from typing import Any, Literal, Protocol, Self

import pyarrow as pa

from tripwire.events import Event, Label, Rejected
from tripwire.layers.rows import MetricRow
from tripwire.store.common import PRODUCTION


class Store(Protocol):
    """Metric history, window profiles, incidents, calibrations and the prediction log.

    Implemented by :class:`~tripwire.store.DuckDBStore` (one file, one writing process) and
    :class:`~tripwire.store.PostgresStore` (a server several processes share).
    """

    where: str  # the store as messages name it: a file path, or a URI without its password

    @property
    def dialect(self) -> Literal["duckdb", "postgres"]:
        """Which database is behind the store, for the little SQL written outside it."""
        ...

    def close(self) -> None: ...

    def __enter__(self) -> Self: ...

    def __exit__(self, *_: object) -> None: ...

    def transaction(self) -> AbstractContextManager[None]:
        """Statements inside are committed together or not at all; uses may nest."""
        ...

    def sql(self, statement: str, params: Sequence[object] = ()) -> list[tuple[Any, ...]]:
        """Run one statement written with ``?`` placeholders; the rows of a query or of a
        ``RETURNING`` clause (what other statements give back differs by store).

        Only for the alert outbox, whose few statements read the same in both dialects:
        everything else is a method here, so that the job, the server and the commands never
        depend on which database is behind the store.
        """
        ...

    def write_window(
        self,
        model: str,
        start: datetime,
        length: timedelta,
        rows: Sequence[MetricRow],
        profile: bytes,
        n_rows: int,
        namespace: str = PRODUCTION,
    ) -> None: ...

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
        ...

    def revisions(
        self, model: str, start: datetime, length: timedelta, namespace: str = PRODUCTION
    ) -> pa.Table:
        """How one window's performance rows moved as it was computed again."""
        ...

    def window_starts(
        self, model: str, length: timedelta, namespace: str = PRODUCTION
    ) -> list[datetime]: ...

    def profiles(
        self,
        model: str,
        length: timedelta,
        since: datetime,
        until: datetime,
        namespace: str = PRODUCTION,
    ) -> list[tuple[datetime, bytes]]: ...

    def save_reference(self, model: str, state: bytes, namespace: str = PRODUCTION) -> bool:
        """Keep ``model``'s fitted reference (``Monitor.to_bytes``), unless the same one is
        kept already (then False); the job calls it beside the windows it writes."""
        ...

    def reference_digest(self, model: str, namespace: str = PRODUCTION) -> str | None: ...

    def reference(self, model: str, namespace: str = PRODUCTION) -> bytes | None:
        """The fitted reference :meth:`save_reference` kept, or None."""
        ...

    def write_events(self, events: Sequence[Event]) -> int:
        """Store events; one whose (model, event_id) is already stored (or repeated in the
        batch) is skipped, so a redelivered event is harmless. Returns how many were new."""
        ...

    def insert_events(self, events: Sequence[Event]) -> None:
        """Store events none of which is stored yet, or raise ``DuplicateEventsError``.

        Inserting without skipping conflicts costs the database less than
        :meth:`write_events`, and redelivered events are rare: a collector tries this first
        and falls back to ``write_events`` when it raises."""
        ...

    def write_labels(self, labels: Sequence[Label]) -> int: ...

    def quarantine(self, model: str, source: str, rejected: Sequence[Rejected]) -> None: ...

    def quarantined(self, model: str) -> pa.Table: ...

    def events(
        self,
        model: str,
        since: datetime | None = None,
        until: datetime | None = None,
        role: str = "production",
    ) -> pa.Table: ...

    def first_event(self, model: str, since: datetime | None = None) -> datetime | None: ...

    def relabelled_windows(
        self, model: str, length: timedelta, since: datetime | None = None
    ) -> list[datetime]:
        """Production windows with a label received after they were computed; of the labels
        received at or after ``since`` only, when given."""
        ...

    def late_windows(
        self, model: str, length: timedelta, since: datetime | None = None
    ) -> list[datetime]:
        """Production windows with an event received after they were computed, and windows
        holding events but no rows before the latest with rows; of the events received at or
        after ``since`` only, when given."""
        ...

    def expire_events(self, model: str, before: datetime) -> int: ...

    def mark_abnormal(self, model: str, start: datetime, reason: str) -> None: ...

    def abnormal_windows(self, model: str) -> set[datetime]: ...

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
    ) -> None: ...

    def calibrations(self, model: str) -> pa.Table: ...

    def incidents(self, model: str, namespace: str = PRODUCTION) -> pa.Table: ...

    def save_incidents(
        self, model: str, incidents: pa.Table, namespace: str = PRODUCTION
    ) -> None: ...

    def record_consumer(
        self, source: str, stream: str, group: str, lag: int | None, stored: int
    ) -> None:
        """Keep a queue consumer's report on its group (``tripwire consume``): ``lag`` (events
        of ``stream`` the group has not stored yet, None when unknown) replaces the group's,
        ``stored`` (events new to the store since the consumer's last report) adds to the
        group's count, and the row is stamped with the time."""
        ...

    def consumers(self) -> pa.Table:
        """Every consumer group's latest report, by source, stream and group; columns
        :data:`~tripwire.store.common.CONSUMERS`."""
        ...


def open_store(target: str) -> Store:
    """The store at ``target``: a ``postgresql://`` URI, or else a DuckDB file path."""
    if target.startswith(("postgresql://", "postgres://")):
        from tripwire.store import PostgresStore  # the driver loads only when asked for

        store: Store = PostgresStore(target)
        return store
    from tripwire.store.duckdb_store import DuckDBStore

    return DuckDBStore(target)
