import math

import numpy as np
import pytest

from tripwire.stats import bucket_counts, psi, psi_breakpoints, psi_from_counts


def reference_psi(expected: np.ndarray, actual: np.ndarray, buckets: int = 10) -> float:
    """The textbook formula, written independently of tripwire (NaN-free input only)."""
    with np.errstate(invalid="ignore"):  # the outer quantiles may be inf - inf; replaced below
        breakpoints = np.quantile(expected, np.linspace(0, 1, buckets + 1))
    breakpoints[0], breakpoints[-1] = -np.inf, np.inf
    inner = breakpoints[1:-1]
    e = np.bincount(np.digitize(expected, inner), minlength=buckets) / len(expected)
    a = np.bincount(np.digitize(actual, inner), minlength=buckets) / len(actual)
    e, a = np.maximum(e, 1e-6), np.maximum(a, 1e-6)
    return float(np.sum((a - e) * np.log(a / e)))


def samples(seed: int, n1: int, n2: int, kind: str) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    if kind == "continuous":
        return rng.normal(0, 1, n1), rng.normal(0.3, 1.2, n2)
    if kind == "discrete":
        return rng.integers(0, 5, n1).astype(float), rng.integers(0, 7, n2).astype(float)
    return rng.exponential(1, n1).round(1), rng.exponential(1.5, n2).round(1)


@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize("n1,n2", [(1, 1), (7, 3), (100, 250), (3000, 2000)])
@pytest.mark.parametrize("kind", ["continuous", "discrete", "rounded"])
@pytest.mark.parametrize("buckets", [2, 10])
def test_psi_matches_reference(seed: int, n1: int, n2: int, kind: str, buckets: int) -> None:
    e, a = samples(seed, n1, n2, kind)
    assert psi(e, a, buckets) == pytest.approx(reference_psi(e, a, buckets), rel=1e-12, abs=1e-15)


@pytest.mark.parametrize("seed", range(3))
def test_bucket_counts_match_histogram(seed: int) -> None:
    e, a = samples(seed, 500, 400, "discrete")
    edges = psi_breakpoints(e, 10)
    inner = edges[1:-1]
    lo, hi = min(e.min(), a.min()) - 1, max(e.max(), a.max()) + 1
    hist = np.histogram(a, np.concatenate([[lo], inner, [hi]]))[0]
    np.testing.assert_array_equal(bucket_counts(a, edges), hist)


@pytest.mark.parametrize("seed", range(3))
def test_nan_is_dropped(seed: int) -> None:
    e, a = samples(seed, 300, 200, "continuous")
    e_nan = np.concatenate([e, [np.nan] * 40])
    a_nan = np.concatenate([[np.nan] * 10, a])
    assert psi(e_nan, a_nan) == pytest.approx(reference_psi(e, a), rel=1e-12)


def test_infinities_land_in_outer_buckets() -> None:
    rng = np.random.default_rng(7)
    e = np.concatenate([rng.normal(size=200), [-np.inf, np.inf]])
    a = np.concatenate([rng.normal(size=100), [np.inf] * 5, [-np.inf] * 3])
    assert psi(e, a) == pytest.approx(reference_psi(e, a), rel=1e-12)
    counts = bucket_counts(a, psi_breakpoints(e))
    assert counts.sum() == a.size


def test_breakpoints_with_infinite_quantiles() -> None:
    # numpy's interpolation gives inf - inf = NaN here; the limit is used instead.
    np.testing.assert_array_equal(
        psi_breakpoints([1, 2, np.inf, np.inf], 2), [-np.inf, np.inf, np.inf]
    )
    np.testing.assert_array_equal(
        psi_breakpoints([1, 5, np.inf], 4), [-np.inf, 3.0, 5.0, np.inf, np.inf]
    )
    np.testing.assert_array_equal(
        psi_breakpoints([-np.inf, -np.inf, 1, 5], 3), [-np.inf, -np.inf, 1.0, np.inf]
    )
    assert psi([1, 2, np.inf, np.inf], [1, np.inf], 2) == pytest.approx(0.0)


def test_two_bucket_psi_by_hand() -> None:
    # Median 2.5: expected shares (0.5, 0.5), actual (0.75, 0.25).
    by_hand = 0.25 * math.log(0.75 / 0.5) + (-0.25) * math.log(0.25 / 0.5)
    assert psi([1, 2, 3, 4], [1, 1, 1, 4], buckets=2) == pytest.approx(by_hand, rel=1e-14)
    assert by_hand == pytest.approx(0.25 * math.log(3), rel=1e-14)


def test_empty_bucket_uses_eps() -> None:
    by_hand = (1e-6 - 0.5) * math.log(1e-6 / 0.5) + (1.0 - 0.5) * math.log(1.0 / 0.5)
    assert psi_from_counts([5, 5], [0, 10]) == pytest.approx(by_hand, rel=1e-14)


def test_identical_and_constant() -> None:
    x = np.arange(100.0)
    assert psi(x, x) == 0.0
    assert psi(np.ones(50), np.ones(10)) == 0.0
    # Constant reference: every breakpoint is 1, so 1 lands in the last bucket, 0 in the first.
    assert psi(np.ones(50), np.zeros(10)) == pytest.approx(reference_psi(np.ones(50), np.zeros(10)))


def test_empty_sides_are_nan() -> None:
    assert math.isnan(psi([1.0, 2.0], []))
    assert math.isnan(psi([np.nan], [1.0]))
    assert math.isnan(psi_from_counts([0, 0], [1, 2]))
    with pytest.raises(ValueError):
        psi_breakpoints([np.nan])
    with pytest.raises(ValueError):
        psi_from_counts([1, 2], [1, 2, 3])
