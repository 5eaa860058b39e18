"""The monitoring job: split logged data into windows, profile and check each, store the rows,
then evaluate the alert rules over the stored history and deliver what they imply.

This is what ``tripwire run`` runs; a scheduler calls the same function as windows close.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from tripwire.alerts.engine import Incident, evaluate
from tripwire.alerts.notify import announcements, refresh_expiring
from tripwire.alerts.outbox import DeliveryReport, Outbox
from tripwire.config import AlertRule, ModelConfig
from tripwire.errors import TripwireError
from tripwire.monitor import Monitor
from tripwire.profile import serialize
from tripwire.profile.window import merge_windows
from tripwire.report.model import Report
from tripwire.store import Store
from tripwire.store.common import PRODUCTION, naive_utc
from tripwire.store.events import stored_windows


@dataclass
class JobResult:
    windows: list[datetime] = field(default_factory=list)
    incidents: list[Incident] = field(default_factory=list)
    announced: int = 0
    delivery: DeliveryReport = field(default_factory=DeliveryReport)
    refresh_failures: list[str] = field(default_factory=list)
    expired: int = 0  # raw events deleted by the retention policy
    latest: datetime | None = None  # the latest stored window, once rules were evaluated


def window_starts(timestamps: pa.ChunkedArray, length: timedelta) -> np.ndarray:
    """Each row's window start: its UTC timestamp floored to a multiple of ``length``."""
    micros = pc.cast(timestamps, pa.timestamp("us")).to_numpy(zero_copy_only=False)
    if np.isnat(micros).any():
        raise TripwireError(f"{int(np.isnat(micros).sum())} rows have no timestamp")
    step = np.timedelta64(int(length.total_seconds() * 1_000_000), "us")
    epoch = np.datetime64(0, "us")
    starts: np.ndarray = epoch + ((micros - epoch) // step) * step
    return starts


def check_windows(
    monitor: Monitor,
    store: Store,
    data: pa.Table,
    length: timedelta,
    namespace: str = PRODUCTION,
    step: Callable[[datetime], None] = lambda _: None,
) -> list[tuple[datetime, Report]]:
    """Profile and check every window present in ``data``; store profile and rows (replacing
    a window's earlier results, so re-running is idempotent). Returns each window's report."""
    config = monitor.config
    column = config.columns.time_column
    if column not in data.column_names:
        raise TripwireError(
            f"windows need the timestamp column; set columns.timestamp in the config "
            f"(the data has: {', '.join(data.column_names)})"
        )
    starts = window_starts(data.column(column), length)
    order = np.argsort(starts, kind="stable")
    data, starts = data.take(order), starts[order]
    distinct, first = np.unique(starts, return_index=True)
    bounds = [*first.tolist(), len(starts)]
    if len(distinct):
        # What the windows are judged against, for readers without the monitor (the dashboard).
        store.save_reference(config.name, monitor.to_bytes(), namespace)
    done: list[tuple[datetime, Report]] = []
    for i, start64 in enumerate(distinct):
        start = start64.astype("datetime64[us]").astype(datetime).replace(tzinfo=UTC)
        chunk = data.slice(bounds[i], bounds[i + 1] - bounds[i])
        windows = monitor.profile(chunk)
        report = monitor.evaluate(windows, window=f"{start:%Y-%m-%d %H:%M}")
        store.write_window(
            config.name,
            start,
            length,
            report.rows,
            serialize.to_bytes(windows),
            chunk.num_rows,
            namespace,
        )
        done.append((start, report))
        step(start)
    return done


def derive_incidents(
    monitor: Monitor,
    store: Store,
    length: timedelta,
    namespace: str = PRODUCTION,
    rules: list[AlertRule] | None = None,
) -> tuple[list[Incident], list[datetime]]:
    """All incidents the rules imply over the stored history of windows of ``length``."""
    config = monitor.config
    # Window starts are naive UTC throughout the store and the engine.
    windows = store.window_starts(config.name, length, namespace)
    metrics = sorted({rule.metric for rule in (rules or config.alerts)})
    history = store.history(config.name, length, metrics, namespace=namespace)
    calibrations = store.calibrations(config.name).to_pylist()
    calibrated = {(c["metric"], c["feature"], c["segment"]): c["threshold"] for c in calibrations}
    incidents = evaluate(
        config,
        history,
        [w.replace(tzinfo=None) for w in windows],
        length,
        monitor.importance_,
        calibrated,
        rules,
    )
    return incidents, windows


def run(
    monitor: Monitor,
    store: Store,
    data: pa.Table | Iterable[pa.Table],
    length: timedelta,
    now: datetime | None = None,
    step: Callable[[datetime], None] = lambda _: None,
    *,
    deliver: bool = True,
) -> JobResult:
    """Check the windows in ``data`` (one table, or several read one after another, such as
    :func:`~tripwire.store.events.stored_windows` gives), then evaluate rules, save incidents,
    queue the alerts they imply and (unless ``deliver`` is false: see :func:`send_alerts`)
    send them."""
    config = monitor.config
    tables = [data] if isinstance(data, pa.Table) else data
    checked = [
        done for table in tables for done in check_windows(monitor, store, table, length, step=step)
    ]
    result = JobResult(windows=[start for start, _ in checked])
    if config.retention is not None:
        result.expired = store.expire_events(config.name, datetime.now(UTC) - config.retention)
    incidents, windows = derive_incidents(monitor, store, length)
    incidents = stamp_detection(store, config.name, incidents, now)
    result.incidents = incidents
    store.save_incidents(config.name, incidents_table(incidents))
    if not windows:
        return result
    result.latest = windows[-1]
    outbox = Outbox(store)
    fired = outbox.fired_keys()
    for msg in announcements(config, incidents, windows[-1], length, fired):
        result.announced += outbox.enqueue(msg, config.routes[msg.route], now=now)
    if deliver:
        result = send_alerts(config, store, result, length, now)
    return result


def send_alerts(
    config: ModelConfig,
    store: Store,
    result: JobResult,
    length: timedelta,
    now: datetime | None = None,
    lock: AbstractContextManager[Any] | None = None,
) -> JobResult:
    """Deliver what :func:`run` queued and keep expiring alerts current.

    Separate so that a server can hold ``lock`` (its store connection's) only for the outbox's
    statements, not while a channel answers.
    """
    if result.latest is None:
        return result
    result.delivery = Outbox(store, lock).deliver_due(config.routes, now=now)
    result.refresh_failures = refresh_expiring(config, result.incidents, result.latest, length)
    return result


def run_locked(
    monitor: Monitor,
    store: Store,
    read: Callable[[], pa.Table | Iterable[pa.Table] | None],
    length: timedelta,
    lock: AbstractContextManager[Any] | None = None,
    now: datetime | None = None,
    step: Callable[[datetime], None] = lambda _: None,
) -> JobResult | None:
    """:func:`run` over what ``read`` gives, holding ``lock`` (the store connection's, where
    threads share it) from the read to the queueing of the alerts, then :func:`send_alerts`
    with it released: a channel slow to answer holds up nothing else that uses the store.

    One hold for the read and the writes: a label stored in between would be older than the
    window's computed_at yet missing from its rows, and would never cause a recheck. ``read``
    may return tables read lazily (they are read inside the hold), or None when there is
    nothing to check: then nothing is run and None is returned.
    """
    with lock if lock is not None else nullcontext():
        data = read()
        if data is None:
            return None
        result = run(monitor, store, data, length, now, step, deliver=False)
    return send_alerts(monitor.config, store, result, length, now, lock)


def replay(
    monitor: Monitor,
    store: Store,
    since: datetime | None,
    until: datetime | None,
    length: timedelta,
    namespace: str = "replay",
) -> tuple[list[datetime], list[Incident]]:
    """Run a (new or changed) monitoring config over the stored prediction log of a past
    period, writing windows and incidents to ``namespace`` and sending nothing, so production
    series stay as they are unless ``namespace`` is production."""
    checked = [
        done
        for data in stored_windows(store, monitor.config, since, until, length)
        for done in check_windows(monitor, store, data, length, namespace)
    ]
    if not checked:
        raise TripwireError("no stored events in that period")
    incidents, _ = derive_incidents(monitor, store, length, namespace)
    incidents = stamp_detection(store, monitor.config.name, incidents, None, namespace)
    store.save_incidents(monitor.config.name, incidents_table(incidents, namespace), namespace)
    return [start for start, _ in checked], incidents


def stamp_detection(
    store: Store,
    model: str,
    incidents: list[Incident],
    now: datetime | None,
    namespace: str = PRODUCTION,
) -> list[Incident]:
    """``incidents`` with when each was first derived: the time the store kept for its dedup
    key (None for one saved before the store kept it), else ``now`` (the job's clock, which
    the demo simulates; default the wall clock) for one new to the store."""
    saved = store.incidents(model, namespace)
    known: dict[str, datetime | None] = {}
    if saved.num_rows and "detected_at" in saved.column_names:
        known = dict(
            zip(saved["dedup_key"].to_pylist(), saved["detected_at"].to_pylist(), strict=True)
        )
    moment = naive_utc(now or datetime.now(UTC))
    return [replace(i, detected_at=known.get(i.dedup_key, moment)) for i in incidents]


def incidents_table(incidents: list[Incident], namespace: str = PRODUCTION) -> pa.Table:
    now = datetime.now(UTC).replace(tzinfo=None)
    rows = [
        {
            "dedup_key": i.dedup_key,
            "model": i.model,
            "namespace": namespace,
            "rule": i.rule,
            "metric": i.metric,
            "feature": i.feature,
            "segment": i.segment,
            "severity": i.severity,
            "route": i.route,
            "evidence_start": i.evidence_start,
            "opened_at": i.opened_at,
            "last_breach_at": i.last_breach_at,
            "resolved_at": i.resolved_at,
            "value": i.value,
            "threshold": i.threshold,
            "reopened": i.reopened,
            "updated_at": now,
            "detected_at": i.detected_at,
        }
        for i in incidents
    ]
    return pa.Table.from_pylist(rows) if rows else pa.table({})


def merged_report(
    monitor: Monitor, store: Store, length: timedelta, end: datetime, span: timedelta
) -> Report:
    """The four layers over ``span`` ending at ``end`` (e.g. 7 days trailing), merged from the
    stored profiles of the windows of ``length`` inside it: no raw data is read again."""
    stored = store.profiles(monitor.config.name, length, end - span, end)
    if not stored:
        raise TripwireError(f"no stored {length} windows between {end - span} and {end}")
    merged = merge_windows([serialize.from_bytes(blob) for _, blob in stored])
    return monitor.evaluate(merged, window=f"{end - span:%Y-%m-%d} to {end:%Y-%m-%d}")
