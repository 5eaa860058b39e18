"""The read API under ``/v1/models`` and ``/v1/incidents``, and the dashboard beside it.

Everything here is read from the store (metric rows, incidents, calibrations, the outbox) under
the lock the collector and the scheduler hold; no statistic is recomputed. Digests, gate
decisions and backtests run the alert code over stored rows, as ``tripwire digest``, ``gate``
and ``backtest`` do.

Tokens: every read needs the read token (a bearer token); the one change, marking a window
abnormal (left out of calibration), needs the admin token. Ingestion stays with the collector
(``POST /v1/events``, ``/v1/labels``) and its ingest token. Every list is a page: ``limit`` and
``offset`` in, ``total`` out.
"""

from __future__ import annotations

import dataclasses
import json
import threading
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import datetime, timedelta
from typing import Annotated, Any, Generic, Literal, TypeVar

import pyarrow as pa
import pyarrow.compute as pc
from fastapi import APIRouter, Depends, HTTPException, Path, Query, status
from pydantic import BaseModel, Field, ValidationError

from tripwire.alerts.backtest import backtest
from tripwire.alerts.digest import build_digest
from tripwire.alerts.engine import Incident
from tripwire.alerts.gate import EXIT_CODES, Decision, decide
from tripwire.alerts.outbox import OutboxRow
from tripwire.config import AlertRule, ConfigError, ModelConfig, Owner, Runbook
from tripwire.durations import Duration
from tripwire.layers.rows import Layer, Status
from tripwire.scheduler import Scheduler
from tripwire.server.auth import bearer_guard
from tripwire.server.reader import (
    LayerSnapshot,
    NotFoundError,
    State,
    StoreBusyError,
    StoreReader,
    as_utc,
    naive,
    raised_order,
)
from tripwire.store import Store

__all__ = ["api_router"]

T = TypeVar("T")

Limit = Annotated[int, Query(ge=1, le=1000, description="The most items on the page.")]
Offset = Annotated[int, Query(ge=0, description="Items to skip.")]
ModelName = Annotated[str, Path(description="The model's name, as its config says.")]

_RESPONSES: dict[int | str, dict[str, Any]] = {
    401: {"description": "Missing or wrong bearer token."},
    404: {"description": "No such model (or window, or incident)."},
    503: {"description": "A monitoring job held the store too long; try again."},
}


# -- response models --------------------------------------------------------------------------


class Page(BaseModel, Generic[T]):
    """One page of a list: ``items`` from ``offset``, at most ``limit`` of ``total``."""

    total: int
    limit: int
    offset: int
    items: list[T]


def _page(items: Sequence[T], limit: int, offset: int) -> dict[str, Any]:
    return {
        "total": len(items),
        "limit": limit,
        "offset": offset,
        "items": list(items[offset : offset + limit]),
    }


class FlaggedMetric(BaseModel):
    """A stored metric row at watch, alert or error."""

    metric: str
    feature: str | None
    segment: str
    value: float | None
    threshold: float | None
    status: Status


class LayerState(BaseModel):
    """A layer's state: the worst stored verdict of the latest window that has one for it
    (performance waits for labels, so its window may be older than the others')."""

    layer: Layer
    state: State
    window_start: datetime | None = Field(description="The window the state is from.")
    flagged: int = Field(description="Rows at watch, alert or error in that window.")
    worst: list[FlaggedMetric] = Field(description="The worst flagged rows (at most 5).")


class IncidentBrief(BaseModel):
    """An incident as a list shows it."""

    dedup_key: str
    model: str
    rule: str
    metric: str
    feature: str
    segment: str
    severity: str
    route: str
    state: Literal["open", "resolved"]
    detected_at: datetime | None = Field(
        description="When tripwire raised it: the monitoring job's clock when it first found "
        "the incident, which for a realized-performance rule is when the labels landed, days "
        "after its evidence. Null for an incident not saved by the job (a backtest's) or saved "
        "before the store kept this."
    )
    evidence_start: datetime = Field(description="First window of the breach streak.")
    opened_at: datetime = Field(
        description="Start of the window in which the breach streak met the rule's persistence "
        "(the evidence, not when it was raised: see detected_at)."
    )
    last_breach_at: datetime = Field(description="Start of the latest breaching window.")
    resolved_at: datetime | None = Field(
        description="Start of the window that resolved it; null while it is open."
    )
    value: float | None
    threshold: float | None
    reopened: int
    owner: str | None = Field(description="Who owns the fix (the rule's, runbook's or model's).")


