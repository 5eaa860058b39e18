"""Proxy metrics in a profile: per declared proxy, a count, a sum and a sum of squares.

A proxy is an aggregation over a logged column (see :class:`tripwire.config.Proxy`): the share
of rows equal to a value or in a set of values, or the mean of a numeric or boolean column.
Each row becomes a number — 1 or 0 for a share, the value itself for a mean, NaN where the
column is null — and the window keeps three sums of those numbers, so windows merge by
addition and a share's or mean's confidence interval comes from the profile alone.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Self

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from tripwire.config import ModelConfig, Proxy, ProxyValue
from tripwire.profile.numeric import Floats
from tripwire.profile.outputs import Additive
from tripwire.tabular import categorical_values, numeric_values


@dataclass(frozen=True)
class ProxyWindow(Additive):
    """``n`` rows with a value, their ``total`` and ``total_sq`` (sum of squares)."""

    n: int
    total: float
    total_sq: float

    @classmethod
    def of(cls, values: Floats) -> Self:
        present = values[~np.isnan(values)]
        return cls(int(present.size), float(present.sum()), float(np.square(present).sum()))

    @property
    def value(self) -> float:
        return self.total / self.n if self.n else float("nan")


def proxy_values(config: ModelConfig, table: pa.Table) -> dict[str, Floats]:
    """Per declared proxy whose column is in ``table``, one number per row (NaN for null)."""
    out: dict[str, Floats] = {}
    for proxy in config.proxies:
        if proxy.column in table.column_names:
            out[proxy.name] = row_values(proxy, table.column(proxy.column))
    return out


def row_values(proxy: Proxy, column: pa.ChunkedArray) -> Floats:
    """The number each row contributes to ``proxy``.

    >>> from tripwire.config import Proxy
    >>> blocked = Proxy(name="blocked", column="d", equals="block")
    >>> row_values(blocked, pa.chunked_array([["block", "pass", None]])).tolist()
    [1.0, 0.0, nan]
    >>> row_values(Proxy(name="ok", column="c", equals=1), pa.chunked_array([[1, 2]])).tolist()
    [1.0, 0.0]
    """
    if proxy.mean:
        return numeric_values(column)[0]
    kind = column.type
    numeric = pa.types.is_integer(kind) or pa.types.is_floating(kind) or pa.types.is_boolean(kind)
    if numeric:
        x = numeric_values(column)[0]
        targets = [t for t in (_as_number(v) for v in proxy.values) if t is not None]
        hits: Floats = np.isin(x, targets).astype(np.float64)
        hits[np.isnan(x)] = np.nan
        return hits
    texts = categorical_values(column)
    value_set = pa.array([_as_text(v) for v in proxy.values], pa.string())
    matched = pc.is_in(texts, value_set=value_set).to_numpy(zero_copy_only=False)
    result: Floats = matched.astype(np.float64)
    result[pc.is_null(texts).to_numpy(zero_copy_only=False)] = np.nan
    return result


def _as_number(value: ProxyValue) -> float | None:
    if isinstance(value, bool | int | float):
        return float(value)
    text = value.strip().lower()
    if text in ("true", "false"):
        return float(text == "true")
    try:
        return float(text)
    except ValueError:
        return None  # text that no number equals


def _as_text(value: ProxyValue) -> str:
    # As Arrow writes a value of the column's type as text.
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)
