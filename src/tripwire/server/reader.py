"""What the HTTP API and the dashboard read: the store's windows, metric rows, incidents,
calibrations and outbox, per model, each read under the lock the collector and the scheduler
hold.

Nothing is recomputed here. Layer states are the worst stored verdict of a window's rows;
incidents are the ones the job derived and saved; deliveries are the outbox's rows; the reference
profile is the one the job kept in the store beside the windows it checked (else, for a store
filled before it kept one, the fitted monitor's when the server fitted one for its scheduler).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal, TypeVar

import pyarrow as pa
import pyarrow.compute as pc

from tripwire.alerts.engine import Incident
from tripwire.alerts.outbox import Outbox, OutboxRow
from tripwire.config import AlertRule, ModelConfig, Runbook
from tripwire.errors import TripwireError
from tripwire.layers.catalog import ESTIMATED_PREFIX
from tripwire.layers.rows import LAYERS, SEVERITY, Layer, MetricRow
from tripwire.monitor import Monitor
from tripwire.store import Store

__all__ = [
    "LOCK_WAIT",
    "LayerSnapshot",
    "NotFoundError",
    "State",
    "StoreBusyError",
    "StoreReader",
    "UnknownModelError",
    "as_utc",
    "naive",
    "raised_order",
]

_log = logging.getLogger(__name__)

T = TypeVar("T")
State = Literal["ok", "watch", "alert", "no_data"]
# A stored verdict as a layer's state: an error (a metric that could not be computed: a
# missing column, a broken type) is as urgent as an alert.
_STATE: dict[str, State] = {"ok": "ok", "watch": "watch", "alert": "alert", "error": "alert"}
_RANK: dict[State, int] = {"alert": 0, "watch": 1, "ok": 2, "no_data": 3}
_VERDICTS = pa.array(sorted(_STATE), pa.string())
# Performance is judged twice: on realized metrics (once labels arrive) and on estimated ones
# (without labels, at once); the layer's state is the worse of the two.
_PARTS: dict[str, tuple[bool | None, ...]] = {"performance": (False, True)}
_FLAGGED = pa.array(["alert", "error", "watch"], pa.string())

LOCK_WAIT = 30.0
"""Seconds a read waits for the store while a job holds it before it is answered 503."""
LOOKBACK_CAP = 60
"""Windows a layer looks back for its latest verdict (performance waits for its labels)."""


class NotFoundError(TripwireError):
    """No such model, feature, window or incident."""


class UnknownModelError(NotFoundError):
    """The server monitors no model of that name."""


class StoreBusyError(TripwireError):
    """A job held the store longer than :data:`LOCK_WAIT`."""


def as_utc(moment: datetime) -> datetime:
    """A stored (naive UTC) moment as an aware UTC one."""
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def naive(moment: datetime) -> datetime:
    """A moment as the store holds it: naive UTC."""
    return moment.astimezone(UTC).replace(tzinfo=None) if moment.tzinfo else moment


@dataclass(frozen=True)
class StoredReference:
    """A model's fitted reference as the job kept it in the store (``Monitor.to_bytes``)."""

    digest: str
    state: bytes
    segments: tuple[str, ...]  # the tracked segments, most valuable first


@dataclass(frozen=True)
class LayerSnapshot:
    """A layer's state in the latest window that has a verdict for it."""

    layer: Layer
    state: State
    window_start: datetime | None
    flagged: list[MetricRow]  # rows at alert, error or watch, worst first


def raised_order(incident: Incident) -> tuple[datetime, datetime, str]:
    """A key ordering incidents by when they were raised (``detected_at``; for one saved
    before the store kept it, the window in which it opened), then by their evidence."""
    raised = incident.detected_at or incident.opened_at
    return (raised, incident.opened_at, incident.rule)


def incident_of(row: Mapping[str, object]) -> Incident:
    """An :class:`Incident` from a row of ``Store.incidents``."""
    fields = Incident.__dataclass_fields__
    return Incident(**{k: v for k, v in row.items() if k in fields})  # type: ignore[arg-type]


def metric_rows(table: pa.Table) -> list[MetricRow]:
    """History rows as :class:`MetricRow` (only for the few that are shown one by one)."""
    return [
        MetricRow(**{k: v for k, v in row.items() if v is not None or k == "value"})
        for row in table.to_pylist()
    ]


def _worst_first(rows: list[MetricRow]) -> list[MetricRow]:
    return sorted(rows, key=lambda r: (SEVERITY[r.status], -(r.importance or 0.0)))


