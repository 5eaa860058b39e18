"""Counting raw categorical values of two samples over the union of their categories."""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray


def drop_nulls(values: ArrayLike) -> NDArray[Any]:
    """Return ``values`` as a 1-D array without nulls (None, and NaN for float/object data).

    >>> drop_nulls(np.array(["a", None, float("nan"), "b"], dtype=object)).tolist()
    ['a', 'b']
    """
    arr: NDArray[Any] = np.asarray(values)
    if arr.ndim > 1:
        raise ValueError(f"expected a 1-D array, got shape {arr.shape}")
    arr = arr.reshape(-1)
    if arr.dtype.kind == "f":
        null = np.isnan(arr)
    elif arr.dtype.kind == "O":
        # NaN is the only value unequal to itself; np.equal compares object arrays elementwise.
        null = np.equal(arr, np.array(None, dtype=object)) | np.not_equal(arr, arr)
    else:
        return arr
    kept: NDArray[Any] = arr[~np.asarray(null, dtype=bool)]
    return kept


def _codes(values: NDArray[Any]) -> tuple[int, NDArray[np.intp]]:
    """Integer category code per value, and the number of categories."""
    try:
        uniq, codes = np.unique(values, return_inverse=True)
        return uniq.size, codes.reshape(-1)
    except TypeError:
        # Mixed Python types (e.g. str and int) cannot be sorted; hash them instead.
        items = values.tolist()
        index = {v: i for i, v in enumerate(dict.fromkeys(items))}
        return len(index), np.fromiter(map(index.__getitem__, items), np.intp, len(items))


def category_counts(
    expected: ArrayLike, actual: ArrayLike
) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
    """Counts of each side over the union of categories (same order for both), nulls dropped.

    >>> category_counts(["a", "b", "b"], ["b", "c"])
    (array([1, 2, 0]), array([0, 1, 1]))
    """
    e, a = drop_nulls(expected), drop_nulls(actual)
    if e.dtype != a.dtype:
        # Avoid numpy's silent promotion (e.g. ints to strings) merging distinct categories.
        e, a = e.astype(object), a.astype(object)
    k, codes = _codes(np.concatenate([e, a]))
    e_counts = np.bincount(codes[: e.size], minlength=k).astype(np.int64)
    a_counts = np.bincount(codes[e.size :], minlength=k).astype(np.int64)
    return e_counts, a_counts
