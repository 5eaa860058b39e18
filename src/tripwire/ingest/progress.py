"""What a consumer of ``tripwire consume`` has done, and its reports of it to the store.

Every consumer (Kafka, Redis, spool files) counts what became of its batches in a
:class:`ConsumerStats` (the counts every source has; each consumer's module adds its own) and
owns a :class:`LagReporter`, which records its lag and the events it stored in the store
(``Store.record_consumer``), where ``tripwire serve``'s ``/metrics`` reads them: the consumer is
a process of its own.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from tripwire.server.collector import Collector
    from tripwire.server.schemas import EventIngestResult

__all__ = ["ConsumerStats", "LagReporter"]


@dataclass
class ConsumerStats:
    """What a consumer has done since it was made."""

    batches: int = 0
    """Batches ingested and done with (committed, acknowledged or recorded as stored)."""
    stored: int = 0
    """Events that were new to the store."""
    duplicates: int = 0
    """Events already stored (delivered or read again after a crash, or logged twice)."""
    quarantined: int = 0
    """Items (messages, entries, lines) that were not valid events."""
    lag: int | None = None
    """The consumer's lag at its latest report (see its ``lag``); None while unknown."""

    def add(self, result: EventIngestResult) -> None:
        """Count the events of a batch as ``Collector.ingest_events`` found them."""
        self.stored += result.accepted
        self.duplicates += result.duplicates
        self.quarantined += len(result.rejected)


class Consumer(Protocol):
    """What a :class:`LagReporter` reads from the consumer that owns it."""

    @property
    def collector(self) -> Collector: ...

    @property
    def stats(self) -> ConsumerStats: ...

    def lag(self) -> int | None:
        """What is not stored yet; may raise when it cannot be told."""
        ...


class LagReporter:
    """Records ``consumer``'s lag and the events it stored in the store, as ``source``,
    ``stream`` and ``group`` (``Store.record_consumer``), for ``/metrics``.

    :meth:`report` records now; :meth:`report_if_due`, called after each poll, at most every
    ``interval_s`` seconds (0: every time), the first time at once. The events recorded are
    those ``consumer.stats.stored`` counted since the latest report the store took, and the lag
    is kept in ``consumer.stats.lag`` once the store took it. Never raises: a lag that cannot
    be told is recorded as unknown, and a report the store refuses is logged (``lag_failure``
    names the lag's failure) and its events are counted in the next one. A failure is logged
    as a warning once while reports keep failing (one is due every few seconds), the rest at
    debug level, with the consumer's logger.

    >>> from tripwire.server.collector import Collector
    >>> from tripwire.store import DuckDBStore
    >>> class Spool:  # a consumer, as far as its reporter can tell
    ...     collector = Collector({}, DuckDBStore(":memory:"))
    ...     stats = ConsumerStats()
    ...     def lag(self) -> int:
    ...         return 7
    >>> spool = Spool()
    >>> reporter = LagReporter(spool, "file", "/var/spool/tripwire", "host-1", interval_s=60)
    >>> spool.stats.stored += 3  # a batch was stored
    >>> reporter.report_if_due()  # the first report: at once
    >>> spool.stats.stored += 2
    >>> reporter.report_if_due()  # the next one is due in a minute
    >>> def rows() -> list[tuple[int, int]]:
    ...     table = spool.collector.store.consumers()
    ...     return [(row["lag"], row["events_stored"]) for row in table.to_pylist()]
    >>> rows(), spool.stats.lag
    ([(7, 3)], 7)
    >>> reporter.report()  # now, as the consumer stops
    >>> rows()
    [(7, 5)]
    >>> spool.collector.store.close()
    """

    def __init__(
        self,
        consumer: Consumer,
        source: str,
        stream: str,
        group: str,
        interval_s: float,
        lag_failure: str = "reading the group's lag failed",
    ) -> None:
        self._consumer = consumer
        self._row = (source, stream, group)
        self._interval_s = interval_s
        self._lag_failure = lag_failure
        self._log = logging.getLogger(type(consumer).__module__)
        self._next = 0.0  # monotonic time of the next report; 0: at the next poll
        self._reported = 0  # consumer.stats.stored at the latest report the store took
        self._failing = False  # the latest report failed

    def report_if_due(self) -> None:
        """:meth:`report`, if ``interval_s`` has passed since the latest one."""
        if time.monotonic() >= self._next:
            self.report()

    def report(self) -> None:
        """Record the consumer's lag and the events it stored since the latest report."""
        self._next = time.monotonic() + self._interval_s
        stats = self._consumer.stats
        stored = stats.stored
        problem: str | None = None
        lag: int | None = None
        try:
            lag = self._consumer.lag()
        except Exception as exc:
            problem = f"{self._lag_failure}: {exc}"
        try:
            self._consumer.collector.record_consumer(*self._row, lag, stored - self._reported)
        except Exception as exc:
            problem = f"recording the consumer's state in the store failed: {exc}"
        else:
            self._reported = stored
            stats.lag = lag
        if problem is None:
            self._failing = False
        else:
            level = logging.DEBUG if self._failing else logging.WARNING
            self._failing = True
            self._log.log(level, "%r: %s", self._consumer, problem)
