"""`tripwire demo` must flag each injected incident on the right day, and nothing else, having
gone through the pipeline: a serving process's Logger, the HTTP collector, the DuckDB store,
labels a week later, and the scheduler checking each window as it closes.

The tests read what the demo left in its directory (the session's one run of the command):
its JSON summary, its store, its alerts and its report."""

from __future__ import annotations

import datetime as dt
import json
import re
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
from fastapi.testclient import TestClient

from tripwire.alerts.digest import build_digest
from tripwire.alerts.engine import Incident
from tripwire.config import load_config, parse_config
from tripwire.demo import scenario
from tripwire.demo.service import Collector, collector
from tripwire.demo.serving import serving_process
from tripwire.demo.stored import stored_incidents
from tripwire.errors import TripwireError
from tripwire.importance import top_quartile
from tripwire.job import check_windows, derive_incidents
from tripwire.layers.rows import SEVERITY
from tripwire.monitor import Monitor
from tripwire.scheduler import Scheduler
from tripwire.server import create_app
from tripwire.store import DuckDBStore

DAY = {d: scenario.START + dt.timedelta(days=d - 1) for d in range(1, 31)}
ONE_DAY = dt.timedelta(days=1)
LAG = dt.timedelta(days=scenario.LABEL_LAG_DAYS)
LABELLED_DAYS = 30 - scenario.LABEL_LAG_DAYS  # the labels of the last LAG days are still to come
MODEL = "fraud-detector"


@dataclass(frozen=True)
class Stored:
    """What the demo's store holds at the end."""

    events: pa.Table  # with their labels
    window_starts: list[dt.datetime]
    history: pa.Table  # metric rows

    @property
    def rows(self) -> list[dict[str, Any]]:
        rows: list[dict[str, Any]] = self.history.to_pylist()
        return rows

    incidents: list[Incident]
    quarantined: int


@pytest.fixture(scope="module")
def summary(demo_dir: Path) -> dict[str, Any]:
    """What ``tripwire demo --json`` printed."""
    data: dict[str, Any] = json.loads((demo_dir / "demo.json").read_text(encoding="utf-8"))
    return data


@pytest.fixture(scope="module")
def stored(demo_dir: Path) -> Stored:
    with DuckDBStore(demo_dir / "tripwire.duckdb") as store:
        return Stored(
            store.events(MODEL),
            store.window_starts(MODEL, ONE_DAY),
            store.history(MODEL, ONE_DAY),
            stored_incidents(store, MODEL),
            store.quarantined(MODEL).num_rows,
        )


@pytest.fixture(scope="module")
def traffic(demo_dir: Path) -> list[pa.Table]:
    """The days the serving process served, from the demo's files, oldest first."""
    return [pq.read_table(path) for path in sorted((demo_dir / "days").glob("*.parquet"))]


@pytest.fixture(scope="module")
def monitor(demo_dir: Path) -> Monitor:
    """The demo's monitor, fitted again from the files it wrote."""
    return Monitor(load_config(demo_dir / "tripwire.yaml")).fit(
        pq.read_table(demo_dir / "reference.parquet")
    )


def test_demo_opens_an_incident_for_each_injected_one_when_it_happens(
    summary: dict[str, Any],
) -> None:
    first = {
        f["incident"][:3]: dt.date.fromisoformat(f["first_flagged"]) for f in summary["findings"]
    }
    assert first["(a)"] == DAY[scenario.NULL_SPIKE_DAYS[0]]
    # The seed rule pages on the third consecutive day of drift.
    assert first["(b)"] == DAY[scenario.SHIFT_FROM_DAY + 2]
    assert first["(d)"] == DAY[scenario.LATENCY_FROM_DAY]
    assert first["(e)"] == DAY[scenario.NOISE_SPIKE_DAY]


def test_the_decay_shows_in_estimated_and_proxy_metrics_before_realized_ones(
    summary: dict[str, Any],
) -> None:
    """Estimated performance and the manual-review share need no labels: they see the new
    users' decay while the new region's share ramps up (each rule wants two windows running).
    Realized performance can only see it once labels arrive, a lag after it began."""
    [decay] = [f for f in summary["findings"] if f["incident"].startswith("(c)")]
    seen = {s["signal"]: dt.date.fromisoformat(s["first_flagged"]) for s in decay["signals"]}
    assert set(seen) == {"proxy", "estimated", "realized"}
    began, labels_land = DAY[scenario.DECAY_FROM_DAY], DAY[scenario.DECAY_FROM_DAY] + LAG
    ramped = DAY[scenario.DECAY_FROM_DAY + scenario.REGION_RAMP_DAYS + 1]
    for early in ("proxy", "estimated"):
        assert began < seen[early] <= ramped < labels_land, (early, seen)
    assert labels_land <= seen["realized"] <= DAY[30]
    assert dt.date.fromisoformat(decay["first_flagged"]) == min(seen["proxy"], seen["estimated"])
    for signal in decay["signals"]:
        assert "user_type=new" in signal["evidence"]


