"""Binary CBPE in a simulated world where the true P(y = 1 | x) is known.

The realized metrics are scikit-learn's, on labels drawn from the true probabilities; the
estimates never see them. Windows without shift must land within a few standard errors of the
realized values, with z-scores spread like a standard normal; under covariate shift that
changes performance the estimate must follow the realized change.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from sklearn import metrics

from tripwire.estimation import CBPE, Estimate

METRICS = ("auc", "precision", "recall", "f1", "accuracy", "specificity")


def sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def true_probability(x: np.ndarray) -> np.ndarray:
    return sigmoid(2.0 * x - 0.5)


def draw(
    rng: np.random.Generator, n: int, temperature: float, mean: float = 0.0, sd: float = 1.5
) -> tuple[np.ndarray, np.ndarray]:
    """Scores of a model that is calibrated (temperature 1), over-confident (< 1) or
    under-confident (> 1), and labels drawn from the true probability."""
    x = rng.normal(mean, sd, n)
    y = (rng.random(n) < true_probability(x)).astype(int)
    return sigmoid((2.0 * x - 0.5) / temperature), y


def realized(scores: np.ndarray, labels: np.ndarray, threshold: float = 0.5) -> dict[str, float]:
    """scikit-learn's confusion matrix and ROC AUC (its precision_score & co. agree with these
    ratios, but validate their input at a cost that adds up over hundreds of windows)."""
    pred = (scores >= threshold).astype(int)
    tn, fp, fn, tp = metrics.confusion_matrix(labels, pred, labels=[0, 1]).ravel()
    return {
        "auc": metrics.roc_auc_score(labels, scores),
        "precision": tp / (tp + fp),
        "recall": tp / (tp + fn),
        "f1": 2 * tp / (2 * tp + fp + fn),
        "accuracy": (tp + tn) / (tp + tn + fp + fn),
        "specificity": tn / (tn + fp),
    }


def test_realized_metrics_agree_with_scikit_learn_scorers() -> None:
    scores, labels = draw(np.random.default_rng(10), 3000, 1.0)
    pred = (scores >= 0.5).astype(int)
    ours = realized(scores, labels)
    assert ours["precision"] == pytest.approx(metrics.precision_score(labels, pred))
    assert ours["recall"] == pytest.approx(metrics.recall_score(labels, pred))
    assert ours["f1"] == pytest.approx(metrics.f1_score(labels, pred))
    assert ours["accuracy"] == pytest.approx(metrics.accuracy_score(labels, pred))
    assert ours["specificity"] == pytest.approx(metrics.recall_score(labels, pred, pos_label=0))


@pytest.mark.parametrize("temperature", [1.0, 0.4])
def test_windows_without_shift_land_within_standard_errors(
    temperature: float, window_errors: Callable[[], Any]
) -> None:
    rng = np.random.default_rng(11)
    model = CBPE().fit(*draw(rng, 100_000, temperature))
    assert (model.calibrator_ is None) == (temperature == 1.0)
    errors = window_errors()
    for _ in range(150):
        scores, labels = draw(rng, 2000, temperature)
        errors.add(model.estimate(scores), realized(scores, labels))
    errors.check()


@pytest.mark.parametrize("temperature", [1.0, 0.4])
@pytest.mark.parametrize(
    ("mean", "sd"),
    [(0.25, 0.35), (-1.2, 0.6), (1.5, 0.5)],
    ids=["near the boundary", "mostly negative", "mostly positive"],
)
def test_estimate_follows_covariate_shift(
    temperature: float, mean: float, sd: float, follows_shift: Callable[..., None]
) -> None:
    rng = np.random.default_rng(12)
    model = CBPE().fit(*draw(rng, 100_000, temperature))
    before_scores, before_labels = draw(rng, 20_000, temperature)
    after_scores, after_labels = draw(rng, 20_000, temperature, mean, sd)
    follows_shift(
        model.estimate(before_scores),
        model.estimate(after_scores),
        realized(before_scores, before_labels),
        realized(after_scores, after_labels),
    )


def test_standard_errors_match_the_spread_of_simulated_labels() -> None:
    """Fix one window's scores, draw its labels 4000 times from the (calibrated) scores and
    compare the realized metrics' mean and standard deviation with the estimate."""
    rng = np.random.default_rng(13)
    model = CBPE(calibration="never").fit(*draw(rng, 5000, 1.0))
    scores, _ = draw(rng, 2000, 1.0)
    estimate = model.estimate(scores)
    y = (rng.random((4000, scores.size)) < scores).astype(float)
    pred = scores >= 0.5
    m, n = pred.sum(), scores.size
    tp, fn = y @ pred, y @ ~pred
    fp, tn = m - tp, (n - m) - fn
    ranks = np.empty(n)
    ranks[np.argsort(scores)] = np.arange(1, n + 1)  # scores are distinct
    positives = y.sum(axis=1)
    simulated = {
        "auc": (y @ ranks - positives * (positives + 1) / 2) / (positives * (n - positives)),
        "precision": tp / m,
        "recall": tp / (tp + fn),
        "f1": 2 * tp / (2 * tp + fp + fn),
        "accuracy": (tp + tn) / n,
        "specificity": tn / (tn + fp),
    }
    for name in METRICS:
        se = estimate.standard_errors[name]
        assert np.std(simulated[name]) == pytest.approx(se, rel=0.06), name
        assert np.mean(simulated[name]) == pytest.approx(estimate[name], abs=0.1 * se), name


