"""The scheduler: run the monitoring job for each model's windows as they close.

A window ``[start, start + window)`` is checked once the clock reaches its end plus a grace
period, so events that arrive a little late are still in it. Each check reads the window's events
from the store, with whatever labels have arrived, and hands them to the job
(:func:`tripwire.job.run_locked`, as ``tripwire run`` does). What has been checked is read back
from the store (its ``windows`` table), never only remembered, so a restarted server neither
skips nor repeats a window. A window whose labels arrive after it was checked is checked again,
so its performance rows catch up with the labels; so is one whose events arrive after its grace
period, and one found empty and passed over whose events arrive once later windows were
checked. Labels trickle in for weeks (chargebacks land 30 to 60 days late), so a window is
checked again at most once per ``recheck_interval``: what arrives in between waits for the next
recheck.

Finding those windows must not read the whole log every pass (seconds at 10M events, holding
the store's lock, which the collector waits on): the first look after a start reads every row,
and each later one only the events and labels received since the look before (less
``rescan``), keeping what earlier looks found until it is checked again.

How long each check took, and whether it failed, is kept in memory per model
(:class:`JobDurations`) for ``/metrics`` and ``GET /v1/jobs``.

``tripwire serve`` runs one in a background thread next to the collector; every use of the store
goes through the collector's lock, because one DuckDB connection must not serve two threads at
once.
"""

from __future__ import annotations

import bisect
import logging
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Literal

import pyarrow as pa
from pydantic import BaseModel, Field

from tripwire.durations import format_duration
from tripwire.job import run_locked
from tripwire.monitor import Monitor
from tripwire.store import Store
from tripwire.store.common import now_utc
from tripwire.store.events import to_monitor_table

__all__ = [
    "DEFAULT_GRACE",
    "DEFAULT_INTERVAL",
    "DEFAULT_RECHECK_INTERVAL",
    "DEFAULT_RESCAN",
    "DURATION_BUCKETS",
    "JobDurations",
    "JobError",
    "JobRecord",
    "ModelJobs",
    "Scheduler",
    "SchedulerStatus",
    "utc_now",
    "window_start",
]

DEFAULT_GRACE = timedelta(minutes=10)
DEFAULT_INTERVAL = 30.0  # seconds between passes
DEFAULT_RECHECK_INTERVAL = timedelta(hours=1)
DEFAULT_RESCAN = timedelta(minutes=10)
DURATION_BUCKETS = (0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0)
"""Upper bounds (seconds) of the buckets a check's duration is counted in: a small model's
window takes well under a second, a large one's minutes."""
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

_log = logging.getLogger(__name__)

Clock = Callable[[], datetime]
Outcome = Literal["checked", "rechecked", "skipped", "failed"]


def utc_now() -> datetime:
    """The wall clock, in UTC: the scheduler's default clock."""
    return datetime.now(UTC)


def _utc(moment: datetime) -> datetime:
    # Naive datetimes are UTC throughout tripwire (the store holds them that way).
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _since(began: float) -> float:
    return time.perf_counter() - began


def window_start(moment: datetime, length: timedelta) -> datetime:
    """The start of the window of ``length`` that holds ``moment`` (naive means UTC).

    Windows are aligned to the Unix epoch in UTC, as :func:`tripwire.job.window_starts` aligns
    the rows it checks, so the scheduler and the job agree on every window's bounds.

    >>> window_start(datetime(2026, 10, 1, 17, 30), timedelta(hours=6))
    datetime.datetime(2026, 10, 1, 12, 0, tzinfo=datetime.timezone.utc)
    >>> window_start(datetime(2026, 10, 1, 12, 0, tzinfo=UTC), timedelta(days=1))
    datetime.datetime(2026, 10, 1, 0, 0, tzinfo=datetime.timezone.utc)
    """
    return _EPOCH + (_utc(moment) - _EPOCH) // length * length


@dataclass(frozen=True)
class JobRecord:
    """What one pass of the scheduler did with one window of one model.

    ``outcome`` is ``checked`` (a window checked for the first time), ``rechecked`` (checked
    again because labels or late events arrived after it was checked), ``skipped`` (the window
    has no events, so there was nothing to check) or ``failed`` (``error`` says why).
    """

    model: str
    window_start: datetime
    outcome: Outcome
    events: int = 0
    labelled: int = 0
    open_incidents: int = 0
    announced: int = 0
    error: str | None = None
    seconds: float = 0.0
    """How long the check took, from waiting for the store to the alerts sent (0 when
    skipped)."""


