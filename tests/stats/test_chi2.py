import math

import numpy as np
import pytest
from scipy.stats import chi2_contingency as scipy_chi2

from tripwire.stats import Chi2Result, chi2_categorical, chi2_contingency


def check(e: np.ndarray, a: np.ndarray) -> None:
    table = np.stack([e, a])
    table = table[:, table.sum(axis=0) > 0]
    ref = scipy_chi2(table)
    got = chi2_contingency(e, a)
    assert got.dof == ref.dof
    assert got.statistic == pytest.approx(ref.statistic, rel=1e-10, abs=1e-12)
    assert got.pvalue == pytest.approx(ref.pvalue, rel=1e-10, abs=1e-300)


@pytest.mark.parametrize("seed", range(8))
@pytest.mark.parametrize("k", [2, 3, 6, 30])
@pytest.mark.parametrize("scale", [3, 50, 5000])
def test_matches_scipy(seed: int, k: int, scale: int) -> None:
    rng = np.random.default_rng(seed)
    e = rng.integers(0, scale, k) + 1
    a = rng.integers(0, scale, k) + 1
    check(e, a)


def test_yates_small_difference_and_zero_columns() -> None:
    # |O - E| < 0.5 everywhere: Yates' correction is capped and the statistic is 0.
    check(np.array([10, 11]), np.array([11, 10]))
    # Columns empty on both sides are dropped; unseen categories (0 on one side) are kept.
    check(np.array([5, 0, 7, 0]), np.array([0, 0, 9, 4]))
    assert chi2_contingency([5, 0, 7, 0], [0, 0, 9, 4]).dof == 2


def test_degenerate() -> None:
    assert chi2_contingency([5], [7]) == Chi2Result(0.0, 1.0, 0)
    assert chi2_contingency([5, 0], [7, 0]) == Chi2Result(0.0, 1.0, 0)
    got = chi2_contingency([5, 3], [0, 0])
    assert math.isnan(got.statistic) and math.isnan(got.pvalue)


def test_categorical_with_unseen_and_nulls() -> None:
    rng = np.random.default_rng(0)
    e = rng.choice(["a", "b", "c"], 400)
    a = np.concatenate([rng.choice(["a", "b", "zz"], 300), [None] * 5]).astype(object)
    cats = ["a", "b", "c", "zz"]
    counts_e = np.array([np.sum(e == c) for c in cats])
    counts_a = np.array([np.sum(a == c) for c in cats])
    got = chi2_categorical(e, a)
    ref = scipy_chi2(np.stack([counts_e, counts_a]))
    assert got.dof == 3
    assert got.statistic == pytest.approx(ref.statistic, rel=1e-10)
    assert got.pvalue == pytest.approx(ref.pvalue, rel=1e-10, abs=1e-300)
    assert math.isnan(chi2_categorical(["a"], []).pvalue)
