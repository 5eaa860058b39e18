import math

import numpy as np
import pytest

from tripwire.stats import hellinger


def test_two_point_by_hand() -> None:
    # p = (1/2, 1/2), q = (1/4, 3/4): BC = sqrt(1/8) + sqrt(3/8)
    by_hand = math.sqrt(1 - (math.sqrt(1 / 8) + math.sqrt(3 / 8)))
    assert hellinger([1, 1], [1, 3]) == pytest.approx(by_hand, rel=1e-14)
    assert hellinger([1, 0], [0, 1]) == 1.0
    assert hellinger([2, 6], [0.25, 0.75]) == 0.0


@pytest.mark.parametrize("seed", range(5))
def test_euclidean_form(seed: int) -> None:
    rng = np.random.default_rng(seed)
    p, q = rng.random(12), rng.random(12)
    p[3] = 0.0
    euclid = np.linalg.norm(np.sqrt(p / p.sum()) - np.sqrt(q / q.sum())) / math.sqrt(2)
    assert hellinger(p, q) == pytest.approx(euclid, rel=1e-10)


def test_invalid() -> None:
    assert math.isnan(hellinger([0, 0], [1, 2]))
    assert math.isnan(hellinger([1, 2], [0, 0]))
    with pytest.raises(ValueError):
        hellinger([1, 2], [1, 2, 3])
