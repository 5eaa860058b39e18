"""Input normalisation shared by the statistics: everything becomes 1-D float64, NaN is null."""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike, NDArray


def as_1d_float(x: ArrayLike) -> NDArray[np.float64]:
    """Convert ``x`` to a 1-D float64 array (scalars become length 1).

    Parameters
    ----------
    x : array-like of numbers, at most one-dimensional.

    >>> as_1d_float([1, 2]).dtype
    dtype('float64')
    """
    arr = np.asarray(x, dtype=np.float64)
    if arr.ndim > 1:
        # Silently flattening a 2-D input would mix columns into one distribution.
        raise ValueError(f"expected a 1-D array, got shape {arr.shape}")
    return arr.reshape(-1)


def shares(p: ArrayLike, q: ArrayLike) -> tuple[NDArray[np.float64], NDArray[np.float64]] | None:
    """Two frequency vectors over the same categories, each normalised to sum to 1.

    ``None`` when either sums to 0 (no distribution to compare).

    >>> shares([1, 3], [2, 2])
    (array([0.25, 0.75]), array([0.5, 0.5]))
    """
    pv, qv = as_1d_float(p), as_1d_float(q)
    if pv.shape != qv.shape:
        raise ValueError(f"length mismatch: {pv.size} vs {qv.size}")
    if np.any(pv < 0) or np.any(qv < 0):
        raise ValueError("frequencies must be non-negative")
    p_total, q_total = pv.sum(), qv.sum()
    if p_total == 0 or q_total == 0:
        return None
    return pv / p_total, qv / q_total


def finite_or_inf(x: ArrayLike) -> NDArray[np.float64]:
    """Return ``x`` as 1-D float64 with NaN (null in tripwire) dropped; ±inf are kept.

    Parameters
    ----------
    x : array-like of numbers.

    >>> finite_or_inf([1.0, float("nan"), float("inf")])
    array([ 1., inf])
    """
    arr = as_1d_float(x)
    return arr[~np.isnan(arr)]


def finite_only(x: ArrayLike) -> NDArray[np.float64]:
    """Return ``x`` as 1-D float64 keeping only finite values (NaN and ±inf dropped).

    >>> finite_only([1.0, float("nan"), float("-inf")])
    array([1.])
    """
    arr = as_1d_float(x)
    return arr[np.isfinite(arr)]


def paired(a: ArrayLike, b: ArrayLike) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Return two equal-length 1-D float64 arrays with every row where either is NaN dropped.

    Paired metrics (labels vs predictions) can only use rows where both sides are known.

    >>> paired([1, float("nan"), 3], [4, 5, 6])
    (array([1., 3.]), array([4., 6.]))
    """
    x, y = as_1d_float(a), as_1d_float(b)
    if x.shape != y.shape:
        raise ValueError(f"length mismatch: {x.size} vs {y.size}")
    keep = ~(np.isnan(x) | np.isnan(y))
    return x[keep], y[keep]