def test_only_the_new_users_decay_opens_performance_incidents(stored: Stored) -> None:
    """The whole population's performance holds, and the returning users'; so do the whole
    population's inputs that may page, though the new users' scores moved."""
    performance_rules = {
        "segment_performance",
        "segment_estimated_performance",
        "manual_review_jump",
    }
    found = {(i.rule, i.segment) for i in stored.incidents if i.rule in performance_rules}
    assert found == {(rule, "user_type=new") for rule in performance_rules}
    decay = [i for i in stored.incidents if i.rule in performance_rules]
    assert {(i.severity, i.route) for i in decay} == {("ticket", "fraud-ds")}
    # Still open at the end: the new region's users keep coming.
    assert all(i.is_open for i in decay)


def test_each_incident_is_raised_on_the_demos_clock_once_its_evidence_was_in(
    stored: Stored,
) -> None:
    """Raised (detected_at) by the scheduler's simulated clock, once the window that opened it
    had closed; the new users' realized decay only once that window's labels landed, a week
    on, after the proxy and the estimate had raised theirs, though its evidence is older."""
    end = dt.datetime.combine(DAY[30], dt.time()) + ONE_DAY
    for i in stored.incidents:
        assert i.detected_at is not None, i.rule
        assert i.opened_at + ONE_DAY <= i.detected_at <= end + ONE_DAY, i.rule
    by_rule = {i.rule: i for i in stored.incidents if i.segment == "user_type=new"}
    realized = by_rule["segment_performance"]
    estimated = by_rule["segment_estimated_performance"]
    proxy = by_rule["manual_review_jump"]
    assert realized.detected_at is not None and estimated.detected_at is not None
    assert proxy.detected_at is not None
    assert realized.detected_at >= realized.opened_at + ONE_DAY + LAG
    assert proxy.detected_at < estimated.detected_at < realized.detected_at
    assert realized.evidence_start < estimated.evidence_start


def test_pages_go_to_oncall_and_the_benign_spike_only_to_the_digest(
    stored: Stored, monitor: Monitor
) -> None:
    incidents = stored.incidents
    pages = {(i.rule, i.feature) for i in incidents if i.severity == "page"}
    assert pages == {
        ("null_share_top_features", "merchant_risk"),
        ("psi_top_feature_drift", "distance_km"),
        ("latency_p95", ""),
    }
    assert {i.route for i in incidents if i.severity == "page"} == {"oncall"}
    jitter = [i for i in incidents if i.feature == "session_jitter"]
    assert [(i.severity, i.route) for i in jitter] == [("digest", "weekly-digest")]
    week_two = dt.datetime.combine(DAY[8], dt.time())
    digest = build_digest(
        monitor.config,
        stored.history,
        monitor.importance_,
        incidents,
        week_two,
        week_two + 7 * ONE_DAY,
    )
    assert {item.feature for item in digest.items} == {"session_jitter"}
    # The null spike resolves after two clean days; the drift is still open at the end.
    null_spike = next(i for i in incidents if i.rule == "null_share_top_features")
    assert null_spike.resolved_at is not None
    assert null_spike.resolved_at.date() == DAY[scenario.NULL_SPIKE_DAYS[-1] + 2]


def test_demo_is_quiet_on_clean_days_for_features_that_may_page(stored: Stored) -> None:
    paging = set(top_quartile(scenario.IMPORTANCE))
    incident_days = {*scenario.NULL_SPIKE_DAYS, scenario.NOISE_SPIKE_DAY}
    every = stored.rows
    for number in range(1, 31):
        rows = [
            r for r in every if r["window_start"].date() == DAY[number] and r["segment"] == "all"
        ]
        alerts = {
            r["feature"]
            for r in rows
            if r["layer"] == "inputs" and r["status"] == "alert" and r["feature"] in paging
        }
        if number < scenario.SHIFT_FROM_DAY and number not in incident_days:
            assert not alerts, (number, alerts)
        # The cost layer's verdict, as Report.status gives it.
        judged = [
            r["status"]
            for r in rows
            if r["layer"] == "cost" and r["status"] in ("ok", "watch", "alert", "error")
        ]
        worst = min(judged, key=SEVERITY.__getitem__, default="ok")
        assert (worst == "alert") == (number >= scenario.LATENCY_FROM_DAY), (number, worst)


