"""Regression quality metrics (vectorized, rows with a NaN on either side dropped)."""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike

from ._clean import paired


def mae(y_true: ArrayLike, y_pred: ArrayLike) -> float:
    """Mean absolute error ``mean(|y - yhat|)``; NaN when no rows remain.

    Parameters
    ----------
    y_true : observed values.
    y_pred : predictions.

    Reference: Hyndman, R. J., Koehler, A. B. (2006), "Another look at measures of forecast
    accuracy", Int. J. Forecasting 22(4).

    >>> mae([1, 2, 3], [1, 2, 5])
    0.6666666666666666
    """
    y, p = paired(y_true, y_pred)
    return float(np.mean(np.abs(y - p))) if y.size else float("nan")


def rmse(y_true: ArrayLike, y_pred: ArrayLike) -> float:
    """Root mean squared error ``sqrt(mean((y - yhat)^2))``; NaN when no rows remain.

    Parameters
    ----------
    y_true : observed values.
    y_pred : predictions.

    Reference: Hyndman, R. J., Koehler, A. B. (2006), "Another look at measures of forecast
    accuracy", Int. J. Forecasting 22(4).

    >>> rmse([0, 0], [3, 4])
    3.5355339059327378
    """
    y, p = paired(y_true, y_pred)
    return float(np.sqrt(np.mean((y - p) ** 2))) if y.size else float("nan")


def r2(y_true: ArrayLike, y_pred: ArrayLike) -> float:
    """Coefficient of determination ``1 - sum((y - yhat)^2) / sum((y - mean(y))^2)``.

    NaN when ``y_true`` is constant (including a single row) or no rows remain, where the
    ratio is undefined (scikit-learn reports 0 or 1 there by default).

    Reference: Kvålseth, T. O. (1985), "Cautionary note about R^2", Am. Stat. 39(4).

    Parameters
    ----------
    y_true : observed values.
    y_pred : predictions.

    >>> r2([1, 2, 3], [1, 2, 4])
    0.5
    """
    y, p = paired(y_true, y_pred)
    if y.size == 0:
        return float("nan")
    ss_tot = float(np.sum((y - y.mean()) ** 2))
    if ss_tot == 0.0:
        return float("nan")
    return 1.0 - float(np.sum((y - p) ** 2)) / ss_tot
