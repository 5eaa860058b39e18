"""Merging profiles of day-chunks must equal profiling the concatenated data.

Counts are compared exactly, float sums and moments to rtol 1e-12. The reference profile of the
concatenation is computed directly from the raw arrays by the same ``of`` constructor, so each
test checks that ``+`` is the exact counterpart of concatenation.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from tripwire.config import parse_config
from tripwire.monitor import Monitor
from tripwire.profile.categorical import CategoricalBins, CategoricalWindow
from tripwire.profile.moments import Moments
from tripwire.profile.numeric import NumericBins, NumericWindow
from tripwire.profile.outputs import (
    BinaryPerformance,
    CostWindow,
    PredictionWindow,
    RegressionPerformance,
)
from tripwire.profile.quantile_sketch import QuantileSketch
from tripwire.profile.window import Settings, merge_windows

RTOL = 1e-12
SIZES = (1234, 3001, 777)


def _days(values: np.ndarray) -> list[np.ndarray]:
    cuts = np.cumsum(SIZES)[:-1]
    return np.split(values, cuts)


def _numeric_values(rng: np.random.Generator, n: int) -> np.ndarray:
    x = rng.normal(10.0, 3.0, n)
    x[: n // 3] = np.round(x[: n // 3])  # ties on grid points
    x[rng.random(n) < 0.05] = np.nan
    x[rng.random(n) < 0.01] = np.inf
    x[rng.random(n) < 0.01] = -np.inf
    x[rng.random(n) < 0.02] = 100.0  # beyond the reference range
    return x


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(20240601)


def test_numeric_window_merge_equals_concatenation(rng, same_profile):
    reference = rng.normal(10.0, 3.0, 5000)
    bins = NumericBins.fit(reference, buckets=10, grid_size=200)
    data = _numeric_values(rng, sum(SIZES))
    merged = sum(
        (NumericWindow.of(day, bins) for day in _days(data)[1:]),
        NumericWindow.of(_days(data)[0], bins),
    )
    whole = NumericWindow.of(data, bins)
    same_profile(merged, whole, rtol=RTOL, atol=1e-9)
    # Independent checks of the merged counts on the raw data.
    assert merged.n_rows == data.size
    assert merged.n_null == np.isnan(data).sum()
    assert merged.n_posinf == np.isposinf(data).sum()
    assert merged.n_neginf == np.isneginf(data).sum()
    assert merged.cell_counts.sum() + merged.point_counts.sum() == merged.n
    finite = data[np.isfinite(data)]
    assert merged.moments.n == finite.size
    np.testing.assert_allclose(merged.moments.mean, finite.mean(), rtol=RTOL)
    np.testing.assert_allclose(merged.moments.variance, finite.var(), rtol=1e-10)
    np.testing.assert_allclose(merged.cell_sums.sum(), finite.sum(), rtol=1e-10)


def test_categorical_window_merge_equals_concatenation(rng, same_profile):
    reference = pa.array(rng.choice(["a", "b", "c", "d", "e"], 4000).tolist() + [None] * 10)
    bins = CategoricalBins.fit(reference, max_categories=3)
    n = sum(SIZES)
    # Three unseen categories overall, so the five unseen examples are exact after merging.
    values = rng.choice(["a", "b", "c", "d", "e", "new1", "new2", "new3"], n).astype(object)
    values[rng.random(n) < 0.05] = None
    days = [pa.array(day.tolist(), pa.string()) for day in _days(values)]
    merged = sum(
        (CategoricalWindow.of(day, bins) for day in days[1:]), CategoricalWindow.of(days[0], bins)
    )
    whole = CategoricalWindow.of(pa.array(values.tolist(), pa.string()), bins)
    same_profile(merged, whole)
    assert merged.n_unseen == sum(v in {"new1", "new2", "new3"} for v in values)
    assert merged.n_null == sum(v is None for v in values)


def test_prediction_window_merge_equals_concatenation(rng, same_profile):
    bins = NumericBins.fit(rng.beta(2, 5, 4000))
    scores = rng.beta(2, 4, sum(SIZES))
    scores[rng.random(scores.size) < 0.02] = np.nan
    scores[:5] = [0.0, 1.0, 0.5, 0.0, 1.0]
    for binary in (True, False):
        days = [PredictionWindow.of(day, bins, 0.3, binary) for day in _days(scores)]
        merged = days[0] + days[1] + days[2]
        same_profile(merged, PredictionWindow.of(scores, bins, 0.3, binary), rtol=RTOL, atol=1e-12)


def test_binary_performance_merge_equals_concatenation(rng, same_profile):
    bins = NumericBins.fit(rng.random(4000))
    p = rng.random(sum(SIZES))
    y = (rng.random(p.size) < p).astype(np.float64)
    days = [
        BinaryPerformance.of(yd, pd_, bins, 0.5) for yd, pd_ in zip(_days(y), _days(p), strict=True)
    ]
    merged = days[0] + days[1] + days[2]
    same_profile(merged, BinaryPerformance.of(y, p, bins, 0.5), rtol=RTOL, atol=1e-12)


def test_regression_performance_merge_equals_concatenation(rng, same_profile):
    y = rng.lognormal(3.0, 1.0, sum(SIZES))
    prediction = y * rng.normal(1.0, 0.1, y.size) + rng.normal(0, 1, y.size)
    days = [
        RegressionPerformance.of(yd, pd_)
        for yd, pd_ in zip(_days(y), _days(prediction), strict=True)
    ]
    merged = days[0] + days[1] + days[2]
    same_profile(merged, RegressionPerformance.of(y, prediction), rtol=RTOL, atol=1e-12)


def test_cost_window_and_quantile_sketch_merge_equals_concatenation(rng, same_profile):
    latency = rng.gamma(2.0, 40.0, sum(SIZES))
    latency[:3] = [0.0, 1e-4, 1e9]  # the underflow slot and beyond the top bucket
    latency[rng.random(latency.size) < 0.01] = np.nan
    sketches = [QuantileSketch.of(day) for day in _days(latency)]
    merged_sketch = sketches[0] + sketches[1] + sketches[2]
    same_profile(merged_sketch, QuantileSketch.of(latency))
    assert merged_sketch.n == np.count_nonzero(~np.isnan(latency))

    cost = rng.gamma(2.0, 0.001, latency.size)

    def window(lat: np.ndarray | None, c: np.ndarray, errors: int) -> CostWindow:
        return CostWindow(
            QuantileSketch.of(lat) if lat is not None else None, c.size, errors, c.size, c.sum()
        )

    days = [
        window(lat, c, i)
        for i, (lat, c) in enumerate(zip(_days(latency), _days(cost), strict=True))
    ]
    same_profile(days[0] + days[1] + days[2], window(latency, cost, 0 + 1 + 2), rtol=RTOL)
    # A day without a latency column merges with one that has it.
    no_latency = window(None, cost[:10], 0)
    assert (no_latency + days[0]).latency is days[0].latency
    assert (days[0] + no_latency).n_cost == days[0].n_cost + 10


def test_moments_merge_matches_numpy_var(rng):
    chunks = [rng.normal(1e6, 1.0, n) for n in (1, 10, 1000, 5)] + [np.empty(0)]
    merged = Moments()
    for chunk in chunks:
        merged = merged + Moments.of(chunk)
    data = np.concatenate(chunks)
    assert merged.n == data.size
    np.testing.assert_allclose(merged.mean, data.mean(), rtol=RTOL)
    np.testing.assert_allclose(merged.variance, np.var(data), rtol=1e-9)
    np.testing.assert_allclose(merged.std, np.std(data), rtol=1e-9)
    assert merged.min == data.min() and merged.max == data.max()
    assert np.isnan(Moments().variance)


CONFIG = """
name: merge
task: binary
columns:
  features: {x: numeric, z: numeric, country: categorical}
  prediction: score
  label: label
  segments: [country]
  latency_ms: latency
  cost: cost
  status: status
