"""The collector: validates batches and writes them to the store it owns.

DuckDB allows one writing process per file, and one connection must not be used by two threads
at once; FastAPI runs the work of several requests in a thread pool, so every use of the store
goes through one lock. Parsing and validation happen outside it, in parallel with other requests'
writes.

What serving processes' loggers dropped arrives with their batches (``Tripwire-Logger-Id`` and
``Tripwire-Logger-Dropped``, see :class:`tripwire.logger.HttpTransport`): the collector keeps each
logger's latest cumulative count, in memory, for ``/metrics``.

Event batches are committed in groups: while one request's thread writes, the batches that
other requests validated meanwhile wait, and the next thread to write takes all of them into one
INSERT and one commit. A statement and a commit cost about as much for 1,000 rows as for
10,000, so under load this is most of the collector's throughput. Every request still gets its
own answer, and only once its rows are committed.
"""

from __future__ import annotations

import re
import threading
from collections import Counter, OrderedDict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC

from tripwire.config import ModelConfig
from tripwire.events import Event, Rejected
from tripwire.server.body import Batch
from tripwire.server.decoding import decode_lines
from tripwire.server.parsing import EventParser, validate_batch
from tripwire.server.schemas import (
    EventIngestResult,
    ItemRejection,
    LabelIngestResult,
    QuarantinedItem,
    QuarantinePage,
)
from tripwire.server.validation import (
    Validated,
    add_unreadable,
    validate_label_batch,
)
from tripwire.store import DuplicateEventsError, Store
from tripwire.store.common import EventRows

EVENTS_SOURCE = "POST /v1/events"
LABELS_SOURCE = "POST /v1/labels"


class GroupWriteError(RuntimeError):
    """The store failed while writing a group of batches this one was committed with; nothing
    of the group was stored."""


@dataclass(eq=False)
class _EventWrite:
    """One batch waiting to be stored: its valid events and its rejected items; then how many
    events were new, or the error that stopped the write."""

    events: Sequence[Event]
    rejected: Mapping[str, list[Rejected]]
    source: str
    new: int = 0
    error: BaseException | None = None
    done: bool = False