class Delivery(BaseModel):
    """One alert message for one channel, from the outbox."""

    id: int
    event: Literal["firing", "resolved"]
    route: str
    channel_type: str
    state: Literal["pending", "delivered", "dead"]
    attempts: int
    created_at: datetime
    delivered_at: datetime | None
    last_error: str | None


class IncidentDetail(IncidentBrief):
    """An incident with its runbook and the delivery of its messages."""

    evidence_end: datetime = Field(description="End of the last breaching window.")
    runbook: Runbook | None
    deliveries: list[Delivery]


class ModelSummary(BaseModel):
    """A model: its owners, its windows, each layer's state, its open incidents."""

    name: str
    task: str
    window: Duration
    owners: list[Owner]
    business_value_usd: float | None
    windows: int = Field(description="Windows checked and stored.")
    first_window: datetime | None
    latest_window: datetime | None
    layers: list[LayerState]
    open_incidents: list[IncidentBrief]


class WindowSummary(BaseModel):
    start: datetime
    end: datetime
    abnormal: bool = Field(description="Marked abnormal: left out of threshold calibration.")


class WindowDetail(WindowSummary):
    layers: list[LayerState] = Field(description="Each layer's state in this window.")
    statuses: dict[str, int] = Field(description="Metric rows by status.")


class MetricPoint(BaseModel):
    """One stored metric row."""

    window_start: datetime
    layer: str
    metric: str
    feature: str | None = Field(description="None for metrics of the model's outputs.")
    segment: str
    value: float | None
    status: str
    threshold: float | None
    reference: float | None
    n: int
    importance: float | None


class CalibrationView(BaseModel):
    metric: str
    feature: str
    segment: str
    threshold: float
    quantile: float
    floor: float
    windows_used: int
    computed_at: datetime


class DigestLine(BaseModel):
    feature: str
    segment: str
    metric: str
    first_flagged: datetime
    windows_flagged: int
    peak: float | None
    latest: float | None


class DigestView(Page[DigestLine]):
    """The digest of the features no pager watches over ``[since, until)``."""

    model: str
    since: datetime
    until: datetime
    subject: str
    incidents: list[IncidentBrief] = Field(description="Digest incidents active in the period.")


class GateView(BaseModel):
    """The retraining gate on the open incidents (see ``tripwire gate``)."""

    model: str
    decision: Decision
    exit_code: int
    reasons: list[str]
    drift: list[IncidentBrief]
    performance: list[IncidentBrief]


class BacktestBody(BaseModel):
    """Proposed alert rules to replay over stored history; nothing is stored or sent."""

    alerts: list[AlertRule] = Field(
        description="The proposed rules: the config's `alerts:` list, each rule an object."
    )
    since: datetime | None = None
    until: datetime | None = None


class BacktestView(BaseModel):
    """Incidents under the current and the proposed rules over the same stored windows."""

    model: str
    windows: int
    first_window: datetime
    last_window: datetime
    current: int = Field(description="Incidents the current rules raise.")
    proposed: int = Field(description="Incidents the proposed rules raise.")
    per_rule: dict[str, int] = Field(description="Incidents per proposed rule.")
    added: Page[IncidentBrief] = Field(description="Raised only by the proposed rules.")
    removed: Page[IncidentBrief] = Field(description="Raised only by the current rules.")


class AbnormalBody(BaseModel):
    reason: str = Field(min_length=1, description="Why the window is not a normal day.")


# -- conversions --------------------------------------------------------------------------------


