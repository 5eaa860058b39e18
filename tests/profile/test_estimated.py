"""Estimated performance as profile parts: against the estimators on raw arrays, exact merges,
and the saved monitor's round trip.

The estimators of :mod:`tripwire.estimation` (tested against simulated worlds and an O(n^2)
AUC in tests/estimation) are the reference here: a profile must give what they give on the
window's rows — exactly for the confusion-matrix metrics and their standard errors, and for
the expected AUC within the bound the profile states (pairs of different scores inside one
open cell of the grid count as ties).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from tripwire.config import parse_config
from tripwire.estimation import DLE, MulticlassCBPE, expected_roc_auc
from tripwire.estimation.cbpe import binary_estimate
from tripwire.estimation.expected_auc import expected_auc_sorted
from tripwire.monitor import Monitor
from tripwire.profile.estimated import (
    BinaryEstimate,
    MulticlassEstimate,
    RegressionEstimate,
    ScoreCalibration,
    SoftHistogram,
    grid_slots,
)
from tripwire.profile.multiclass import ClassBins
from tripwire.profile.numeric import NumericBins, NumericWindow
from tripwire.profile.outputs import auc_from_profile

METRICS = ("precision", "recall", "f1", "accuracy")


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(20261126)


def _knots(scores: np.ndarray, p: np.ndarray) -> ScoreCalibration:
    """The calibration that maps each of these scores to its probability exactly."""
    present = ~np.isnan(scores)
    order = np.argsort(scores[present])
    return ScoreCalibration(scores[present][order], p[present][order], True, "exact")


def _world(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Over-confident scores and the calibrated probabilities behind them."""
    logit = rng.normal(-0.5, 1.5, n)
    return 1 / (1 + np.exp(-2 * logit)), 1 / (1 + np.exp(-logit))


def test_slots_interleave_cells_and_points_as_the_realized_auc_does(rng):
    grid = np.sort(rng.random(50))
    values = np.concatenate([rng.random(2000), grid[rng.integers(0, 50, 500)], [-1.0, 2.0]])
    slots = grid_slots(values, grid)
    window = NumericWindow.of(values, NumericBins(np.array([-np.inf, np.inf]), grid))
    counts = np.bincount(slots, minlength=2 * grid.size + 1)
    assert counts[0::2].tolist() == window.cell_counts.tolist()
    assert counts[1::2].tolist() == window.point_counts.tolist()


def test_with_known_labels_the_expected_auc_is_the_realized_auc_of_the_profile(rng):
    # p = y: every row's outcome is certain, so the expectation is the realized value.
    scores, p = _world(rng, 5000)
    y = (rng.random(5000) < p).astype(float)
    bins = NumericBins.fit(scores, grid_size=300)
    soft = SoftHistogram.of(scores, y, bins.grid)
    auc, se, bound = soft.auc()
    realized, realized_bound = auc_from_profile(
        NumericWindow.of(scores[y == 1], bins), NumericWindow.of(scores[y == 0], bins)
    )
    assert auc == pytest.approx(realized, abs=1e-12)
    assert bound == pytest.approx(realized_bound, abs=1e-12)
    assert se == 0.0


def test_expected_auc_from_slots_against_raw_scores(rng):
    """Within the stated bound of expected_roc_auc on the raw scores, and exact (with its
    delta-method standard error) when every score is on a grid point."""
    scores, p = _world(rng, 20_000)
    bins = NumericBins.fit(scores[:10_000], grid_size=200)
    auc, se, bound = SoftHistogram.of(scores, p, bins.grid).auc()
    exact = expected_roc_auc(scores, p)
    assert 0 < bound < 0.002
    assert abs(auc - exact) <= bound + 1e-12
    order = np.argsort(scores)
    sorted_se = _delta_se(scores[order], p[order])
    assert se == pytest.approx(sorted_se, rel=0.02)

    on_points = bins.grid[rng.integers(0, bins.grid.size, 20_000)]  # ties on grid points only
    auc, se, bound = SoftHistogram.of(on_points, p, bins.grid).auc()
    order = np.argsort(on_points)
    assert bound == 0.0
    assert auc == pytest.approx(expected_roc_auc(on_points, p), abs=1e-12)
    assert se == pytest.approx(_delta_se(on_points[order], p[order]), rel=1e-9)


