"""Chi-squared test of homogeneity between two samples of a categorical variable."""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
from numpy.typing import ArrayLike
from scipy import stats as sps

from ._categories import category_counts


class Chi2Result(NamedTuple):
    """Pearson chi-squared statistic, its p-value and degrees of freedom."""

    statistic: float
    pvalue: float
    dof: int


def chi2_contingency(expected_counts: ArrayLike, actual_counts: ArrayLike) -> Chi2Result:
    """Chi-squared test of homogeneity on the 2 x K table ``[expected_counts; actual_counts]``.

    Columns where both counts are 0 are dropped. With row totals ``R_r``, column totals
    ``C_k`` and grand total ``N``, ``E_rk = R_r C_k / N`` and
    ``X^2 = sum (|O_rk - E_rk| - c_rk)^2 / E_rk`` on ``dof = K - 1``, where Yates' continuity
    correction ``c_rk = min(0.5, |O_rk - E_rk|)`` applies only when ``dof == 1`` (as
    ``scipy.stats.chi2_contingency`` does by default), else ``c = 0``. ``p = chi2.sf(X^2, dof)``.

    Both rows are treated as samples. This is deliberately not a goodness-of-fit test
    against the reference shares: GOF treats the reference as exact and overstates
    significance when the reference is itself a finite sample.

    Parameters
    ----------
    expected_counts, actual_counts : non-negative counts over the same categories.

    Returns statistic 0 and p-value 1 for a single category (dof 0), NaN statistic and
    p-value when either side is empty.

    Reference: Pearson, K. (1900), Phil. Mag. 50(302); Yates, F. (1934), "Contingency tables
    involving small numbers and the chi2 test", Suppl. J. R. Stat. Soc. 1(2).

    >>> chi2_contingency([10, 20, 30], [10, 20, 30])
    Chi2Result(statistic=0.0, pvalue=1.0, dof=2)
    """
    e = np.asarray(expected_counts, dtype=np.float64).reshape(-1)
    a = np.asarray(actual_counts, dtype=np.float64).reshape(-1)
    if e.shape != a.shape:
        raise ValueError(f"length mismatch: {e.size} vs {a.size}")
    if np.any(e < 0) or np.any(a < 0):
        raise ValueError("counts must be non-negative")
    keep = (e > 0) | (a > 0)
    observed = np.stack([e[keep], a[keep]])
    dof = max(int(keep.sum()) - 1, 0)
    rows = observed.sum(axis=1)
    if np.any(rows == 0):
        return Chi2Result(float("nan"), float("nan"), dof)
    if dof == 0:
        return Chi2Result(0.0, 1.0, 0)
    cols = observed.sum(axis=0)
    fitted = np.outer(rows, cols) / rows.sum()
    diff = observed - fitted
    if dof == 1:
        diff = np.sign(diff) * np.maximum(np.abs(diff) - 0.5, 0.0)
    stat = float(np.sum(diff**2 / fitted))
    return Chi2Result(stat, float(sps.chi2.sf(stat, dof)), dof)


def chi2_categorical(expected: ArrayLike, actual: ArrayLike) -> Chi2Result:
    """Chi-squared homogeneity test (:func:`chi2_contingency`) from raw categorical samples.

    Categories are the union of both sides; None and NaN are null and dropped.

    Parameters
    ----------
    expected : reference values.
    actual : current values.

    Reference: Agresti, A. (2013), *Categorical Data Analysis*, 3rd ed., §3.2.

    >>> chi2_categorical(["a", "b"], ["a", "b", None]).dof
    1
    """
    e_counts, a_counts = category_counts(expected, actual)
    return chi2_contingency(e_counts, a_counts)
