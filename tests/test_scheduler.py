"""The scheduler on a real DuckDB store, with a clock the tests move by hand: windows are checked
once their grace period has passed, exactly once (across restarts too), again when labels arrive
late, and a broken model never stops the others."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from tripwire.cli import cli
from tripwire.commands.serve import _monitors
from tripwire.config import ModelConfig, load_config, parse_config
from tripwire.demo import scenario
from tripwire.events import table_to_events, validate_events, validate_labels
from tripwire.job import check_windows
from tripwire.monitor import FittedState, Monitor
from tripwire.profile import serialize
from tripwire.scheduler import DURATION_BUCKETS, JobRecord, Scheduler, window_start
from tripwire.server import create_app
from tripwire.store import DuckDBStore, Store
from tripwire.store.events import to_monitor_table

DAY = timedelta(days=1)
GRACE = timedelta(minutes=10)
DAY1 = datetime(2026, 10, 1, tzinfo=UTC)  # scenario.START
DAY2, DAY3 = DAY1 + DAY, DAY1 + 2 * DAY
MODEL = "fraud-detector"
SHADOW = "fraud-shadow"  # a second model with the same traffic
READ_TOKEN = "read-token-for-tests"


class Clock:
    """A clock that only moves when a test moves it."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture(scope="module")
def data() -> scenario.Scenario:
    return scenario.generate(days=3, rows_per_day=500, reference_rows=3000)


@pytest.fixture(scope="module")
def configs() -> dict[str, ModelConfig]:
    shadow = scenario.CONFIG_YAML.replace(f"name: {MODEL}", f"name: {SHADOW}")
    return {MODEL: parse_config(scenario.CONFIG_YAML), SHADOW: parse_config(shadow)}


@pytest.fixture(scope="module")
def monitors(data: scenario.Scenario, configs: dict[str, ModelConfig]) -> dict[str, Monitor]:
    # Checking a window leaves a monitor as it was, so the tests can share them.
    return {name: Monitor(config).fit(data.reference) for name, config in configs.items()}


@pytest.fixture
def store(tmp_path: Path) -> Iterator[DuckDBStore]:
    with DuckDBStore(tmp_path / "store.duckdb") as store:
        yield store


def _log(store: Store, config: ModelConfig, day: pa.Table) -> None:
    """Store a day of events as the collector would: validated, labels still to come."""
    events, rejected = validate_events(config, table_to_events(config, day))
    assert not rejected
    store.write_events(events)


def _label(store: DuckDBStore, config: ModelConfig, day: pa.Table) -> None:
    items = [
        {"model": config.name, "event_id": str(event_id), "label": label}
        for event_id, label in zip(
            day.column("event_id").to_pylist(), day.column("is_fraud").to_pylist(), strict=True
        )
    ]
    labels, rejected = validate_labels(config, items)
    assert not rejected
    store.write_labels(labels)


def _logged(
    store: DuckDBStore, data: scenario.Scenario, configs: dict[str, ModelConfig], *models: str
) -> None:
    for _, day in data.days:
        for model in models:
            _log(store, configs[model], day)


def _done(records: list[JobRecord]) -> list[tuple[str, datetime, str]]:
    return [(r.model, r.window_start, r.outcome) for r in records]


def _performance(store: DuckDBStore, model: str, start: datetime, metric: str) -> float | None:
    history = store.history(model, DAY, [metric], since=start, until=start + DAY)
    rows = [r for r in history.to_pylist() if r["segment"] == "all"]
    assert len(rows) == 1
    value: float | None = rows[0]["value"]
    return value


def test_window_start_agrees_with_the_jobs_windows() -> None:
    assert window_start(datetime(2026, 10, 1, 23, 59, 59), DAY) == DAY1
    assert window_start(DAY2, DAY) == DAY2
    assert window_start(datetime(2026, 10, 1, 5, tzinfo=UTC), timedelta(hours=6)) == DAY1