@dataclass
class ModelDurations:
    """How long one model's checks took since the scheduler started: a histogram over
    :data:`DURATION_BUCKETS` (``counts[i]`` checks took at most ``DURATION_BUCKETS[i]`` seconds
    and more than the bucket before; the last entry counts the longer ones)."""

    counts: list[int] = field(default_factory=lambda: [0] * (len(DURATION_BUCKETS) + 1))
    total: float = 0.0
    """Seconds all checks took together."""
    failures: int = 0
    """Checks that failed, and passes that could not even find the model's due windows."""
    last_seconds: float | None = None
    last_success: datetime | None = None
    """When the latest check that succeeded ended, by the scheduler's clock (UTC)."""

    @property
    def count(self) -> int:
        return sum(self.counts)

    def cumulative(self) -> list[tuple[float, int]]:
        """``(upper bound, checks that took at most that long)``, ending with infinity."""
        out: list[tuple[float, int]] = []
        running = 0
        for bound, n in zip((*DURATION_BUCKETS, float("inf")), self.counts, strict=True):
            running += n
            out.append((bound, running))
        return out


class JobDurations:
    """Each scheduled model's check durations and failures, safe to read from any thread
    (``/metrics`` reads them without waiting for the store).

    >>> durations = JobDurations(["m"])
    >>> durations.observe("m", 0.3, failed=False, at=datetime(2026, 10, 2, tzinfo=UTC))
    >>> durations.observe("m", 12.0, failed=True)
    >>> m = durations.snapshot()["m"]
    >>> m.count, m.total, m.failures, m.last_seconds, m.cumulative()[2]
    (2, 12.3, 1, 12.0, (0.5, 1))
    """

    def __init__(self, models: Iterable[str]) -> None:
        self._lock = threading.Lock()
        self._models = {model: ModelDurations() for model in models}

    def observe(
        self, model: str, seconds: float, *, failed: bool, at: datetime | None = None
    ) -> None:
        """Count one check of ``model`` that took ``seconds``; ``at`` is when it ended, kept as
        the latest success unless it ``failed``."""
        bucket = bisect.bisect_left(DURATION_BUCKETS, seconds)
        with self._lock:
            durations = self._models.setdefault(model, ModelDurations())
            durations.counts[bucket] += 1
            durations.total += seconds
            durations.last_seconds = seconds
            if failed:
                durations.failures += 1
            elif at is not None:
                durations.last_success = at

    def fail(self, model: str) -> None:
        """Count a failure that was no check: the model's due windows could not be read."""
        with self._lock:
            self._models.setdefault(model, ModelDurations()).failures += 1

    def snapshot(self) -> dict[str, ModelDurations]:
        """A copy of every model's figures, by model."""
        with self._lock:
            return {
                model: replace(durations, counts=list(durations.counts))
                for model, durations in self._models.items()
            }


class JobError(BaseModel):
    """The latest failure of a model's job."""

    window_start: datetime = Field(description="The window whose check failed (UTC).")
    at: datetime = Field(description="When it failed, by the scheduler's clock (UTC).")
    message: str


class ModelJobs(BaseModel):
    """One model's place in the schedule."""

    model: str
    scheduled: bool = Field(description="False when the model could not be set up for checks.")
    window: str | None = Field(description="The model's window length, e.g. '1d'.")
    last_checked: datetime | None = Field(
        description="The start of the latest window checked and stored (UTC)."
    )
    next_due: datetime | None = Field(
        description="When the next window is checked: its end plus the grace period (UTC); "
        "null while the model has no events."
    )
    failing: bool = Field(description="Whether the model's latest attempt failed.")
    last_error: JobError | None = None
    last_duration_seconds: float | None = Field(
        default=None,
        description="How long the model's latest check took, failed or not, since the server "
        "started; null before its first.",
    )
    last_success: datetime | None = Field(
        default=None,
        description="When the model's latest successful check ended (UTC), since the server "
        "started; null before its first.",
    )
    reason: str | None = Field(
        default=None, description="Why an unscheduled model is not scheduled."
    )


class SchedulerStatus(BaseModel):
    """The scheduler's state, as ``GET /v1/jobs`` returns it."""

    running: bool
    grace: str = Field(description="How long after a window ends it waits for late events.")
    interval_seconds: float
    models: list[ModelJobs]


