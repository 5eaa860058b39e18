"""Stored metric rows as series aligned on windows, for the charts.

A history table (one row per window, segment, feature and metric) becomes one matrix per
column: series × windows, built with Arrow and NumPy, not a Python loop over rows, so a year of
200 features stays fast.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from numpy.typing import NDArray

from tripwire.alerts.engine import WITHHELD, Matrices, _trailing, bounds, direction_of
from tripwire.config import AlertRule, ModelConfig

__all__ = [
    "Grid",
    "Key",
    "baseline_rule",
    "grid",
    "rule_levels",
    "trailing_band",
    "watching_rule",
]

# Where several rules watch a series, the chart draws the most severe one's level.
_SEVERITY_RANK = {"page": 0, "ticket": 1, "digest": 2}

Key = tuple[str, str, str]  # metric, feature ('' for outputs), segment
Floats = NDArray[np.float64]


@dataclass(frozen=True)
class Grid:
    """Series × windows matrices of stored values, verdicts and thresholds."""

    windows: list[datetime]
    keys: list[Key]
    value: Floats  # NaN where the window has no value
    alert: NDArray[np.bool_]  # stored status alert or error
    withheld: NDArray[np.bool_]  # stored without a verdict (insufficient labels, no data)
    threshold: Floats
    reference: Floats  # the reference's value, NaN where the row has none

    def row(self, key: Key) -> int | None:
        try:
            return self._index[key]
        except KeyError:
            return None

    @property
    def _index(self) -> dict[Key, int]:
        found: dict[Key, int] | None = self.__dict__.get("_cache")
        if found is None:
            found = {k: i for i, k in enumerate(self.keys)}
            object.__setattr__(self, "_cache", found)
        return found

    def values(self, key: Key) -> list[float | None]:
        i = self.row(key)
        if i is None:
            return [None] * len(self.windows)
        return [None if math.isnan(v) else float(v) for v in self.value[i]]

    def flagged(self, key: Key) -> list[bool]:
        i = self.row(key)
        return [False] * len(self.windows) if i is None else self.alert[i].tolist()

    def latest_threshold(self, key: Key) -> float | None:
        """The series' latest stored threshold."""
        return self._last(self.threshold, key)

    def latest(self, key: Key) -> float | None:
        """The series' latest value (None when it has none)."""
        return self._last(self.value, key)

    def _last(self, matrix: Floats, key: Key) -> float | None:
        i = self.row(key)
        if i is None:
            return None
        present = matrix[i][~np.isnan(matrix[i])]
        return float(present[-1]) if present.size else None

    def tail(self, count: int) -> Grid:
        """The last ``count`` windows."""
        return Grid(
            self.windows[-count:],
            self.keys,
            self.value[:, -count:],
            self.alert[:, -count:],
            self.withheld[:, -count:],
            self.threshold[:, -count:],
            self.reference[:, -count:],
        )


def _column(table: pa.Table, name: str) -> Floats:
    array: Floats = pc.fill_null(pc.cast(table[name], pa.float64()), np.nan).to_numpy()
    return array


def grid(table: pa.Table, windows: Sequence[datetime]) -> Grid:
    """The rows of ``table`` whose window is one of ``windows``, as matrices."""
    windows = list(windows)
    n = len(windows)
    if table.num_rows == 0 or n == 0:
        empty = np.empty((0, n))
        return Grid(windows, [], empty, empty.astype(bool), empty.astype(bool), empty, empty)
    starts = pa.array(windows, table.schema.field("window_start").type)
    column = pc.index_in(table["window_start"], value_set=starts)
    keep = pc.is_valid(column)
    table, column = table.filter(keep), column.filter(keep)
    joined = pc.binary_join_element_wise(
        table["metric"], table["feature"], table["segment"], "\x1f"
    )
    encoded = pc.dictionary_encode(joined).combine_chunks()
    codes = encoded.indices.to_numpy(zero_copy_only=False)
    keys = [tuple(k.split("\x1f")) for k in encoded.dictionary.to_pylist()]
    at = column.to_numpy(zero_copy_only=False)
    shape = (len(keys), n)
    value = np.full(shape, np.nan)
    value[codes, at] = _column(table, "value")
    threshold = np.full(shape, np.nan)
    threshold[codes, at] = _column(table, "threshold")
    reference = np.full(shape, np.nan)
    if "reference" in table.column_names:
        reference[codes, at] = _column(table, "reference")
    status = table["status"]
    alert = np.zeros(shape, dtype=bool)
    alert[codes, at] = pc.is_in(status, pa.array(["alert", "error"])).to_numpy(zero_copy_only=False)
    withheld = np.zeros(shape, dtype=bool)
    withheld[codes, at] = pc.is_in(status, pa.array(list(WITHHELD))).to_numpy(zero_copy_only=False)
    return Grid(windows, keys, value, alert, withheld, threshold, reference)


