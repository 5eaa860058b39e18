"""Population Stability Index on quantile buckets of the reference sample."""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike, NDArray

from ._clean import finite_or_inf


def psi_breakpoints(expected: ArrayLike, buckets: int = 10) -> NDArray[np.float64]:
    """Quantile bucket edges of the reference sample, outer edges opened to ±inf.

    ``edges = quantile(expected, linspace(0, 1, buckets + 1))`` (numpy's default linear
    interpolation), then ``edges[0] = -inf`` and ``edges[-1] = +inf`` so every value of any
    later sample falls in some bucket. NaN is dropped. Where numpy's interpolation yields
    NaN because it touches an infinite order statistic (``inf - inf`` or ``inf * 0``), the
    edge is replaced by its limit: the lower order statistic when the interpolation weight is
    0 or the lower one is infinite, else the upper one.

    Parameters
    ----------
    expected : reference values; must contain at least one non-NaN value.
    buckets : number of buckets (>= 1). Tied data give repeated (empty) buckets.

    Reference: Yurdakul, B. (2018), "Statistical properties of population stability index".

    >>> psi_breakpoints([1, 2, 3, 4, 5], buckets=2)
    array([-inf,   3.,  inf])
    """
    if buckets < 1:
        raise ValueError("buckets must be >= 1")
    x = finite_or_inf(expected)
    if x.size == 0:
        raise ValueError("expected has no non-null values")
    q = np.linspace(0.0, 1.0, buckets + 1)
    with np.errstate(invalid="ignore"):
        edges = np.asarray(np.quantile(x, q), dtype=np.float64)
    bad = np.isnan(edges)
    if bad.any():
        xs = np.sort(x)
        pos = q[bad] * (x.size - 1)
        lo = np.floor(pos).astype(np.intp)
        lower, upper = xs[lo], xs[np.minimum(lo + 1, x.size - 1)]
        edges[bad] = np.where((pos == lo) | np.isinf(lower), lower, upper)
    edges[0], edges[-1] = -np.inf, np.inf
    return edges


def bucket_counts(values: ArrayLike, breakpoints: ArrayLike) -> NDArray[np.int64]:
    """Count values per bucket, bucket ``i`` being the half-open ``[b_i, b_{i+1})``.

    Equivalent to ``np.histogram`` on the same edges (the last bucket ends at +inf, so its
    closed right end does not matter). NaN is dropped.

    Parameters
    ----------
    values : sample to bucket.
    breakpoints : sorted edges, ``len(breakpoints) - 1`` buckets.

    Reference: ``numpy.histogram`` bin semantics.

    >>> bucket_counts([0, 1, 1, 2, 9], [-np.inf, 1, 2, np.inf])
    array([1, 2, 2])
    """
    edges = np.asarray(breakpoints, dtype=np.float64)
    idx = np.searchsorted(edges[1:-1], finite_or_inf(values), side="right")
    return np.bincount(idx, minlength=edges.size - 1).astype(np.int64)


def psi_from_counts(
    expected_counts: ArrayLike, actual_counts: ArrayLike, eps: float = 1e-6
) -> float:
    """PSI from per-bucket counts of the reference (``e``) and current (``a``) samples.

    ``PSI = sum_i (a_i - e_i) * ln(a_i / e_i)`` where ``a_i``, ``e_i`` are shares of each
    total clipped below at ``eps`` (no renormalisation), so empty buckets stay finite.

    Parameters
    ----------
    expected_counts, actual_counts : non-negative counts over the same buckets.
    eps : floor for a share.

    Returns NaN when either total is 0.

    Reference: Siddiqi, N. (2006), *Credit Risk Scorecards*, Wiley, ch. 8.

    >>> round(psi_from_counts([50, 50], [25, 75]), 6)
    0.274653
    """
    e = np.asarray(expected_counts, dtype=np.float64)
    a = np.asarray(actual_counts, dtype=np.float64)
    if e.shape != a.shape:
        raise ValueError(f"bucket count mismatch: {e.shape} vs {a.shape}")
    e_total, a_total = e.sum(), a.sum()
    if e_total == 0 or a_total == 0:
        return float("nan")
    e_share = np.maximum(e / e_total, eps)
    a_share = np.maximum(a / a_total, eps)
    return float(np.sum((a_share - e_share) * np.log(a_share / e_share)))


def psi(expected: ArrayLike, actual: ArrayLike, buckets: int = 10) -> float:
    """Population Stability Index of ``actual`` against quantile buckets of ``expected``.

    ``psi_from_counts(bucket_counts(expected, B), bucket_counts(actual, B))`` with
    ``B = psi_breakpoints(expected, buckets)``. NaN is dropped; ±inf land in the outer
    buckets. NaN when either side has no non-null values.

    Parameters
    ----------
    expected : reference sample (defines the buckets).
    actual : current sample.
    buckets : number of quantile buckets.

    Reference: Yurdakul, B. (2018), "Statistical properties of population stability index".

    >>> round(psi([1, 2, 3, 4], [1, 1, 1, 4], buckets=2), 6)
    0.274653
    """
    e = finite_or_inf(expected)
    a = finite_or_inf(actual)
    if e.size == 0 or a.size == 0:
        return float("nan")
    edges = psi_breakpoints(e, buckets)
    return psi_from_counts(bucket_counts(e, edges), bucket_counts(a, edges))