def test_windows_are_checked_once_each_after_their_grace_period(
    store: DuckDBStore,
    data: scenario.Scenario,
    configs: dict[str, ModelConfig],
    monitors: dict[str, Monitor],
) -> None:
    _logged(store, data, configs, MODEL)
    clock = Clock(DAY2 + GRACE - timedelta(microseconds=1))
    scheduler = Scheduler({MODEL: monitors[MODEL]}, store, threading.Lock(), clock, GRACE)

    # Day 1 has ended, but late events may still arrive.
    assert scheduler.due() == []
    assert scheduler.run_due() == []
    assert store.window_starts(MODEL, DAY) == []

    clock.now = DAY2 + GRACE
    assert scheduler.due() == [(MODEL, DAY1)]
    records = scheduler.run_due()
    assert _done(records) == [(MODEL, DAY1, "checked")]
    assert records[0].events == 500 and records[0].labelled == 0
    assert store.window_starts(MODEL, DAY) == [DAY1.replace(tzinfo=None)]
    assert store.history(MODEL, DAY).num_rows > 0
    assert scheduler.due() == []
    assert scheduler.run_due() == []

    clock.now = DAY3 + DAY + GRACE
    assert _done(scheduler.run_due()) == [(MODEL, DAY2, "checked"), (MODEL, DAY3, "checked")]
    assert scheduler.run_due() == []

    # A restarted server reads what was checked from the store.
    restarted = Scheduler({MODEL: monitors[MODEL]}, store, threading.Lock(), clock, GRACE)
    assert restarted.due() == []
    assert restarted.run_due() == []
    status = restarted.status().models[0]
    assert status.last_checked == DAY3
    assert status.next_due == DAY3 + DAY + DAY + GRACE
    assert not status.failing and status.last_error is None


def test_late_labels_recheck_their_window_once(
    store: DuckDBStore,
    data: scenario.Scenario,
    configs: dict[str, ModelConfig],
    monitors: dict[str, Monitor],
) -> None:
    _logged(store, data, configs, MODEL)
    clock = Clock(DAY2 + GRACE)
    scheduler = Scheduler({MODEL: monitors[MODEL]}, store, threading.Lock(), clock, GRACE)
    assert _done(scheduler.run_due()) == [(MODEL, DAY1, "checked")]
    assert _performance(store, MODEL, DAY1, "label_coverage") == 0.0
    assert _performance(store, MODEL, DAY1, "auc") is None

    # Day 1's labels arrive a week later, day 2's before day 2 is checked.
    _label(store, configs[MODEL], data.days[0][1])
    _label(store, configs[MODEL], data.days[1][1])
    assert scheduler.relabelled() == [(MODEL, DAY1)]
    clock.now = DAY3 + GRACE
    records = scheduler.run_due()
    assert _done(records) == [(MODEL, DAY1, "rechecked"), (MODEL, DAY2, "checked")]
    assert [r.labelled for r in records] == [500, 500]
    assert _performance(store, MODEL, DAY1, "label_coverage") == 1.0
    assert _performance(store, MODEL, DAY1, "auc") is not None
    assert _performance(store, MODEL, DAY2, "auc") is not None

    # Day 2 was checked with its labels; nothing needs checking again.
    assert scheduler.relabelled() == []
    assert scheduler.run_due() == []


def test_events_arriving_after_the_grace_recheck_their_window(
    store: DuckDBStore,
    data: scenario.Scenario,
    configs: dict[str, ModelConfig],
    monitors: dict[str, Monitor],
) -> None:
    day1 = data.days[0][1]
    on_time, late = day1.slice(0, 400), day1.slice(400)
    _log(store, configs[MODEL], on_time)
    clock = Clock(DAY2 + GRACE)
    scheduler = Scheduler({MODEL: monitors[MODEL]}, store, threading.Lock(), clock, GRACE)
    assert [r.events for r in scheduler.run_due()] == [400]

    # A client that was down replays its buffer after the window was checked.
    _log(store, configs[MODEL], late)
    assert scheduler.relabelled() == [(MODEL, DAY1)]
    records = scheduler.run_due()
    assert _done(records) == [(MODEL, DAY1, "rechecked")]
    assert records[0].events == 500
    assert scheduler.run_due() == []