class StoreReader:
    """Reads for the API and the dashboard over one store shared under ``lock``."""

    def __init__(
        self,
        configs: Mapping[str, ModelConfig],
        store: Store,
        lock: threading.Lock,
        monitors: Mapping[str, Monitor] | None = None,
    ) -> None:
        self.configs = dict(configs)
        self.store = store
        self.lock = lock
        self.monitors = dict(monitors or {})
        self._importance: dict[str, dict[str, float]] = {}
        self._references: dict[str, StoredReference] = {}

    # -- plumbing ------------------------------------------------------------------------

    @contextmanager
    def locked(self) -> Iterator[Store]:
        """The store, held for the block: the collector and the scheduler wait meanwhile."""
        if not self.lock.acquire(timeout=LOCK_WAIT):
            raise StoreBusyError(f"the store was busy for {LOCK_WAIT:g} s (a job is running)")
        try:
            yield self.store
        finally:
            self.lock.release()

    def read(self, work: Callable[[Store], T]) -> T:
        with self.locked() as store:
            return work(store)

    def config(self, model: str) -> ModelConfig:
        try:
            return self.configs[model]
        except KeyError:
            raise UnknownModelError(f"no model named {model!r} is monitored here") from None

    def importance(self, model: str) -> dict[str, float]:
        """The model's feature importance (the fitted monitor's, else the config's)."""
        if model not in self._importance:
            monitor = self.monitors.get(model)
            if monitor is not None:
                found = dict(monitor.importance_)
            else:
                try:
                    found = self.config(model).resolve_importance()
                except Exception as exc:  # an unreadable importance file must not stop pages
                    _log.warning("%s: importance unreadable (%s)", model, exc)
                    found = {}
            self._importance[model] = found
        return self._importance[model]

    def segments(self, model: str, stored: Iterable[str]) -> list[str]:
        """The stored segments other than ``all``, most valuable first: the fitted reference's
        order (top by business value, then pinned), else as stored."""
        present = [s for s in dict.fromkeys(stored) if s != "all"]
        reference = self.reference(model)
        monitor = self.monitors.get(model)
        if reference is not None:
            ranked = reference.segments
        elif monitor is not None:
            ranked = monitor.bins_.segments
        else:
            return sorted(present)
        order = {s: i for i, s in enumerate(ranked)}
        return sorted(present, key=lambda s: (order.get(s, len(order)), s))

    def reference(self, model: str) -> StoredReference | None:
        """The fitted reference the job kept in the store for ``model``, or None; its bytes
        are read again only when its digest changed."""
        from tripwire.server.dashboard.profiles import stored_segments  # imports this module

        self.config(model)
        kept = self._references.get(model)

        def read(store: Store) -> tuple[str, bytes | None] | None:
            digest = store.reference_digest(model)
            if digest is None:
                return None
            if kept is not None and kept.digest == digest:
                return digest, None  # the one read before
            return digest, store.reference(model)

        found = self.read(read)
        if found is None:
            self._references.pop(model, None)
            return None
        digest, state = found
        if state is None:
            return kept if kept is not None and kept.digest == digest else None
        try:
            segments = stored_segments(state)
        except TripwireError as exc:
            _log.warning("%s: stored reference unreadable (%s)", model, exc)
            return None
        self._references[model] = StoredReference(digest, state, segments)
        return self._references[model]

    # -- windows and rows ----------------------------------------------------------------

    def window_starts(self, model: str) -> list[datetime]:
        config = self.config(model)
        return self.read(lambda s: s.window_starts(model, config.window))

    def history(
        self,
        model: str,
        metrics: Sequence[str] | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        features: Sequence[str] | None = None,
    ) -> pa.Table:
        config = self.config(model)
        return self.read(
            lambda s: s.history(
                model,
                config.window,
                list(metrics) if metrics is not None else None,
                naive(since) if since else None,
                naive(until) if until else None,
                features=list(features) if features is not None else None,
            )
        )

    def window_rows(
        self, model: str, start: datetime, features: Sequence[str] | None = None
    ) -> pa.Table:
        """Every metric row of the window starting at ``start`` (of ``features`` only)."""
        return self.history(
            model, since=start, until=start + self.config(model).window, features=features
        )

    def layer_states(
        self, model: str, starts: Sequence[datetime], latest: pa.Table | None = None
    ) -> list[LayerSnapshot]:
        """Each layer's state in the latest window with a verdict for it.

        The inputs, predictions and cost of the latest window are judged as it is checked.
        Performance has two sources: realized metrics wait for labels, so their latest verdict
        may be windows older (at most :data:`LOOKBACK_CAP` windows back), and estimated ones
        judge the latest window; the layer shows the worse of the two.
        """
        if not starts:
            return [LayerSnapshot(layer, "no_data", None, []) for layer in LAYERS]
        last = starts[-1]
        rows = self.window_rows(model, last) if latest is None else latest
        found = {
            (layer, part): _snapshot(_part(rows, layer, part), layer)
            for layer in LAYERS
            for part in _PARTS.get(layer, (None,))
        }
        waiting = [key for key, snap in found.items() if snap is None]
        if waiting and len(starts) > 1:
            # Only the metrics still without a verdict, in the windows before.
            metrics = sorted(
                {
                    m
                    for layer, part in waiting
                    for m in _part(rows, layer, part)["metric"].to_pylist()
                }
            )
            if metrics:
                back = max(0, len(starts) - 1 - LOOKBACK_CAP)
                older = self.history(model, metrics, since=starts[back], until=last)
                for layer, part in waiting:
                    found[layer, part] = _latest_snapshot(_part(older, layer, part), layer)
        return [
            _worse(layer, [found[layer, part] for part in _PARTS.get(layer, (None,))])
            for layer in LAYERS
        ]

    # -- incidents, deliveries, calibrations ----------------------------------------------

    def incidents(self, model: str) -> list[Incident]:
        """The incidents the job saved for ``model``, newest raised first (see
        :func:`raised_order`)."""
        self.config(model)
        table = self.read(lambda s: s.incidents(model))
        found = [incident_of(row) for row in table.to_pylist()]
        return sorted(found, key=raised_order, reverse=True)

    def incident(self, model: str, key: str) -> Incident | None:
        return next((i for i in self.incidents(model) if i.dedup_key == key), None)

    def deliveries(self) -> dict[str, list[OutboxRow]]:
        """The outbox's rows (pending, delivered, dead) by incident dedup key, oldest first."""

        def read(store: Store) -> list[OutboxRow]:
            outbox = Outbox(store)
            return [*outbox.pending(), *outbox.delivered(), *outbox.dead()]

        by_key: dict[str, list[OutboxRow]] = {}
        for row in sorted(self.read(read), key=lambda r: r.id):
            by_key.setdefault(row.dedup_key, []).append(row)
        return by_key

    def calibrations(self, model: str) -> list[dict[str, object]]:
        self.config(model)
        rows: list[dict[str, object]] = self.read(lambda s: s.calibrations(model)).to_pylist()
        return rows

    def calibrated(self, model: str) -> dict[tuple[str, str, str], float]:
        """Calibrated thresholds by (metric, feature, segment)."""
        return {
            (str(c["metric"]), str(c["feature"]), str(c["segment"])): float(c["threshold"])  # type: ignore[arg-type]
            for c in self.calibrations(model)
        }

    def abnormal(self, model: str) -> set[datetime]:
        self.config(model)
        return self.read(lambda s: s.abnormal_windows(model))

    def rule(self, model: str, name: str) -> AlertRule | None:
        return next((r for r in self.config(model).alerts if r.name == name), None)

    def runbook(self, model: str, incident: Incident) -> Runbook | None:
        rule = self.rule(model, incident.rule)
        return rule.resolve_runbook() if rule is not None else None

    def owner(self, model: str, incident: Incident) -> str | None:
        """Who owns the fix: the rule's owner, else its runbook's, else the model's first."""
        rule = self.rule(model, incident.rule)
        if rule is not None and rule.owner:
            return rule.owner
        runbook = rule.resolve_runbook() if rule is not None else None
        if runbook is not None and runbook.who_owns_the_fix:
            return runbook.who_owns_the_fix
        owners = self.config(model).owners
        return owners[0].name if owners else None

    def profile_bytes(self, model: str, start: datetime) -> bytes | None:
        """The stored profile of the window starting at ``start``."""
        config = self.config(model)
        found = self.read(
            lambda s: s.profiles(model, config.window, naive(start), naive(start) + config.window)
        )
        return found[0][1] if found else None


