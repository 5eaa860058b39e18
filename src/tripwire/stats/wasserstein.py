"""1-D Wasserstein-1 (earth mover's) distance between two empirical distributions."""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike

from ._clean import finite_only


def wasserstein(expected: ArrayLike, actual: ArrayLike) -> float:
    """Wasserstein-1 distance ``W = integral |F_e(x) - F_a(x)| dx`` of the empirical CDFs.

    Computed exactly from the sorted pooled sample: between consecutive pooled values both
    CDFs are constant, so ``W = sum_k |F_e(x_k) - F_a(x_k)| * (x_{k+1} - x_k)``.
    NaN and ±inf are excluded: one infinite value makes the distance infinite (or
    undefined), which carries no information about the rest of the distribution.
    NaN when a side has no finite values.

    Parameters
    ----------
    expected : reference sample.
    actual : current sample.

    Reference: Ramdas, Garcia, Cuturi (2017), "On Wasserstein two-sample testing and related
    families of nonparametric tests", Entropy 19(2); ``scipy.stats.wasserstein_distance``.

    >>> wasserstein([0, 1, 3], [5, 6, 8])
    5.0
    """
    e = np.sort(finite_only(expected))
    a = np.sort(finite_only(actual))
    if e.size == 0 or a.size == 0:
        return float("nan")
    pooled = np.sort(np.concatenate([e, a]))
    widths = np.diff(pooled)
    cdf_e = np.searchsorted(e, pooled[:-1], side="right") / e.size
    cdf_a = np.searchsorted(a, pooled[:-1], side="right") / a.size
    return float(np.sum(np.abs(cdf_e - cdf_a) * widths))


def wasserstein_norm(expected: ArrayLike, actual: ArrayLike) -> float:
    """Wasserstein-1 distance in units of the reference standard deviation.

    ``W / std(expected)`` (population std, ddof=0, finite values only), which makes the
    distance comparable across features of different scale. For a constant reference the
    ratio is 0.0 when the distance is 0 and inf otherwise. NaN when a side has no finite
    values.

    Parameters
    ----------
    expected : reference sample (defines the scale).
    actual : current sample.

    Reference: Villani, C. (2009), *Optimal Transport: Old and New*, Springer, ch. 6.

    >>> wasserstein_norm([0, 2], [1, 3])
    1.0
    """
    e = finite_only(expected)
    w = wasserstein(e, actual)
    if np.isnan(w):
        return w
    sd = float(np.std(e))
    if sd == 0.0:
        return 0.0 if w == 0.0 else float("inf")
    return w / sd
