"""An estimate of a window's performance: values, standard errors, expected confusion matrix."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np
from numpy.typing import NDArray


@dataclass(frozen=True)
class Estimate:
    """Estimated performance of one window, made without its labels.

    Attributes
    ----------
    n_rows : rows of the window the estimate used (rows with a null score are not counted).
    values : estimated metric by name (``auc``, ``precision``, ``recall``, ``f1``,
        ``accuracy``, ``specificity`` for a binary classifier; ``mae``, ``rmse`` for regression).
    standard_errors : per metric, the standard deviation of the realized metric around the
        estimate that the labels' randomness alone would produce, given the window's scores and
        the estimator's assumptions. It does not cover a violated assumption (concept drift) or
        the calibrator's own estimation error.
    confusion : expected confusion matrix, rows the actual class and columns the predicted one
        (scikit-learn's layout: ``[[tn, fp], [fn, tp]]`` for a binary classifier); ``None`` for
        regression.

    >>> e = Estimate(100, {"accuracy": 0.75}, {"accuracy": 0.125})
    >>> e["accuracy"], e.interval("accuracy", z=2.0)
    (0.75, (0.5, 1.0))
    """

    n_rows: int
    values: Mapping[str, float]
    standard_errors: Mapping[str, float]
    confusion: NDArray[np.float64] | None = field(default=None, compare=False)

    def __getitem__(self, metric: str) -> float:
        return self.values[metric]

    def interval(self, metric: str, z: float = 1.96) -> tuple[float, float]:
        """``value ± z * standard_error`` for ``metric``.

        Parameters
        ----------
        metric : a key of ``values``.
        z : the normal quantile (1.96: a 95% interval).
        """
        value, se = self.values[metric], self.standard_errors[metric]
        return value - z * se, value + z * se


def categorical_variance(p: NDArray[np.float64], h: NDArray[np.float64]) -> float:
    """``sum_i Var(h_i(Y_i))`` for independent rows with ``P(Y_i = k) = p[k, i]``.

    The delta method for a statistic of independent categorical labels: if the statistic moves
    by ``h[k, i]`` when row ``i``'s label is ``k``, its variance is about
    ``sum_i (sum_k p_ki h_ki^2 - (sum_k p_ki h_ki)^2)``. Arrays are class-major, (K, n), so
    that each class's row is contiguous.

    Parameters
    ----------
    p : (K, n) class probabilities, each column summing to 1.
    h : (K, n) sensitivities.

    >>> categorical_variance(np.array([[0.5], [0.5]]), np.array([[0.0], [2.0]]))
    1.0
    """
    mean = np.einsum("ki,ki->i", p, h)
    second = np.einsum("ki,ki,ki->", p, h, h)
    return float(second - np.einsum("i,i->", mean, mean))


def ratio(numerator: float, denominator: float) -> float:
    """``numerator / denominator``, NaN when the denominator is 0.

    >>> ratio(1.0, 0.0)
    nan
    """
    return numerator / denominator if denominator else float("nan")