def test_sorted_and_unsorted_soft_histograms_agree(rng):
    scores, p = _world(rng, 10_000)
    grid = NumericBins.fit(scores[:5000], grid_size=100).grid
    grid_ties = grid[rng.integers(0, grid.size, 2000)]
    scores = np.concatenate([scores, grid_ties, [-5.0, 5.0]])
    p = np.concatenate([p, rng.random(2002)])
    order = np.argsort(scores)
    s, q = scores[order], p[order]
    a, b = SoftHistogram.of(scores, p, grid), SoftHistogram.of_sorted(s, q, q * (1 - q), grid)
    for name in ("positive", "negative", "pq", "p2q", "p3q"):
        assert np.allclose(getattr(a, name), getattr(b, name), rtol=1e-12, atol=1e-9), name


def _delta_se(s: np.ndarray, p: np.ndarray) -> float:
    result = expected_auc_sorted(s, p)
    return float(np.sqrt(np.sum(p * (1 - p) * result.gradient**2)))


def test_binary_estimate_equals_cbpe_on_the_rows(rng):
    scores, p = _world(rng, 30_000)
    bins = NumericBins.fit(scores, grid_size=1000)
    estimate, bound = BinaryEstimate.of(scores, _knots(scores, p), bins.grid, 0.5).estimate()
    order = np.argsort(scores)
    direct = binary_estimate(scores[order], p[order], 0.5)
    for metric in METRICS:
        assert estimate[metric] == pytest.approx(direct[metric], rel=1e-12)
        se, direct_se = estimate.standard_errors[metric], direct.standard_errors[metric]
        assert se == pytest.approx(direct_se, rel=1e-9)
    assert abs(estimate["auc"] - direct["auc"]) <= bound + 1e-12
    assert estimate.standard_errors["auc"] == pytest.approx(direct.standard_errors["auc"], rel=0.02)
    assert np.allclose(estimate.confusion, direct.confusion, rtol=1e-12)


def test_merged_days_equal_the_whole_window(rng):
    scores, p = _world(rng, 9000)
    scores[::97] = np.nan  # null scores are skipped
    bins = NumericBins.fit(scores[~np.isnan(scores)], grid_size=400)
    calibration = _knots(scores, p)
    days = [BinaryEstimate.of(day, calibration, bins.grid, 0.4) for day in _split(scores)[0]]
    merged = days[0] + days[1] + days[2]
    whole = BinaryEstimate.of(scores, calibration, bins.grid, 0.4)
    assert merged.n_rows == whole.n_rows == 9000 - 93
    a, b = merged.estimate()[0], whole.estimate()[0]
    for metric in a.values:
        assert a[metric] == pytest.approx(b[metric], rel=1e-12)
        assert a.standard_errors[metric] == pytest.approx(b.standard_errors[metric], rel=1e-9)


def _split(*arrays: np.ndarray) -> list[list[np.ndarray]]:
    return [np.split(a, [2000, 6500], axis=-1) for a in arrays]


