"""Hellinger distance between two discrete distributions."""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike

from ._clean import shares


def hellinger(p: ArrayLike, q: ArrayLike) -> float:
    """Hellinger distance ``H = sqrt(1 - sum_i sqrt(p_i * q_i))``, in [0, 1].

    ``p`` and ``q`` are normalised to sum 1 first; this is the convention without the
    ``1/sqrt(2)`` factor on the Euclidean form, i.e. ``H^2 = 1 - BC`` with ``BC`` the
    Bhattacharyya coefficient.

    Parameters
    ----------
    p, q : non-negative counts or shares over the same categories.

    Returns NaN when either vector sums to 0.

    Reference: Hellinger, E. (1909), J. reine angew. Math. 136; see also Le Cam, L., Yang, G.
    (2000), *Asymptotics in Statistics*, ch. 3.

    >>> hellinger([1, 0], [0, 1])
    1.0
    """
    normalised = shares(p, q)
    if normalised is None:
        return float("nan")
    pv, qv = normalised
    bc = np.sum(np.sqrt(pv * qv))
    # Identical distributions can give BC a hair above 1.
    return float(np.sqrt(max(1.0 - bc, 0.0)))
