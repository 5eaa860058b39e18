"""The one-pass range sums behind each grid cell's sum, against plain slicing."""

from __future__ import annotations

import numpy as np
import pytest

from tripwire.profile.numeric import _range_sums


@pytest.mark.parametrize("seed", range(20))
def test_range_sums_equal_slice_sums(seed: int) -> None:
    rng = np.random.default_rng(seed)
    values = rng.normal(size=int(rng.integers(1, 50)))
    # Ascending, non-overlapping ranges with gaps, empty ranges, and one touching the end.
    cuts = np.sort(rng.integers(0, values.size + 1, size=2 * int(rng.integers(1, 8))))
    starts, ends = cuts[0::2], cuts[1::2]
    if seed % 2:
        ends[-1] = values.size
    expected = [values[s:e].sum() for s, e in zip(starts, ends, strict=True)]
    np.testing.assert_allclose(_range_sums(values, starts, ends), expected, rtol=1e-12, atol=0)


def test_range_sums_of_empty_ranges_are_zero() -> None:
    values = np.array([1.0, 2.0, 3.0])
    starts, ends = np.array([0, 1, 3]), np.array([0, 1, 3])
    assert _range_sums(values, starts, ends).tolist() == [0.0, 0.0, 0.0]