def _three_classes(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
    """(K, n) over-confident probabilities and the true ones."""
    logits = rng.normal(0, 1.2, (3, n)) + np.array([[0.3], [0.0], [-0.4]])

    def softmax(x: np.ndarray) -> np.ndarray:
        e = np.exp(x - x.max(axis=0))
        out: np.ndarray = e / e.sum(axis=0)
        return out

    return softmax(1.8 * logits), softmax(logits)


def test_multiclass_estimate_against_multiclass_cbpe(rng):
    xt, truth = _three_classes(rng, 40_000)
    labels = (rng.random(40_000) > truth.cumsum(axis=0)).sum(axis=0).clip(0, 2)
    model = MulticlassCBPE().fit(xt[:, :20_000].T, labels[:20_000])
    window = xt[:, 20_000:]
    pt = model.probabilities(window.T).T
    bins = ClassBins.fit(["a", "b", "c"], xt[:, :20_000], 10, 1000)
    predicted = window.argmax(axis=0)
    days = [
        MulticlassEstimate.of(x, q, pr, bins)
        for x, q, pr in zip(*_split(window, pt, predicted), strict=True)
    ]
    estimate, bound = (days[0] + days[1] + days[2]).estimate()
    whole, _ = MulticlassEstimate.of(window, pt, predicted, bins).estimate()
    direct = model.estimate(window.T)
    for metric in METRICS:
        assert estimate[metric] == pytest.approx(direct[metric], rel=1e-9)
        assert whole[metric] == pytest.approx(direct[metric], rel=1e-9)
        se, direct_se = estimate.standard_errors[metric], direct.standard_errors[metric]
        assert se == pytest.approx(direct_se, rel=1e-6)
    assert abs(estimate["auc"] - direct["auc"]) <= bound + 1e-12 < 0.002
    # The macro AUC's standard error is an upper bound (see MulticlassEstimate.estimate).
    ratio = estimate.standard_errors["auc"] / direct.standard_errors["auc"]
    assert 1.0 <= ratio < 1.8


def test_regression_estimate_equals_dle(rng):
    x = rng.normal(size=(20_000, 2))
    y = x[:, 0] + rng.normal(size=20_000) * (0.3 + np.abs(x[:, 1]))
    model = DLE().fit(x[:10_000], x[:10_000, 0], y[:10_000])
    window_x, prediction = x[10_000:] + 0.5, x[10_000:, 0] + 0.5
    losses = model.predict_loss(window_x, prediction).T
    days = [RegressionEstimate.of(day, model.kappa_) for day in _split(losses)[0]]
    estimate, _ = (days[0] + days[1] + days[2]).estimate()
    direct = model.estimate(window_x, prediction)
    for metric in ("mae", "rmse"):
        assert estimate[metric] == pytest.approx(direct[metric], rel=1e-12)
        assert estimate.standard_errors[metric] == pytest.approx(
            direct.standard_errors[metric], rel=1e-9
        )


BINARY = """
name: saved
task: binary
columns: {features: {x: numeric}, prediction: score, label: y, segments: [user]}
"""
MULTICLASS = """
name: saved
task: multiclass
columns:
  features: {x: numeric}
  prediction: predicted
  label: y
  probabilities: {0: p0, 1: p1, 2: p2}
"""
REGRESSION = """
name: saved
task: regression
columns: {features: {x: numeric, z: numeric}, prediction: score, label: y}
"""


def _frame(rng: np.random.Generator, n: int, task: str) -> pd.DataFrame:
    x = rng.normal(size=n)
    frame = pd.DataFrame({"x": x, "user": rng.choice(["new", "old"], n)})
    if task == "binary":
        scores, p = _world(rng, n)
        return frame.assign(score=scores, y=(rng.random(n) < p).astype(float))
    if task == "regression":
        return frame.assign(z=rng.normal(size=n), score=x, y=x + rng.normal(size=n) * np.abs(x))
    xt, truth = _three_classes(rng, n)
    y = (rng.random(n) > truth.cumsum(axis=0)).sum(axis=0).clip(0, 2)
    return frame.assign(p0=xt[0], p1=xt[1], p2=xt[2], predicted=xt.argmax(axis=0), y=y)


@pytest.mark.parametrize(("task", "text"), [("binary", BINARY), ("multiclass", MULTICLASS),
                                            ("regression", REGRESSION)])  # fmt: skip
def test_the_fitted_estimation_survives_save_and_load(rng, task: str, text: str, tmp_path):
    monitor = Monitor(parse_config(text)).fit(_frame(rng, 8000, task))
    assert monitor.bins_.estimation is not None
    monitor.save(tmp_path / "monitor.tw")
    loaded = Monitor.load(tmp_path / "monitor.tw")
    assert loaded.bins_.estimation is not None
    window = _frame(rng, 3000, task)
    before, after = monitor.check(window), loaded.check(window)
    estimated = [(r.metric, r.segment, r.value) for r in before.rows if "estimat" in r.metric]
    assert len(estimated) >= 4
    assert [(r.metric, r.segment, r.value) for r in after.rows if "estimat" in r.metric] == (
        estimated
    )
    assert after.estimation == before.estimation


def test_a_reference_without_labels_estimates_nothing(rng):
    frame = _frame(rng, 4000, "binary")
    monitor = Monitor(parse_config(BINARY)).fit(frame.drop(columns=["y"]))
    assert monitor.bins_.estimation is None
    assert not [r for r in monitor.check(frame).rows if r.metric.startswith("estimat")]