def test_every_event_and_label_went_through_the_collector_into_the_store(
    summary: dict[str, Any], stored: Stored, traffic: list[pa.Table]
) -> None:
    labelled = traffic[:LABELLED_DAYS]
    n_events = sum(day.num_rows for day in traffic)
    n_labels = sum(day.num_rows for day in labelled)
    assert summary["pipeline"]["events"] == n_events == 30 * 8000
    assert summary["pipeline"]["labels"] == n_labels
    assert stored.quarantined == 0
    events = stored.events
    assert events.num_rows == n_events
    ids = pa.concat_tables(traffic).column("event_id")
    assert set(events.column("event_id").to_pylist()) == set(ids.to_pylist())
    # Each label joined its event, and became known a week after the prediction.
    truth = pa.concat_tables(labelled).select(["event_id", "is_fraud"])
    got = events.filter(pc.is_valid(events.column("label")))
    assert got.num_rows == n_labels
    joined = got.join(truth, "event_id")
    fraud = pc.cast(joined.column("is_fraud"), pa.float64())
    assert pc.all(pc.equal(joined.column("label"), fraud)).as_py()
    lags = pc.subtract(got.column("labelled_at"), got.column("ts")).to_pylist()
    assert set(lags) == {LAG}
    # What serving decided went along in each event's metadata, for the manual-review proxy.
    decided = pa.concat_tables(traffic).select(["event_id", "decision"])
    kept = events.select(["event_id", "metadata"]).join(decided, "event_id")
    expected = [f'{{"decision":"{d}"}}' for d in kept.column("decision").to_pylist()]
    assert kept.column("metadata").to_pylist() == expected


def test_the_scheduler_checked_each_window_and_rechecked_it_when_its_labels_landed(
    summary: dict[str, Any], stored: Stored
) -> None:
    pipeline = summary["pipeline"]
    assert (pipeline["checked"], pipeline["rechecked"]) == (30, LABELLED_DAYS)
    assert stored.window_starts == [dt.datetime.combine(DAY[d], dt.time()) for d in range(1, 31)]
    # The stored rows are those of each window's latest check: with its labels where they
    # landed, without for the last LAG days.
    coverage = {
        r["window_start"].date(): r["value"]
        for r in stored.rows
        if r["metric"] == "label_coverage" and r["segment"] == "all"
    }
    assert coverage == {DAY[d]: 1.0 if d <= LABELLED_DAYS else 0.0 for d in range(1, 31)}


def test_alerts_went_out_through_the_outbox_to_the_console_channel(
    summary: dict[str, Any],
) -> None:
    text = Path(summary["alerts"]).read_text(encoding="utf-8")
    announced = summary["pipeline"]["alerts"]
    assert announced > 0
    assert text.count("\nRule: ") == announced
    for rule in (
        "null_share_top_features",
        "psi_top_feature_drift",
        "latency_p95",
        "manual_review_jump",
        "segment_estimated_performance",
        "segment_performance",
    ):
        assert f"Rule: {rule}\n" in text


def test_the_pipeline_finds_what_checking_the_same_days_in_memory_finds(
    stored: Stored, traffic: list[pa.Table], monitor: Monitor
) -> None:
    """Checked in memory, as the demo did before it went through the pipeline, the same days
    (labelled but for the last LAG) give the same incidents: nothing was lost or changed on
    the way through the logger, the collector and the store."""
    tables = []
    for number, day in enumerate(traffic, start=1):
        if number > LABELLED_DAYS:
            day = scenario.without_labels(day)
            known = pa.nulls(day.num_rows, day.schema.field("ts").type)
        else:
            known = pc.add(day.column("ts"), pa.scalar(LAG, pa.duration("s")))
        tables.append(day.append_column("label_time", known))
    with DuckDBStore(":memory:") as store:
        check_windows(monitor, store, pa.concat_tables(tables), ONE_DAY)
        expected, _ = derive_incidents(monitor, store, ONE_DAY)

    def facts(incidents: list[Incident]) -> list[tuple[object, ...]]:
        return [
            (i.dedup_key, i.severity, i.route, i.opened_at, i.resolved_at, i.reopened)
            for i in incidents
        ]

    assert facts(stored.incidents) == facts(expected)
    assert [i.value for i in stored.incidents] == pytest.approx([i.value for i in expected])


def test_demo_writes_a_self_contained_report_and_replayable_files(demo_dir: Path) -> None:
    html = (demo_dir / "report.html").read_text(encoding="utf-8")
    assert "http://" not in html and "https://" not in html
    assert len(html.encode()) < 2_000_000
    assert "distance_km" in html and "merchant_risk" in html
    assert (demo_dir / "tripwire.yaml").exists()
    assert len(list((demo_dir / "days").glob("*.parquet"))) == 30


