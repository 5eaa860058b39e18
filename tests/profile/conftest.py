"""Shared helpers for the profile tests: structural comparison of profile objects."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import fields, is_dataclass
from typing import Any

import numpy as np
import pytest


def _compare(a: Any, b: Any, rtol: float, atol: float, path: str) -> None:
    assert type(a) is type(b), f"{path}: {type(a).__name__} != {type(b).__name__}"
    if is_dataclass(a):
        for f in fields(a):
            _compare(getattr(a, f.name), getattr(b, f.name), rtol, atol, f"{path}.{f.name}")
    elif isinstance(a, np.ndarray):
        assert a.shape == b.shape, f"{path}: shape {a.shape} != {b.shape}"
        if (rtol == 0 and atol == 0) or a.dtype.kind in "iub":
            np.testing.assert_array_equal(a, b, err_msg=path)
        else:
            np.testing.assert_allclose(a, b, rtol=rtol, atol=atol, err_msg=path)
    elif isinstance(a, dict):
        assert a.keys() == b.keys(), f"{path}: keys {sorted(a)} != {sorted(b)}"
        for key in a:
            _compare(a[key], b[key], rtol, atol, f"{path}[{key!r}]")
    elif isinstance(a, tuple | list):
        assert len(a) == len(b), f"{path}: length {len(a)} != {len(b)}"
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            _compare(x, y, rtol, atol, f"{path}[{i}]")
    elif isinstance(a, float):
        if math.isnan(a):
            assert math.isnan(b), f"{path}: nan != {b}"
        elif rtol == 0 and atol == 0:
            assert a == b, f"{path}: {a} != {b}"
        else:
            assert math.isclose(a, b, rel_tol=rtol, abs_tol=atol), f"{path}: {a} != {b}"
    else:
        assert a == b, f"{path}: {a!r} != {b!r}"


def compare_profiles(a: Any, b: Any, rtol: float = 0.0, atol: float = 0.0) -> None:
    """Recursively compare two profile objects: counts (integers) always exactly, floats within
    ``rtol``/``atol`` (exactly when both are 0); NaN equals NaN."""
    _compare(a, b, rtol, atol, type(a).__name__)


@pytest.fixture
def same_profile() -> Callable[..., None]:
    return compare_profiles