class Collector:
    """Batches in, rows out: the models it accepts and the store it writes to."""

    def __init__(
        self,
        configs: Mapping[str, ModelConfig],
        store: Store,
        lock: threading.Lock | None = None,
        parse_workers: int = 0,
    ) -> None:
        """``lock`` guards the store's connection; pass the one other users of it hold.
        ``parse_workers`` processes read the bodies given to :meth:`ingest_event_body` (see
        :mod:`tripwire.server.parsing`); with 0 the calling thread does."""
        self.configs = dict(configs)
        self.store = store
        self.parser = EventParser(configs, parse_workers)
        self.counts = IngestCounts()
        self._lock = lock or threading.Lock()
        # Event batches waiting for the store, and whether a thread is writing a group now.
        self._waiting: list[_EventWrite] = []
        self._writing = False
        self._turn = threading.Condition()

    def ingest_events(self, batch: Batch, source: str = EVENTS_SOURCE) -> EventIngestResult:
        """Store the batch's valid events (once each) and quarantine the rest.

        Returns once they are committed. Raises what the store raised, or
        :class:`GroupWriteError` when the failed write was another thread's; either way nothing
        of the batch was stored.
        """
        result = validate_batch(self.configs, batch)
        _name_origins(result.rejected, batch)
        return self._ingest(result, source)

    def ingest_lines(
        self, lines: Sequence[bytes | None], read: Callable[[], Batch], source: str
    ) -> EventIngestResult:
        """:meth:`ingest_events` for events sent one JSON text each (a queue's messages, in
        order; None for a message with none). When every one is a valid event they are decoded
        in one pass (:func:`~tripwire.server.decoding.decode_lines`); else ``read`` gives the
        batch, as the caller reads it to name each message that is not an event."""
        rows = decode_lines(self.configs, lines)
        if rows is None:
            return self.ingest_events(read(), source)
        return self._ingest(Validated(accepted=rows), source)

    def ingest_event_body(
        self, content_type: str | None, raw: bytes, logger: LoggerReport | None = None
    ) -> EventIngestResult:
        """:meth:`ingest_events` for a request body, read by the collector's parser. Raises
        ``BodyError`` or ``MediaTypeError`` when the body is not a batch (nothing is stored).

        ``logger`` is what the sending logger said of itself; its drop count is kept once the
        batch is stored, for the model of the batch's events."""
        result = self.parser.read(content_type, raw)
        answer = self._ingest(result, EVENTS_SOURCE)
        if logger is not None:
            self.counts.add_logger_drops(logger, _model_of(result, self.configs))
        return answer

    def _ingest(self, result: Validated[Event], source: str) -> EventIngestResult:
        write = _EventWrite(result.accepted, result.rejected, source)
        self._store_events(write)
        rejected = _rejections(result.rejected)
        self.counts.add_events(write.new, len(write.events) - write.new, len(rejected))
        return EventIngestResult(
            accepted=write.new, duplicates=len(write.events) - write.new, rejected=rejected
        )

    def _store_events(self, write: _EventWrite) -> None:
        """Commit ``write``, in one group with whatever other batches are waiting."""
        with self._turn:
            self._waiting.append(write)
            while self._writing and not write.done:
                self._turn.wait()
            if write.done:  # in another thread's group
                if write.error is not None:
                    raise GroupWriteError(
                        f"storing the batch failed: {write.error}"
                    ) from write.error
                return
            # Nobody is writing, so nobody has taken this batch: this thread writes it, and
            # every batch that is waiting once the store is free.
            self._writing = True
        group: list[_EventWrite] = []
        try:
            with self._lock:
                with self._turn:
                    group, self._waiting = self._waiting, []
                counts = self._write_group(group)
            for each, new in zip(group, counts, strict=True):
                each.new = new
        except BaseException as exc:
            for each in group:
                each.error = exc
            raise
        finally:
            with self._turn:
                if not group:  # failed before taking it: no later group may store this batch
                    self._waiting.remove(write)
                for each in group:
                    each.done = True
                self._writing = False
                self._turn.notify_all()

    def _write_group(self, group: Sequence[_EventWrite]) -> list[int]:
        """How many events of each batch were new. One transaction for the whole group: all of
        it is stored, or (on an error) none of it."""
        # Usually no event of the group is stored yet: one plain INSERT, which costs the
        # database less than one that skips conflicts.
        try:
            with self.store.transaction():
                self.store.insert_events(EventRows.concat(each.events for each in group))
                for each in group:
                    self._quarantine(each.source, each.rejected)
            return [len(each.events) for each in group]
        except DuplicateEventsError:
            pass  # rolled back
        # Batch by batch, in order, so that an event sent twice is new in the first batch only.
        with self.store.transaction():
            counts = []
            for each in group:
                counts.append(self.store.write_events(each.events))
                self._quarantine(each.source, each.rejected)
        return counts

    def ingest_labels(self, batch: Batch) -> LabelIngestResult:
        """Store the batch's valid labels (replacing earlier ones) and quarantine the rest."""
        result = validate_label_batch(self.configs, batch.items, batch.indices)
        add_unreadable(result.rejected, batch)
        with self._lock, self.store.transaction():
            stored = self.store.write_labels(result.accepted)
            self._quarantine(LABELS_SOURCE, result.rejected)
        rejected = _rejections(result.rejected)
        self.counts.add_labels(stored, len(rejected))
        return LabelIngestResult(accepted=stored, rejected=rejected)

    def record_consumer(
        self, source: str, stream: str, group: str, lag: int | None, stored: int
    ) -> None:
        """Keep a queue consumer's report on its group in the store (see
        ``Store.record_consumer``), for ``/metrics`` of the server that reads the store."""
        with self._lock:
            self.store.record_consumer(source, stream, group, lag, stored)

    def quarantine_page(self, model: str, limit: int, offset: int) -> QuarantinePage:
        """Items quarantined for ``model``, oldest first, ``limit`` of them from ``offset``."""
        with self._lock:
            table = self.store.quarantined(model)
        rows = table.slice(offset, limit).to_pylist() if offset < table.num_rows else []
        items = [
            # The store keeps UTC without a zone; say so on the way out.
            QuarantinedItem(**{**row, "received_at": row["received_at"].replace(tzinfo=UTC)})
            for row in rows
        ]
        return QuarantinePage(
            model=model, total=table.num_rows, limit=limit, offset=offset, items=items
        )

    def _quarantine(self, source: str, rejected: Mapping[str, list[Rejected]]) -> None:
        for model, items in rejected.items():
            self.store.quarantine(model, source, items)


