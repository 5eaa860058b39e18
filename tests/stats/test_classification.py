import math

import numpy as np
import pytest
from sklearn import metrics

from tripwire.stats import (
    accuracy,
    brier,
    confusion_counts,
    ece,
    f1,
    log_loss,
    precision,
    recall,
    roc_auc,
)

SIZES = [2, 9, 200, 5000]


def labelled(seed: int, n: int, tied: bool) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    y[0], y[-1] = 0, 1  # both classes present
    prob = np.clip(0.3 * y + rng.random(n) * 0.7, 0, 1)
    if tied:
        prob = prob.round(1)
    return y, prob


@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize("n", SIZES)
@pytest.mark.parametrize("tied", [False, True])
def test_scores_match_sklearn(seed: int, n: int, tied: bool) -> None:
    y, prob = labelled(seed, n, tied)
    assert roc_auc(y, prob) == pytest.approx(metrics.roc_auc_score(y, prob), rel=1e-10)
    assert log_loss(y, prob) == pytest.approx(metrics.log_loss(y, prob, labels=[0, 1]), rel=1e-10)
    assert brier(y, prob) == pytest.approx(metrics.brier_score_loss(y, prob), rel=1e-10)


@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize("n", SIZES)
def test_label_metrics_match_sklearn(seed: int, n: int) -> None:
    y, prob = labelled(seed, n, False)
    pred = (prob > 0.5).astype(int)
    kw = {"zero_division": np.nan}
    assert precision(y, pred) == pytest.approx(metrics.precision_score(y, pred, **kw), nan_ok=True)
    assert recall(y, pred) == pytest.approx(metrics.recall_score(y, pred, **kw), rel=1e-10)
    assert f1(y, pred) == pytest.approx(metrics.f1_score(y, pred, **kw), rel=1e-10, nan_ok=True)
    assert accuracy(y, pred) == pytest.approx(metrics.accuracy_score(y, pred), rel=1e-10)
    tn, fp, fn, tp = metrics.confusion_matrix(y, pred, labels=[0, 1]).ravel()
    assert confusion_counts(y, pred) == (tp, fp, fn, tn)


def test_nan_rows_dropped() -> None:
    y, prob = labelled(1, 300, True)
    y_nan = np.append(y.astype(float), [np.nan, 1.0])
    prob_nan = np.append(prob, [0.5, np.nan])
    pred, pred_nan = (prob > 0.5).astype(float), (prob_nan > 0.5).astype(float)
    pred_nan[np.isnan(prob_nan)] = np.nan
    for f in (roc_auc, log_loss, brier, ece):
        assert f(y_nan, prob_nan) == f(y, prob)
    for g in (precision, recall, f1, accuracy):
        assert g(y_nan, pred_nan) == g(y, pred)


def test_undefined_cases_are_nan() -> None:
    assert math.isnan(roc_auc([1, 1], [0.2, 0.9]))
    assert math.isnan(roc_auc([1], [0.2]))
    assert math.isnan(precision([1, 0], [0, 0]))
    assert math.isnan(recall([0, 0], [1, 0]))
    assert math.isnan(f1([0, 0], [0, 0]))
    assert f1([1, 0], [0, 0]) == 0.0
    for f in (accuracy, log_loss, brier, ece):
        assert math.isnan(f([], []))
    with pytest.raises(ValueError):
        precision([0, 2], [0, 1])
    with pytest.raises(ValueError):
        brier([0, 1], [0.5, 1.5])


def test_single_row() -> None:
    assert accuracy([1], [1]) == 1.0
    assert log_loss([1], [1.0]) == pytest.approx(-math.log(1 - np.finfo(float).eps))
    assert log_loss([1], [0.0]) == pytest.approx(-math.log(np.finfo(float).eps))
    assert brier([0], [0.25]) == 0.0625


def test_roc_auc_ties_by_hand() -> None:
    # Pairs (pos, neg): (0.5 vs 0.5) tie = 1/2, (0.5 vs 0.1) = 1, (0.9 vs both) = 2 -> 3.5 / 4
    assert roc_auc([1, 1, 0, 0], [0.5, 0.9, 0.5, 0.1]) == 0.875


def test_ece_by_hand() -> None:
    # bins of width 0.5: [0.1, 0.3] with y (0, 1): |1/2 - 0.2| = 0.3, weight 1/2
    #                    [0.8, 1.0] with y (1, 1): |1 - 0.9| = 0.1, weight 1/2 (1.0 in last bin)
    assert ece([0, 1, 1, 1], [0.1, 0.3, 0.8, 1.0], bins=2) == pytest.approx(0.2, rel=1e-14)
    # p exactly on an inner edge goes to the upper bin: 0.5 -> bin 1, so each bin holds one
    # point: 0.5 * |0 - 0.25| + 0.5 * |1 - 0.5|
    assert ece([1, 0], [0.5, 0.25], bins=2) == pytest.approx(0.375, rel=1e-14)
    perfectly = np.repeat([0.0, 1.0], 5)
    assert ece(perfectly, perfectly) == 0.0
