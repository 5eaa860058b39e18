"""The store work of the monitoring commands, as typed requests and results.

A command builds a request and does its task on the store it opens; when ``tripwire serve`` owns
the store (a DuckDB file takes one writing process), the command sends the same request to the
server instead (:mod:`tripwire.commands.remote`), which does the same task on its store
(:mod:`tripwire.server.admin`) and answers with the same result, so the command prints the same
either way. Requests carry what only the client can read: the fitted monitor (fitted from the
client's reference), the config with its importance file resolved, the label rows.
"""

from __future__ import annotations

import base64
import binascii
import itertools
from collections.abc import Callable, Iterable
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Annotated, Any, Generic, Self, TypeVar

import pyarrow as pa
from pydantic import BaseModel, BeforeValidator, Field, PlainSerializer, WithJsonSchema

from tripwire.alerts.backtest import Backtest
from tripwire.alerts.backtest import backtest as run_backtest
from tripwire.alerts.calibrate import Calibration
from tripwire.alerts.calibrate import calibrate as run_calibrate
from tripwire.alerts.digest import Digest, build_digest
from tripwire.alerts.engine import Incident
from tripwire.config import ModelConfig, parse_config
from tripwire.errors import TripwireError
from tripwire.events import Label, Rejected
from tripwire.job import derive_incidents, run_locked
from tripwire.job import replay as replay_log
from tripwire.monitor import Monitor
from tripwire.store import Store
from tripwire.store.events import stored_windows

__all__ = [
    "BACKTEST",
    "CALIBRATE",
    "DIGEST",
    "GATE",
    "LABELS",
    "REPLAY",
    "RUN",
    "TASKS",
    "BacktestRequest",
    "BacktestResult",
    "CalibrateRequest",
    "CalibrateResult",
    "ConfigPayload",
    "DigestRequest",
    "DigestResult",
    "GateRequest",
    "GateResult",
    "Guard",
    "LabelsRequest",
    "LabelsResult",
    "Note",
    "ReplayRequest",
    "ReplayResult",
    "RunRequest",
    "RunResult",
    "StoreOwner",
    "Task",
]

Note = Callable[[str], None]
"""Where a task says what it is doing (a progress line); the server ignores it."""

Guard = AbstractContextManager[Any]
"""The lock around a store connection that threads share (a no-op where none do)."""


def _from_base64(value: object) -> object:
    if isinstance(value, str):
        try:
            return base64.b64decode(value, validate=True)
        except binascii.Error as exc:
            raise ValueError(f"not base64: {exc}") from None
    return value


Blob = Annotated[
    bytes,
    BeforeValidator(_from_base64),
    PlainSerializer(
        lambda b: base64.b64encode(b).decode("ascii"), return_type=str, when_used="json"
    ),
    WithJsonSchema({"type": "string", "contentEncoding": "base64"}),
]
"""Bytes, as base64 text in JSON."""


def _table_bytes(table: pa.Table) -> bytes:
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    return bytes(sink.getvalue())


class ConfigPayload(BaseModel):
    """A model's config as the client read it."""

    yaml: str = Field(description="The config, as tripwire.yaml text.")
    importance: dict[str, float] = Field(
        description="Feature importance, resolved by the client (which can read its file)."
    )

    @classmethod
    def of(cls, config: ModelConfig) -> Self:
        return cls(yaml=config.to_yaml(), importance=config.resolve_importance())

    def config(self) -> ModelConfig:
        return parse_config(self.yaml, source="the config sent")


class StoreOwner(BaseModel):
    """``GET /v1/admin/store``: the process that owns the store, and which store."""

    pid: int
    store: str = Field(description="The store file, as an absolute path.")
    version: str


# -- tripwire run -------------------------------------------------------------------------


class RunRequest(BaseModel):
    """Check windows, store their rows, evaluate the rules and deliver what they raise."""

    monitor: Blob = Field(description="The fitted monitor (Monitor.to_bytes()).")
    data: Blob | None = Field(
        default=None,
        description="Logged predictions as an Arrow IPC stream; none: the stored events.",
    )
    since: datetime | None = Field(default=None, description="With stored events: first window.")
    until: datetime | None = Field(default=None, description="With stored events: before this.")
    window: timedelta = Field(description="The window length.")

    @classmethod
    def of(
        cls,
        monitor: Monitor,
        data: pa.Table | None,
        since: datetime | None,
        until: datetime | None,
        window: timedelta,
    ) -> Self:
        return cls(
            monitor=monitor.to_bytes(),
            data=None if data is None else _table_bytes(data),
            since=since,
            until=until,
            window=window,
        )


class RunResult(BaseModel):
    model: str
    window: timedelta
    windows: list[datetime] = Field(description="The windows checked.")
    incidents: list[Incident]
    announced: int = Field(description="Alerts queued.")
    delivered: int
    retry: int = Field(description="Alerts that failed and will be retried.")
    dead: int = Field(description="Alerts given up on.")


