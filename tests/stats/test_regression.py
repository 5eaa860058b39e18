import math

import numpy as np
import pytest
from sklearn.metrics import mean_absolute_error, mean_squared_error, r2_score

from tripwire.stats import mae, r2, rmse


@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize("n", [2, 17, 5000])
def test_matches_sklearn(seed: int, n: int) -> None:
    rng = np.random.default_rng(seed)
    y = rng.normal(10, 3, n)
    p = y + rng.normal(0, 1, n)
    assert mae(y, p) == pytest.approx(mean_absolute_error(y, p), rel=1e-10)
    assert rmse(y, p) == pytest.approx(math.sqrt(mean_squared_error(y, p)), rel=1e-10)
    assert r2(y, p) == pytest.approx(r2_score(y, p), rel=1e-10)
    y_nan, p_nan = np.append(y, [np.nan, 1.0]), np.append(p, [2.0, np.nan])
    assert (mae(y_nan, p_nan), rmse(y_nan, p_nan), r2(y_nan, p_nan)) == (
        mae(y, p),
        rmse(y, p),
        r2(y, p),
    )


def test_constant_single_and_empty() -> None:
    assert math.isnan(r2([3.0, 3.0], [3.0, 4.0]))
    assert math.isnan(r2([3.0], [3.0]))
    assert mae([3.0], [5.0]) == 2.0
    assert rmse([0, 0], [3, 4]) == pytest.approx(math.sqrt(12.5))
    for f in (mae, rmse, r2):
        assert math.isnan(f([], []))
        assert math.isnan(f([np.nan], [1.0]))
    with pytest.raises(ValueError):
        mae([1, 2], [1])