def _number(value: float | None) -> float | None:
    return None if value is None or value != value else value


def layer_state(snapshot: LayerSnapshot) -> LayerState:
    return LayerState(
        layer=snapshot.layer,
        state=snapshot.state,
        window_start=as_utc(snapshot.window_start) if snapshot.window_start else None,
        flagged=len(snapshot.flagged),
        worst=[
            FlaggedMetric(
                metric=r.metric,
                feature=r.feature or None,
                segment=r.segment,
                value=r.value,
                threshold=r.threshold,
                status=r.status,
            )
            for r in snapshot.flagged[:5]
        ],
    )


def brief(reader: StoreReader, incident: Incident) -> IncidentBrief:
    fields: dict[str, Any] = {
        k: as_utc(v) if isinstance(v, datetime) else _number(v) if isinstance(v, float) else v
        for k, v in dataclasses.asdict(incident).items()
    }
    fields["state"] = "open" if incident.is_open else "resolved"
    fields["owner"] = reader.owner(incident.model, incident)
    return IncidentBrief.model_validate(fields)


def delivery(row: OutboxRow) -> Delivery:
    return Delivery.model_validate(row.model_dump(exclude={"message"}) | {"state": row.state})


def detail(
    reader: StoreReader, incident: Incident, deliveries: Mapping[str, list[OutboxRow]]
) -> IncidentDetail:
    window = reader.config(incident.model).window
    return IncidentDetail(
        **brief(reader, incident).model_dump(),
        evidence_end=as_utc(incident.last_breach_at + window),
        runbook=reader.runbook(incident.model, incident),
        deliveries=[delivery(row) for row in deliveries.get(incident.dedup_key, [])],
    )


def model_summary(reader: StoreReader, model: str) -> ModelSummary:
    config = reader.config(model)
    starts = reader.window_starts(model)
    incidents = [i for i in reader.incidents(model) if i.is_open]
    return ModelSummary(
        name=model,
        task=config.task,
        window=config.window,
        owners=config.owners,
        business_value_usd=config.business_value.annual_usd if config.business_value else None,
        windows=len(starts),
        first_window=as_utc(starts[0]) if starts else None,
        latest_window=as_utc(starts[-1]) if starts else None,
        layers=[layer_state(s) for s in reader.layer_states(model, starts)],
        open_incidents=[brief(reader, i) for i in incidents],
    )


def metric_points(table: pa.Table) -> list[MetricPoint]:
    return [
        MetricPoint(
            window_start=as_utc(row["window_start"]),
            layer=row["layer"],
            metric=row["metric"],
            feature=row["feature"] or None,
            segment=row["segment"],
            value=_number(row["value"]),
            status=row["status"],
            threshold=_number(row["threshold"]),
            reference=_number(row["reference"]),
            n=row["n"],
            importance=_number(row["importance"]),
        )
        for row in table.to_pylist()
    ]


def filter_rows(
    table: pa.Table,
    layer: str | None = None,
    feature: str | None = None,
    segment: str | None = None,
) -> pa.Table:
    """History rows of one layer, feature (``""``: the outputs') or segment."""
    for column, wanted in (("layer", layer), ("feature", feature), ("segment", segment)):
        if wanted is not None:
            table = table.filter(pc.equal(table[column], wanted))
    return table


def with_rules(config: ModelConfig, alerts: list[AlertRule]) -> ModelConfig:
    """``config`` with its rules replaced, checked against the rest of it (features, routes,
    segments)."""
    merged = config.model_dump(mode="json", exclude_none=True, by_alias=True) | {
        "alerts": [r.model_dump(mode="json", exclude_none=True, by_alias=True) for r in alerts]
    }
    try:
        return ModelConfig.model_validate(merged)
    except ValidationError as exc:
        raise ConfigError(
            [f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors()]
        ) from None


