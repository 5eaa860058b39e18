"""Binary-classification quality metrics on 0/1 labels (vectorized, NaN rows dropped)."""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike, NDArray

from ._clean import paired


def _labels(y: NDArray[np.float64], name: str) -> NDArray[np.bool_]:
    if not np.all((y == 0) | (y == 1)):
        raise ValueError(f"{name} must contain only 0 and 1")
    positive: NDArray[np.bool_] = y == 1
    return positive


def _probabilities(p: NDArray[np.float64]) -> NDArray[np.float64]:
    if np.any((p < 0) | (p > 1)):
        raise ValueError("y_prob must lie in [0, 1]")
    return p


def _ratio(num: int, den: int) -> float:
    return num / den if den else float("nan")


def roc_auc(y_true: ArrayLike, y_score: ArrayLike) -> float:
    """Area under the ROC curve via the Mann-Whitney U statistic.

    ``AUC = (R_pos - n_pos (n_pos + 1) / 2) / (n_pos n_neg)`` with ``R_pos`` the sum of the
    (tie-averaged) ranks of the positives' scores, i.e. the probability that a random
    positive outscores a random negative, ties counting 1/2. Rows with a NaN label or score
    are dropped.

    Parameters
    ----------
    y_true : 0/1 labels.
    y_score : scores, higher meaning more likely positive.

    Returns NaN when only one class is present.

    Reference: Hanley, J. A., McNeil, B. J. (1982), "The meaning and use of the area under a
    receiver operating characteristic (ROC) curve", Radiology 143(1).

    >>> roc_auc([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8])
    0.75
    """
    y, s = paired(y_true, y_score)
    pos = _labels(y, "y_true")
    n_pos = int(pos.sum())
    n_neg = pos.size - n_pos
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    _, inverse, counts = np.unique(s, return_inverse=True, return_counts=True)
    # The average of ranks (1-based) c-k+1 .. c for a tie group ending at cumulative count c.
    avg_rank = np.cumsum(counts) - (counts - 1) / 2
    rank_sum = float(avg_rank[inverse.reshape(-1)][pos].sum())
    return (rank_sum - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg)


def confusion_counts(y_true: ArrayLike, y_pred: ArrayLike) -> tuple[int, int, int, int]:
    """Confusion-matrix counts ``(tp, fp, fn, tn)`` of 0/1 predictions; NaN rows dropped.

    Parameters
    ----------
    y_true : 0/1 labels.
    y_pred : 0/1 predictions.

    Reference: Powers, D. M. W. (2011), "Evaluation: from precision, recall and F-measure to
    ROC, informedness, markedness and correlation", J. Mach. Learn. Technol. 2(1).

    >>> confusion_counts([1, 1, 0, 0], [1, 0, 1, 0])
    (1, 1, 1, 1)
    """
    y, p = paired(y_true, y_pred)
    t, pr = _labels(y, "y_true"), _labels(p, "y_pred")
    tp = int(np.sum(t & pr))
    fp = int(np.sum(~t & pr))
    fn = int(np.sum(t & ~pr))
    return tp, fp, fn, t.size - tp - fp - fn


def precision(y_true: ArrayLike, y_pred: ArrayLike) -> float:
    """Precision ``tp / (tp + fp)``; NaN when nothing is predicted positive.

    Parameters
    ----------
    y_true : 0/1 labels.
    y_pred : 0/1 predictions.

    Reference: Powers, D. M. W. (2011), "Evaluation: from precision, recall and F-measure to
    ROC, informedness, markedness and correlation", J. Mach. Learn. Technol. 2(1).

    >>> precision([1, 1, 0, 0], [1, 1, 1, 0])
    0.6666666666666666
    """
    tp, fp, _, _ = confusion_counts(y_true, y_pred)
    return _ratio(tp, tp + fp)


def recall(y_true: ArrayLike, y_pred: ArrayLike) -> float:
    """Recall ``tp / (tp + fn)``; NaN when there are no actual positives.

    Parameters
    ----------
    y_true : 0/1 labels.
    y_pred : 0/1 predictions.

    Reference: Powers, D. M. W. (2011), "Evaluation: from precision, recall and F-measure to
    ROC, informedness, markedness and correlation", J. Mach. Learn. Technol. 2(1).

    >>> recall([1, 1, 0, 0], [1, 0, 0, 0])
    0.5
    """
    tp, _, fn, _ = confusion_counts(y_true, y_pred)
    return _ratio(tp, tp + fn)


