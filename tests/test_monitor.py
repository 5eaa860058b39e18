"""Monitor end to end: input types, save/load, JSON, segments, merging days."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import polars as pl
import pyarrow as pa
import pytest

from tripwire.config import parse_config
from tripwire.errors import TripwireError
from tripwire.monitor import Monitor
from tripwire.profile.window import merge_windows

CONFIG = """
name: shop
task: binary
columns:
  features: {amount: numeric, items: numeric, country: categorical, device: categorical}
  prediction: score
  label: label
  segments: [country]
  latency_ms: latency
  cost: cost
  status: status
importance: {amount: 0.5, items: 0.2, country: 0.2, device: 0.1}
"""


def _frame(seed: int, n: int, shift: float = 0.0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    score = np.clip(rng.beta(2, 5, n) + shift / 10, 0, 1)
    amount = rng.lognormal(3.0 + shift, 1.0, n)
    amount[rng.random(n) < 0.05] = np.nan
    label = (rng.random(n) < score).astype(float)
    label[rng.random(n) < 0.3] = np.nan  # labels not arrived yet
    device = rng.choice(["ios", "android", "web"], n).astype(object)
    device[rng.random(n) < 0.02] = None
    return pd.DataFrame(
        {
            "amount": amount,
            "items": rng.poisson(2 + shift, n).astype(np.int64),
            "country": rng.choice(["us", "de", "fr", "br"], n, p=[0.5, 0.25, 0.2, 0.05]),
            "device": device,
            "score": score,
            "label": label,
            "latency": rng.gamma(2.0, 40.0 * (1 + shift), n),
            "cost": rng.gamma(2.0, 0.0005, n),
            "status": rng.choice(["ok", "500"], n, p=[0.99, 0.01]),
        }
    )


@pytest.fixture(scope="module")
def config():
    return parse_config(CONFIG)


@pytest.fixture(scope="module")
def reference() -> pd.DataFrame:
    return _frame(0, 6000)


@pytest.fixture(scope="module")
def monitor(config, reference) -> Monitor:
    return Monitor(config).fit(reference)


def _assert_same_rows(a, b, tol: float = 0.0) -> None:
    assert len(a.rows) == len(b.rows)
    for x, y in zip(a.rows, b.rows, strict=True):
        key = (x.layer, x.metric, x.feature, x.segment)
        assert key == (y.layer, y.metric, y.feature, y.segment)
        assert (x.status, x.threshold, x.reason, x.n, x.importance) == (
            y.status,
            y.threshold,
            y.reason,
            y.n,
            y.importance,
        ), key
        for field in ("value", "bound"):
            u, v = getattr(x, field), getattr(y, field)
            if u is None or v is None:
                assert u is v, (key, field, u, v)
            else:
                assert math.isclose(u, v, rel_tol=tol, abs_tol=tol), (key, field, u, v)


CONVERTERS = {
    "pandas": lambda df: df,
    "polars": pl.from_pandas,
    "pyarrow": lambda df: pa.Table.from_pandas(df, preserve_index=False),
    "recordbatch": lambda df: pa.RecordBatch.from_pandas(df, preserve_index=False),
}


@pytest.mark.parametrize("kind", ["polars", "pyarrow", "recordbatch"])
def test_pandas_polars_pyarrow_give_identical_rows(config, reference, kind):
    current = _frame(1, 3000, shift=0.3)
    baseline = Monitor(config).fit(reference).check(current)
    convert = CONVERTERS[kind]
    other = Monitor(config).fit(convert(reference)).check(convert(current))
    _assert_same_rows(baseline, other)
    assert baseline == other
    # Mixed: fitted on one kind, checked on another.
    _assert_same_rows(baseline, Monitor(config).fit(reference).check(convert(current)))


def test_save_load_round_trip(monitor, tmp_path):
    path = tmp_path / "shop.tripwire"
    monitor.save(path)
    loaded = Monitor.load(path)
    for seed, shift in ((2, 0.0), (3, 0.8)):
        current = _frame(seed, 2000, shift)
        assert loaded.check(current) == monitor.check(current)
    assert loaded.config.name == "shop"
    assert loaded.importance_ == monitor.importance_
    assert loaded.settings == monitor.settings


def test_load_errors_name_the_file(tmp_path):
    with pytest.raises(TripwireError, match=r"absent\.tripwire"):
        Monitor.load(tmp_path / "absent.tripwire")
    garbage = tmp_path / "garbage.tripwire"
    garbage.write_bytes(b"\x00\x01 not a monitor")
    with pytest.raises(TripwireError, match=r"garbage\.tripwire"):
        Monitor.load(garbage)


def _reject_constant(name: str) -> None:
    raise AssertionError(f"JSON contains {name}")


def test_report_json_is_valid_and_has_no_nan(monitor, reference):
    empty = monitor.check(reference.iloc[:0])
    bad = _frame(4, 500).assign(amount=np.nan)
    for report in (monitor.check(_frame(5, 2000, 0.5)), empty, monitor.check(bad)):
        text = report.to_json()
        parsed = json.loads(text, parse_constant=_reject_constant)
        assert parsed["model"] == "shop"
        assert len(parsed["rows"]) == len(report.rows)
        json.dumps(report.to_dict(), allow_nan=False)
        assert json.loads(json.dumps(report.to_dict())) == parsed
    # NaN values become null with a reason.
    rows = json.loads(empty.to_json())["rows"]
    missing = [r for r in rows if r["value"] is None]
    assert missing and all(r["reason"] for r in missing)


def test_segments_produce_rows_for_all_and_each_value(monitor):
    report = monitor.check(_frame(6, 4000, 0.2))
    segments = {r.segment for r in report.rows}
    assert segments == {"all", "country=us", "country=de", "country=fr", "country=br"}
    for segment in segments:
        assert report.select(layer="inputs", metric="psi", feature="amount", segment=segment)
    us = report.select(metric="schema", feature="amount", segment="country=us")[0]
    assert us.n == pytest.approx(2000, rel=0.1)


def test_small_segment_gets_a_rows_row(config, reference):
    monitor = Monitor(config, min_rows=300).fit(reference)
    report = monitor.check(_frame(7, 2000))  # brazil: about 100 rows
    rows = report.select(segment="country=br")
    assert [r.metric for r in rows] == ["rows"]
    assert rows[0].status == "no_data" and "300" in rows[0].reason


def test_segment_values_match_checking_the_segment_alone(monitor):
    current = _frame(8, 4000, 0.3)
    report = monitor.check(current)
    alone = monitor.check(current[current["country"] == "de"])
    for metric in ("psi", "ks", "wasserstein", "auc", "p95_ms"):
        assert (
            report.value(
                metric,
                feature=None if metric in ("auc", "p95_ms") else "amount",
                segment="country=de",
            )
            is not None
        )
    # Values that depend on the current rows only must equal checking the segment alone.
    assert report.value("null_share", feature="amount", segment="country=de") == pytest.approx(
        alone.value("null_share", feature="amount"), abs=1e-12
    )
    assert report.value("mean_pred", segment="country=de") == pytest.approx(
        current.loc[current["country"] == "de", "score"].mean(), rel=1e-12
    )


def test_evaluate_of_merged_days_equals_check_of_concatenation(monitor):
    days = [
        _frame(10 + i, n, shift)
        for i, (n, shift) in enumerate([(1500, 0.0), (2500, 0.2), (900, 0.6)])
    ]
    merged = monitor.evaluate(merge_windows([monitor.profile(day) for day in days]), "week")
    whole = monitor.check(pd.concat(days, ignore_index=True), "week")
    assert merged.window == whole.window == "week"
    assert merged.n_rows == whole.n_rows == 4900
    _assert_same_rows(merged, whole, tol=1e-9)
    assert merged.histograms.keys() == whole.histograms.keys()


def test_check_does_not_change_fitted_state(monitor):
    current = _frame(20, 1000, 1.0)
    before = monitor.check(current)
    monitor.check(_frame(21, 3000, -1.0))
    assert monitor.check(current) == before


def test_doc_example_and_report_accessors(monitor):
    report = monitor.check(_frame(22, 3000, 1.0))
    assert report.status("inputs") == "alert"
    assert report.features()[0] == "amount"  # the most important drifted feature
    assert report.value("psi", feature="amount") > 0.25
    flagged = report.flagged()
    assert flagged and flagged[0].status == "alert"
