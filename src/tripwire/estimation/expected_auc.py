"""Expected ROC AUC when each row's label is Bernoulli(p_i): O(n log n) by sorting."""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
from numpy.typing import ArrayLike, NDArray

from tripwire.stats._clean import paired


class ExpectedAUC(NamedTuple):
    """Expected AUC and, per row (aligned with the rows passed), its first-order sensitivity.

    ``gradient[k]`` is ``d AUC / d y_k`` at ``y = p``: the realized AUC is approximately
    ``auc + sum_k gradient[k] (y_k - p_k)``, so its variance over the labels is about
    ``sum_k p_k (1 - p_k) gradient[k]^2`` (the delta method).
    """

    auc: float
    gradient: NDArray[np.float64]


def expected_auc_sorted(s: NDArray[np.float64], p: NDArray[np.float64]) -> ExpectedAUC:
    """:func:`expected_roc_auc` with its gradient, for scores ``s`` in ascending order.

    With ``q = 1 - p``, ties in ``s`` grouped into ``g``, ``P_g = sum_g p``,
    ``Q_g = sum_g q`` and ``Q_<g`` the sum of ``q`` over the groups below ``g``:

    * ``E[U] = sum_g P_g Q_<g + 1/2 sum_g (P_g Q_g - sum_{i in g} p_i q_i)``
    * ``E[N+ N-] = P Q - sum_i p_i q_i``

    For the gradient, row ``k`` in group ``g`` has ``a_k = Q_<g + (Q_g - q_k) / 2`` expected
    negatives below it and ``b_k = P_>g + (P_g - p_k) / 2`` expected positives above it, so
    ``dU/dy_k = a_k - b_k``, ``dD/dy_k = (Q - q_k) - (P - p_k) = Q - P - 1 + 2 p_k`` and
    ``dAUC/dy_k = (dU/dy_k - AUC dD/dy_k) / D``. The gradient is returned in sorted order.

    Without ties (the usual case for continuous scores) row ``k`` (0-based) has
    ``Q_<k = k - P_<k``, so ``dU/dy_k = k + p_k - P`` and
    ``E[U] = sum_k p_k (k - P_<k) = sum_k k p_k - (P^2 - sum_k p_k^2) / 2``: no cumulative sum
    is needed.
    """
    n = s.size
    pq = p * (1.0 - p)
    P, PQ = float(p.sum()), float(pq.sum())
    Q = n - P
    denominator = P * Q - PQ
    if n < 2 or denominator <= 0:
        return ExpectedAUC(float("nan"), np.zeros(n))
    change = s[1:] != s[:-1]
    if change.all():  # no ties: every group is one row
        rank = np.arange(n, dtype=np.float64)
        numerator = float(np.einsum("i,i->", rank, p)) - 0.5 * (
            P * P - float(np.einsum("i,i->", p, p))
        )
        du = rank
        du += p
        du -= P
    else:
        q = 1.0 - p
        starts = np.flatnonzero(np.concatenate(([True], change)))
        P_g, Q_g = np.add.reduceat(p, starts), np.add.reduceat(q, starts)
        group = np.cumsum(np.concatenate(([False], change)))
        q_below_g = np.cumsum(Q_g) - Q_g
        p_above_g = P - np.cumsum(P_g)
        numerator = float(np.einsum("i,i->", P_g, q_below_g + 0.5 * Q_g) - 0.5 * PQ)
        a = q_below_g[group] + 0.5 * (Q_g[group] - q)
        b = p_above_g[group] + 0.5 * (P_g[group] - p)
        du = a - b
    auc = numerator / denominator
    # (dU - AUC dD) / D, with dD = Q - P - 1 + 2 p, built in place.
    gradient = du
    gradient -= auc * (Q - P - 1.0)
    gradient -= (2.0 * auc) * p
    gradient /= denominator
    return ExpectedAUC(auc, gradient)


def expected_roc_auc(scores: ArrayLike, probabilities: ArrayLike) -> float:
    """Expected ROC AUC of ``scores`` when row ``i`` is positive with probability ``p_i``.

    The realized AUC is ``U / (N+ N-)`` with ``U = sum_{i != j} y_i (1 - y_j) K_ij`` the
    Mann-Whitney count (``K_ij`` is 1 when ``s_i > s_j``, 1/2 on a tie). With independent
    ``y_i ~ Bernoulli(p_i)``, ``P(y_i = 1, y_j = 0) = p_i (1 - p_j)`` for ``i != j``, so

    ``AUC_hat = E[U] / E[N+ N-]
    = sum_{i != j} p_i (1 - p_j) K_ij / sum_{i != j} p_i (1 - p_j)``,

    a ratio of expectations (it differs from ``E[U / (N+ N-)]`` by O(1/n)). Sorting by score
    turns the double sum into cumulative sums (see :func:`expected_auc_sorted`): O(n log n)
    instead of O(n^2). This is the area under NannyML's expected ROC curve, without the
    pairs of a row with itself. Rows with a NaN score or probability are dropped; NaN when
    fewer than two rows remain or no pair can be positive-negative.

    Parameters
    ----------
    scores : the ranking scores (the model's raw output).
    probabilities : calibrated ``P(y_i = 1)`` for each row.

    Reference: Hanley, J. A., McNeil, B. J. (1982), "The meaning and use of the area under a
    receiver operating characteristic (ROC) curve", Radiology 143(1); NannyML, "Confidence-based
    Performance Estimation (CBPE)", how-it-works documentation.

    >>> expected_roc_auc([0.1, 0.9], [0.0, 1.0])
    1.0
    >>> round(expected_roc_auc([0.1, 0.4, 0.9], [0.2, 0.5, 0.7]), 6)
    0.808642
    """
    s, p = paired(scores, probabilities)
    if np.any((p < 0) | (p > 1)):
        raise ValueError("probabilities must lie in [0, 1]")
    order = np.argsort(s)
    return expected_auc_sorted(s[order], p[order]).auc