def f1(y_true: ArrayLike, y_pred: ArrayLike) -> float:
    """F1 score ``2 tp / (2 tp + fp + fn)`` (harmonic mean of precision and recall).

    NaN when there are neither actual nor predicted positives.

    Reference: van Rijsbergen, C. J. (1979), *Information Retrieval*, 2nd ed., ch. 7.

    Parameters
    ----------
    y_true : 0/1 labels.
    y_pred : 0/1 predictions.

    >>> f1([1, 1, 0, 0], [1, 0, 1, 0])
    0.5
    """
    tp, fp, fn, _ = confusion_counts(y_true, y_pred)
    return _ratio(2 * tp, 2 * tp + fp + fn)


def accuracy(y_true: ArrayLike, y_pred: ArrayLike) -> float:
    """Accuracy ``(tp + tn) / n``; NaN when there are no rows.

    Parameters
    ----------
    y_true : 0/1 labels.
    y_pred : 0/1 predictions.

    Reference: Powers, D. M. W. (2011), "Evaluation: from precision, recall and F-measure to
    ROC, informedness, markedness and correlation", J. Mach. Learn. Technol. 2(1).

    >>> accuracy([1, 1, 0, 0], [1, 0, 0, 0])
    0.75
    """
    tp, fp, fn, tn = confusion_counts(y_true, y_pred)
    return _ratio(tp + tn, tp + fp + fn + tn)


def log_loss(y_true: ArrayLike, y_prob: ArrayLike) -> float:
    """Mean binary cross-entropy ``-mean(y ln p + (1 - y) ln(1 - p))``, natural log.

    As in scikit-learn, ``p`` and ``1 - p`` are clipped to ``[eps, 1 - eps]`` with
    ``eps = finfo(float64).eps`` so a confident mistake costs ~36 rather than infinity.
    NaN rows dropped; NaN when no rows remain.

    Parameters
    ----------
    y_true : 0/1 labels.
    y_prob : predicted probability of the positive class.

    Reference: Bishop, C. M. (2006), *Pattern Recognition and Machine Learning*, §4.3.2.

    >>> round(log_loss([1, 0], [0.9, 0.2]), 6)
    0.164252
    """
    y, p = paired(y_true, y_prob)
    pos = _labels(y, "y_true")
    p = _probabilities(p)
    if p.size == 0:
        return float("nan")
    eps = np.finfo(np.float64).eps
    hit = np.where(pos, p, 1.0 - p)
    return float(-np.mean(np.log(np.clip(hit, eps, 1.0 - eps))))


def brier(y_true: ArrayLike, y_prob: ArrayLike) -> float:
    """Brier score ``mean((p - y)^2)``; NaN rows dropped; NaN when no rows remain.

    Reference: Brier, G. W. (1950), "Verification of forecasts expressed in terms of
    probability", Monthly Weather Review 78(1).

    Parameters
    ----------
    y_true : 0/1 labels.
    y_prob : predicted probability of the positive class.

    >>> brier([1, 0], [0.9, 0.2])
    0.025
    """
    y, p = paired(y_true, y_prob)
    _labels(y, "y_true")
    p = _probabilities(p)
    if p.size == 0:
        return float("nan")
    return float(np.mean((p - y) ** 2))


def ece(y_true: ArrayLike, y_prob: ArrayLike, bins: int = 10) -> float:
    """Expected calibration error ``sum_b (n_b / n) |mean(y)_b - mean(p)_b|``.

    Equal-width bins on [0, 1]: bin ``i`` is ``[i/bins, (i+1)/bins)``, the last one closed.
    Empty bins contribute 0. NaN rows dropped; NaN when no rows remain.

    Parameters
    ----------
    y_true : 0/1 labels.
    y_prob : predicted probability of the positive class.
    bins : number of bins (>= 1).

    Reference: Naeini, Cooper, Hauskrecht (2015), "Obtaining well calibrated probabilities
    using Bayesian binning", AAAI.

    >>> round(ece([0, 1, 1, 1], [0.1, 0.3, 0.8, 0.9], bins=2), 6)
    0.225
    """
    if bins < 1:
        raise ValueError("bins must be >= 1")
    y, p = paired(y_true, y_prob)
    _labels(y, "y_true")
    p = _probabilities(p)
    if p.size == 0:
        return float("nan")
    # Searching the linspace edges (rather than floor(p * bins)) keeps bin membership exact.
    edges = np.linspace(0.0, 1.0, bins + 1)
    idx = np.searchsorted(edges[1:-1], p, side="right")
    sum_y = np.bincount(idx, weights=y, minlength=bins)
    sum_p = np.bincount(idx, weights=p, minlength=bins)
    # (n_b / n) |mean(y)_b - mean(p)_b| = |sum(y)_b - sum(p)_b| / n, which is 0 for empty bins.
    gap = np.abs(sum_y - sum_p)
    return float(gap.sum() / p.size)