@contextmanager
def answers() -> Iterator[None]:
    """Turn the reader's errors into HTTP answers."""
    try:
        yield
    except NotFoundError as exc:
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail=str(exc)) from exc
    except StoreBusyError as exc:
        raise HTTPException(
            status.HTTP_503_SERVICE_UNAVAILABLE, detail=str(exc), headers={"Retry-After": "5"}
        ) from exc
    except ConfigError as exc:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, detail=str(exc)) from exc


# -- the router -------------------------------------------------------------------------------


def api_router(
    configs: Mapping[str, ModelConfig],
    store: Store,
    lock: threading.Lock,
    read_token: str | None,
    admin_token: str | None = None,
    scheduler: Scheduler | None = None,
) -> APIRouter:
    """The read API (read token), the window change (admin token) and the dashboard.

    The ``scheduler``'s fitted monitors give the dashboard the reference profile for its
    histograms and the segments' business-value order.
    """
    from tripwire.server.dashboard import dashboard_router

    reader = StoreReader(configs, store, lock, scheduler.monitors if scheduler else None)
    router = APIRouter()

    def guarded(tag: str, token: str | None, scheme: str) -> APIRouter:
        return APIRouter(
            prefix="/v1",
            tags=[tag],
            dependencies=[Depends(bearer_guard(token, scheme))],
            responses=_RESPONSES,
        )

    api = guarded("read", read_token, "ReadToken")
    _read_routes(api, reader)
    router.include_router(api)
    if admin_token is not None:
        changes = guarded("change", admin_token, "AdminToken")
        _change_routes(changes, reader)
        router.include_router(changes)
    router.include_router(dashboard_router(reader, read_token))
    return router