@dataclass(frozen=True)
class LoggerReport:
    """What a serving process's logger says of itself with a batch: its id and how many events
    it has dropped since it started."""

    instance: str
    dropped: int

    @classmethod
    def of(cls, instance: str | None, dropped: str | None) -> LoggerReport | None:
        """The report in a request's headers; None when either is missing or malformed."""
        if instance is None or dropped is None or not _INSTANCE.fullmatch(instance):
            return None
        if not (dropped.isascii() and dropped.isdigit() and len(dropped) <= 18):
            return None
        return cls(instance, int(dropped))


_INSTANCE = re.compile(r"[0-9A-Za-z_.-]{1,64}")
MAX_LOGGERS = 10_000
"""Loggers whose drop counts the collector keeps; past it, the one heard from least recently is
folded into its model's total (a serving process restarted long ago)."""


def _model_of(result: Validated[Event], configs: Mapping[str, ModelConfig]) -> str | None:
    """The one configured model of a batch's events (a logger logs for one model), else None."""
    models: set[str] = set()
    if isinstance(result.accepted, EventRows):
        models.update(result.accepted.table.column("model").unique().to_pylist())
    else:
        models.update(event.model for event in result.accepted)
    if not models:  # every event was rejected: by the model it was quarantined under
        models.update(name for name in result.rejected if name in configs)
    return models.pop() if len(models) == 1 else None


class IngestCounts:
    """What a collector took since it started, by outcome, and what the loggers sending to it
    dropped (``/metrics`` shows them)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.events: Counter[str] = Counter()
        self.labels: Counter[str] = Counter()
        # Each logger's model and latest cumulative drop count, least recently heard first;
        # the counts of the loggers forgotten past MAX_LOGGERS, by model.
        self._loggers: OrderedDict[str, tuple[str, int]] = OrderedDict()
        self._forgotten: Counter[str] = Counter()

    def add_logger_drops(self, report: LoggerReport, model: str | None) -> None:
        """Keep a logger's cumulative drop count: the highest it has reported (its requests may
        arrive out of order), for the model it was first heard with, or ``model`` (None while
        unknown: kept next time)."""
        with self._lock:
            known = self._loggers.get(report.instance)
            if known is not None:
                model = known[0]
            if model is None:
                return
            dropped = max(report.dropped, known[1] if known is not None else 0)
            self._loggers[report.instance] = (model, dropped)
            self._loggers.move_to_end(report.instance)
            while len(self._loggers) > MAX_LOGGERS:
                _, (old_model, old_dropped) = self._loggers.popitem(last=False)
                self._forgotten[old_model] += old_dropped

    def logger_drops(self) -> dict[str, int]:
        """Events dropped by the loggers that reported to this collector, summed by model."""
        with self._lock:
            totals = Counter(self._forgotten)
            for model, dropped in self._loggers.values():
                totals[model] += dropped
        return dict(totals)

    def add_events(self, stored: int, duplicate: int, quarantined: int) -> None:
        with self._lock:
            self.events.update(stored=stored, duplicate=duplicate, quarantined=quarantined)

    def add_labels(self, stored: int, quarantined: int) -> None:
        with self._lock:
            self.labels.update(stored=stored, quarantined=quarantined)

    def snapshot(self) -> tuple[dict[str, int], dict[str, int]]:
        with self._lock:
            events = {k: self.events[k] for k in ("stored", "duplicate", "quarantined")}
            labels = {k: self.labels[k] for k in ("stored", "quarantined")}
        return events, labels


def _name_origins(rejected: Mapping[str, list[Rejected]], batch: Batch) -> None:
    if batch.origins:
        for items in rejected.values():
            for item in items:
                item.origin = batch.origins[item.index]


def _rejections(rejected: Mapping[str, list[Rejected]]) -> list[ItemRejection]:
    every = sorted((r for rs in rejected.values() for r in rs), key=lambda r: r.index)
    return [ItemRejection(index=r.index, reason=r.reason) for r in every]
