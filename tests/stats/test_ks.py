import math

import numpy as np
import pytest
from scipy.stats import ks_2samp

from tripwire.stats import KSResult, ks, ks_pvalue


def check(e: np.ndarray, a: np.ndarray, got: KSResult) -> None:
    ref = ks_2samp(e, a, method="asymp")
    assert got.statistic == pytest.approx(ref.statistic, rel=1e-12, abs=1e-15)
    assert got.pvalue == pytest.approx(ref.pvalue, rel=1e-10, abs=1e-300)


@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize("n1,n2", [(1, 2), (5, 9), (40, 40), (300, 700), (5000, 4000)])
@pytest.mark.parametrize("discrete", [False, True])
def test_matches_scipy(seed: int, n1: int, n2: int, discrete: bool) -> None:
    rng = np.random.default_rng(seed)
    e, a = rng.normal(0, 1, n1), rng.normal(0.1, 1, n2)
    if discrete:
        e, a = e.round(), a.round()
    check(e, a, ks(e, a))


def test_nan_dropped_inf_kept() -> None:
    rng = np.random.default_rng(3)
    e = np.concatenate([rng.normal(size=200), [np.inf, -np.inf, np.inf]])
    a = np.concatenate([rng.normal(0.2, 1, 150), [np.inf]])
    got = ks(np.concatenate([e, [np.nan] * 9]), np.concatenate([[np.nan], a]))
    check(e, a, got)


def test_ties_exact() -> None:
    assert ks([1, 1, 2, 2], [1, 2, 2, 2]).statistic == 0.25
    assert ks([0, 0, 0], [0, 0]).statistic == 0.0
    assert ks([0, 0, 0], [0, 0]).pvalue == 1.0


def test_single_rows_follow_scipy() -> None:
    # n1 = n2 = 1: the effective size rounds to 0 and scipy's asymptotic p-value is NaN.
    got = ks([1.0], [2.0])
    assert got.statistic == 1.0
    assert math.isnan(got.pvalue)
    check(np.array([1.0]), np.array([2.0, 3.0]), ks([1.0], [2.0, 3.0]))


def test_empty_is_nan() -> None:
    for got in (ks([1.0, 2.0], []), ks([], [1.0]), ks([np.nan], [1.0])):
        assert math.isnan(got.statistic) and math.isnan(got.pvalue)
    assert math.isnan(ks_pvalue(0.5, 0, 10))


def test_pvalue_from_statistic() -> None:
    rng = np.random.default_rng(11)
    e, a = rng.normal(size=123), rng.normal(size=456)
    stat = ks(e, a).statistic
    assert ks_pvalue(stat, 123, 456) == pytest.approx(ks_2samp(e, a, method="asymp").pvalue)
