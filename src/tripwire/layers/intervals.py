"""Confidence intervals of a window's performance metrics, and the rule that an ``alert`` needs
its whole interval past the threshold — so that a small segment cannot page on noise."""

from __future__ import annotations

import math

from tripwire.profile.multiclass import MulticlassPerformance
from tripwire.profile.outputs import BinaryPerformance, RegressionPerformance, auc_from_profile
from tripwire.stats.intervals import Interval, auc_interval, f1_interval, mean_interval, wilson


def performance_intervals(
    performance: BinaryPerformance | RegressionPerformance | MulticlassPerformance, z: float
) -> dict[str, Interval]:
    """Per metric with an analytic interval, ``(low, high)`` at the normal quantile ``z``
    (see :mod:`tripwire.stats.intervals`); ECE and R² have none. A multiclass model's are
    :meth:`~tripwire.profile.multiclass.MulticlassPerformance.intervals`."""
    if isinstance(performance, MulticlassPerformance):
        return performance.intervals(z)
    n = performance.n_rows
    if isinstance(performance, RegressionPerformance):
        mse_low, mse_high = mean_interval(
            performance.squared_error_sum, performance.squared_error_sq_sum, n, z
        )
        return {
            "mae": mean_interval(performance.abs_error_sum, performance.squared_error_sum, n, z),
            "rmse": (math.sqrt(max(mse_low, 0.0)), math.sqrt(max(mse_high, 0.0)))
            if mse_low == mse_low
            else (math.nan, math.nan),
        }
    tp, fp, fn, tn = (int(v) for v in performance.confusion)
    auc, bound = auc_from_profile(performance.positives, performance.negatives)
    return {
        "auc": auc_interval(auc, tp + fn, fp + tn, z, bound),
        "precision": wilson(tp, tp + fp, z),
        "recall": wilson(tp, tp + fn, z),
        "f1": f1_interval(tp, fp, fn, z),
        "accuracy": wilson(tp + tn, n, z),
        "log_loss": mean_interval(performance.log_loss_sum, performance.log_loss_sq_sum, n, z),
        "brier": mean_interval(performance.brier_sum, performance.brier_sq_sum, n, z),
    }


def past_threshold(value: float, threshold: float, interval: Interval | None) -> bool:
    """Whether the interval lies wholly on the value's side of the threshold; without an
    interval (None or NaN), the value alone decides.

    >>> past_threshold(0.70, 0.75, (0.65, 0.74)), past_threshold(0.70, 0.75, (0.62, 0.78))
    (True, False)
    """
    if interval is None or any(x != x for x in interval):
        return True
    low, high = interval
    return low > threshold if value > threshold else high < threshold