def test_a_window_is_rechecked_at_most_once_per_recheck_interval(
    store: DuckDBStore,
    data: scenario.Scenario,
    configs: dict[str, ModelConfig],
    monitors: dict[str, Monitor],
) -> None:
    config, day1 = configs[MODEL], data.days[0][1]
    _log(store, config, day1)
    clock = Clock(DAY2 + GRACE)
    scheduler = Scheduler(
        {MODEL: monitors[MODEL]},
        store,
        threading.Lock(),
        clock,
        GRACE,
        recheck_interval=timedelta(hours=1),
    )
    scheduler.run_due()
    # Labels trickle in: the first batch is taken at once...
    _label(store, config, day1.slice(0, 100))
    assert _done(scheduler.run_due()) == [(MODEL, DAY1, "rechecked")]
    # ...the next ones wait for the recheck interval to pass, then go in together.
    _label(store, config, day1.slice(100, 100))
    clock.now += timedelta(minutes=30)
    assert scheduler.run_due() == []
    _label(store, config, day1.slice(200, 100))
    assert scheduler.relabelled() == [(MODEL, DAY1)]  # known, not yet due
    clock.now += timedelta(minutes=30)
    records = scheduler.run_due()
    assert _done(records) == [(MODEL, DAY1, "rechecked")]
    assert records[0].labelled == 300


def test_a_window_without_events_is_skipped_not_checked(
    store: DuckDBStore,
    data: scenario.Scenario,
    configs: dict[str, ModelConfig],
    monitors: dict[str, Monitor],
) -> None:
    _log(store, configs[MODEL], data.days[0][1])
    _log(store, configs[MODEL], data.days[2][1])  # nothing logged on day 2
    clock = Clock(DAY3 + DAY + GRACE)
    scheduler = Scheduler({MODEL: monitors[MODEL]}, store, threading.Lock(), clock, GRACE)
    assert scheduler.due() == [(MODEL, DAY1), (MODEL, DAY2), (MODEL, DAY3)]
    assert _done(scheduler.run_due()) == [
        (MODEL, DAY1, "checked"),
        (MODEL, DAY2, "skipped"),
        (MODEL, DAY3, "checked"),
    ]
    assert store.window_starts(MODEL, DAY) == [DAY1.replace(tzinfo=None), DAY3.replace(tzinfo=None)]
    assert scheduler.run_due() == []


def test_a_window_found_empty_is_checked_once_its_events_arrive(
    store: DuckDBStore,
    data: scenario.Scenario,
    configs: dict[str, ModelConfig],
    monitors: dict[str, Monitor],
) -> None:
    """A sender that was down (or a backlog) delivers days after their grace has passed."""
    _log(store, configs[MODEL], data.days[0][1])
    clock = Clock(DAY3 + DAY + GRACE)
    scheduler = Scheduler({MODEL: monitors[MODEL]}, store, threading.Lock(), clock, GRACE)
    assert _done(scheduler.run_due()) == [
        (MODEL, DAY1, "checked"),
        (MODEL, DAY2, "skipped"),
        (MODEL, DAY3, "skipped"),
    ]
    _log(store, configs[MODEL], data.days[1][1])
    assert _done(scheduler.run_due()) == [(MODEL, DAY2, "checked"), (MODEL, DAY3, "skipped")]
    assert scheduler.run_due() == []