def baseline_rule(config: ModelConfig, metric: str) -> AlertRule | None:
    """The rule with a trailing baseline on ``metric``, else on another prediction metric."""
    trailing = [r for r in config.alerts if r.threshold_z is not None]
    return next((r for r in trailing if r.metric == metric), None) or next(iter(trailing), None)


def trailing_band(
    values: Floats, withheld: NDArray[np.bool_], windows: int, z: float
) -> tuple[list[float | None], list[float | None]]:
    """The trailing baseline band, mean ± ``z`` standard deviations of the ``windows`` before
    each window, as the alert engine computes it for ``threshold_z`` rules."""
    mean, std = _trailing(np.where(withheld, np.nan, values)[None, :], windows)
    lower, upper = mean[0] - z * std[0], mean[0] + z * std[0]
    return (
        [None if math.isnan(v) else float(v) for v in lower],
        [None if math.isnan(v) else float(v) for v in upper],
    )


def baseline_windows(rule: AlertRule | None, window: timedelta, default: int = 7) -> int:
    """How many windows a rule's trailing baseline spans (``default`` without a rule)."""
    length = rule.baseline_length() if rule is not None else None
    return max(2, int(length / window)) if length else default


def _watches(rule: AlertRule, segment: str) -> bool:
    """Whether ``rule`` judges ``segment``'s series, as the alert engine picks them."""
    if rule.segment == "all":
        return segment == "all"
    if rule.segment == "top":
        return segment != "all"
    if isinstance(rule.segment, list):
        return segment in rule.segment
    return True  # each: the whole population and every tracked segment


def watching_rule(config: ModelConfig, metric: str, segment: str) -> AlertRule | None:
    """The alert rule that judges ``metric`` of the model's outputs in ``segment``: the most
    severe, the first in the config among equals; None when no rule watches it."""
    found = [r for r in config.alerts if r.metric == metric and _watches(r, segment)]
    return min(
        found, key=lambda r: _SEVERITY_RANK.get(r.severity, len(_SEVERITY_RANK)), default=None
    )


def rule_levels(
    rule: AlertRule,
    g: Grid,
    key: Key,
    window: timedelta,
    calibrated: dict[tuple[str, str, str], float] | None = None,
) -> list[float]:
    """The levels past which ``rule`` breaches on the series ``key`` in the latest window that
    has one, as the alert engine computes them from the stored rows (the reference's value
    and the rule's change from it, a calibrated or fixed threshold, or the trailing band over
    the windows of ``g``): one, or two for a rule that watches both ways. ``calibrated``:
    thresholds by (metric, feature, segment), as ``tripwire calibrate`` stores them."""
    i = g.row(key)
    if i is None:
        return []
    _, feature, segment = key
    shape = (1, len(g.windows))
    m = Matrices(
        [(feature, segment)],
        g.value[i][None, :],
        np.full(shape, np.inf),  # the level does not depend on the sample size
        g.reference[i][None, :],
        g.withheld[i][None, :],
        np.full(shape, np.nan),
        np.full(shape, np.nan),
    )
    mine = {(f, s): v for (name, f, s), v in (calibrated or {}).items() if name == rule.metric}
    lower, upper = bounds(rule, m, window, mine)
    direction = direction_of(rule)
    sides = [lower, upper] if direction == "both" else [lower if direction == "below" else upper]
    levels = []
    for side in sides:
        present = side[0][~np.isnan(side[0])]
        if present.size:
            levels.append(float(present[-1]))
    return levels
