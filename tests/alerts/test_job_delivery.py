"""The monitoring job end to end: incidents derived from stored history reach real receivers
(a local webhook and a real Alertmanager) once, resolve after their cooldown, and stay active
in Alertmanager while open; on each store (tests/conftest.py)."""

from __future__ import annotations

import datetime as dt
import json
import urllib.request
from typing import Any

import pyarrow as pa

from tripwire.config import parse_config
from tripwire.demo import scenario
from tripwire.job import run
from tripwire.monitor import Monitor
from tripwire.store import Store

DAY = dt.timedelta(days=1)


def _active(alertmanager: str, rule: str) -> list[dict[str, Any]]:
    with urllib.request.urlopen(f"{alertmanager}/api/v2/alerts?active=true") as response:
        alerts = json.load(response)
    return [a for a in alerts if a["labels"].get("alertname") == rule]


def test_job_pages_once_keeps_alertmanager_current_and_resolves_after_cooldown(
    http_receiver: Any, alertmanager: str, store: Store
) -> None:
    # Alertmanager judges expiry against the real clock, so the days are placed around today:
    # the spike (days 5-6) ends two days ago and its resolution (day 8) is today.
    start = dt.datetime.now(dt.UTC).date() - 7 * DAY
    data = scenario.generate(days=12, rows_per_day=2000, reference_rows=10000, start=start)
    text = (
        scenario.CONFIG_YAML.replace(
            "oncall: [{type: console}]",
            f"oncall: [{{type: webhook, url: '{http_receiver.url}/hook'}}, "
            f"{{type: alertmanager, url: '{alertmanager}'}}]",
        )
        .replace("weekly-digest: [{type: console}]", "weekly-digest: []")
        .replace("fraud-ds: [{type: console}]", "fraud-ds: []")
    )
    monitor = Monitor(parse_config(text)).fit(data.reference)
    days = [table for _, table in data.days]
    null_spike = "null_share_top_features"

    before = dt.datetime.now(dt.UTC).replace(tzinfo=None, microsecond=0)
    first = run(monitor, store, pa.concat_tables(days[:6]), DAY)
    hooks = [r.body for r in http_receiver.to("/hook")]
    assert [(h["rule"], h["event"]) for h in hooks] == [(null_spike, "firing")]
    # Raised by this run (its clock), days after the evidence window it names.
    raised = dt.datetime.fromisoformat(hooks[0]["raised_at"])
    assert before <= raised <= dt.datetime.now(dt.UTC).replace(tzinfo=None)
    assert dt.datetime.fromisoformat(hooks[0]["opened_at"]) < raised - 2 * DAY
    assert first.delivery.delivered == 2  # webhook and Alertmanager
    (alert,) = _active(alertmanager, null_spike)
    assert alert["labels"]["feature"] == "merchant_risk"
    assert dt.datetime.fromisoformat(alert["endsAt"]) > dt.datetime.now(dt.UTC)

    # Running the same windows again announces nothing new.
    run(monitor, store, pa.concat_tables(days[:6]), DAY)
    assert len(http_receiver.to("/hook")) == 1

    # Clean days resolve it; the resolution goes out once its cooldown (4 windows) passed.
    run(monitor, store, pa.concat_tables(days[6:]), DAY)
    events = [(h["rule"], h["event"]) for h in (r.body for r in http_receiver.to("/hook"))]
    assert events.count((null_spike, "firing")) == 1
    assert events.count((null_spike, "resolved")) == 1
    assert _active(alertmanager, null_spike) == []