def run(store: Store, request: RunRequest, note: Note, lock: Guard) -> RunResult:
    monitor = Monitor.from_bytes(request.monitor, source="the monitor sent")
    config = monitor.config

    def logs() -> pa.Table | Iterable[pa.Table] | None:
        if request.data is not None:
            return pa.ipc.open_stream(request.data).read_all()
        # A window at a time: memory holds one window's events, not the whole period's.
        windows = stored_windows(store, config, request.since, request.until, request.window)
        first = next(windows, None)
        return None if first is None else itertools.chain([first], windows)

    def step(start: datetime) -> None:
        note(f"checked the window of {start:%Y-%m-%d %H:%M}")

    # The lock is let go while the alerts are sent, as the scheduler does.
    result = run_locked(monitor, store, logs, request.window, lock, step=step)
    if result is None:
        raise TripwireError("no stored events in that period and no --data given")
    d = result.delivery
    return RunResult(
        model=config.name,
        window=request.window,
        windows=result.windows,
        incidents=result.incidents,
        announced=result.announced,
        delivered=d.delivered,
        retry=d.failed,
        dead=d.dead,
    )


# -- tripwire replay ----------------------------------------------------------------------


class ReplayRequest(BaseModel):
    """Run a config over a stored period into a namespace of its own; nothing is sent."""

    monitor: Blob = Field(description="The fitted monitor (Monitor.to_bytes()).")
    since: datetime | None = None
    until: datetime | None = None
    namespace: str = "replay"


class ReplayResult(BaseModel):
    namespace: str
    windows: list[datetime]
    incidents: list[Incident]


def replay(store: Store, request: ReplayRequest, note: Note) -> ReplayResult:
    monitor = Monitor.from_bytes(request.monitor, source="the monitor sent")
    note("replaying the stored prediction log")
    windows, incidents = replay_log(
        monitor, store, request.since, request.until, monitor.config.window, request.namespace
    )
    return ReplayResult(namespace=request.namespace, windows=windows, incidents=incidents)


# -- tripwire labels load -----------------------------------------------------------------


class LabelsRequest(BaseModel):
    """Store validated labels and quarantine the rows that failed validation."""

    model: str
    source: str = Field(description="Where the rows came from, as the quarantine names it.")
    labels: list[Label]
    rejected: list[Rejected]


class LabelsResult(BaseModel):
    stored: int
    quarantined: int


def load_labels(store: Store, request: LabelsRequest, note: Note) -> LabelsResult:
    note(f"storing {len(request.labels):,} labels")
    with store.transaction():
        store.write_labels(request.labels)
        store.quarantine(request.model, request.source, request.rejected)
    return LabelsResult(stored=len(request.labels), quarantined=len(request.rejected))


# -- tripwire calibrate -------------------------------------------------------------------


def _stored_windows(store: Store, config: ModelConfig) -> list[datetime]:
    windows = store.window_starts(config.name, config.window)
    if not windows:
        raise TripwireError("the store has no windows for this model yet: run `tripwire run`")
    return windows


class CalibrateRequest(BaseModel):
    """Learn thresholds for `threshold: calibrated` rules from normal stored days; save them."""

    config: ConfigPayload
    days: int = Field(description="Normal days to learn from.")
    quantile: float = Field(description="Quantile of normal values.")


class CalibrateResult(BaseModel):
    calibrations: list[Calibration]
    notes: list[str] = Field(description="Series left uncalibrated, and why.")


def calibrate(store: Store, request: CalibrateRequest, note: Note) -> CalibrateResult:
    config = request.config.config()
    note("calibrating thresholds")
    windows = _stored_windows(store, config)
    history = store.history(config.name, config.window)
    excluded: dict[tuple[str, str], set[datetime]] = {
        ("*", "*"): store.abnormal_windows(config.name)
    }
    for incident in store.incidents(config.name).to_pylist():
        end = incident["resolved_at"] or windows[-1]
        inside = {w for w in windows if incident["evidence_start"] <= w <= end}
        excluded.setdefault((incident["feature"], incident["segment"]), set()).update(inside)
    found, notes = run_calibrate(
        config,
        history,
        windows,
        config.window,
        request.config.importance,
        excluded,
        request.days,
        request.quantile,
    )
    for c in found:
        store.save_calibration(
            config.name,
            c.metric,
            c.feature,
            c.segment,
            c.threshold,
            c.quantile,
            c.floor,
            c.windows_used,
        )
    return CalibrateResult(calibrations=found, notes=notes)


# -- tripwire backtest --------------------------------------------------------------------


class BacktestRequest(BaseModel):
    """Replay stored history through proposed rules; nothing is stored or sent."""

    config: ConfigPayload
    proposed: str = Field(description="The config with the proposed rules, as YAML text.")
    since: datetime | None = None
    until: datetime | None = None


