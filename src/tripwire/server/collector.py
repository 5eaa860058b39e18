"""The collector: validates batches and writes them to the store it owns.

DuckDB allows one writing process per file, and one connection must not be used by two threads
at once; FastAPI runs the work of several requests in a thread pool, so every use of the store
goes through one lock. Parsing and validation happen outside it, in parallel with other requests'
writes.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from datetime import UTC

from tripwire.config import ModelConfig
from tripwire.events import Rejected
from tripwire.server.body import Batch
from tripwire.server.schemas import (
    EventIngestResult,
    ItemRejection,
    LabelIngestResult,
    QuarantinedItem,
    QuarantinePage,
)
from tripwire.server.validation import (
    UNKNOWN_MODEL,
    validate_event_batch,
    validate_label_batch,
)
from tripwire.store import Store

EVENTS_SOURCE = "POST /v1/events"
LABELS_SOURCE = "POST /v1/labels"


class Collector:
    """Batches in, rows out: the models it accepts and the store it writes to."""

    def __init__(
        self,
        configs: Mapping[str, ModelConfig],
        store: Store,
        lock: threading.Lock | None = None,
    ) -> None:
        """``lock`` guards the store's connection; pass the one other users of it hold."""
        self.configs = dict(configs)
        self.store = store
        self._lock = lock or threading.Lock()

    def ingest_events(self, batch: Batch, source: str = EVENTS_SOURCE) -> EventIngestResult:
        """Store the batch's valid events (once each) and quarantine the rest."""
        result = validate_event_batch(self.configs, batch.items, batch.indices)
        _add_unreadable(result.rejected, batch)
        # One transaction per batch: its events and its quarantined items are stored together
        # or (on an error) not at all, and one commit per batch is cheaper than one per statement.
        with self._lock, self.store.transaction():
            new = self.store.write_events(result.accepted)
            self._quarantine(source, result.rejected)
        return EventIngestResult(
            accepted=new,
            duplicates=len(result.accepted) - new,
            rejected=_rejections(result.rejected),
        )

    def ingest_labels(self, batch: Batch) -> LabelIngestResult:
        """Store the batch's valid labels (replacing earlier ones) and quarantine the rest."""
        result = validate_label_batch(self.configs, batch.items, batch.indices)
        _add_unreadable(result.rejected, batch)
        with self._lock, self.store.transaction():
            stored = self.store.write_labels(result.accepted)
            self._quarantine(LABELS_SOURCE, result.rejected)
        return LabelIngestResult(accepted=stored, rejected=_rejections(result.rejected))

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


def _add_unreadable(rejected: dict[str, list[Rejected]], batch: Batch) -> None:
    if batch.unreadable:
        rejected.setdefault(UNKNOWN_MODEL, []).extend(batch.unreadable)


def _rejections(rejected: Mapping[str, list[Rejected]]) -> list[ItemRejection]:
    every = sorted((r for rs in rejected.values() for r in rs), key=lambda r: r.index)
    return [ItemRejection(index=r.index, reason=r.reason) for r in every]
