"""Evaluate alert rules over stored metric history and derive incidents.

For each rule the history is pivoted into series × windows matrices (values, sample sizes,
reference values, confidence intervals, withheld verdicts); the rule's threshold turns them into
verdicts and :mod:`policy` turns verdicts into incidents. A row stored without a verdict
(``insufficient_labels``, ``no_data``) gives its window none under any rule either, and a row
with a confidence interval breaches only when the whole interval is past the rule's level: a
value past it whose interval reaches back over it gives the window no verdict.

Everything is vectorized over series, so a year of daily windows of 200 features in 10
segments takes milliseconds per rule.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from numpy.typing import NDArray

from tripwire.alerts.policy import episodes
from tripwire.config import AlertRule, ModelConfig, TopK
from tripwire.importance import top_k, top_quartile
from tripwire.layers.catalog import CATALOG
from tripwire.layers.thresholds import DEFAULTS

Floats = NDArray[np.float64]
# A series without enough trailing history has no z-score.
MIN_BASELINE_SHARE = 0.5
# Stored rows with these statuses carry no verdict, whatever their value.
WITHHELD = ("insufficient_labels", "no_data")
# The columns of the history the rules read; the last three are optional (older stores).
_READ = ("window_start", "segment", "feature", "metric", "value", "n", "reference")
_OPTIONAL = ("status", "ci_low", "ci_high")


@dataclass(frozen=True)
class Incident:
    """An incident derived from history (resolved_at is None while it is open).

    Its times but one are window starts, the evidence: ``evidence_start`` the first window of
    the breach streak, ``opened_at`` the window in which the streak met the rule's persistence,
    ``last_breach_at`` the latest breaching window, ``resolved_at`` the window that resolved it.
    ``detected_at`` is when the monitoring job first derived it (its clock's now, as it saved
    it): when tripwire knew it, which for a realized-performance rule is when the labels landed,
    long after the evidence. It is None for an incident the job has not saved (a backtest's)
    or saved before the store kept it, and plays no part in comparing incidents.
    """

    dedup_key: str
    model: str
    rule: str
    metric: str
    feature: str  # '' for metrics of the model's outputs
    segment: str
    severity: str
    route: str
    evidence_start: datetime
    opened_at: datetime
    last_breach_at: datetime
    resolved_at: datetime | None
    value: float | None
    threshold: float | None
    reopened: int
    detected_at: datetime | None = field(default=None, compare=False)

    @property
    def is_open(self) -> bool:
        return self.resolved_at is None


def rule_features(rule: AlertRule, config: ModelConfig, importance: dict[str, float]) -> list[str]:
    """The features a rule watches ('' alone for metrics of the outputs)."""
    if not CATALOG[rule.metric].per_feature:
        return [""]
    if rule.feature_set == "top_quartile_shap":
        return top_quartile(importance)
    if isinstance(rule.feature_set, TopK):
        return top_k(importance, rule.feature_set.top_k)
    if isinstance(rule.feature_set, list):
        return list(rule.feature_set)
    if rule.severity == "digest":
        # A digest rule over "all" features covers the ones no pager watches.
        paging = paging_features(config, importance)
        return [f for f in config.columns.features if f not in paging]
    return list(config.columns.features)


def paging_features(config: ModelConfig, importance: dict[str, float]) -> set[str]:
    """Features that some ``page`` rule watches; the rest belong to the digest."""
    return {
        f
        for rule in config.alerts
        if rule.severity == "page"
        for f in rule_features(rule, config, importance)
        if f
    }


@dataclass(frozen=True)
class Matrices:
    keys: list[tuple[str, str]]  # (feature, segment) per series
    value: Floats
    n: Floats
    reference: Floats
    withheld: NDArray[np.bool_]  # stored without a verdict (see WITHHELD)
    ci_low: Floats  # NaN where the row has no interval
    ci_high: Floats


def split_by_metric(history: pa.Table, metrics: set[str]) -> dict[str, pa.Table]:
    """The history's rows per metric, with one pass over the metric column (comparing strings
    once per rule would dominate the evaluation of a long history)."""
    encoded = pc.dictionary_encode(history["metric"]).combine_chunks()
    codes = encoded.indices.to_numpy(zero_copy_only=False)
    names = encoded.dictionary.to_pylist()
    # Only the columns the rules read are copied into each metric's slice.
    history = history.select([*_READ, *(c for c in _OPTIONAL if c in history.column_names)])
    empty = history.slice(0, 0)
    return {
        metric: history.take(np.flatnonzero(codes == names.index(metric)))
        if metric in names
        else empty
        for metric in metrics
    }


def pivot(
    history: pa.Table, rule: AlertRule, features: list[str], windows: list[datetime]
) -> Matrices | None:
    rows = history.filter(pc.equal(history["metric"], rule.metric))
    rows = rows.filter(pc.is_in(rows["feature"], pa.array(features, pa.string())))
    if rule.segment == "all":
        rows = rows.filter(pc.equal(rows["segment"], "all"))
    elif rule.segment == "top":
        rows = rows.filter(pc.not_equal(rows["segment"], "all"))
    elif isinstance(rule.segment, list):
        rows = rows.filter(pc.is_in(rows["segment"], pa.array(rule.segment, pa.string())))
    if rows.num_rows == 0 or not windows:
        return None
    starts = np.array(windows, dtype="datetime64[us]")
    column = rows["window_start"].to_numpy().astype("datetime64[us]")
    t = np.minimum(np.searchsorted(starts, column), len(starts) - 1)
    # Rows of windows outside the ones evaluated are left out, not folded into a neighbour.
    inside = starts[t] == column
    if not inside.all():
        rows, t = rows.filter(pa.array(inside)), t[inside]
        if rows.num_rows == 0:
            return None
    feature = pc.dictionary_encode(rows["feature"]).combine_chunks()
    segment = pc.dictionary_encode(rows["segment"]).combine_chunks()
    n_segments = len(segment.dictionary)
    series = feature.indices.to_numpy() * n_segments + segment.indices.to_numpy()
    used, series = np.unique(series, return_inverse=True)
    shape = (used.size, len(windows))

    def matrix(name: str, fill: float) -> Floats:
        out = np.full(shape, fill)
        if name in rows.column_names:
            out[series, t] = rows[name].to_numpy(zero_copy_only=False).astype(np.float64)
        return out

    withheld = np.zeros(shape, dtype=bool)
    if "status" in rows.column_names:
        is_withheld = pc.is_in(rows["status"], pa.array(WITHHELD, pa.string()))
        withheld[series, t] = pc.fill_null(is_withheld, False).to_numpy(zero_copy_only=False)

    keys = [
        (str(feature.dictionary[u // n_segments]), str(segment.dictionary[u % n_segments]))
        for u in used
    ]
    value = matrix("value", np.nan)
    return Matrices(
        keys,
        value,
        np.nan_to_num(matrix("n", 0.0)),
        matrix("reference", np.nan),
        withheld,
        matrix("ci_low", np.nan),
        matrix("ci_high", np.nan),
    )


def direction_of(rule: AlertRule) -> str:
    if rule.direction is not None:
        return rule.direction
    return "both" if rule.threshold_z is not None else CATALOG[rule.metric].bad


def _trailing(value: Floats, windows: int) -> tuple[Floats, Floats]:
    """Mean and standard deviation of each series over the ``windows`` before each window."""
    mean = np.full(value.shape, np.nan)
    std = np.full(value.shape, np.nan)
    for t in range(windows, value.shape[1]):
        past = value[:, t - windows : t]
        enough = np.sum(~np.isnan(past), axis=1) >= max(2, MIN_BASELINE_SHARE * windows)
        with np.errstate(all="ignore"):
            mean[:, t] = np.where(enough, np.nanmean(past, axis=1), np.nan)
            std[:, t] = np.where(enough, np.nanstd(past, axis=1, ddof=1), np.nan)
    return mean, std


def _calibrated(
    rule: AlertRule, calibrated: dict[tuple[str, str], float], key: tuple[str, str]
) -> float:
    """A series' calibrated threshold; without one, the rule's floor or the default alert level."""
    if key in calibrated:
        return calibrated[key]
    if rule.floor is not None:
        return rule.floor
    default = DEFAULTS.get(rule.metric)
    return default.alert if default is not None and default.basis == "absolute" else np.nan


def bounds(
    rule: AlertRule,
    m: Matrices,
    window: timedelta,
    calibrated: dict[tuple[str, str], float],
) -> tuple[Floats, Floats]:
    """The levels below and above which each window of each series would breach (NaN where
    there is none); a rule breaches on the side :func:`direction_of` gives, or on both."""
    # Every rule breaches above center + k * scale, below center - k * scale, or either.
    direction = direction_of(rule)
    scale: Floats | float = 1.0
    k: Floats | float
    if rule.threshold_z is not None:
        length = rule.baseline_length()
        assert length is not None  # validated at load
        # Values stored without a verdict (too few labels) are no baseline either.
        center, scale = _trailing(np.where(m.withheld, np.nan, m.value), int(length / window))
        k = rule.threshold_z
    elif rule.baseline == "reference":
        assert isinstance(rule.threshold, float | int)  # validated at load
        center, k = m.reference, float(rule.threshold)
    else:
        if rule.threshold == "calibrated":
            limits = np.array([_calibrated(rule, calibrated, key) for key in m.keys])
        else:
            assert isinstance(rule.threshold, float | int)
            limits = np.full(len(m.keys), float(rule.threshold))
        center, k = np.broadcast_to(limits[:, None], m.value.shape), 0.0
        if direction == "both":  # |value| beyond the limit
            center, k = np.zeros_like(m.value), limits[:, None]
    with np.errstate(invalid="ignore"):
        return center - k * scale, center + k * scale


def verdicts(
    rule: AlertRule,
    m: Matrices,
    window: timedelta,
    calibrated: dict[tuple[str, str], float],
) -> tuple[NDArray[np.bool_], NDArray[np.bool_], Floats]:
    """``breach``, ``judged`` and the level at which each window would breach."""
    direction = direction_of(rule)
    lower, upper = bounds(rule, m, window, calibrated)
    # Where a row has a confidence interval, the whole of it must be past the level.
    low = np.where(np.isnan(m.ci_low), m.value, m.ci_low)
    high = np.where(np.isnan(m.ci_high), m.value, m.ci_high)
    with np.errstate(invalid="ignore"):
        above, below = m.value > upper, m.value < lower
        surely_above, surely_below = low > upper, high < lower
    pick = {"above": (above, surely_above), "below": (below, surely_below)}
    past, surely = pick.get(direction, (above | below, surely_above | surely_below))
    # The level reported is the side that was crossed (the upper one when neither was).
    level = lower if direction == "below" else np.where(below & (direction == "both"), lower, upper)
    judged = (
        ~np.isnan(m.value)
        & ~np.isnan(level)
        & (m.n >= rule.min_samples)
        & ~m.withheld
        & ~(past & ~surely)  # past the level, but not surely: no verdict either way
    )
    return surely & judged, judged, level


def evaluate(
    config: ModelConfig,
    history: pa.Table,
    windows: list[datetime],
    window: timedelta,
    importance: dict[str, float],
    calibrated: dict[tuple[str, str, str], float] | None = None,
    rules: list[AlertRule] | None = None,
) -> list[Incident]:
    """Every incident the rules imply over ``windows`` (window starts, ascending)."""
    found: list[Incident] = []
    calibrations = calibrated or {}
    chosen = config.alerts if rules is None else rules
    by_metric = split_by_metric(history, {rule.metric for rule in chosen})
    for rule in chosen:
        features = rule_features(rule, config, importance)
        m = pivot(by_metric[rule.metric], rule, features, windows)
        if m is None:
            continue
        mine = {(f, s): v for (metric, f, s), v in calibrations.items() if metric == rule.metric}
        breach, judged, level = verdicts(rule, m, window, mine)
        persistence = int((rule.window or window) / window)
        for e in episodes(breach, judged, persistence, rule.resolve_after, 2 * rule.resolve_after):
            feature, segment = m.keys[e.series]
            value = m.value[e.series, e.last_breach]
            limit = level[e.series, e.last_breach]
            start = windows[e.start]
            found.append(
                Incident(
                    dedup_key=f"{config.name}/{rule.name}/{feature or '-'}/{segment}/"
                    f"{start:%Y-%m-%dT%H:%M}",
                    model=config.name,
                    rule=rule.name,
                    metric=rule.metric,
                    feature=feature,
                    segment=segment,
                    severity=rule.severity,
                    route=config.route_for(rule),
                    evidence_start=start,
                    opened_at=windows[e.opened],
                    last_breach_at=windows[e.last_breach],
                    resolved_at=None if e.resolved is None else windows[e.resolved],
                    value=None if np.isnan(value) else float(value),
                    threshold=None if np.isnan(limit) else float(limit),
                    reopened=e.reopened,
                )
            )
    return sorted(found, key=lambda i: (i.opened_at, i.rule, i.feature, i.segment))
