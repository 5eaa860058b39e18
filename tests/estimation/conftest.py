"""Checks the estimation tests share: estimates against realized values over many windows."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping

import numpy as np
import pytest

from tripwire.estimation import Estimate

Realized = Mapping[str, float]


class WindowErrors:
    """Realized minus estimated, over many windows, per metric: raw and in standard errors."""

    def __init__(self) -> None:
        self.errors: dict[str, list[float]] = {}
        self.z: dict[str, list[float]] = {}

    def add(self, estimate: Estimate, truth: Realized) -> None:
        for name, value in estimate.values.items():
            error = truth[name] - value
            self.errors.setdefault(name, []).append(error)
            self.z.setdefault(name, []).append(error / estimate.standard_errors[name])

    def check(self, allowed_bias: float = 0.3, max_error: float | None = None) -> None:
        """The z-scores look standard normal: mean within ``allowed_bias``, standard deviation
        0.8-1.2, none beyond 4.5; and, if given, the mean error within ``max_error``."""
        for name, values in self.z.items():
            z = np.array(values)
            assert abs(z.mean()) < allowed_bias, (name, z.mean())
            assert 0.8 < z.std() < 1.2, (name, z.std())
            assert np.abs(z).max() < 4.5, (name, np.abs(z).max())
            if max_error is not None:
                assert abs(np.mean(self.errors[name])) < max_error, (name, self.errors[name])


def check_shift(
    before: Estimate,
    after: Estimate,
    truth_before: Realized,
    truth_after: Realized,
    slack: float = 0.0,
) -> None:
    """After a covariate shift the estimate is within 4 standard errors (plus ``slack`` times
    the realized value) of the realized value, and so is the estimated change; and the shift
    did move the realized performance by more than 10 standard errors."""
    moved = []
    for name in after.values:
        se = after.standard_errors[name]
        allowed = 4 * se + slack * abs(truth_after[name])
        assert abs(after[name] - truth_after[name]) < allowed, (name, after[name], truth_after)
        change, true_change = after[name] - before[name], truth_after[name] - truth_before[name]
        both = math.hypot(se, before.standard_errors[name])
        assert abs(change - true_change) < 4 * both + slack * abs(truth_after[name]), name
        moved.append(abs(true_change) / both)
    assert max(moved) > 10, moved


@pytest.fixture
def window_errors() -> Callable[[], WindowErrors]:
    return WindowErrors


@pytest.fixture
def follows_shift() -> Callable[..., None]:
    return check_shift
