"""Jensen-Shannon distance between two discrete distributions."""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike

from ._categories import category_counts
from ._clean import finite_or_inf, shares
from .psi import bucket_counts, psi_breakpoints


def js_distance(p: ArrayLike, q: ArrayLike) -> float:
    """Jensen-Shannon distance (base 2, so in [0, 1]) between two frequency vectors.

    With ``p``, ``q`` normalised to sum 1 and ``m = (p + q) / 2``,
    ``JS = sqrt(KL(p || m) / 2 + KL(q || m) / 2)`` where ``KL(x || y) = sum x_i log2(x_i/y_i)``
    and ``0 * log 0 = 0``. Equals ``scipy.spatial.distance.jensenshannon(p, q, base=2)``.

    Parameters
    ----------
    p, q : non-negative counts or shares over the same categories.

    Returns NaN when either vector sums to 0.

    Reference: Endres, D. M., Schindelin, J. E. (2003), "A new metric for probability
    distributions", IEEE Trans. Inf. Theory 49(7).

    >>> js_distance([1, 0], [0, 1])
    1.0
    """
    normalised = shares(p, q)
    if normalised is None:
        return float("nan")
    pv, qv = normalised
    m = (pv + qv) / 2
    # Where x_i = 0 the term is 0 by convention; m_i > 0 wherever x_i > 0.
    with np.errstate(divide="ignore", invalid="ignore"):
        kl_p = np.where(pv > 0, pv * np.log2(pv / m), 0.0).sum()
        kl_q = np.where(qv > 0, qv * np.log2(qv / m), 0.0).sum()
    # Rounding can push the divergence a hair below 0.
    return float(np.sqrt(max((kl_p + kl_q) / 2, 0.0)))


def js_categorical(expected: ArrayLike, actual: ArrayLike) -> float:
    """Jensen-Shannon distance between the category frequencies of two raw samples.

    Categories are the union of both sides (unseen ones count 0 on the other side); any
    hashable values work; None and NaN are null and dropped. NaN when a side is empty.

    Parameters
    ----------
    expected : reference values.
    actual : current values.

    Reference: Lin, J. (1991), "Divergence measures based on the Shannon entropy", IEEE
    Trans. Inf. Theory 37(1).

    >>> js_categorical(["a", "a"], ["b", "b"])
    1.0
    """
    e_counts, a_counts = category_counts(expected, actual)
    return js_distance(e_counts, a_counts)


def js_numeric(expected: ArrayLike, actual: ArrayLike, buckets: int = 10) -> float:
    """Jensen-Shannon distance between numeric samples on the reference's quantile buckets.

    ``js_distance(bucket_counts(expected, B), bucket_counts(actual, B))`` with
    ``B = psi_breakpoints(expected, buckets)``. NaN when a side has no non-null values.

    Parameters
    ----------
    expected : reference sample (defines the buckets).
    actual : current sample.
    buckets : number of quantile buckets.

    Reference: Lin, J. (1991), "Divergence measures based on the Shannon entropy", IEEE
    Trans. Inf. Theory 37(1).

    >>> js_numeric([1, 2, 3, 4], [1, 2, 3, 4], buckets=2)
    0.0
    """
    e = finite_or_inf(expected)
    a = finite_or_inf(actual)
    if e.size == 0 or a.size == 0:
        return float("nan")
    edges = psi_breakpoints(e, buckets)
    return js_distance(bucket_counts(e, edges), bucket_counts(a, edges))