def test_expected_confusion_matrix_by_hand() -> None:
    model = CBPE(threshold=0.5, calibration="never").fit([0.1, 0.9, 0.3, 0.7], [0, 1, 0, 1])
    estimate = model.estimate([0.2, 0.6, 0.9, 0.4, 0.5])  # 0.5 is predicted positive
    # Predicted positive: 0.6, 0.9, 0.5; negative: 0.2, 0.4.
    tp, fp, fn, tn = 2.0, 1.0, 0.6, 1.4
    np.testing.assert_allclose(estimate.confusion, [[tn, fp], [fn, tp]])
    assert estimate.n_rows == 5
    assert estimate["precision"] == pytest.approx(tp / 3)
    assert estimate["recall"] == pytest.approx(tp / (tp + fn))
    assert estimate["f1"] == pytest.approx(2 * tp / (2 * tp + fp + fn))
    assert estimate["accuracy"] == pytest.approx((tp + tn) / 5)
    assert estimate["specificity"] == pytest.approx(tn / (tn + fp))
    pq = np.array([0.6, 0.9, 0.5]) * (1 - np.array([0.6, 0.9, 0.5]))
    assert estimate.standard_errors["precision"] == pytest.approx(np.sqrt(pq.sum()) / 3)


def test_nulls_empty_windows_and_misuse() -> None:
    rng = np.random.default_rng(14)
    model = CBPE().fit(*draw(rng, 3000, 1.0))
    scores, _ = draw(rng, 500, 1.0)
    with_nulls = np.concatenate([scores, [np.nan, np.nan]])
    assert model.estimate(with_nulls).values == model.estimate(scores).values
    assert model.estimate(with_nulls).n_rows == 500
    empty = model.estimate([])
    assert isinstance(empty, Estimate) and empty.n_rows == 0
    assert all(math.isnan(v) for v in empty.values.values())
    low = model.estimate([0.1, 0.2, 0.3])  # nothing predicted positive
    assert math.isnan(low["precision"]) and low["accuracy"] == pytest.approx(0.8)
    assert math.isnan(low.standard_errors["precision"])
    with pytest.raises(RuntimeError, match="not fitted"):
        CBPE().estimate(scores)
    with pytest.raises(ValueError, match="both classes"):
        CBPE().fit([0.2, 0.4], [1, 1])
    with pytest.raises(ValueError, match="calibration must be"):
        CBPE(calibration="sometimes").fit([0.2, 0.4], [0, 1])  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        CBPE(calibration="never").fit([0.2, 0.4], [0, 1]).estimate([1.5])
