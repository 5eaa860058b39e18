"""Input checks shared by the estimators: float arrays, NaN rows dropped, 0/1 labels."""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from tripwire.stats._clean import as_1d_float, paired


def scores_and_labels(
    scores: ArrayLike, labels: ArrayLike
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Paired 1-D float scores and 0/1 labels, rows where either is NaN dropped.

    >>> scores_and_labels([0.2, float("nan"), 0.9], [0, 1, 1])
    (array([0.2, 0.9]), array([0., 1.]))
    """
    s, y = paired(scores, labels)
    if not np.all((y == 0) | (y == 1)):
        raise ValueError("labels must contain only 0 and 1")
    if np.any(np.isinf(s)):
        raise ValueError("scores must be finite")
    return s, y


def window_scores(scores: ArrayLike) -> NDArray[np.float64]:
    """A window's scores as 1-D float64 with NaN (null) dropped; ±inf is refused.

    >>> window_scores([0.3, float("nan")])
    array([0.3])
    """
    s = as_1d_float(scores)
    missing = np.isnan(s)
    if missing.any():
        s = s[~missing]
    if np.any(np.isinf(s)):
        raise ValueError("scores must be finite")
    return s


def require_fitted(estimator: Any, attribute: str) -> None:
    """Raise when ``estimator`` has not been fitted (the attribute ``fit`` sets is missing).

    >>> class Model: ...
    >>> require_fitted(Model(), "calibrator_")
    Traceback (most recent call last):
    ...
    RuntimeError: Model is not fitted: call fit(reference ...) first
    """
    if not hasattr(estimator, attribute):
        name = type(estimator).__name__
        raise RuntimeError(f"{name} is not fitted: call fit(reference ...) first")