def _read_routes(api: APIRouter, reader: StoreReader) -> None:
    @api.get("/models")
    def models(limit: Limit = 100, offset: Offset = 0) -> Page[ModelSummary]:
        """Every model monitored here, with its layers' states and open incidents."""
        with answers():
            names = sorted(reader.configs)[offset : offset + limit]
            return Page[ModelSummary](
                total=len(reader.configs),
                limit=limit,
                offset=offset,
                items=[model_summary(reader, name) for name in names],
            )

    @api.get("/models/{model}")
    def model(model: ModelName) -> ModelSummary:
        """One model: owners, windows, each layer's state and its open incidents."""
        with answers():
            return model_summary(reader, model)

    @api.get("/models/{model}/windows")
    def windows(
        model: ModelName,
        since: datetime | None = None,
        until: datetime | None = None,
        limit: Limit = 100,
        offset: Offset = 0,
    ) -> Page[WindowSummary]:
        """The stored windows starting in ``[since, until)``, newest first."""
        with answers():
            length = reader.config(model).window
            starts = [
                s
                for s in reversed(reader.window_starts(model))
                if (since is None or s >= naive(since)) and (until is None or s < naive(until))
            ]
            abnormal = reader.abnormal(model)
            items = [
                WindowSummary(start=as_utc(s), end=as_utc(s + length), abnormal=s in abnormal)
                for s in starts[offset : offset + limit]
            ]
            return Page[WindowSummary](total=len(starts), limit=limit, offset=offset, items=items)

    @api.get("/models/{model}/windows/{start}")
    def window(model: ModelName, start: datetime) -> WindowDetail:
        """One window: each layer's state in it and its rows by status."""
        with answers():
            return _window_detail(reader, model, naive(start))

    @api.get("/models/{model}/metrics")
    def metrics(
        model: ModelName,
        layer: Layer | None = None,
        metric: Annotated[list[str] | None, Query(description="Repeat for several.")] = None,
        feature: Annotated[
            str | None, Query(description="A feature; empty for the model's outputs.")
        ] = None,
        segment: Annotated[str | None, Query(description="`all` or `column=value`.")] = None,
        since: datetime | None = None,
        until: datetime | None = None,
        limit: Limit = 1000,
        offset: Offset = 0,
    ) -> Page[MetricPoint]:
        """Stored metric rows, oldest window first (then segment, feature, metric)."""
        with answers():
            rows = reader.history(model, metric, since, until)
            rows = filter_rows(rows, layer, feature, segment)
            return Page[MetricPoint](
                total=rows.num_rows,
                limit=limit,
                offset=offset,
                items=metric_points(rows.slice(offset, limit)),
            )

    @api.get("/incidents")
    def all_incidents(
        state: Literal["open", "resolved", "all"] = "open",
        severity: Literal["page", "ticket", "digest"] | None = None,
        limit: Limit = 100,
        offset: Offset = 0,
    ) -> Page[IncidentBrief]:
        """Incidents of every model, newest raised first (open ones by default)."""
        with answers():
            found = [
                i
                for name in sorted(reader.configs)
                for i in _incidents(reader, name, state, severity)
            ]
            found.sort(key=raised_order, reverse=True)
            return Page[IncidentBrief](
                total=len(found),
                limit=limit,
                offset=offset,
                items=[brief(reader, i) for i in found[offset : offset + limit]],
            )

    @api.get("/models/{model}/incidents")
    def incidents(
        model: ModelName,
        state: Literal["open", "resolved", "all"] = "all",
        severity: Literal["page", "ticket", "digest"] | None = None,
        limit: Limit = 100,
        offset: Offset = 0,
    ) -> Page[IncidentDetail]:
        """The model's incidents, newest raised first, with runbooks and deliveries."""
        with answers():
            found = _incidents(reader, model, state, severity)
            chosen = found[offset : offset + limit]
            deliveries = reader.deliveries() if chosen else {}
            return Page[IncidentDetail](
                total=len(found),
                limit=limit,
                offset=offset,
                items=[detail(reader, i, deliveries) for i in chosen],
            )

    @api.get("/models/{model}/incidents/{key:path}")
    def incident(
        model: ModelName,
        key: Annotated[str, Path(description="The incident's dedup key.")],
    ) -> IncidentDetail:
        """One incident with its runbook, evidence window and deliveries."""
        with answers():
            found = reader.incident(model, key)
            if found is None:
                raise HTTPException(status.HTTP_404_NOT_FOUND, detail=f"no incident {key!r}")
            return detail(reader, found, reader.deliveries())

    @api.get("/models/{model}/calibrations")
    def calibrations(
        model: ModelName, limit: Limit = 100, offset: Offset = 0
    ) -> Page[CalibrationView]:
        """Thresholds learnt by ``tripwire calibrate``."""
        with answers():
            rows = reader.calibrations(model)
            items = [
                CalibrationView.model_validate(
                    row | {"windows_used": len(json.loads(str(row["windows_used"])))}
                )
                for row in rows[offset : offset + limit]
            ]
            return Page[CalibrationView](total=len(rows), limit=limit, offset=offset, items=items)

    @api.get("/models/{model}/digest")
    def digest(
        model: ModelName,
        days: Annotated[int, Query(ge=1, le=366, description="Days up to the latest window.")] = 7,
        limit: Limit = 100,
        offset: Offset = 0,
    ) -> DigestView:
        """What moved on the features no pager watches (as ``tripwire digest``)."""
        with answers():
            config = reader.config(model)
            starts = reader.window_starts(model)
            if not starts:
                raise HTTPException(status.HTTP_404_NOT_FOUND, detail="no windows stored yet")
            until = starts[-1] + config.window
            since = until - timedelta(days=days)
            history = reader.history(model, since=since, until=until)
            incidents = reader.incidents(model)
            found = build_digest(config, history, reader.importance(model), incidents, since, until)
            lines = [
                DigestLine(
                    feature=i.feature,
                    segment=i.segment,
                    metric=i.metric,
                    first_flagged=as_utc(i.first_flagged),
                    windows_flagged=i.windows_flagged,
                    peak=_number(i.peak),
                    latest=_number(i.latest),
                )
                for i in found.items
            ]
            return DigestView(
                **_page(lines, limit, offset),
                model=model,
                since=as_utc(since),
                until=as_utc(until),
                subject=found.subject,
                incidents=[brief(reader, i) for i in found.incidents],
            )

    @api.get("/models/{model}/gate")
    def gate(model: ModelName) -> GateView:
        """The retraining decision on the open incidents: retrain on drift AND a measurable
        drop, never on drift alone (as ``tripwire gate``; exit codes 0, 10, 20)."""
        with answers():
            config = reader.config(model)
            result = decide(config, reader.incidents(model), reader.importance(model))
            return GateView(
                model=model,
                decision=result.decision,
                exit_code=EXIT_CODES[result.decision],
                reasons=result.reasons,
                drift=[brief(reader, i) for i in result.drift],
                performance=[brief(reader, i) for i in result.performance],
            )

    @api.post("/models/{model}/backtest")
    def run_backtest(
        model: ModelName, body: BacktestBody, limit: Limit = 100, offset: Offset = 0
    ) -> BacktestView:
        """Replay the stored history through proposed rules with the production code path
        (as ``tripwire backtest``); nothing is stored or sent."""
        with answers():
            config = reader.config(model)
            proposed = with_rules(config, body.alerts)
            windows = [
                w
                for w in reader.window_starts(model)
                if (body.since is None or w >= naive(body.since))
                and (body.until is None or w < naive(body.until))
            ]
            if not windows:
                raise HTTPException(
                    status.HTTP_404_NOT_FOUND, detail="no stored windows in that period"
                )
            metrics = sorted({r.metric for r in (*config.alerts, *proposed.alerts)})
            history = reader.history(model, metrics, body.since, body.until)
            result = backtest(
                config,
                proposed,
                history,
                windows,
                config.window,
                reader.importance(model),
                reader.calibrated(model),
            )
            return BacktestView(
                model=model,
                windows=len(windows),
                first_window=as_utc(windows[0]),
                last_window=as_utc(windows[-1]),
                current=len(result.current),
                proposed=len(result.proposed),
                per_rule={r.name: 0 for r in proposed.alerts} | result.per_rule(),
                added=Page[IncidentBrief](
                    **_page([brief(reader, i) for i in result.added], limit, offset)
                ),
                removed=Page[IncidentBrief](
                    **_page([brief(reader, i) for i in result.removed], limit, offset)
                ),
            )