def _part(rows: pa.Table, layer: str, estimated: bool | None) -> pa.Table:
    """The rows of ``layer``; of performance, the estimated or the realized ones."""
    chosen = rows.filter(pc.equal(rows["layer"], layer))
    if estimated is None:
        return chosen
    is_estimated = pc.starts_with(chosen["metric"], ESTIMATED_PREFIX)
    return chosen.filter(is_estimated if estimated else pc.invert(is_estimated))


def _worse(layer: Layer, snapshots: list[LayerSnapshot | None]) -> LayerSnapshot:
    """One state for the layer from its parts' snapshots: the worse, with every flagged row."""
    present = [s for s in snapshots if s is not None]
    if not present:
        return LayerSnapshot(layer, "no_data", None, [])
    worst = min(present, key=lambda s: _RANK[s.state])
    flagged = _worst_first([r for s in present for r in s.flagged])
    return LayerSnapshot(layer, worst.state, worst.window_start, flagged)


def _verdict_rows(rows: pa.Table, layer: str) -> pa.Table:
    return rows.filter(pc.and_(pc.equal(rows["layer"], layer), pc.is_in(rows["status"], _VERDICTS)))


def _snapshot(rows: pa.Table, layer: str) -> LayerSnapshot | None:
    """The layer's state from one window's rows; None when none of them is a verdict."""
    judged = _verdict_rows(rows, layer)
    if judged.num_rows == 0:
        return None
    statuses = set(judged["status"].to_pylist())
    worst = min(statuses, key=SEVERITY.__getitem__)
    flagged = metric_rows(judged.filter(pc.is_in(judged["status"], _FLAGGED)))
    start = judged["window_start"][0].as_py()
    return LayerSnapshot(layer, _STATE[worst], start, _worst_first(flagged))  # type: ignore[arg-type]


def _latest_snapshot(history: pa.Table, layer: str) -> LayerSnapshot | None:
    judged = _verdict_rows(history, layer)
    if judged.num_rows == 0:
        return None
    last = pc.max(judged["window_start"])
    return _snapshot(judged.filter(pc.equal(judged["window_start"], last)), layer)
