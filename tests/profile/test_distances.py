"""Distances from profiles against independent references on the raw arrays.

PSI and Jensen-Shannon must be exact; KS and Wasserstein must lie within the bound the profile
certifies, and that bound must be small.
"""

from __future__ import annotations

from collections import Counter

import numpy as np
import pyarrow as pa
import pytest
from scipy import stats
from scipy.spatial.distance import jensenshannon

import tripwire.stats as tw_stats
from tripwire.profile.categorical import OTHER, CategoricalBins, CategoricalWindow
from tripwire.profile.distances import ks_from_profiles, wasserstein_from_profiles
from tripwire.profile.numeric import NumericBins, NumericWindow

# ---------------------------------------------------------------- independent references


def reference_bucket_counts(expected: np.ndarray, actual: np.ndarray, buckets: int = 10):
    """Quantile buckets of ``expected`` (outer edges ±inf), bucket i = [e_i, e_{i+1})."""
    e = expected[~np.isnan(expected)]
    a = actual[~np.isnan(actual)]
    edges = np.quantile(e, np.linspace(0.0, 1.0, buckets + 1))
    edges[0], edges[-1] = -np.inf, np.inf

    def count(x: np.ndarray) -> np.ndarray:
        # Bucket i holds edges[i] <= x < edges[i+1]; with repeated edges the earlier ones stay
        # empty, which is what half-open intervals give.
        out = np.zeros(buckets, dtype=np.int64)
        for i in range(buckets):
            out[i] = np.count_nonzero((x >= edges[i]) & (x < edges[i + 1]))
        out[-1] += np.count_nonzero(x == np.inf)
        return out

    return count(e), count(a)


def reference_psi(expected: np.ndarray, actual: np.ndarray, buckets: int = 10) -> float:
    e_counts, a_counts = reference_bucket_counts(expected, actual, buckets)
    e = np.maximum(e_counts / e_counts.sum(), 1e-6)
    a = np.maximum(a_counts / a_counts.sum(), 1e-6)
    return float(np.sum((a - e) * np.log(a / e)))


def profiles(expected: np.ndarray, actual: np.ndarray, grid_size: int = 1000):
    bins = NumericBins.fit(expected, buckets=10, grid_size=grid_size)
    return bins, NumericWindow.of(expected, bins), NumericWindow.of(actual, bins)


def _cases(seed: int) -> list[tuple[str, np.ndarray, np.ndarray]]:
    rng = np.random.default_rng(seed)
    n, m = int(rng.integers(200, 5000)), int(rng.integers(50, 5000))
    shift, scale = rng.normal(0, 0.5), rng.uniform(0.5, 2.0)
    cases = [
        ("normal", rng.normal(0, 1, n), rng.normal(shift, scale, m)),
        ("lognormal", rng.lognormal(0, 1, n), rng.lognormal(shift, scale, m)),
        ("integers", rng.poisson(3, n).astype(float), rng.poisson(3 + abs(shift), m).astype(float)),
        ("few-values", rng.integers(0, 3, n).astype(float), rng.integers(0, 4, m).astype(float)),
    ]
    with_nan = rng.normal(0, 1, n)
    with_nan[rng.random(n) < 0.2] = np.nan
    cur_nan = rng.normal(shift, 1, m)
    cur_nan[rng.random(m) < 0.4] = np.nan
    cases.append(("nan", with_nan, cur_nan))
    inf_cur = rng.normal(shift, 1, m)
    inf_cur[rng.random(m) < 0.05] = np.inf
    inf_cur[rng.random(m) < 0.05] = -np.inf
    cases.append(("inf-in-current", rng.normal(0, 1, n), inf_cur))
    return cases


CASES = [
    pytest.param(e, a, id=f"{name}-{seed}") for seed in range(8) for name, e, a in _cases(seed)
]


# ---------------------------------------------------------------- PSI and JS: exact


@pytest.mark.parametrize(("expected", "actual"), CASES)
def test_psi_from_profiles_is_exact(expected, actual):
    _, ref, cur = profiles(expected, actual)
    from_profiles = tw_stats.psi_from_counts(ref.psi_counts, cur.psi_counts)
    assert from_profiles == pytest.approx(tw_stats.psi(expected, actual), abs=1e-12)
    assert from_profiles == pytest.approx(reference_psi(expected, actual), abs=1e-12)
    e_counts, a_counts = reference_bucket_counts(expected, actual)
    np.testing.assert_array_equal(ref.psi_counts, e_counts)
    np.testing.assert_array_equal(cur.psi_counts, a_counts)


def test_psi_hand_calculation():
    # Reference 0..9 repeated: ten equally filled buckets [0, 0.9), [0.9, 1.8), ...
    expected = np.repeat(np.arange(10.0), 100)
    actual = np.repeat(np.arange(10.0), [190, 90, 90, 90, 90, 90, 90, 90, 90, 90])
    _, ref, cur = profiles(expected, actual)
    np.testing.assert_array_equal(ref.psi_counts, np.full(10, 100))
    a = np.array([0.19] + [0.09] * 9)
    want = float(np.sum((a - 0.1) * np.log(a / 0.1)))
    assert tw_stats.psi_from_counts(ref.psi_counts, cur.psi_counts) == pytest.approx(
        want, abs=1e-12
    )


