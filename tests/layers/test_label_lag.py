"""Label lag per window: from each prediction's timestamp to when its label became known."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest

from tripwire.config import parse_config
from tripwire.events import Event, Label
from tripwire.monitor import Monitor
from tripwire.profile.quantile_sketch import ALPHA
from tripwire.store import DuckDBStore
from tripwire.store.events import to_monitor_table

CONFIG = """
name: lag
task: binary
columns:
  timestamp: ts
  label_time: known_at
  features: {x: numeric}
  prediction: score
  label: label
"""
T0 = dt.datetime(2026, 10, 1)


def _frame(rng: np.random.Generator, n: int, lag_hours: np.ndarray | None) -> pd.DataFrame:
    score = rng.random(n)
    ts = T0 + pd.to_timedelta(rng.integers(0, 86_400, n), unit="s")
    frame = pd.DataFrame(
        {
            "ts": ts,
            "x": rng.normal(0, 1, n),
            "score": score,
            "label": (rng.random(n) < score).astype(float),
        }
    )
    if lag_hours is not None:
        frame["known_at"] = ts + pd.to_timedelta(lag_hours, unit="h")
    return frame


def _rows(report, segment: str = "all") -> dict[str, float]:
    return {
        r.metric: r.value
        for r in report.select(layer="performance", segment=segment)
        if r.metric.startswith("label_lag")
    }


def test_label_lag_percentiles_match_numpy_within_the_sketch_accuracy():
    rng = np.random.default_rng(7)
    monitor = Monitor(parse_config(CONFIG)).fit(_frame(rng, 4000, None))
    lag = rng.gamma(2.0, 24.0, 3000)  # hours: a skewed lag, as chargebacks have
    window = _frame(rng, 3000, lag)
    window.loc[:199, "label"] = np.nan  # unlabelled rows have no lag
    got = _rows(monitor.check(window))
    # The sketch reports the value of rank floor(q (n - 1)) within ALPHA (relative).
    for q in (50, 90):
        expected = np.sort(lag[200:])[int(np.floor(q / 100 * (2800 - 1)))]
        assert got[f"label_lag_p{q}_hours"] == pytest.approx(expected, rel=ALPHA * 1.01)
    row = next(r for r in monitor.check(window).rows if r.metric == "label_lag_p90_hours")
    assert row.n == 2800 and row.status == "info"


def test_no_label_time_means_no_lag_rows():
    rng = np.random.default_rng(8)
    monitor = Monitor(parse_config(CONFIG)).fit(_frame(rng, 2000, None))
    assert _rows(monitor.check(_frame(rng, 500, None))) == {}


def test_merged_windows_merge_their_lags():
    rng = np.random.default_rng(9)
    monitor = Monitor(parse_config(CONFIG)).fit(_frame(rng, 2000, None))
    fast, slow = _frame(rng, 1000, np.full(1000, 2.0)), _frame(rng, 1000, np.full(1000, 50.0))
    merged = monitor.evaluate(
        {
            key: monitor.profile(fast)[key] + monitor.profile(slow)[key]
            for key in monitor.profile(fast)
        }
    )
    got = _rows(merged)
    assert got["label_lag_p50_hours"] == pytest.approx(2.0, rel=ALPHA * 1.01)
    assert got["label_lag_p90_hours"] == pytest.approx(50.0, rel=ALPHA * 1.01)


def test_stored_events_carry_when_their_labels_became_known():
    config = parse_config(CONFIG.replace("  timestamp: ts\n  label_time: known_at\n", ""))
    with DuckDBStore(":memory:") as store:
        store.write_events(
            [
                Event(
                    event_id=str(i),
                    model="lag",
                    timestamp=T0 + dt.timedelta(hours=i),
                    features={"x": float(i)},
                    prediction=0.5,
                )
                for i in range(3)
            ]
        )
        known = T0 + dt.timedelta(days=3)
        store.write_labels(
            [
                Label(event_id="0", model="lag", label=1, labelled_at=known),
                Label(event_id="1", model="lag", label=0),  # its time is when it arrived
            ]
        )
        table = to_monitor_table(config, store.events("lag"))
    times = table["label_time"].to_pylist()
    assert times[0] == known
    arrived = times[1]
    assert arrived is not None and abs(arrived - dt.datetime.now(dt.UTC).replace(tzinfo=None)) < (
        dt.timedelta(minutes=5)
    )
    assert times[2] is None
    reference = _frame(np.random.default_rng(1), 500, None).rename(columns={"ts": "timestamp"})
    report = Monitor(config).fit(reference).check(table)
    # Two labelled rows: the median is the smaller lag, event 0's 72 hours.
    assert _rows(report)["label_lag_p50_hours"] == pytest.approx(72.0, rel=ALPHA * 1.01)
