"""`tripwire demo` must flag each injected incident on the right day, and nothing else."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest

from tripwire.demo import scenario
from tripwire.demo.run import DemoRun, findings, run
from tripwire.importance import top_quartile

DAY = {d: scenario.START + dt.timedelta(days=d - 1) for d in range(1, 31)}


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> DemoRun:
    """The demo lived through once for this module's tests."""
    return run(tmp_path_factory.mktemp("demo-run"))


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