@pytest.mark.parametrize(("expected", "actual"), CASES)
def test_js_numeric_from_profiles_equals_scipy(expected, actual):
    _, ref, cur = profiles(expected, actual)
    e_counts, a_counts = reference_bucket_counts(expected, actual)
    want = jensenshannon(e_counts, a_counts, base=2)
    assert tw_stats.js_distance(ref.psi_counts, cur.psi_counts) == pytest.approx(want, abs=1e-12)


# ---------------------------------------------------------------- KS: within its bound


def _ks_cases() -> list:
    rng = np.random.default_rng(7)
    out = []
    for n in (300, 5000, 40_000):
        m = max(n // 2, 200)
        out += [
            pytest.param(rng.normal(size=n), rng.normal(size=m), id=f"same-{n}"),
            pytest.param(rng.normal(size=n), rng.normal(0.3, 1.0, m), id=f"shift-{n}"),
            pytest.param(rng.lognormal(size=n), rng.lognormal(0.1, 1.3, m), id=f"lognormal-{n}"),
            pytest.param(
                rng.poisson(4, n).astype(float), rng.poisson(4.5, m).astype(float), id=f"disc-{n}"
            ),
            pytest.param(rng.normal(size=n), rng.normal(5.0, 1.0, m), id=f"disjoint-{n}"),
            pytest.param(rng.normal(size=n), rng.normal(0, 0.01, m), id=f"narrow-{n}"),
        ]
    return out


@pytest.mark.parametrize(("expected", "actual"), _ks_cases())
def test_ks_from_profiles_within_certified_bound(expected, actual):
    _, ref, cur = profiles(expected, actual)
    d, bound = ks_from_profiles(ref, cur)
    exact = stats.ks_2samp(expected, actual).statistic
    assert d <= exact + 1e-12
    assert exact <= d + bound + 1e-12
    assert bound <= 1 / 1000 + 2 / expected.size


def test_ks_with_nan_and_inf_uses_non_null_values():
    rng = np.random.default_rng(8)
    expected = rng.normal(size=3000)
    actual = rng.normal(0.2, 1.0, 2000)
    actual[:100] = np.inf
    actual[100:150] = -np.inf
    actual[150:400] = np.nan
    expected[:30] = np.nan
    _, ref, cur = profiles(expected, actual)
    d, bound = ks_from_profiles(ref, cur)
    exact = stats.ks_2samp(expected[~np.isnan(expected)], actual[~np.isnan(actual)]).statistic
    assert d <= exact + 1e-12 <= d + bound + 2e-12


def test_ks_empty_side_is_nan():
    _, ref, cur = profiles(np.arange(10.0), np.array([np.nan]))
    assert np.isnan(ks_from_profiles(ref, cur).value)


# ---------------------------------------------------------------- Wasserstein


def _w_cases() -> list:
    rng = np.random.default_rng(11)
    n, m = 20_000, 8_000
    return [
        pytest.param(rng.normal(size=n), rng.normal(size=m), id="same"),
        pytest.param(rng.normal(size=n), rng.normal(0.5, 1.0, m), id="shift"),
        pytest.param(rng.normal(size=n), rng.normal(-2.0, 1.0, m), id="big-shift"),
        pytest.param(rng.normal(size=n), rng.normal(0.0, 2.0, m), id="wider"),
        pytest.param(rng.normal(size=n), rng.normal(0.0, 0.3, m), id="narrower"),
        pytest.param(rng.lognormal(size=n), rng.lognormal(0.2, 1.0, m), id="lognormal"),
        pytest.param(
            rng.poisson(5, n).astype(float), rng.poisson(6, m).astype(float), id="discrete"
        ),
        pytest.param(
            rng.integers(0, 3, n).astype(float), rng.integers(1, 5, m).astype(float), id="ties"
        ),
        pytest.param(rng.uniform(0, 1, n), rng.uniform(0.5, 2.0, m), id="partly-outside"),
        pytest.param(rng.uniform(0, 1, n), rng.uniform(-3, -2, m), id="all-below"),
        pytest.param(
            rng.normal(size=n),
            np.concatenate([rng.normal(size=m), [np.inf, -np.inf, np.nan] * 50]),
            id="inf-and-nan",
        ),
    ]


@pytest.mark.parametrize(("expected", "actual"), _w_cases())
def test_wasserstein_from_profiles_within_certified_bound(expected, actual):
    bins, ref, cur = profiles(expected, actual)
    w, bound = wasserstein_from_profiles(bins, ref, cur)
    exact = stats.wasserstein_distance(expected[np.isfinite(expected)], actual[np.isfinite(actual)])
    assert w <= exact + 1e-9
    assert exact - w <= bound + 1e-9
    assert abs(w - exact) <= 0.01 * np.std(expected)


def test_wasserstein_constant_reference():
    bins, ref, cur = profiles(np.full(500, 3.0), np.full(200, 5.0))
    w, bound = wasserstein_from_profiles(bins, ref, cur)
    assert w == pytest.approx(2.0, abs=1e-12)
    assert bound == 0.0
    bins, ref, same = profiles(np.full(500, 3.0), np.full(200, 3.0))
    assert wasserstein_from_profiles(bins, ref, same).value == 0.0


def test_wasserstein_no_finite_values_is_nan():
    bins, ref, cur = profiles(np.arange(10.0), np.array([np.inf, np.nan]))
    assert np.isnan(wasserstein_from_profiles(bins, ref, cur).value)


# ---------------------------------------------------------------- categorical


def _categorical(expected: list, actual: list, max_categories: int = 50):
    bins = CategoricalBins.fit(pa.array(expected, pa.string()), max_categories=max_categories)
    ref = CategoricalWindow.of(pa.array(expected, pa.string()), bins)
    cur = CategoricalWindow.of(pa.array(actual, pa.string()), bins)
    return bins, ref, cur


@pytest.mark.parametrize("seed", range(5))
def test_categorical_js_and_chi2_equal_scipy_on_hand_table(seed):
    rng = np.random.default_rng(seed)
    names = [f"c{i}" for i in range(int(rng.integers(2, 8)))]
    expected = rng.choice(names, 3000, p=rng.dirichlet(np.ones(len(names)))).tolist()
    actual = rng.choice(names, 1000, p=rng.dirichlet(np.ones(len(names)))).tolist()
    expected += [None] * 7
    bins, ref, cur = _categorical(expected, actual)
    assert set(bins.vocabulary) == set(names)
    # The hand-built table: one column per category seen on either side.
    e_count = Counter(v for v in expected if v is not None)
    a_count = Counter(actual)
    cats = sorted(set(e_count) | set(a_count))
    table = np.array([[e_count[c] for c in cats], [a_count[c] for c in cats]])
    js = tw_stats.js_distance(ref.counts, cur.counts)
    assert js == pytest.approx(jensenshannon(table[0], table[1], base=2), abs=1e-12)
    ours = tw_stats.chi2_contingency(ref.counts, cur.counts)
    theirs = stats.chi2_contingency(table)
    assert ours.statistic == pytest.approx(theirs.statistic, rel=1e-10)
    assert ours.pvalue == pytest.approx(theirs.pvalue, rel=1e-9, abs=1e-300)
    assert ours.dof == theirs.dof
    # PSI on the same buckets, by hand.
    e = np.maximum(table[0] / table[0].sum(), 1e-6)
    a = np.maximum(table[1] / table[1].sum(), 1e-6)
    assert tw_stats.psi_from_counts(ref.counts, cur.counts) == pytest.approx(
        float(np.sum((a - e) * np.log(a / e))), abs=1e-12
    )
    assert ref.n_null == 7 and ref.n_unseen == 0 and cur.n_unseen == 0


def test_unseen_category_is_counted_and_named():
    expected = ["a"] * 50 + ["b"] * 30
    actual = ["a"] * 10 + ["new"] * 4 + ["newer"] * 2 + [None]
    bins, _, cur = _categorical(expected, actual)
    assert bins.labels == ("a", "b", OTHER)
    np.testing.assert_array_equal(cur.counts, [10, 0, 6])
    assert cur.n_unseen == 6
    assert cur.unseen_examples == (("new", 4), ("newer", 2))
    assert cur.n == 16 and cur.n_null == 1


def test_category_beyond_the_cap_goes_to_other_but_is_not_unseen():
    # 'rare' is in the reference, but below the max_categories cap.
    expected = ["a"] * 50 + ["b"] * 30 + ["c"] * 20 + ["rare"] * 2
    actual = ["a"] * 5 + ["rare"] * 3 + ["unknown"]
    bins, ref, cur = _categorical(expected, actual, max_categories=3)
    assert bins.vocabulary == ("a", "b", "c")
    assert bins.known == frozenset({"a", "b", "c", "rare"})
    np.testing.assert_array_equal(ref.counts, [50, 30, 20, 2])
    np.testing.assert_array_equal(cur.counts, [5, 0, 0, 4])  # 'rare' and 'unknown' in other
    assert cur.n_unseen == 1
    assert cur.unseen_examples == (("unknown", 1),)


def test_too_many_known_categories_cannot_tell_unseen():
    expected = [f"v{i}" for i in range(30)]
    bins = CategoricalBins.fit(pa.array(expected), max_categories=5, max_known=10)
    assert bins.known is None
    cur = CategoricalWindow.of(pa.array(["v1", "zzz"]), bins)
    assert cur.n_unseen == -1
    merged = cur + CategoricalWindow.of(pa.array(["v2"]), bins)
    assert merged.n_unseen == -1


def test_vocabulary_does_not_depend_on_row_order():
    values = ["x", "y", "z", "y", "x", "w"]
    one = CategoricalBins.fit(pa.array(values), max_categories=2)
    two = CategoricalBins.fit(pa.array(values[::-1]), max_categories=2)
    assert one.vocabulary == two.vocabulary == ("x", "y")