def _figure(html: str, caption: str) -> str:
    """The ``<figure>`` of ``html`` whose caption starts with ``caption``."""
    start = html.index(f"<figure><figcaption>{caption}")
    return html[start : html.index("</figure>", start)]


def _lines(figure: str) -> dict[str, bool]:
    """Each line of a chart's figure by name: whether it is dashed (estimated)."""
    found = re.findall(r'<polyline class="ln s\d( dash)?" points="[^"]*"><title>([^<]*)<', figure)
    return {name: bool(dash) for dash, name in found}


def _thresholds(figure: str) -> list[float]:
    """The values of a chart's threshold lines."""
    found = re.findall(r'<line class="thr[^"]*"[^>]*><title>[^<]*: ([^<]*)<', figure)
    return [float(v) for v in found]


def _check_performance_chart(html: str, stored: Stored) -> None:
    """The new users' AUC beside the whole population's and the returning users', realized
    (solid) and estimated (dashed), with each line's alert level: segment_performance's, the
    reference's value less 0.05 (here also the level stored with the rows); the decay's
    windows flagged. The manual-review proxy's lines are manual_review_jump's level, 0.10
    over the reference's share, not the proxy's own (50 % over it)."""
    auc = _figure(html, "auc: overall")
    segments = ("all", "user_type=returning", "user_type=new")
    assert _lines(auc) == {
        **{segment: False for segment in segments},
        **{f"{segment} (estimated)": True for segment in segments},
    }
    levels = {
        (r["segment"], round(r["threshold"], 3))
        for r in stored.rows
        if r["metric"] == "auc" and r["threshold"] is not None
    }
    assert sorted(_thresholds(auc)) == sorted(level for _, level in levels)
    assert len(levels) == len(segments)
    new_level = next(level for segment, level in levels if segment == "user_type=new")
    new_auc = [r for r in stored.rows if (r["metric"], r["segment"]) == ("auc", "user_type=new")]
    reference = new_auc[0]["reference"]
    assert new_level == pytest.approx(reference - 0.05, abs=1e-3)
    flagged = set(re.findall(r'<circle class="pt bad"[^>]*><title>([^<]*) \d{4}-', auc))
    assert flagged == {"user_type=new", "user_type=new (estimated)"}
    review = _figure(html, "proxy_manual_review_share")
    assert set(_lines(review)) == set(segments)
    shares = {r["segment"]: r for r in stored.rows if r["metric"] == "proxy_manual_review_share"}
    expected = sorted(round(shares[s]["reference"] + 0.10, 3) for s in segments)
    assert sorted(_thresholds(review)) == pytest.approx(expected, abs=1e-3)
    own = sorted(round(shares[s]["threshold"], 3) for s in segments)
    assert sorted(_thresholds(review)) != pytest.approx(own, abs=1e-3)
    assert "rule manual_review_jump: " in review
    # The new users' line is the level their incident reports.
    [jump] = [
        i
        for i in stored.incidents
        if (i.rule, i.segment) == ("manual_review_jump", "user_type=new")
    ]
    assert jump.threshold is not None
    assert round(jump.threshold, 3) in _thresholds(review)


def test_the_dashboard_shows_the_decay_beside_the_whole_population(
    demo_dir: Path, stored: Stored
) -> None:
    config = load_config(demo_dir / "tripwire.yaml")
    with DuckDBStore(demo_dir / "tripwire.duckdb") as store:
        client = TestClient(create_app({config.name: config}, store, "ingest", "read"))
        html = client.get(f"/dashboard/models/{MODEL}?token=read").text
    _check_performance_chart(html[html.index('id="performance"') : html.index('id="cost"')], stored)


def test_the_demo_report_charts_the_decay_as_the_dashboard_does(
    demo_dir: Path, stored: Stored
) -> None:
    html = (demo_dir / "report.html").read_text(encoding="utf-8")
    section = html[html.index('<section class="trend">') :]
    _check_performance_chart(section[: section.index("</section>")], stored)


def test_demo_json_lists_the_findings(summary: dict[str, Any]) -> None:
    assert len(summary["findings"]) == 5
    assert all(f["first_flagged"] for f in summary["findings"])
    signals = {f["incident"][:3]: f["signals"] for f in summary["findings"]}
    assert [s["signal"] for s in signals["(c)"]] == ["proxy", "estimated", "realized"]
    assert all(s["first_flagged"] for s in signals["(c)"])
    assert all(not signals[k] for k in ("(a)", "(b)", "(d)", "(e)"))


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
