import math

import numpy as np
import pytest
from scipy.stats import wasserstein_distance

from tripwire.stats import wasserstein, wasserstein_norm


@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize("n1,n2", [(1, 1), (1, 6), (30, 70), (2000, 3000)])
@pytest.mark.parametrize("discrete", [False, True])
def test_matches_scipy(seed: int, n1: int, n2: int, discrete: bool) -> None:
    rng = np.random.default_rng(seed)
    e, a = rng.normal(0, 2, n1), rng.gamma(2, 1, n2)
    if discrete:
        e, a = e.round(), a.round()
    ref = wasserstein_distance(e, a)
    assert wasserstein(e, a) == pytest.approx(ref, rel=1e-10, abs=1e-12)
    sd = e.std()
    if sd > 0:
        assert wasserstein_norm(e, a) == pytest.approx(ref / sd, rel=1e-10, abs=1e-12)


def test_non_finite_excluded() -> None:
    rng = np.random.default_rng(1)
    e, a = rng.normal(size=100), rng.normal(1, 1, 80)
    e_dirty = np.concatenate([e, [np.nan, np.inf]])
    a_dirty = np.concatenate([[-np.inf, np.nan], a])
    assert wasserstein(e_dirty, a_dirty) == pytest.approx(wasserstein_distance(e, a), rel=1e-10)
    assert wasserstein_norm(e_dirty, a_dirty) == pytest.approx(
        wasserstein_distance(e, a) / e.std(), rel=1e-10
    )


def test_by_hand() -> None:
    assert wasserstein([0, 1, 3], [5, 6, 8]) == 5.0
    assert wasserstein([0, 0, 1], [0, 1, 1]) == pytest.approx(1 / 3)
    assert wasserstein_norm([0, 2], [1, 3]) == 1.0


def test_constant_reference() -> None:
    assert wasserstein_norm([2.0, 2.0], [2.0]) == 0.0
    assert wasserstein_norm([2.0, 2.0], [3.0]) == math.inf


def test_empty_is_nan() -> None:
    assert math.isnan(wasserstein([1.0], []))
    assert math.isnan(wasserstein([np.inf], [1.0]))
    assert math.isnan(wasserstein_norm([], [1.0]))
    assert math.isnan(wasserstein_norm([1.0], [np.nan]))
