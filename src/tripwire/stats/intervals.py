"""Confidence intervals for the metrics of a window, from counts and sums alone.

Each interval is analytic, so it costs nothing per window and works on merged profiles:

* a proportion (accuracy, precision, recall, a share): the Wilson score interval, which keeps
  its coverage near the nominal level for small counts and proportions near 0 or 1, where the
  normal ("Wald") interval is too narrow;
* F1: F1 = 2J / (1 + J) with J = tp / (tp + fp + fn), the proportion of true positives among
  the rows that are a positive in truth or in prediction; the Wilson interval of J, mapped
  through that increasing function;
* ROC AUC: the standard error of Hanley & McNeil (1982), from the AUC and the class counts;
* a mean (log loss, Brier score, MAE, a proxy's mean): the normal interval from the sum and the
  sum of squares.

``z`` is the standard normal quantile of the two-sided level: 1.96 (:data:`Z95`) for 95 %.
"""

from __future__ import annotations

import math
from statistics import NormalDist

Interval = tuple[float, float]
NAN_INTERVAL: Interval = (math.nan, math.nan)
Z95 = 1.959963984540054  # the default: a 95 % interval


def z_for(confidence: float) -> float:
    """The two-sided normal quantile of a confidence level.

    >>> round(z_for(0.95), 4)
    1.96
    """
    return NormalDist().inv_cdf(0.5 + confidence / 2)


def wilson(successes: float, n: float, z: float = Z95) -> Interval:
    """The Wilson score interval of a proportion ``successes / n``; NaN when ``n`` is 0.

    >>> lo, hi = wilson(0, 10)
    >>> lo, round(hi, 4)
    (0.0, 0.2775)
    """
    if n <= 0:
        return NAN_INTERVAL
    p = successes / n
    z2 = z * z
    center = (p + z2 / (2 * n)) / (1 + z2 / n)
    half = z / (1 + z2 / n) * math.sqrt(p * (1 - p) / n + z2 / (4 * n * n))
    return max(0.0, center - half), min(1.0, center + half)


def f1_interval(tp: float, fp: float, fn: float, z: float = Z95) -> Interval:
    """F1's interval through the Wilson interval of ``J = tp / (tp + fp + fn)``.

    >>> lo, hi = f1_interval(40, 10, 10)
    >>> lo < 2 * 40 / (2 * 40 + 10 + 10) < hi
    True
    """
    lo, hi = wilson(tp, tp + fp + fn, z)
    return 2 * lo / (1 + lo), 2 * hi / (1 + hi)


def hanley_mcneil_se(auc: float, positives: float, negatives: float) -> float:
    """Standard error of an ROC AUC from ``positives`` and ``negatives`` (Hanley & McNeil 1982).

    ``SE^2 = (A(1-A) + (P-1)(Q1-A^2) + (N-1)(Q2-A^2)) / (P N)`` with ``Q1 = A/(2-A)`` and
    ``Q2 = 2A^2/(1+A)``, which assumes exponential score distributions; a good approximation
    otherwise. NaN without both classes.

    >>> round(hanley_mcneil_se(0.5, 100, 100), 5)
    0.04093
    """
    if positives <= 0 or negatives <= 0 or auc != auc:
        return math.nan
    q1 = auc / (2 - auc)
    q2 = 2 * auc * auc / (1 + auc)
    variance = (
        auc * (1 - auc) + (positives - 1) * (q1 - auc * auc) + (negatives - 1) * (q2 - auc * auc)
    ) / (positives * negatives)
    return math.sqrt(max(variance, 0.0))


def auc_interval(
    auc: float, positives: float, negatives: float, z: float = Z95, bound: float = 0.0
) -> Interval:
    """``auc ± (z * SE + bound)`` within [0, 1]; ``bound`` is the AUC's own certified error
    when it comes from a profile (see :func:`tripwire.profile.outputs.auc_from_profile`)."""
    se = hanley_mcneil_se(auc, positives, negatives)
    if se != se:
        return NAN_INTERVAL
    half = z * se + (bound if bound == bound else 0.0)
    return max(0.0, auc - half), min(1.0, auc + half)


def mean_interval(total: float, total_sq: float, n: float, z: float = Z95) -> Interval:
    """The normal interval of a mean from the sum and sum of squares of ``n`` values; NaN below
    two values or when the sum of squares is unknown (NaN).

    >>> mean_interval(10.0, 30.0, 4)  # values 1, 2, 3, 4: mean 2.5, sample sd 1.29
    (1.2348..., 3.7651...)
    """
    if n < 2 or total_sq != total_sq:
        return NAN_INTERVAL
    mean = total / n
    variance = max(total_sq - n * mean * mean, 0.0) / (n - 1)
    half = z * math.sqrt(variance / n)
    return mean - half, mean + half
