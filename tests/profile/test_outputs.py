"""Output profiles against scikit-learn, numpy and hand formulas."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn import metrics as skm

from tripwire.profile.moments import Moments
from tripwire.profile.numeric import NumericBins, NumericWindow
from tripwire.profile.outputs import (
    BinaryPerformance,
    PredictionWindow,
    RegressionPerformance,
    auc_from_profile,
    binary_entropy_bits,
)
from tripwire.profile.quantile_sketch import ALPHA, QuantileSketch


def _binary(seed: int, n: int = 4000):
    rng = np.random.default_rng(seed)
    p = np.clip(rng.beta(2, 3, n), 0.001, 0.999)
    y = (rng.random(n) < p ** rng.uniform(0.5, 2.0)).astype(np.float64)
    return y, p


def hand_ece(y: np.ndarray, p: np.ndarray, bins: int = 10) -> float:
    total = 0.0
    for k in range(bins):
        lo, hi = k / bins, (k + 1) / bins
        inside = (p >= lo) & ((p < hi) if k < bins - 1 else (p <= hi))
        if inside.any():
            total += inside.sum() / p.size * abs(y[inside].mean() - p[inside].mean())
    return total


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("threshold", [0.3, 0.5, 0.7])
def test_binary_performance_matches_sklearn(seed, threshold):
    y, p = _binary(seed)
    perf = BinaryPerformance.of(y, p, NumericBins.fit(p), threshold)
    got = perf.metrics()
    pred = (p >= threshold).astype(int)
    assert got["precision"] == pytest.approx(skm.precision_score(y, pred), rel=1e-12)
    assert got["recall"] == pytest.approx(skm.recall_score(y, pred), rel=1e-12)
    assert got["f1"] == pytest.approx(skm.f1_score(y, pred), rel=1e-12)
    assert got["accuracy"] == pytest.approx(skm.accuracy_score(y, pred), rel=1e-12)
    assert got["log_loss"] == pytest.approx(skm.log_loss(y, p), rel=1e-12)
    assert got["brier"] == pytest.approx(skm.brier_score_loss(y, p), rel=1e-12)
    assert got["ece"] == pytest.approx(hand_ece(y, p), abs=1e-12)
    auc, bound = auc_from_profile(perf.positives, perf.negatives)
    assert got["auc"] == auc
    assert abs(auc - skm.roc_auc_score(y, p)) <= bound + 1e-12
    assert bound < 0.002
    tp, fp, fn, tn = perf.confusion
    np.testing.assert_array_equal(
        skm.confusion_matrix(y, pred, labels=[0, 1]), [[tn, fp], [fn, tp]]
    )


def test_auc_with_tied_scores_is_exact():
    rng = np.random.default_rng(5)
    p = rng.integers(0, 10, 3000) / 10  # ten distinct scores, all on grid points
    y = (rng.random(3000) < 0.2 + 0.6 * p).astype(float)
    perf = BinaryPerformance.of(y, p, NumericBins.fit(p), 0.5)
    auc, bound = auc_from_profile(perf.positives, perf.negatives)
    assert bound == 0.0
    assert auc == pytest.approx(skm.roc_auc_score(y, p), abs=1e-12)


def test_auc_scores_outside_the_reference_grid():
    rng = np.random.default_rng(6)
    bins = NumericBins.fit(rng.uniform(0.4, 0.6, 2000))
    p = rng.random(3000)
    y = (rng.random(3000) < p).astype(float)
    perf = BinaryPerformance.of(y, p, bins, 0.5)
    auc, bound = auc_from_profile(perf.positives, perf.negatives)
    assert abs(auc - skm.roc_auc_score(y, p)) <= bound + 1e-12


def test_binary_performance_degenerate_windows():
    bins = NumericBins.fit(np.linspace(0, 1, 11))
    empty = BinaryPerformance.of(np.empty(0), np.empty(0), bins, 0.5).metrics()
    assert all(np.isnan(v) for v in empty.values())
    one_class = BinaryPerformance.of(np.ones(5), np.full(5, 0.9), bins, 0.5).metrics()
    assert np.isnan(one_class["auc"])
    assert one_class["accuracy"] == 1.0 and one_class["recall"] == 1.0
    # Scores of exactly 0 and 1 must not give infinite log loss.
    extreme = BinaryPerformance.of(np.array([1.0, 0.0]), np.array([0.0, 1.0]), bins, 0.5)
    assert np.isfinite(extreme.metrics()["log_loss"])


@pytest.mark.parametrize("seed", range(3))
def test_regression_performance_matches_sklearn(seed):
    rng = np.random.default_rng(seed)
    y = rng.lognormal(3.0, 1.0, 5000)
    prediction = y * rng.normal(1.0, 0.2, y.size) + rng.normal(0, 5, y.size)
    got = RegressionPerformance.of(y, prediction).metrics()
    assert got["mae"] == pytest.approx(skm.mean_absolute_error(y, prediction), rel=1e-12)
    assert got["rmse"] == pytest.approx(np.sqrt(skm.mean_squared_error(y, prediction)), rel=1e-12)
    assert got["r2"] == pytest.approx(skm.r2_score(y, prediction), rel=1e-10)


def test_regression_constant_labels_have_no_r2():
    got = RegressionPerformance.of(np.full(10, 2.0), np.full(10, 3.0)).metrics()
    assert np.isnan(got["r2"])
    assert got["mae"] == 1.0 and got["rmse"] == 1.0


@pytest.mark.parametrize(
    "values",
    [
        pytest.param(np.random.default_rng(1).gamma(2.0, 40.0, 200_000), id="gamma"),
        pytest.param(np.random.default_rng(2).gamma(0.7, 300.0, 50_000), id="gamma-skewed"),
        pytest.param(np.random.default_rng(3).lognormal(4.0, 1.2, 100_000), id="lognormal"),
        pytest.param(np.random.default_rng(4).lognormal(0.0, 0.5, 1_001), id="lognormal-small"),
    ],
)
@pytest.mark.parametrize("q", [0.5, 0.95, 0.99])
def test_quantile_sketch_relative_accuracy(values, q):
    sketch = QuantileSketch.of(values)
    exact = np.quantile(values, q, method="lower")
    assert abs(sketch.quantile(q) - exact) <= ALPHA * exact * (1 + 1e-9)
    assert ALPHA == 0.005


def test_quantile_sketch_edges():
    assert np.isnan(QuantileSketch.of(np.array([np.nan])).quantile(0.5))
    sketch = QuantileSketch.of(np.array([0.0, 0.0, 0.0, 5.0]))
    assert sketch.quantile(0.5) == 0.0
    assert sketch.n == 4
    assert abs(sketch.quantile(1.0) - 5.0) <= ALPHA * 5.0


def test_prediction_window_summaries():
    rng = np.random.default_rng(9)
    scores = rng.random(1000)
    scores[:10] = np.nan
    window = PredictionWindow.of(scores, NumericBins.fit(scores), 0.3, binary=True)
    present = scores[~np.isnan(scores)]
    assert window.n_positive == np.count_nonzero(present >= 0.3)
    by_hand = -(present * np.log2(present) + (1 - present) * np.log2(1 - present))
    assert window.entropy_sum == pytest.approx(by_hand.sum(), rel=1e-12)
    assert window.scores.moments.mean == pytest.approx(present.mean(), rel=1e-12)
    np.testing.assert_array_equal(binary_entropy_bits(np.array([0.0, 1.0, 0.5])), [0, 0, 1])


@pytest.mark.parametrize("seed", range(3))
def test_moments_merge_vs_numpy(seed):
    rng = np.random.default_rng(seed)
    data = rng.normal(rng.uniform(-1e4, 1e4), rng.uniform(0.1, 10), 10_000)
    cuts = np.sort(rng.choice(np.arange(1, data.size), 5, replace=False))
    merged = Moments()
    for part in np.split(data, cuts):
        merged = Moments.of(part) + merged
    assert merged.n == data.size
    assert merged.mean == pytest.approx(data.mean(), rel=1e-12)
    assert merged.variance == pytest.approx(np.var(data), rel=1e-9)
    assert (merged.min, merged.max) == (data.min(), data.max())


def test_numeric_window_counts_by_hand():
    bins = NumericBins.fit(np.array([0.0, 1.0, 2.0, 3.0, 4.0]), buckets=2, grid_size=4)
    np.testing.assert_array_equal(bins.grid, [0, 1, 2, 3, 4])
    np.testing.assert_array_equal(bins.psi_edges, [-np.inf, 2.0, np.inf])
    w = NumericWindow.of(np.array([-1.0, 0.5, 1.0, 1.0, 2.5, 9.0, np.inf, np.nan]), bins)
    assert (w.n_rows, w.n_null, w.n_posinf, w.n_neginf, w.n) == (8, 1, 1, 0, 7)
    np.testing.assert_array_equal(w.psi_counts, [4, 3])
    np.testing.assert_array_equal(w.cell_counts, [1, 1, 0, 1, 0, 2])
    np.testing.assert_array_equal(w.point_counts, [0, 2, 0, 0, 0])
    np.testing.assert_array_equal(w.cell_sums, [-1.0, 0.5, 0.0, 2.5, 0.0, 9.0])
