import math

import numpy as np
import pytest
from scipy.spatial.distance import jensenshannon

from tripwire.stats import bucket_counts, js_categorical, js_distance, js_numeric, psi_breakpoints


@pytest.mark.parametrize("seed", range(8))
@pytest.mark.parametrize("k", [1, 2, 5, 40])
def test_distance_matches_scipy(seed: int, k: int) -> None:
    rng = np.random.default_rng(seed)
    p = rng.integers(0, 20, k).astype(float)
    q = rng.integers(0, 20, k).astype(float)
    p[0], q[-1] = p[0] + 1, q[-1] + 1  # neither sums to 0
    if k > 2:
        p[1] = 0.0  # category seen on one side only
    assert js_distance(p, q) == pytest.approx(jensenshannon(p, q, base=2), rel=1e-10, abs=1e-12)


def test_distance_by_hand_and_bounds() -> None:
    assert js_distance([1, 0], [0, 1]) == 1.0
    assert js_distance([3, 1], [0.75, 0.25]) == 0.0
    # p = (1/2, 1/2), q = (1, 0), m = (3/4, 1/4)
    js = 0.5 * (0.5 * math.log2(0.5 / 0.75) + 0.5 * math.log2(0.5 / 0.25)) + 0.5 * math.log2(
        1 / 0.75
    )
    assert js_distance([1, 1], [1, 0]) == pytest.approx(math.sqrt(js), rel=1e-14)


def test_distance_zero_total_is_nan() -> None:
    assert math.isnan(js_distance([0, 0], [1, 1]))
    assert math.isnan(js_distance([1, 1], [0, 0]))
    with pytest.raises(ValueError):
        js_distance([-1, 2], [1, 1])


@pytest.mark.parametrize("seed", range(5))
def test_categorical_matches_scipy_with_unseen(seed: int) -> None:
    rng = np.random.default_rng(seed)
    e = rng.choice(["a", "b", "c", "d"], 300, p=[0.4, 0.3, 0.2, 0.1])
    a = rng.choice(["b", "c", "d", "new"], 200)
    cats = ["a", "b", "c", "d", "new"]
    p = [np.sum(e == c) for c in cats]
    q = [np.sum(a == c) for c in cats]
    assert js_categorical(e, a) == pytest.approx(jensenshannon(p, q, base=2), rel=1e-10)


def test_categorical_nulls_and_types() -> None:
    e = np.array(["x", None, "y", float("nan"), "y"], dtype=object)
    a = ["y", "z", None]
    # e: x=1, y=2, z=0 ; a: x=0, y=1, z=1
    assert js_categorical(e, a) == pytest.approx(jensenshannon([1, 2, 0], [0, 1, 1], base=2))
    assert js_categorical([1, 2, 2], [2, 1, 2]) == 0.0
    assert js_categorical([1.0, np.nan], [1.0]) == 0.0
    # Mixed, unorderable object values still count as separate categories.
    mixed = np.array([1, "1", 1], dtype=object)
    assert js_categorical(mixed, ["1"]) == pytest.approx(
        jensenshannon([2, 1], [0, 1], base=2), rel=1e-12
    )
    assert math.isnan(js_categorical(["a"], [None]))


@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize("n1,n2", [(1, 1), (50, 20), (1000, 1500)])
def test_numeric_on_reference_quantiles(seed: int, n1: int, n2: int) -> None:
    rng = np.random.default_rng(seed)
    e, a = rng.normal(0, 1, n1), rng.normal(0.5, 1, n2).round(1)
    inner = np.quantile(e, np.linspace(0, 1, 11))[1:-1]
    p = np.bincount(np.digitize(e, inner), minlength=10)
    q = np.bincount(np.digitize(a, inner), minlength=10)
    expected = jensenshannon(p, q, base=2)
    assert js_numeric(e, a) == pytest.approx(expected, rel=1e-10, abs=1e-12)
    edges = psi_breakpoints(e)
    assert js_numeric(e, a) == js_distance(bucket_counts(e, edges), bucket_counts(a, edges))
    assert js_numeric(np.append(e, np.nan), np.append(a, np.nan)) == js_numeric(e, a)


def test_numeric_empty_is_nan() -> None:
    assert math.isnan(js_numeric([1.0, 2.0], []))
    assert math.isnan(js_numeric([], [1.0]))