@pytest.mark.parametrize("arrival", ["after the pass", "during the pass", "before a restart"])
def test_events_arriving_late_for_a_window_passed_over_empty_get_it_checked(
    open_store: Callable[[], Store],
    data: scenario.Scenario,
    configs: dict[str, ModelConfig],
    monitors: dict[str, Monitor],
    arrival: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Day 2 is found empty and passed over, day 3 is checked; day 2's events come after that
    (or between the two checks of one pass, or before a restart that forgets what was empty).
    Day 2 is checked all the same, on each store."""
    config = configs[MODEL]
    store = open_store()
    try:
        _log(store, config, data.days[0][1])
        _log(store, config, data.days[2][1])
        clock = Clock(DAY3 + DAY + GRACE)
        scheduler = Scheduler({MODEL: monitors[MODEL]}, store, threading.Lock(), clock, GRACE)
        if arrival == "during the pass":
            # Day 2's events land just after the scheduler found the window empty.
            read = store.events

            def events_then_day2(model: str, since: Any = None, until: Any = None) -> pa.Table:
                found = read(model, since, until)
                if since == DAY2 and found.num_rows == 0:
                    _log(store, config, data.days[1][1])
                return found

            monkeypatch.setattr(store, "events", events_then_day2)
        assert _done(scheduler.run_due()) == [
            (MODEL, DAY1, "checked"),
            (MODEL, DAY2, "skipped"),
            (MODEL, DAY3, "checked"),
        ]
        monkeypatch.undo()
        if arrival != "during the pass":
            _log(store, config, data.days[1][1])
        if arrival == "before a restart":
            scheduler = Scheduler({MODEL: monitors[MODEL]}, store, threading.Lock(), clock, GRACE)

        assert scheduler.relabelled() == [(MODEL, DAY2)]
        records = scheduler.run_due()
        assert _done(records) == [(MODEL, DAY2, "checked")]
        assert records[0].events == 500
        naive = [day.replace(tzinfo=None) for day in (DAY1, DAY2, DAY3)]
        assert store.window_starts(MODEL, DAY) == naive
        assert store.history(MODEL, DAY, since=DAY2, until=DAY3).num_rows > 0
        assert scheduler.relabelled() == []
        assert scheduler.run_due() == []
    finally:
        store.close()


def test_later_looks_read_what_was_received_since_and_keep_what_earlier_ones_found(
    store: DuckDBStore,
    data: scenario.Scenario,
    configs: dict[str, ModelConfig],
    monitors: dict[str, Monitor],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The first look for windows to check again reads every row; the next ones only the rows
    received since the look before (no margin here), and a window found stays found until
    checked again, though no later look sees its labels."""
    config, day1 = configs[MODEL], data.days[0][1]
    looks: list[tuple[datetime | None, list[datetime]]] = []
    relabelled = store.relabelled_windows

    def spy(model: str, length: timedelta, since: datetime | None = None) -> list[datetime]:
        found = relabelled(model, length, since)
        looks.append((since, found))
        return found

    monkeypatch.setattr(store, "relabelled_windows", spy)
    _log(store, config, day1)
    clock = Clock(DAY2 + GRACE)

    def scheduler() -> Scheduler:
        return Scheduler(
            {MODEL: monitors[MODEL]}, store, threading.Lock(), clock, GRACE, rescan=timedelta(0)
        )

    first = scheduler()
    assert _done(first.run_due()) == [(MODEL, DAY1, "checked")]
    _label(store, config, day1.slice(0, 100))
    assert _done(first.run_due()) == [(MODEL, DAY1, "rechecked")]
    assert looks[0][0] is None and all(since is not None for since, _ in looks[1:])
    assert looks[1][1] == [DAY1.replace(tzinfo=None)]

    # More labels, within the recheck interval: found, kept, and checked once it has passed.
    _label(store, config, day1.slice(100, 100))
    clock.now += timedelta(minutes=30)
    assert first.run_due() == []
    assert first.relabelled() == [(MODEL, DAY1)]
    assert looks[-1][1] == []  # the labels came before the look before: not read again
    clock.now += timedelta(minutes=30)
    records = first.run_due()
    assert _done(records) == [(MODEL, DAY1, "rechecked")] and records[0].labelled == 200
    assert first.relabelled() == [] and first.run_due() == []

    # A restarted scheduler reads everything once: nothing is left to check again.
    looks.clear()
    restarted = scheduler()
    assert restarted.run_due() == []
    assert [since for since, _ in looks][:1] == [None]


def test_a_window_another_check_passes_over_is_found_however_long_ago_its_events_came(
    store: DuckDBStore,
    data: scenario.Scenario,
    configs: dict[str, ModelConfig],
    monitors: dict[str, Monitor],
) -> None:
    """Day 3 is checked by someone else (tripwire run) before day 2 is due: day 2's events came
    before the scheduler's first look, so only their time tells that day 2 was passed over."""
    config = configs[MODEL]
    _logged(store, data, configs, MODEL)
    clock = Clock(DAY2 + GRACE)
    scheduler = Scheduler(
        {MODEL: monitors[MODEL]}, store, threading.Lock(), clock, GRACE, rescan=timedelta(0)
    )
    assert _done(scheduler.run_due()) == [(MODEL, DAY1, "checked")]
    day3 = to_monitor_table(config, store.events(MODEL, DAY3, DAY3 + DAY))
    check_windows(monitors[MODEL], store, day3, DAY)

    assert scheduler.relabelled() == [(MODEL, DAY2)]
    assert _done(scheduler.run_due()) == [(MODEL, DAY2, "checked")]
    assert scheduler.relabelled() == [] and scheduler.run_due() == []
    naive = [day.replace(tzinfo=None) for day in (DAY1, DAY2, DAY3)]
    assert store.window_starts(MODEL, DAY) == naive


def _broken(data: scenario.Scenario, configs: dict[str, ModelConfig]) -> Monitor:
    """A monitor fitted on a reference without `amount`, for a config that names it: its
    checks fail."""
    narrow = parse_config(
        scenario.CONFIG_YAML.replace("    amount: numeric\n", "").replace("  amount: 0.31\n", "")
    )
    broken = Monitor(narrow).fit(data.reference.drop(["amount"]))
    broken.config = configs[MODEL]
    return broken


def test_a_broken_model_records_its_error_and_the_others_still_run(
    store: DuckDBStore,
    data: scenario.Scenario,
    configs: dict[str, ModelConfig],
    monitors: dict[str, Monitor],
) -> None:
    _logged(store, data, configs, MODEL, SHADOW)
    broken = _broken(data, configs)
    clock = Clock(DAY2 + GRACE)
    scheduler = Scheduler(
        {MODEL: broken, SHADOW: monitors[SHADOW]}, store, threading.Lock(), clock, GRACE
    )

    records = scheduler.run_due()
    assert _done(records) == [(MODEL, DAY1, "failed"), (SHADOW, DAY1, "checked")]
    assert records[0].error is not None and "amount" in records[0].error
    assert store.window_starts(MODEL, DAY) == []
    assert store.window_starts(SHADOW, DAY) == [DAY1.replace(tzinfo=None)]

    status = {m.model: m for m in scheduler.status().models}
    error = status[MODEL].last_error
    assert status[MODEL].failing and error is not None and error.window_start == DAY1
    assert status[MODEL].last_checked is None
    assert not status[SHADOW].failing and status[SHADOW].last_error is None

    # Later windows of the broken model wait for day 1, which is tried again on every pass.
    clock.now = DAY3 + GRACE
    assert _done(scheduler.run_due()) == [(MODEL, DAY1, "failed"), (SHADOW, DAY2, "checked")]


def test_each_checks_duration_and_failure_is_kept_and_exported(
    store: DuckDBStore,
    data: scenario.Scenario,
    configs: dict[str, ModelConfig],
    monitors: dict[str, Monitor],
) -> None:
    _logged(store, data, configs, MODEL, SHADOW)
    broken = _broken(data, configs)
    clock = Clock(DAY3 + GRACE)
    lock = threading.Lock()
    scheduler = Scheduler({MODEL: broken, SHADOW: monitors[SHADOW]}, store, lock, clock, GRACE)
    app = create_app(dict(configs), store, None, READ_TOKEN, scheduler=scheduler)
    client = TestClient(app)  # no lifespan: the scheduler's thread is not started
    read = {"Authorization": f"Bearer {READ_TOKEN}"}

    records = scheduler.run_due()
    assert _done(records) == [
        (MODEL, DAY1, "failed"),
        (SHADOW, DAY1, "checked"),
        (SHADOW, DAY2, "checked"),
    ]
    assert all(r.seconds > 0 for r in records)
    durations = scheduler.durations.snapshot()
    assert durations[MODEL].count == 1 and durations[MODEL].failures == 1
    assert durations[MODEL].last_success is None
    assert durations[SHADOW].count == 2 and durations[SHADOW].failures == 0
    assert durations[SHADOW].total == pytest.approx(records[1].seconds + records[2].seconds)
    assert durations[SHADOW].last_success == DAY3 + GRACE  # by the scheduler's clock

    jobs = {m["model"]: m for m in client.get("/v1/jobs", headers=read).json()["models"]}
    assert jobs[SHADOW]["last_duration_seconds"] == records[2].seconds
    assert jobs[SHADOW]["last_success"] == "2026-10-03T00:10:00Z"
    assert jobs[MODEL]["last_duration_seconds"] == records[0].seconds
    assert jobs[MODEL]["last_success"] is None

    exposition = client.get("/metrics", headers=read).text
    families = {f.name: f for f in text_string_to_metric_families(exposition)}
    assert families["tripwire_job_duration_seconds"].type == "histogram"
    samples = {
        (s.name, s.labels.get("model"), s.labels.get("le")): s.value
        for name in (
            "tripwire_job_duration_seconds",
            "tripwire_job_failures",
            "tripwire_job_last_success_timestamp_seconds",
        )
        for s in families[name].samples
    }
    assert samples["tripwire_job_duration_seconds_count", SHADOW, None] == 2
    assert samples["tripwire_job_duration_seconds_sum", SHADOW, None] == pytest.approx(
        durations[SHADOW].total
    )
    assert samples["tripwire_job_duration_seconds_bucket", SHADOW, "+Inf"] == 2
    assert samples["tripwire_job_duration_seconds_count", MODEL, None] == 1
    assert samples["tripwire_job_failures_total", MODEL, None] == 1
    assert samples["tripwire_job_failures_total", SHADOW, None] == 0
    last_success = (DAY3 + GRACE).timestamp()
    assert samples["tripwire_job_last_success_timestamp_seconds", SHADOW, None] == last_success
    assert ("tripwire_job_last_success_timestamp_seconds", MODEL, None) not in samples
    # Each check is counted in the bucket of its duration, and the buckets add up.
    fastest = min(r.seconds for r in records[1:])
    below = [b for b in DURATION_BUCKETS if b < fastest]
    if below:
        assert samples["tripwire_job_duration_seconds_bucket", SHADOW, str(below[-1])] == 0


def test_the_server_runs_the_scheduler_and_shows_it_at_v1_jobs(
    store: DuckDBStore,
    data: scenario.Scenario,
    configs: dict[str, ModelConfig],
    monitors: dict[str, Monitor],
) -> None:
    _logged(store, data, configs, MODEL)
    clock = Clock(DAY3 + DAY + GRACE)
    # A long interval: the thread makes its first pass on start, and the test makes the next.
    scheduler = Scheduler(
        {MODEL: monitors[MODEL]}, store, threading.Lock(), clock, GRACE, interval=3600
    )
    app = create_app({MODEL: configs[MODEL]}, store, None, READ_TOKEN, scheduler=scheduler)
    with TestClient(app) as client:
        assert scheduler.running
        # Passes never overlap, so once this one returns every due window has been checked,
        # by the thread's pass or by this one.
        scheduler.run_due()
        assert client.get("/v1/jobs").status_code == 401
        response = client.get("/v1/jobs", headers={"Authorization": f"Bearer {READ_TOKEN}"})
        assert response.status_code == 200, response.text
        body = response.json()
        assert body["running"] is True and body["grace"] == "10m"
        [model] = body["models"]
        assert model["model"] == MODEL and model["scheduled"] and model["window"] == "1d"
        assert model["last_checked"] == "2026-10-03T00:00:00Z"
        assert model["next_due"] == "2026-10-05T00:10:00Z"
        assert model["failing"] is False and model["last_error"] is None
    assert not scheduler.running
    assert store.window_starts(MODEL, DAY)[-1] == DAY3.replace(tzinfo=None)


def test_v1_jobs_says_when_no_scheduler_runs(
    store: DuckDBStore, configs: dict[str, ModelConfig]
) -> None:
    app = create_app({MODEL: configs[MODEL]}, store, None, None)
    with TestClient(app) as client:
        response = client.get("/v1/jobs")
    assert response.status_code == 404
    assert "--no-schedule" in response.json()["detail"]


def test_serve_lists_models_it_cannot_schedule_and_checks_grace(tmp_path: Path) -> None:
    config_path = tmp_path / "tripwire.yaml"
    config_path.write_text(scenario.CONFIG_YAML, encoding="utf-8")
    monitors, failed = _monitors({MODEL: load_config(config_path)})
    # The config's reference.parquet was never written: the model is collected, not scheduled.
    assert monitors == {}
    assert "reference.parquet: no such file" in failed[MODEL]

    result = CliRunner().invoke(
        cli, ["serve", "--config", str(config_path), "--insecure", "--grace", "ten minutes"]
    )
    assert result.exit_code == 2
    assert "invalid duration" in result.output


def test_a_served_models_first_check_does_not_serialize_its_reference(
    tmp_path: Path,
    store: DuckDBStore,
    data: scenario.Scenario,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The job stores the fitted reference beside the windows it checks; its bytes (seconds
    for a wide model) are made when serve fits the monitor, not by the first check, which
    holds the store's lock, the collector's."""
    config_path = tmp_path / "tripwire.yaml"
    config_path.write_text(scenario.CONFIG_YAML, encoding="utf-8")
    pq.write_table(data.reference, tmp_path / "reference.parquet")
    monitors, failed = _monitors({MODEL: load_config(config_path)})
    assert failed == {}
    serialized: list[str] = []
    to_bytes = serialize.to_bytes

    def spy(value: object) -> bytes:
        if isinstance(value, FittedState):
            serialized.append(MODEL)
        return to_bytes(value)

    monkeypatch.setattr(serialize, "to_bytes", spy)
    _log(store, monitors[MODEL].config, data.days[0][1])
    clock = Clock(DAY2 + GRACE)
    scheduler = Scheduler(monitors, store, threading.Lock(), clock, GRACE)
    assert _done(scheduler.run_due()) == [(MODEL, DAY1, "checked")]
    assert serialized == []
    assert store.reference(MODEL) == monitors[MODEL].to_bytes()

    # A monitor fitted as before would have made them in its first check.
    fresh = Monitor(monitors[MODEL].config).fit(data.reference)
    _log(store, fresh.config, data.days[1][1])
    clock.now = DAY3 + GRACE
    assert _done(Scheduler({MODEL: fresh}, store, threading.Lock(), clock, GRACE).run_due()) == [
        (MODEL, DAY2, "checked")
    ]
    assert serialized == [MODEL]


def test_serve_refuses_a_recheck_interval_it_cannot_read(tmp_path: Path) -> None:
    config = tmp_path / "tripwire.yaml"
    config.write_text(scenario.CONFIG_YAML, encoding="utf-8")
    result = CliRunner().invoke(
        cli, ["serve", "--config", str(config), "--insecure", "--recheck-every", "soon"]
    )
    assert result.exit_code == 2
    assert "Invalid value for '--recheck-every'" in result.output
