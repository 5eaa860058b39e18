"""The feature page's reference histograms come from the store: the job keeps the fitted
reference beside the windows it checks, so a server without a scheduler (``tripwire serve
--no-schedule``, or over a store ``tripwire run`` filled) draws them, on DuckDB and PostgreSQL
alike; the stored reference's bins and counts read out of it agree with the monitor's."""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from tripwire.config import parse_config
from tripwire.job import run
from tripwire.monitor import Monitor
from tripwire.server import create_app
from tripwire.server.dashboard.profiles import (
    reference_counts,
    stored_reference_counts,
    stored_segments,
)
from tripwire.store import DuckDBStore, open_store

READ = "read-token-dashboard"
DAY = timedelta(days=1)
FIRST = datetime(2026, 3, 1)
CONFIG = parse_config(
    """
name: shop
task: binary
columns:
  timestamp: ts
  features: {price: numeric, device_os: categorical}
  prediction: score
  label: bought
  segments: [device]
window: 1d
importance: {price: 0.7, device_os: 0.3}
segments: {min_rows: 20}
"""
)


def _traffic(rng: np.random.Generator, n: int, day: int) -> pa.Table:
    start = FIRST + day * DAY
    score = rng.random(n)
    return pa.table(
        {
            "ts": pa.array(
                [start + timedelta(seconds=int(s)) for s in rng.integers(0, 86_400, n)],
                pa.timestamp("us"),
            ),
            "price": rng.normal(70.0 if day >= 2 else 50.0, 10.0, n),
            "device_os": rng.choice(["ios", "android", "web"], n),
            "score": score,
            "bought": (rng.random(n) < score).astype(np.int64),
            # mobile first by value (its rows), after desktop by name
            "device": rng.choice(["desktop", "mobile"], n, p=[0.35, 0.65]),
        }
    )


@pytest.fixture(scope="module")
def monitor() -> Monitor:
    return Monitor(CONFIG).fit(_traffic(np.random.default_rng(1), 2000, -7))


def _signed_in(app: FastAPI) -> TestClient:
    client = TestClient(app)
    assert client.get(f"/dashboard?token={READ}", follow_redirects=False).status_code == 303
    return client


def test_a_store_the_job_filled_shows_the_reference_without_a_scheduler(
    monitor: Monitor, store_target: str
) -> None:
    rng = np.random.default_rng(2)
    days = pa.concat_tables([_traffic(rng, 300, day) for day in range(4)])
    with open_store(store_target) as store:
        run(monitor, store, days, DAY, deliver=False)  # what `tripwire run` does
        assert store.reference("shop") == monitor.to_bytes()
        app = create_app({"shop": CONFIG}, store, None, READ)  # no scheduler, no monitor
        client = _signed_in(app)
        html = client.get("/dashboard/models/shop/features/price").text
        assert html.count('class="hist"') == 4
        assert 'class="ref"' in html  # the reference's bars beside each window's
        assert "No reference profile" not in html
        # The buckets are the reference's PSI buckets: its edges label them.
        labels, _ = reference_counts(monitor.bins_, monitor.reference_, "all", "price")
        assert labels and labels[1] in html.replace("&#x27;", "'")
        mobile = client.get("/dashboard/models/shop/features/device_os?segment=device%3Dmobile")
        assert 'class="on">device=mobile<' in mobile.text and 'class="ref"' in mobile.text
        # The segments come in the reference's order (by value), not by name.
        assert monitor.bins_.segments == ("device=mobile", "device=desktop")
        links = re.search(r'<nav class="segments">.*?</nav>', mobile.text, re.S)
        assert links is not None
        assert re.findall(r">(device=\w+)<", links.group()) == list(monitor.bins_.segments)


def test_a_store_without_a_reference_says_so(monitor: Monitor, tmp_path: Path) -> None:
    """A store filled before the job kept the reference: windows only, and why."""
    rng = np.random.default_rng(3)
    with DuckDBStore(tmp_path / "old.duckdb") as store:
        run(monitor, store, _traffic(rng, 300, 0), DAY, deliver=False)
        store.sql("DELETE FROM reference_profiles")
        client = _signed_in(create_app({"shop": CONFIG}, store, None, READ))
        html = client.get("/dashboard/models/shop/features/price").text
        assert "No reference profile is stored" in html
        assert html.count('class="hist"') == 1 and 'class="ref"' not in html


def test_the_stored_reference_reads_as_the_monitor_holds_it(monitor: Monitor) -> None:
    state = monitor.to_bytes()
    assert stored_segments(state) == monitor.bins_.segments
    for segment in ("all", *monitor.bins_.segments):
        for feature in CONFIG.columns.features:
            labels, counts = stored_reference_counts(state, segment, feature)
            want_labels, want = reference_counts(
                monitor.bins_, monitor.reference_, segment, feature
            )
            assert labels == want_labels
            assert counts is not None and want is not None
            assert counts.counts.tolist() == want.counts.tolist()
            assert (counts.n_rows, counts.n_null) == (want.n_rows, want.n_null)
    assert stored_reference_counts(state, "device=tablet", "price")[1] is None
    assert stored_reference_counts(state, "all", "nope") == ([], None)