"""


def _table(rng: np.random.Generator, n: int, shift: float = 0.0) -> pd.DataFrame:
    score = rng.random(n)
    x = rng.normal(shift, 1.0, n)
    x[rng.random(n) < 0.03] = np.nan
    return pd.DataFrame(
        {
            "x": x,
            "z": rng.integers(0, 20, n).astype(np.float64),
            "country": rng.choice(["us", "de", "fr", "xx"], n, p=[0.5, 0.3, 0.19, 0.01]),
            "score": score,
            "label": np.where(rng.random(n) < 0.7, (rng.random(n) < score).astype(float), np.nan),
            "latency": rng.lognormal(4.0, 0.5, n),
            "cost": rng.gamma(2.0, 0.001, n),
            "status": rng.choice(["ok", "500"], n, p=[0.97, 0.03]),
        }
    )


def test_segment_windows_merge_equals_profile_of_concatenation(rng, same_profile):
    monitor = Monitor(parse_config(CONFIG), settings=Settings(grid_size=300)).fit(_table(rng, 6000))
    days = [_table(rng, n, shift) for n, shift in zip(SIZES, (0.0, 0.2, 0.5), strict=True)]
    merged = merge_windows([monitor.profile(day) for day in days])
    whole = monitor.profile(pd.concat(days, ignore_index=True))
    assert (
        set(merged) == set(whole) == {"all", "country=us", "country=de", "country=fr", "country=xx"}
    )
    same_profile(merged, whole, rtol=RTOL, atol=1e-12)
    assert merged["all"].n_rows == sum(SIZES)
