"""Two-sample Kolmogorov-Smirnov statistic (and its asymptotic p-value)."""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
from numpy.typing import ArrayLike
from scipy import stats as sps

from ._clean import finite_or_inf


class KSResult(NamedTuple):
    """Two-sample KS statistic ``D`` in [0, 1] and its asymptotic p-value."""

    statistic: float
    pvalue: float


def ks_pvalue(statistic: float, n1: int, n2: int) -> float:
    """Two-sided asymptotic p-value of a two-sample KS statistic, as SciPy's ``method="asymp"``.

    ``p = kstwo.sf(D, round(n1 * n2 / (n1 + n2)))``: the one-sample Kolmogorov distribution
    at the effective sample size, rounded half-to-even like ``np.round``. Clipped to [0, 1].
    NaN when a side is empty, and (as in SciPy) when ``n1 == n2 == 1``, whose effective size
    rounds to 0. Lets profile-based code get a p-value from a stored statistic.

    Parameters
    ----------
    statistic : the KS statistic ``D``.
    n1, n2 : sizes of the two samples.

    Reference: Smirnov, N. (1948), "Table for estimating the goodness of fit of empirical
    distributions", Ann. Math. Statist. 19(2); ``scipy.stats.ks_2samp``.

    >>> round(ks_pvalue(0.5, 20, 20), 6)
    0.007777
    """
    if n1 <= 0 or n2 <= 0 or np.isnan(statistic):
        return float("nan")
    en = np.round(n1 * n2 / (n1 + n2))
    with np.errstate(divide="ignore", invalid="ignore"):
        p = float(sps.kstwo.sf(statistic, en))
    return float(np.clip(p, 0.0, 1.0))


def ks(expected: ArrayLike, actual: ArrayLike) -> KSResult:
    """Two-sample Kolmogorov-Smirnov test: ``D = max_x |F_e(x) - F_a(x)|``.

    Both empirical CDFs are evaluated at every pooled value with right-continuous
    ``searchsorted(..., side="right")``, so ties are handled exactly. NaN is dropped;
    ±inf are ordinary (extreme) values. ``KSResult(nan, nan)`` when a side is empty.

    The p-value is that of ``scipy.stats.ks_2samp(..., method="asymp")`` (see
    :func:`ks_pvalue`). At production sample sizes every real difference is "significant",
    so the p-value is close to useless there; tripwire reports and alerts on the statistic.

    Parameters
    ----------
    expected : reference sample.
    actual : current sample.

    Reference: Hodges, J. L. (1958), "The significance probability of the Smirnov
    two-sample test", Arkiv för Matematik 3(5).

    >>> ks([1, 2, 3, 4], [3, 4, 5, 6]).statistic
    0.5
    """
    e = np.sort(finite_or_inf(expected))
    a = np.sort(finite_or_inf(actual))
    if e.size == 0 or a.size == 0:
        return KSResult(float("nan"), float("nan"))
    pooled = np.concatenate([e, a])
    cdf_e = np.searchsorted(e, pooled, side="right") / e.size
    cdf_a = np.searchsorted(a, pooled, side="right") / a.size
    d = float(np.max(np.abs(cdf_e - cdf_a)))
    return KSResult(d, ks_pvalue(d, e.size, a.size))
