"""Isotonic regression of 0/1 labels on scores: a monotone score-to-probability calibrator."""

from __future__ import annotations

from typing import Self

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy.optimize import isotonic_regression

from ._inputs import require_fitted, scores_and_labels


def isotonic_knots(
    x_sorted: NDArray[np.float64], y_sorted: NDArray[np.float64]
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Knots ``(x, y)`` of the isotonic fit of ``y`` on ascending ``x``.

    Rows with equal ``x`` are first pooled into their mean ``y`` (weighted by their count),
    then the pool-adjacent-violators algorithm (SciPy's ``isotonic_regression``) finds the
    non-decreasing step function closest to ``y`` in least squares. Each constant block
    contributes its first and last ``x``; between knots the calibrator interpolates linearly and
    outside them it is constant, as scikit-learn's ``IsotonicRegression(out_of_bounds="clip")``.

    Parameters
    ----------
    x_sorted : scores in ascending order, finite.
    y_sorted : labels (or any targets) aligned with ``x_sorted``.

    Reference: Ayer, Brunk, Ewing, Reid, Silverman (1955), "An empirical distribution function
    for sampling with incomplete information", Ann. Math. Statist. 26(4); Zadrozny, B., Elkan, C.
    (2002), "Transforming classifier scores into accurate multiclass probability estimates", KDD.

    >>> isotonic_knots(np.array([0.1, 0.2, 0.3, 0.4]), np.array([0.0, 1.0, 0.0, 1.0]))
    (array([0.1, 0.2, 0.3, 0.4]), array([0. , 0.5, 0.5, 1. ]))
    """
    n = x_sorted.size
    if n == 0:
        raise ValueError("isotonic regression needs at least one row")
    starts = np.flatnonzero(np.concatenate(([True], x_sorted[1:] != x_sorted[:-1])))
    if starts.size == n:
        ux, means, weights = x_sorted, y_sorted, None
    else:
        ux = x_sorted[starts]
        counts = np.diff(np.append(starts, n)).astype(np.float64)
        means = np.add.reduceat(y_sorted, starts) / counts
        weights = counts
    fit = isotonic_regression(means, weights=weights, increasing=True)
    blocks = np.asarray(fit.blocks)
    first, last = blocks[:-1], blocks[1:] - 1
    values = np.asarray(fit.x, dtype=np.float64)[first]
    # Each block keeps its first and last x (one knot when they coincide).
    knot_x = np.column_stack([ux[first], ux[last]]).reshape(-1)
    knot_y = np.repeat(values, 2)
    keep = np.ones(knot_x.size, dtype=bool)
    keep[1::2] = last != first
    return knot_x[keep], knot_y[keep]


class IsotonicCalibrator:
    """Monotone calibration map from scores to ``P(y = 1 | score)``, fitted by isotonic regression.

    ``fit`` learns the knots of a non-decreasing, piecewise-linear map (see
    :func:`isotonic_knots`); ``predict`` evaluates it, constant beyond the fitted range. It
    matches scikit-learn's ``IsotonicRegression(out_of_bounds="clip")`` without depending on it.

    Attributes
    ----------
    knots_x_, knots_y_ : the knots, ascending in both coordinates.

    Reference: Zadrozny, B., Elkan, C. (2002), "Transforming classifier scores into accurate
    multiclass probability estimates", KDD.

    >>> cal = IsotonicCalibrator().fit([0.1, 0.2, 0.3, 0.4], [0, 1, 0, 1])
    >>> cal.predict([0.0, 0.25, 0.9])
    array([0. , 0.5, 1. ])
    """

    knots_x_: NDArray[np.float64]
    knots_y_: NDArray[np.float64]

    def fit(self, scores: ArrayLike, labels: ArrayLike) -> Self:
        """Fit on scores and 0/1 labels (rows where either is NaN are dropped).

        Parameters
        ----------
        scores : the model's scores, any finite scale (higher: more likely positive).
        labels : 0/1 outcomes.
        """
        s, y = scores_and_labels(scores, labels)
        order = np.argsort(s)
        return self.fit_sorted(s[order], y[order])

    def fit_sorted(self, scores: NDArray[np.float64], labels: NDArray[np.float64]) -> Self:
        """:meth:`fit` on finite scores already in ascending order, labels aligned.

        Parameters
        ----------
        scores : ascending finite scores.
        labels : 0/1 labels aligned with ``scores``.
        """
        self.knots_x_, self.knots_y_ = isotonic_knots(scores, labels)
        return self

    def predict(self, scores: ArrayLike) -> NDArray[np.float64]:
        """Calibrated probabilities for ``scores`` (NaN stays NaN).

        Parameters
        ----------
        scores : scores on the scale the calibrator was fitted on.
        """
        require_fitted(self, "knots_x_")
        s = np.asarray(scores, dtype=np.float64)
        out: NDArray[np.float64] = np.interp(s, self.knots_x_, self.knots_y_)
        return out