class Scheduler:
    """Check each model's windows as they close, in a background thread or pass by pass.

    Parameters
    ----------
    monitors
        The fitted monitor of each model, by model name; each model's windows are its config's
        ``window`` long.
    store
        The store holding the prediction log; checked windows, incidents and alerts go there.
    lock
        Held around every use of ``store``: the lock of whatever else uses its connection
        (the collector's, in ``tripwire serve``).
    clock
        The current time (aware, or naive meaning UTC); tests pass a fake one.
    grace
        How long after a window ends to wait for late events before checking it.
    interval
        Seconds between passes of the background thread.
    unscheduled
        Models served but not scheduled, with why (say, a reference that would not load):
        listed by :meth:`status` so that the reason is visible.
    rescan
        How far before the previous look for windows to check again each look starts: the
        rows received from then on are read. A row's ``received_at`` is stamped by its
        writer's clock before its transaction commits, so this covers writers (another
        process, on PostgreSQL) whose clocks disagree, or whose writes commit late, by less.

    Examples
    --------
    >>> import threading
    >>> from tripwire.config import parse_config
    >>> from tripwire.demo import scenario
    >>> from tripwire.store import DuckDBStore
    >>> data = scenario.generate(days=1, rows_per_day=200, reference_rows=1000)
    >>> monitor = Monitor(parse_config(scenario.CONFIG_YAML)).fit(data.reference)
    >>> now = datetime(2026, 10, 2, 0, 5, tzinfo=UTC)  # day 1 is 2026-10-01
    >>> with DuckDBStore(":memory:") as store:
    ...     scheduler = Scheduler({"fraud-detector": monitor}, store, threading.Lock(),
    ...                           clock=lambda: now)
    ...     scheduler.due()  # no events yet
    []
    """

    def __init__(
        self,
        monitors: Mapping[str, Monitor],
        store: Store,
        lock: threading.Lock,
        clock: Clock = utc_now,
        grace: timedelta = DEFAULT_GRACE,
        *,
        interval: float = DEFAULT_INTERVAL,
        recheck_interval: timedelta = DEFAULT_RECHECK_INTERVAL,
        unscheduled: Mapping[str, str] | None = None,
        rescan: timedelta = DEFAULT_RESCAN,
    ) -> None:
        if grace < timedelta(0):
            raise ValueError("grace must not be negative")
        if interval <= 0:
            raise ValueError("interval must be positive")
        if rescan < timedelta(0):
            raise ValueError("rescan must not be negative")
        for name, monitor in monitors.items():
            # The store is queried by the key and written by the config's name: they must agree.
            if monitor.config.name != name:
                raise ValueError(f"monitor {name!r} is for model {monitor.config.name!r}")
        self.monitors = dict(monitors)
        self.store = store
        self.lock = lock
        self.clock = clock
        self.grace = grace
        self.interval = interval
        self.recheck_interval = recheck_interval
        self.unscheduled = dict(unscheduled or {})
        self.rescan = rescan
        # Windows found empty, by model: remembered only so that every pass does not read them
        # again. Forgetting them (a restart) costs one more empty read each, never a window.
        self._skipped_until: dict[str, datetime] = {}
        # When each window was last checked again; a restart forgets, costing one recheck each.
        self._rechecked_at: dict[tuple[str, datetime], datetime] = {}
        # What the looks for windows to check again found, by model, until checked again; the
        # received_at (the store's clock) each model's next look reads from (none yet: all);
        # and the latest window with rows at the look before. Held with the store's lock.
        self._found: dict[str, set[datetime]] = {}
        self._looked: dict[str, datetime] = {}
        self._latest: dict[str, datetime | None] = {}
        self._errors: dict[str, JobError] = {}
        self._failing: set[str] = set()
        self.durations = JobDurations(self.monitors)
        # Passes never overlap (the thread's and a direct call's): both would find the same
        # windows due and check them twice.
        self._pass = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # -- what is due --------------------------------------------------------------------

    def due(self, now: datetime | None = None) -> list[tuple[str, datetime]]:
        """Every ``(model, window_start)`` due at ``now`` (default: the clock) and not yet
        checked: the windows after the latest one checked (or from the first stored event's,
        when none is) that ended at least ``grace`` before ``now``, oldest first per model."""
        moment = _utc(now or self.clock())
        due: list[tuple[str, datetime]] = []
        for model in self.monitors:
            with self.lock:
                due += [(model, start) for start in self._pending(model, moment)]
        return due

    def relabelled(self) -> list[tuple[str, datetime]]:
        """Every checked ``(model, window_start)`` with labels or events received after it was
        checked, so that checking it again changes its rows (rechecks not yet due included);
        and every window found empty and passed over whose events arrived after a later window
        was checked."""
        found: list[tuple[str, datetime]] = []
        for model in self.monitors:
            with self.lock:
                found += [(model, start) for start in self._stale(model)]
        return found

    def _length(self, model: str) -> timedelta:
        return self.monitors[model].config.window

    def _next_start(self, model: str) -> datetime | None:
        """The start of the first window not checked yet (None: the model has no events)."""
        length = self._length(model)
        checked = self.store.window_starts(model, length)
        if checked:
            start = _utc(checked[-1]) + length
        else:
            first = self.store.first_event(model)
            if first is None:
                return None
            start = window_start(first, length)
        skipped = self._skipped_until.get(model)
        if skipped is not None and skipped > start:
            # Windows found empty are passed over, unless events have reached one since.
            first = self.store.first_event(model, start)
            start = skipped if first is None else min(window_start(first, length), skipped)
        return start

    def _pending(self, model: str, now: datetime) -> list[datetime]:
        start = self._next_start(model)
        length = self._length(model)
        starts: list[datetime] = []
        while start is not None and start + length + self.grace <= now:
            starts.append(start)
            start += length
        return starts

    def _stale(self, model: str) -> list[datetime]:
        """The windows to check again (see :meth:`relabelled`); the caller holds the lock.

        The first look reads every event and label; later ones only those received since
        the look before began, less ``rescan``, and keep what earlier looks found until it is
        checked: the windows with rows that a recent row changed, and (by its events' time,
        however long ago they were received) any window without rows passed over since the
        look before, as another process checking a later window would pass it over."""
        length = self._length(model)
        since = self._looked.get(model)
        began = now_utc()
        found = {*self.store.relabelled_windows(model, length, since)}
        found |= {*self.store.late_windows(model, length, since)}
        checked = [_utc(start) for start in self.store.window_starts(model, length)]
        latest = checked[-1] if checked else None
        if since is not None and latest is not None:
            found |= self._passed_over(model, length, checked, self._latest.get(model))
        stale = self._found.setdefault(model, set())
        stale |= {_utc(start) for start in found}
        self._looked[model] = began - self.rescan
        self._latest[model] = latest
        return sorted(stale)

    def _passed_over(
        self, model: str, length: timedelta, checked: list[datetime], previous: datetime | None
    ) -> set[datetime]:
        """Windows holding events but no rows, after ``previous`` (the latest window with rows
        at the look before; None: from the first event) and before the latest now."""
        stored, latest = set(checked), checked[-1]
        found: set[datetime] = set()
        start = None if previous is None else previous + length
        while start is None or start < latest:
            first = self.store.first_event(model, start)
            if first is None:
                break
            start = window_start(first, length)
            if start < latest and start not in stored:
                found.add(start)
            start += length
        return found

    def _checked_again(self, model: str, start: datetime) -> None:
        """``start`` was checked (or found empty): what the looks found there is caught up."""
        with self.lock:
            self._found.get(model, set()).discard(start)

    def _recheck_due(self, model: str, start: datetime, now: datetime) -> bool:
        last = self._rechecked_at.get((model, start))
        return last is None or now >= last + self.recheck_interval

    # -- running the job ----------------------------------------------------------------

    def run_due(self, now: datetime | None = None) -> list[JobRecord]:
        """Check every window due at ``now`` (default: the clock) and check again every window
        whose labels arrived after it was checked; return what happened to each.

        A model that fails is recorded (see :meth:`status`) and left for the next pass; the
        other models still run.
        """
        return self._run_due(_utc(now or self.clock()), None)

    def _run_due(self, now: datetime, stop: threading.Event | None) -> list[JobRecord]:
        records: list[JobRecord] = []
        with self._pass:
            for model in self.monitors:
                if stop is not None and stop.is_set():
                    break
                records += self._run_model(model, now, stop)
        return records

    def _run_model(
        self, model: str, now: datetime, stop: threading.Event | None
    ) -> list[JobRecord]:
        records: list[JobRecord] = []
        try:
            with self.lock:
                rechecks = [s for s in self._stale(model) if self._recheck_due(model, s, now)]
                pending = self._pending(model, now)
                stored = {_utc(s) for s in self.store.window_starts(model, self._length(model))}
        except Exception as exc:  # a broken store or config must not stop the other models
            self._fail(model, window_start(now, self._length(model)), now, exc)
            self.durations.fail(model)
            return records
        # A late window without rows was found empty and passed over: its first real check.
        work: list[tuple[datetime, Outcome]] = [
            (s, "rechecked" if s in stored else "checked") for s in rechecks
        ]
        work += [(s, "checked") for s in pending]
        for start, outcome in work:
            if stop is not None and stop.is_set():
                break
            began = time.perf_counter()
            try:
                record = self._check(model, start, outcome, now)
            except Exception as exc:
                failed = replace(self._fail(model, start, now, exc), seconds=_since(began))
                self.durations.observe(model, failed.seconds, failed=True)
                records.append(failed)
                if start in pending:
                    # Later windows wait for this one: once a later window is stored, due()
                    # starts after it, and this one would never be checked.
                    break
                continue
            self._failing.discard(model)
            if start not in pending:
                self._rechecked_at[(model, start)] = now
                self._checked_again(model, start)
            if record.outcome != "skipped":  # an empty window was read, not checked
                record = replace(record, seconds=_since(began))
                self.durations.observe(model, record.seconds, failed=False, at=_utc(self.clock()))
            records.append(record)
        return records

    def _check(self, model: str, start: datetime, outcome: Outcome, now: datetime) -> JobRecord:
        monitor = self.monitors[model]
        length = self._length(model)
        read: list[pa.Table] = []

        def events() -> pa.Table | None:
            # Read with the lock held, in the same hold as the job's writes (see run_locked).
            stored = self.store.events(model, start, start + length)
            read.append(stored)
            if stored.num_rows == 0:
                self._skipped_until[model] = max(
                    start + length, self._skipped_until.get(model, start + length)
                )
                return None
            return to_monitor_table(monitor.config, stored)

        # The lock is let go while the alerts are sent: ingestion must not wait on a channel.
        result = run_locked(monitor, self.store, events, length, self.lock, now)
        if result is None:
            return JobRecord(model, start, "skipped")
        [stored] = read
        return JobRecord(
            model,
            start,
            outcome,
            events=stored.num_rows,
            labelled=stored.num_rows - stored.column("label").null_count,
            open_incidents=sum(1 for i in result.incidents if i.is_open),
            announced=result.announced,
        )

    def _fail(self, model: str, start: datetime, now: datetime, exc: Exception) -> JobRecord:
        message = f"{type(exc).__name__}: {exc}"
        previous = self._errors.get(model)
        # A model stays broken until someone fixes it; log the traceback once, not every pass.
        if previous is None or previous.message != message or model not in self._failing:
            _log.error("checking %s's window of %s failed", model, start, exc_info=exc)
        else:
            _log.debug("checking %s's window of %s failed again: %s", model, start, message)
        self._errors[model] = JobError(window_start=start, at=now, message=message)
        self._failing.add(model)
        return JobRecord(model, start, "failed", error=message)

    # -- the background thread ----------------------------------------------------------

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def start(self) -> None:
        """Run a pass now and then every ``interval`` seconds, in a background thread."""
        if self.running:
            return
        self._stop.clear()
        # A daemon, so that a job stuck in delivery never keeps the process from exiting.
        self._thread = threading.Thread(target=self._loop, name="tripwire-scheduler", daemon=True)
        self._thread.start()

    def stop(self, timeout: float | None = None) -> None:
        """Stop the thread: it finishes the window it is checking, then exits."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
            if not self._thread.is_alive():
                self._thread = None

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                self._run_due(_utc(self.clock()), self._stop)
            except Exception:  # the thread must outlive any one pass
                _log.exception("a scheduler pass failed")
            if self._stop.wait(self.interval):
                break

    # -- state --------------------------------------------------------------------------

    def status(self) -> SchedulerStatus:
        """Per model: the latest window checked, when the next one is due and the latest error.

        Read from the store, so it waits while a window is being checked.
        """
        models: list[ModelJobs] = []
        durations = self.durations.snapshot()
        for model in self.monitors:
            length = self._length(model)
            with self.lock:
                checked = self.store.window_starts(model, length)
                start = self._next_start(model)
            models.append(
                ModelJobs(
                    model=model,
                    scheduled=True,
                    window=format_duration(length),
                    last_checked=_utc(checked[-1]) if checked else None,
                    next_due=None if start is None else start + length + self.grace,
                    failing=model in self._failing,
                    last_error=self._errors.get(model),
                    last_duration_seconds=durations[model].last_seconds,
                    last_success=durations[model].last_success,
                )
            )
        for model, reason in sorted(self.unscheduled.items()):
            models.append(
                ModelJobs(
                    model=model,
                    scheduled=False,
                    window=None,
                    last_checked=None,
                    next_due=None,
                    failing=True,
                    reason=reason,
                )
            )
        return SchedulerStatus(
            running=self.running,
            grace=format_duration(self.grace),
            interval_seconds=self.interval,
            models=models,
        )