class BacktestResult(BaseModel):
    windows: list[datetime]
    current: list[Incident]
    proposed: list[Incident]

    def backtest(self) -> Backtest:
        return Backtest(self.windows, self.current, self.proposed)


def backtest(store: Store, request: BacktestRequest, note: Note) -> BacktestResult:
    config = request.config.config()
    proposed = parse_config(request.proposed, source="the proposed rules sent")
    since, until = request.since, request.until
    note("replaying stored history through the proposed rules")
    windows = [
        w
        for w in store.window_starts(config.name, config.window)
        if (since is None or w >= since) and (until is None or w < until)
    ]
    if not windows:
        raise TripwireError("no stored windows in that period: run `tripwire run` first")
    history = store.history(config.name, config.window, since=since, until=until)
    calibrations = store.calibrations(config.name).to_pylist()
    calibrated = {(c["metric"], c["feature"], c["segment"]): c["threshold"] for c in calibrations}
    result = run_backtest(
        config,
        proposed,
        history,
        windows,
        config.window,
        request.config.importance,
        calibrated,
    )
    return BacktestResult(windows=windows, current=result.current, proposed=result.proposed)


# -- tripwire gate ------------------------------------------------------------------------


class GateRequest(BaseModel):
    """The incidents the rules imply over the stored history, for the retraining decision."""

    monitor: Blob = Field(description="The fitted monitor (Monitor.to_bytes()).")


class GateResult(BaseModel):
    incidents: list[Incident]


def gate(store: Store, request: GateRequest, note: Note) -> GateResult:
    monitor = Monitor.from_bytes(request.monitor, source="the monitor sent")
    note("evaluating the rules over the stored history")
    incidents, _ = derive_incidents(monitor, store, monitor.config.window)
    return GateResult(incidents=incidents)


# -- tripwire digest ----------------------------------------------------------------------


class DigestRequest(BaseModel):
    """The digest of features outside the paging set over the last days of stored history."""

    config: ConfigPayload
    days: int


class DigestResult(BaseModel):
    digest: Digest


def digest(store: Store, request: DigestRequest, note: Note) -> DigestResult:
    config = request.config.config()
    note("reading the stored history")
    windows = _stored_windows(store, config)
    until = windows[-1] + config.window
    since = until - timedelta(days=request.days)
    history = store.history(config.name, config.window, since=since, until=until)
    incidents = [
        Incident(**{k: v for k, v in row.items() if k not in ("namespace", "updated_at")})
        for row in store.incidents(config.name).to_pylist()
    ]
    found = build_digest(config, history, request.config.importance, incidents, since, until)
    return DigestResult(digest=found)


# -- the tasks, by name -------------------------------------------------------------------

Request = TypeVar("Request", bound=BaseModel)
Result = TypeVar("Result", bound=BaseModel)


@dataclass(frozen=True)
class Task(Generic[Request, Result]):
    """A command's store work: ``POST /v1/admin/<name>`` on the server that owns the store."""

    name: str
    command: str  # the command whose work it is
    request: type[Request]
    result: type[Result]
    do: Callable[[Store, Request, Note, Guard], Result]  # holds the guard around store work

    def work(self, store: Store, request: Request, note: Note, lock: Guard | None = None) -> Result:
        """Do the task on ``store``. ``lock`` guards the store's connection where other threads
        share it (the server's): held for the task's store work, never while a channel
        answers."""
        return self.do(store, request, note, lock if lock is not None else nullcontext())


def _held(
    work: Callable[[Store, Request, Note], Result],
) -> Callable[[Store, Request, Note, Guard], Result]:
    """``work`` with the guard held throughout: for tasks that only use the store."""

    def held(store: Store, request: Request, note: Note, lock: Guard) -> Result:
        with lock:
            return work(store, request, note)

    return held


RUN = Task("run", "tripwire run", RunRequest, RunResult, run)
REPLAY = Task("replay", "tripwire replay", ReplayRequest, ReplayResult, _held(replay))
LABELS = Task("labels", "tripwire labels load", LabelsRequest, LabelsResult, _held(load_labels))
CALIBRATE = Task(
    "calibrate", "tripwire calibrate", CalibrateRequest, CalibrateResult, _held(calibrate)
)
BACKTEST = Task("backtest", "tripwire backtest", BacktestRequest, BacktestResult, _held(backtest))
GATE = Task("gate", "tripwire gate", GateRequest, GateResult, _held(gate))
DIGEST = Task("digest", "tripwire digest", DigestRequest, DigestResult, _held(digest))
TASKS: tuple[Task[Any, Any], ...] = (RUN, REPLAY, LABELS, CALIBRATE, BACKTEST, GATE, DIGEST)