def _incidents(reader: StoreReader, model: str, state: str, severity: str | None) -> list[Incident]:
    return [
        i
        for i in reader.incidents(model)
        if (state == "all" or (state == "open") == i.is_open)
        and (severity is None or i.severity == severity)
    ]


def _window_detail(reader: StoreReader, model: str, start: datetime) -> WindowDetail:
    length = reader.config(model).window
    starts = reader.window_starts(model)
    if start not in starts:
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail=f"no window starts at {start}")
    rows = reader.window_rows(model, start)
    upto = starts[: starts.index(start) + 1]
    counts = pc.value_counts(rows["status"]).to_pylist() if rows.num_rows else []
    return WindowDetail(
        start=as_utc(start),
        end=as_utc(start + length),
        abnormal=start in reader.abnormal(model),
        layers=[layer_state(s) for s in reader.layer_states(model, upto, rows)],
        statuses={str(c["values"]): int(c["counts"]) for c in counts},
    )


def _change_routes(changes: APIRouter, reader: StoreReader) -> None:
    @changes.post("/models/{model}/windows/{start}/abnormal")
    def mark_abnormal(model: ModelName, start: datetime, body: AbnormalBody) -> WindowSummary:
        """Mark a window abnormal (an outage, a holiday): ``tripwire calibrate`` leaves it out
        of the normal days it learns thresholds from."""
        with answers():
            length = reader.config(model).window
            moment = naive(start)
            if moment not in reader.window_starts(model):
                raise HTTPException(
                    status.HTTP_404_NOT_FOUND, detail=f"no window starts at {start}"
                )
            reader.read(lambda s: s.mark_abnormal(model, moment, body.reason))
            return WindowSummary(start=as_utc(moment), end=as_utc(moment + length), abnormal=True)
