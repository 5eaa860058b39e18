"""`tripwire demo` must flag each injected incident on the right day, and nothing else, having
gone through the pipeline: a serving process's Logger, the HTTP collector, the DuckDB store,
labels a week later, and the scheduler checking each window as it closes."""

from __future__ import annotations

import datetime as dt
import json
import threading
from pathlib import Path

import httpx
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from tripwire.alerts.engine import Incident
from tripwire.config import parse_config
from tripwire.demo import scenario
from tripwire.demo.findings import findings
from tripwire.demo.run import ALERTS, DemoRun, run
from tripwire.demo.service import Collector, collector
from tripwire.demo.serving import serving_process
from tripwire.errors import TripwireError
from tripwire.importance import top_quartile
from tripwire.job import check_windows, derive_incidents
from tripwire.monitor import Monitor
from tripwire.scheduler import Scheduler
from tripwire.store import DuckDBStore

DAY = {d: scenario.START + dt.timedelta(days=d - 1) for d in range(1, 31)}
ONE_DAY = dt.timedelta(days=1)
LAG = dt.timedelta(days=scenario.LABEL_LAG_DAYS)
MODEL = "fraud-detector"


@pytest.fixture(scope="module")
def demo_out(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("demo-run")


@pytest.fixture(scope="module")
def demo(demo_out: Path) -> DemoRun:
    """The demo lived through once for this module's tests."""
    return run(demo_out)


@pytest.fixture(scope="module")
def traffic(demo: DemoRun, demo_out: Path) -> list[pa.Table]:
    """The days the serving process served, from the demo's files, oldest first."""
    return [pq.read_table(path) for path in sorted((demo_out / "days").glob("*.parquet"))]


def test_every_event_and_label_went_through_the_collector_into_the_store(
    demo: DemoRun, demo_out: Path, traffic: list[pa.Table]
) -> None:
    # The labels of the last LAG days are still to come when the month ends.
    labelled = traffic[: len(traffic) - scenario.LABEL_LAG_DAYS]
    n_events = sum(day.num_rows for day in traffic)
    n_labels = sum(day.num_rows for day in labelled)
    assert demo.throughput.events == n_events == 30 * 8000
    assert demo.throughput.labels == n_labels
    with DuckDBStore(demo_out / "tripwire.duckdb") as store:
        stored = store.events(MODEL)
        assert store.quarantined(MODEL).num_rows == 0
    assert stored.num_rows == n_events
    ids = pa.concat_tables(traffic).column("event_id")
    assert set(stored.column("event_id").to_pylist()) == set(ids.to_pylist())
    # Each label joined its event, and became known a week after the prediction.
    truth = pa.concat_tables(labelled).select(["event_id", "is_fraud"])
    got = stored.filter(pc.is_valid(stored.column("label")))
    assert got.num_rows == n_labels
    joined = got.join(truth, "event_id")
    assert pc.all(
        pc.equal(joined.column("label"), pc.cast(joined.column("is_fraud"), pa.float64()))
    ).as_py()
    lags = pc.subtract(got.column("labelled_at"), got.column("ts")).to_pylist()
    assert set(lags) == {LAG}


def test_the_scheduler_checked_each_window_and_rechecked_it_when_its_labels_landed(
    demo: DemoRun, demo_out: Path
) -> None:
    assert (demo.throughput.checked, demo.throughput.rechecked) == (
        30,
        30 - scenario.LABEL_LAG_DAYS,
    )
    with DuckDBStore(demo_out / "tripwire.duckdb") as store:
        starts = store.window_starts(MODEL, ONE_DAY)
        coverage = store.history(MODEL, ONE_DAY, ["label_coverage"]).to_pylist()
    assert starts == [dt.datetime.combine(DAY[d], dt.time()) for d in range(1, 31)]
    # The stored rows are those of the latest check: with the labels for the windows that got
    # them, without for the last LAG days.
    overall = {r["window_start"].date(): r["value"] for r in coverage if r["segment"] == "all"}
    assert overall == {
        DAY[d]: 1.0 if d <= 30 - scenario.LABEL_LAG_DAYS else 0.0 for d in range(1, 31)
    }
    # Each day's timeline shows the recheck of the window whose labels landed that day.
    for number, day in enumerate(demo.days, start=1):
        if number <= scenario.LABEL_LAG_DAYS:
            assert day.labelled is None
        else:
            assert day.labelled is not None
            assert day.labelled.window == f"{DAY[number - scenario.LABEL_LAG_DAYS]} 00:00"


def test_alerts_went_out_through_the_outbox_to_the_console_channel(
    demo: DemoRun, demo_out: Path
) -> None:
    text = (demo_out / ALERTS).read_text(encoding="utf-8")
    assert demo.throughput.alerts > 0
    assert text.count("\nRule: ") == demo.throughput.alerts
    for rule in ("null_share_top_features", "psi_top_feature_drift", "latency_p95"):
        assert f"Rule: {rule}\n" in text


def test_the_pipeline_finds_what_checking_the_same_days_in_memory_finds(
    demo: DemoRun, traffic: list[pa.Table]
) -> None:
    """Checked in memory, as the demo did before it went through the pipeline, the same days
    (labelled but for the last LAG) give the same incidents: nothing was lost or changed on
    the way through the logger, the collector and the store."""
    tables = []
    for number, day in enumerate(traffic, start=1):
        if number > len(traffic) - scenario.LABEL_LAG_DAYS:
            day = scenario.without_labels(day)
            known = pa.nulls(day.num_rows, day.schema.field("ts").type)
        else:
            known = pc.add(day.column("ts"), pa.scalar(LAG, pa.duration("s")))
        tables.append(day.append_column("label_time", known))
    with DuckDBStore(":memory:") as store:
        check_windows(demo.monitor, store, pa.concat_tables(tables), ONE_DAY)
        expected, _ = derive_incidents(demo.monitor, store, ONE_DAY)

    def facts(incidents: list[Incident]) -> list[tuple[object, ...]]:
        return [
            (i.dedup_key, i.severity, i.route, i.opened_at, i.resolved_at, i.reopened)
            for i in incidents
        ]

    assert facts(demo.incidents) == facts(expected)
    assert [i.value for i in demo.incidents] == pytest.approx([i.value for i in expected])


def test_the_demo_collector_listens_on_loopback_and_wants_its_token() -> None:
    data = scenario.generate(days=1, rows_per_day=200, reference_rows=1000)
    config = parse_config(scenario.CONFIG_YAML)
    monitor = Monitor(config).fit(data.reference)
    with DuckDBStore(":memory:") as store:
        scheduler = Scheduler({MODEL: monitor}, store, threading.Lock())
        with collector({MODEL: config}, scheduler) as service:
            assert service.url.startswith("http://127.0.0.1:")
            empty: dict[str, list[object]] = {"labels": []}
            assert httpx.post(f"{service.url}/v1/labels", json=empty).status_code == 401
            answer = httpx.post(f"{service.url}/v1/labels", json=empty, headers=service.headers)
            assert answer.status_code == 200, answer.text
            assert scheduler.running
        assert not scheduler.running
        with pytest.raises(httpx.ConnectError):
            httpx.get(f"{service.url}/v1/health")


def test_a_serving_process_that_dies_stops_the_demo(tmp_path: Path) -> None:
    with serving_process(tmp_path / "missing.yaml") as serving:
        # It reads its config once connected: this one is missing, so it exits with an error.
        serving.connect(Collector("http://127.0.0.1:9", "unused"))
        with pytest.raises(TripwireError, match="serving process stopped"):
            serving.shipped()


def test_demo_opens_an_incident_for_each_injected_one_when_it_happens(demo: DemoRun) -> None:
    days = demo.days
    first = {f.incident[:3]: f.first_flagged for f in findings(days)}
    assert first["(a)"] == DAY[scenario.NULL_SPIKE_DAYS[0]]
    # The seed rule pages on the third consecutive day of drift.
    assert first["(b)"] == DAY[scenario.SHIFT_FROM_DAY + 2]
    assert first["(d)"] == DAY[scenario.LATENCY_FROM_DAY]
    assert first["(e)"] == DAY[scenario.NOISE_SPIKE_DAY]
    # Realized performance can only see the decay once labels arrive, a lag after it began.
    decay_seen = first["(c)"]
    assert decay_seen is not None
    assert DAY[scenario.DECAY_FROM_DAY] + dt.timedelta(days=scenario.LABEL_LAG_DAYS) <= decay_seen
    assert decay_seen <= DAY[30]


def test_pages_go_to_oncall_and_the_benign_spike_only_to_the_digest(demo: DemoRun) -> None:
    result = demo
    pages = {(i.rule, i.feature) for i in result.incidents if i.severity == "page"}
    assert pages == {
        ("null_share_top_features", "merchant_risk"),
        ("psi_top_feature_drift", "distance_km"),
        ("latency_p95", ""),
    }
    assert {i.route for i in result.incidents if i.severity == "page"} == {"oncall"}
    jitter = [i for i in result.incidents if i.feature == "session_jitter"]
    assert [(i.severity, i.route) for i in jitter] == [("digest", "weekly-digest")]
    week_two = result.digests[1]
    assert {item.feature for item in week_two.items} == {"session_jitter"}
    # The null spike resolves after two clean days; the drift is still open at the end.
    null_spike = next(i for i in result.incidents if i.rule == "null_share_top_features")
    assert null_spike.resolved_at is not None
    assert null_spike.resolved_at.date() == DAY[scenario.NULL_SPIKE_DAYS[-1] + 2]


def test_demo_is_quiet_on_clean_days_for_features_that_may_page(demo: DemoRun) -> None:
    days = demo.days
    paging = set(top_quartile(scenario.IMPORTANCE))
    incident_days = {*scenario.NULL_SPIKE_DAYS, scenario.NOISE_SPIKE_DAY}
    for number, day in enumerate(days, start=1):
        alerts = {
            r.feature
            for r in day.report.select(layer="inputs")
            if r.status == "alert" and r.feature in paging
        }
        if number < scenario.SHIFT_FROM_DAY and number not in incident_days:
            assert not alerts, (day.date, alerts)
        cost = day.report.status("cost")
        assert (cost == "alert") == (number >= scenario.LATENCY_FROM_DAY), (day.date, cost)


def test_demo_writes_a_self_contained_report_and_replayable_files(demo_dir: Path) -> None:
    html = (demo_dir / "report.html").read_text(encoding="utf-8")
    assert "http://" not in html and "https://" not in html
    assert len(html.encode()) < 2_000_000
    assert "distance_km" in html and "merchant_risk" in html
    assert (demo_dir / "tripwire.yaml").exists()
    assert len(list((demo_dir / "days").glob("*.parquet"))) == 30


def test_demo_json_lists_the_findings(demo_dir: Path) -> None:
    data = json.loads((demo_dir / "demo.json").read_text(encoding="utf-8"))
    assert len(data["findings"]) == 5
    assert all(f["first_flagged"] for f in data["findings"])
    pipeline = data["pipeline"]
    assert (pipeline["events"], pipeline["checked"]) == (30 * 8000, 30)
    assert Path(data["alerts"]).read_text(encoding="utf-8").count("\nRule: ") == pipeline["alerts"]
