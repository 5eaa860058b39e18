"""`tripwire demo` must flag each injected incident on the right day, and nothing else."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

from click.testing import CliRunner

from tripwire.cli import cli
from tripwire.demo import scenario
from tripwire.demo.run import findings, run, top_quartile

DAY = {d: scenario.START + dt.timedelta(days=d - 1) for d in range(1, 31)}


def test_demo_flags_each_incident_when_it_happens(tmp_path: Path) -> None:
    days = run(tmp_path)
    first = {f.incident[:3]: f.first_flagged for f in findings(days)}
    assert first["(a)"] == DAY[scenario.NULL_SPIKE_DAYS[0]]
    assert first["(b)"] == DAY[scenario.SHIFT_FROM_DAY]
    assert first["(d)"] == DAY[scenario.LATENCY_FROM_DAY]
    assert first["(e)"] == DAY[scenario.NOISE_SPIKE_DAY]
    # Realized performance can only see the decay once labels arrive, a lag after it began.
    decay_seen = first["(c)"]
    assert decay_seen is not None
    assert DAY[scenario.DECAY_FROM_DAY] + dt.timedelta(days=scenario.LABEL_LAG_DAYS) <= decay_seen
    assert decay_seen <= DAY[30]


def test_demo_is_quiet_on_clean_days_for_features_that_may_page(tmp_path: Path) -> None:
    days = run(tmp_path)
    paging = top_quartile(scenario.IMPORTANCE)
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


def test_demo_json_lists_the_findings(tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["demo", "--out", str(tmp_path), "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert len(data["findings"]) == 5
    assert all(f["first_flagged"] for f in data["findings"])
