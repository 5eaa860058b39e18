"""Profiles of a whole table: per feature, per output, overall and per segment.

``fit_bins`` learns every feature's bins and the tracked segments from the reference;
``profile_table`` turns a table into one :class:`SegmentWindow` per segment ("all" plus the
tracked segments, see :mod:`tripwire.profile.segments`), each computed on those bins. The
reference itself is profiled the same way, so comparing a window with the reference is always
a comparison of two profiles.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import partial
from typing import Any, TypeVar

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from tripwire.config import ModelConfig
from tripwire.errors import TripwireError
from tripwire.profile.categorical import CategoricalBins, CategoricalWindow
from tripwire.profile.estimated import (
    BinaryEstimate,
    Estimated,
    Estimation,
    MulticlassEstimate,
    RegressionEstimate,
    fit_estimation,
)
from tripwire.profile.multiclass import (
    UNKNOWN,
    ClassBins,
    ClassWindow,
    MulticlassPerformance,
    class_index,
    class_probabilities,
    top_probability,
)
from tripwire.profile.numeric import Floats, Ints, NumericBins, NumericWindow
from tripwire.profile.outputs import (
    BinaryPerformance,
    CostWindow,
    PredictionWindow,
    RegressionPerformance,
)
from tripwire.profile.proxies import ProxyWindow, proxy_values
from tripwire.profile.quantile_sketch import QuantileSketch
from tripwire.profile.segments import choose_segments, value_column
from tripwire.tabular import categorical_values, numeric_values, type_kind

ALL = "all"
FeatureBins = NumericBins | CategoricalBins
FeatureWindow = NumericWindow | CategoricalWindow
Performance = BinaryPerformance | RegressionPerformance | MulticlassPerformance


@dataclass(frozen=True)
class Settings:
    """How bins are learned. Defaults follow DESIGN.md (10 PSI buckets) and the issue (>= 1,000
    grid points)."""

    buckets: int = 10
    grid_size: int = 1000
    max_categories: int = 50
    top_segments: int = 5  # unused: the config's segments.top; kept for monitors saved before
    n_jobs: int = 0  # 0: one thread per core


@dataclass(frozen=True)
class Bins:
    """Everything learned from the reference except counts."""

    features: dict[str, FeatureBins]
    prediction: NumericBins
    column_kinds: dict[str, str]
    segments: tuple[str, ...]  # "column=value": the top ones by business value, then pinned
    reference_columns: tuple[str, ...] = ()
    # Each tracked segment's business value in the reference (its row count without a value
    # column); empty in monitors saved before segments were chosen by value.
    segment_values: dict[str, float] = field(default_factory=dict)
    # A multiclass model's classes and its class probabilities' bins (``prediction`` is then
    # fitted on the top class probability).
    classes: ClassBins | None = None
    # Performance estimation without labels, learnt on the reference's labelled rows (None
    # when it has none).
    estimation: Estimation | None = None

    def numeric(self, name: str) -> NumericBins:
        bins = self.features[name]
        assert isinstance(bins, NumericBins), f"{name} is not numeric"
        return bins

    def categorical(self, name: str) -> CategoricalBins:
        bins = self.features[name]
        assert isinstance(bins, CategoricalBins), f"{name} is not categorical"
        return bins


@dataclass(frozen=True)
class SegmentWindow:
    """One window (or the reference) of one segment."""

    n_rows: int
    features: dict[str, FeatureWindow]
    notes: dict[str, str] = field(default_factory=dict)  # feature -> what was wrong with it
    prediction: PredictionWindow | None = None
    performance: Performance | None = None
    n_labelled: int = 0
    cost: CostWindow | None = None
    # Seconds from prediction to label, over the labelled rows whose label time is known.
    label_lag: QuantileSketch | None = None
    proxies: dict[str, ProxyWindow] = field(default_factory=dict)  # by proxy name
    classes: ClassWindow | None = None  # a multiclass model's predicted classes
    estimated: Estimated | None = None  # estimated performance (see profile.estimated)

    def __add__(self, other: SegmentWindow) -> SegmentWindow:
        return SegmentWindow(
            n_rows=self.n_rows + other.n_rows,
            features=_merge_maps(self.features, other.features),
            notes={**self.notes, **other.notes},
            prediction=_merge_optional(self.prediction, other.prediction),
            performance=_merge_optional(self.performance, other.performance),  # type: ignore[type-var,arg-type]
            n_labelled=self.n_labelled + other.n_labelled,
            cost=_merge_optional(self.cost, other.cost),
            label_lag=_merge_optional(self.label_lag, other.label_lag),
            proxies=_merge_maps(self.proxies, other.proxies),
            classes=_merge_optional(self.classes, other.classes),
            estimated=_merge_optional(self.estimated, other.estimated),  # type: ignore[type-var,arg-type]
        )


T = TypeVar(
    "T",
    PredictionWindow,
    BinaryPerformance,
    RegressionPerformance,
    CostWindow,
    QuantileSketch,
    ClassWindow,
    BinaryEstimate,
    MulticlassEstimate,
    RegressionEstimate,
)
W = TypeVar("W")


def _merge_optional(a: T | None, b: T | None) -> T | None:
    if a is None or b is None:
        return a if b is None else b
    return a + b


def _merge_maps(a: dict[str, W], b: dict[str, W]) -> dict[str, W]:
    merged = dict(a)
    for key, value in b.items():
        merged[key] = merged[key] + value if key in merged else value  # type: ignore[operator]
    return merged


def merge_windows(windows: Sequence[dict[str, SegmentWindow]]) -> dict[str, SegmentWindow]:
    """Merge per-segment windows (e.g. days into a week) by addition."""
    merged: dict[str, SegmentWindow] = {}
    for window in windows:
        merged = _merge_maps(merged, window)
    return merged


def _parallel(tasks: list[Callable[[], W]], n_jobs: int) -> list[W]:
    workers = n_jobs or os.cpu_count() or 1
    if workers == 1 or len(tasks) <= 1:
        return [task() for task in tasks]
    # numpy's sort and Arrow's kernels release the GIL, so threads use every core.
    with ThreadPoolExecutor(max_workers=workers) as pool:
        return list(pool.map(lambda task: task(), tasks))


def _require(table: pa.Table, column: str, what: str) -> pa.ChunkedArray:
    if column not in table.column_names:
        raise TripwireError(
            f"column '{column}' ({what}) is missing; the data has: {', '.join(table.column_names)}"
        )
    return table.column(column)


def fit_bins(config: ModelConfig, reference: pa.Table, settings: Settings) -> Bins:
    """Learn bins for every configured feature and the prediction from the reference."""
    columns = config.columns
    missing = [name for name in columns.features if name not in reference.column_names]
    if missing:
        raise TripwireError(
            f"the reference lacks feature column(s) {', '.join(missing)} named in the config"
        )
    probabilities = (
        class_probabilities(config, reference, required=True)
        if config.task == "multiclass"
        else None
    )
    scores = _scores(config, reference, probabilities)

    def fit_one(name: str) -> FeatureBins:
        column = reference.column(name)
        if columns.features[name] == "numeric":
            return NumericBins.fit(numeric_values(column)[0], settings.buckets, settings.grid_size)
        return CategoricalBins.fit(categorical_values(column), settings.max_categories)

    names = list(columns.features)
    fitted = _parallel([partial(fit_one, name) for name in names], settings.n_jobs)
    segments = choose_segments(config, reference)
    classes = None
    if probabilities is not None:
        assert columns.probabilities is not None
        classes = ClassBins.fit(
            list(columns.probabilities), probabilities, settings.buckets, settings.grid_size
        )
    return Bins(
        features=dict(zip(names, fitted, strict=True)),
        prediction=NumericBins.fit(scores, settings.buckets, settings.grid_size),
        column_kinds={name: type_kind(reference.column(name).type) for name in names},
        segments=tuple(segments),
        reference_columns=tuple(reference.column_names),
        segment_values=segments,
        classes=classes,
        estimation=fit_estimation(config, reference, scores, classes),
    )


def _scores(config: ModelConfig, table: pa.Table, probabilities: Floats | None) -> Floats:
    """The score column; for a multiclass model, its top class probability (the prediction
    column holds the predicted class, which must be there all the same)."""
    column = _require(table, config.columns.prediction, "prediction")
    if probabilities is not None:
        return top_probability(probabilities)
    return numeric_values(column)[0]


@dataclass
class _Columns:
    """A table's columns converted once to what the profilers need."""

    n_rows: int
    numeric: dict[str, Floats]
    categorical: dict[str, pa.ChunkedArray]
    notes: dict[str, str]
    scores: Floats | None
    labels: Floats | None
    latency: Floats | None
    errors: np.ndarray | None
    cost: Floats | None
    label_lag: Floats | None  # seconds; NaN where the label or its time is missing
    proxies: dict[str, Floats]  # per proxy name, each row's number (see profile.proxies)
    # A multiclass model's (K, n) class probabilities and predicted class index (UNKNOWN for
    # none of the classes); its labels are then class indexes too, NaN for none.
    probabilities: Floats | None = None
    predicted: Ints | None = None
    prediction_null: np.ndarray | None = None
    # What estimation needs per row: calibrated probabilities (n,) or (K, n), or (2, n)
    # predicted losses (see profile.estimated).
    estimation: Floats | None = None

    def take(self, mask: np.ndarray) -> _Columns:
        arrow_mask = pa.array(mask)

        def sub(a: Floats | None) -> Floats | None:
            return None if a is None else a[mask]

        return _Columns(
            n_rows=int(np.count_nonzero(mask)),
            numeric={k: v[mask] for k, v in self.numeric.items()},
            categorical={k: pc.filter(v, arrow_mask) for k, v in self.categorical.items()},
            notes=self.notes,
            scores=sub(self.scores),
            labels=sub(self.labels),
            latency=sub(self.latency),
            errors=sub(self.errors),
            cost=sub(self.cost),
            label_lag=sub(self.label_lag),
            proxies={k: v[mask] for k, v in self.proxies.items()},
            probabilities=_columns_of(self.probabilities, mask),
            predicted=sub(self.predicted),  # type: ignore[arg-type]
            prediction_null=sub(self.prediction_null),
            estimation=_columns_of(self.estimation, mask),
        )


def _columns_of(a: Floats | None, mask: np.ndarray) -> Floats | None:
    """The masked rows of a (n,) or (K, n) array."""
    return None if a is None else a[..., mask]


def _read_columns(config: ModelConfig, table: pa.Table, bins: Bins) -> _Columns:
    columns = config.columns
    numeric: dict[str, Floats] = {}
    categorical: dict[str, pa.ChunkedArray] = {}
    notes: dict[str, str] = {}
    for name, kind in columns.features.items():
        if name not in table.column_names:
            notes[name] = "column missing from the data"
            continue
        column = table.column(name)
        seen = type_kind(column.type)
        expected = bins.column_kinds.get(name)
        if kind == "numeric":
            numeric[name], problem = numeric_values(column)
        else:
            categorical[name], problem = categorical_values(column), None
        if problem:
            notes[name] = problem
        elif expected and seen != expected and column.null_count < len(column):
            # An all-null column has no type to speak of; null_share reports it instead.
            notes[name] = f"type changed: {expected} in the reference, {seen} now"

    # Columns the config names (latency, status, label...) are expected even when the
    # reference, often the training set, lacks them.
    expected_columns = {
        *bins.reference_columns,
        *columns.features,
        *columns.roles().values(),
        *columns.segments,
        *(proxy.column for proxy in config.proxies),
        *(columns.probabilities or {}).values(),
        *filter(None, [value_column(config)]),
        columns.time_column,
        columns.label_time_column,  # stored events always carry it
    }
    for name in table.column_names:
        if bins.reference_columns and name not in expected_columns:
            notes[name] = "new column, not in the reference"

    def optional(column: str | None) -> Floats | None:
        if column is None or column not in table.column_names:
            return None
        return numeric_values(table.column(column))[0]

    errors = None
    if columns.status and columns.status in table.column_names:
        status = categorical_values(table.column(columns.status))
        ok = pc.is_in(status, value_set=pa.array(columns.ok_status, pa.string()))
        errors = ~pc.fill_null(ok, True).to_numpy(zero_copy_only=False)
    probabilities = predicted = prediction_null = None
    labels = optional(columns.label)
    if bins.classes is not None:
        probabilities = class_probabilities(config, table, required=False)
        classes = bins.classes.classes
        prediction = _require(table, columns.prediction, "prediction")
        predicted = class_index(prediction, classes)
        prediction_null = pc.is_null(prediction).to_numpy(zero_copy_only=False)
        if columns.label and columns.label in table.column_names:
            index = class_index(table.column(columns.label), classes)
            labels = np.where(index == UNKNOWN, np.nan, index.astype(np.float64))
    scores = _scores(config, table, probabilities)
    return _Columns(
        n_rows=table.num_rows,
        numeric=numeric,
        categorical=categorical,
        notes=notes,
        scores=scores,
        labels=labels,
        latency=optional(columns.latency_ms),
        errors=errors,
        cost=optional(columns.cost),
        label_lag=_label_lag(table, columns.time_column, columns.label_time_column),
        proxies=proxy_values(config, table),
        probabilities=probabilities,
        predicted=predicted,
        prediction_null=prediction_null,
        estimation=_estimation_inputs(bins.estimation, numeric, scores, probabilities),
    )


def _estimation_inputs(
    estimation: Estimation | None,
    numeric: dict[str, Floats],
    scores: Floats,
    probabilities: Floats | None,
) -> Floats | None:
    """Per row, once for all segments: calibrated class probabilities or predicted losses
    (a binary model's probabilities are computed per segment, on its sorted scores)."""
    if estimation is None:
        return None
    if estimation.loss is not None:
        return estimation.loss.losses(numeric, scores)
    if probabilities is not None:
        return estimation.class_probabilities(probabilities)
    return None


def _label_lag(table: pa.Table, time: str, label_time: str) -> Floats | None:
    """Seconds from each row's timestamp to its label's, or None without both columns."""
    if time not in table.column_names or label_time not in table.column_names:
        return None
    try:
        start, end = (_epoch_seconds(table.column(c)) for c in (time, label_time))
    except pa.ArrowException:
        return None  # not timestamps: the lag is unknown, which is no reason to fail a window
    lag: Floats = end - start
    return lag


def _epoch_seconds(column: pa.ChunkedArray) -> Floats:
    # Unsafe: nanoseconds (pandas' unit) are truncated to microseconds, not refused.
    micros = pc.cast(pc.cast(column, pa.timestamp("us"), safe=False), pa.int64())
    seconds: Floats = pc.fill_null(pc.cast(micros, pa.float64()), np.nan).to_numpy() / 1e6
    return seconds


def _prediction(config: ModelConfig, bins: Bins, data: _Columns) -> PredictionWindow | None:
    if data.scores is None:
        return None
    binary = config.task == "binary"
    return PredictionWindow.of(data.scores, bins.prediction, config.decision_threshold, binary)


def _classes(bins: Bins, data: _Columns) -> ClassWindow | None:
    if bins.classes is None or data.predicted is None or data.probabilities is None:
        return None
    assert data.prediction_null is not None
    k = len(bins.classes.classes)
    return ClassWindow.of(data.predicted, data.prediction_null, data.probabilities, k)


def _estimated(config: ModelConfig, bins: Bins, data: _Columns) -> Estimated | None:
    """Estimated performance of the window's rows, labelled or not."""
    estimation, inputs = bins.estimation, data.estimation
    if estimation is None or data.scores is None:
        return None
    if estimation.loss is None and bins.classes is None:  # binary
        calibration = estimation.calibrations[0]
        grid, threshold = bins.prediction.grid, config.decision_threshold
        return BinaryEstimate.of(data.scores, calibration, grid, threshold)
    assert inputs is not None
    if estimation.loss is not None:
        return RegressionEstimate.of(inputs, estimation.loss.kappa)
    assert bins.classes is not None
    assert data.probabilities is not None and data.predicted is not None
    return MulticlassEstimate.of(data.probabilities, inputs, data.predicted, bins.classes)


def _performance(config: ModelConfig, bins: Bins, data: _Columns) -> tuple[Performance | None, int]:
    """Realized performance on the rows with a valid label, and how many there were."""
    if data.labels is None or data.scores is None:
        return None, 0
    labelled = _labelled(data)
    if bins.classes is not None:
        assert data.predicted is not None and data.probabilities is not None
        y_index = np.where(labelled, np.nan_to_num(data.labels, nan=UNKNOWN), UNKNOWN)
        found = MulticlassPerformance.of(
            y_index.astype(np.int64), data.predicted, data.probabilities, bins.classes
        )
        return found, found.n_rows
    y, p = data.labels[labelled], data.scores[labelled]
    if config.task != "binary":
        return RegressionPerformance.of(y, p), int(y.size)
    valid = (y == 0) | (y == 1)
    y, p = y[valid], p[valid]
    return BinaryPerformance.of(y, p, bins.prediction, config.decision_threshold), int(y.size)


def _labelled(data: _Columns) -> np.ndarray:
    assert data.labels is not None and data.scores is not None
    labelled: np.ndarray = ~np.isnan(data.labels) & ~np.isnan(data.scores)
    return labelled


def _label_lag_sketch(data: _Columns) -> QuantileSketch | None:
    if data.label_lag is None or data.labels is None or data.scores is None:
        return None
    lag = data.label_lag[_labelled(data)]
    # A label dated before its prediction is a clock or join problem; it counts as no lag.
    return QuantileSketch.of(np.maximum(lag, 0.0))


def _cost(data: _Columns) -> CostWindow | None:
    if data.latency is None and data.errors is None and data.cost is None:
        return None
    present_cost = data.cost[~np.isnan(data.cost)] if data.cost is not None else np.empty(0)
    return CostWindow(
        latency=QuantileSketch.of(data.latency) if data.latency is not None else None,
        n_status=data.n_rows if data.errors is not None else 0,
        n_error=int(np.count_nonzero(data.errors)) if data.errors is not None else 0,
        n_cost=int(present_cost.size),
        cost_sum=float(present_cost.sum()),
    )


def _profile_segment(
    config: ModelConfig, bins: Bins, data: _Columns, settings: Settings
) -> SegmentWindow:
    names = [*data.numeric, *data.categorical]
    tasks: list[Callable[[], Any]] = [
        *(partial(NumericWindow.of, v, bins.numeric(k)) for k, v in data.numeric.items()),
        *(
            partial(CategoricalWindow.of, v, bins.categorical(k))
            for k, v in data.categorical.items()
        ),
        # The outputs share the pool with the features, so no core idles while they run.
        partial(_prediction, config, bins, data),
        partial(_performance, config, bins, data),
        partial(_cost, data),
        partial(_label_lag_sketch, data),
        partial(_classes, bins, data),
        partial(_estimated, config, bins, data),
    ]
    *features, prediction, (performance, n_labelled), cost, label_lag, classes, estimated = (
        _parallel(tasks, settings.n_jobs)
    )
    return SegmentWindow(
        n_rows=data.n_rows,
        features=dict(zip(names, features, strict=True)),
        notes=dict(data.notes),
        prediction=prediction,
        performance=performance,
        n_labelled=n_labelled,
        cost=cost,
        label_lag=label_lag,
        proxies={name: ProxyWindow.of(values) for name, values in data.proxies.items()},
        classes=classes,
        estimated=estimated,
    )


def profile_table(
    config: ModelConfig, bins: Bins, table: pa.Table, settings: Settings
) -> dict[str, SegmentWindow]:
    """Profile a table overall ("all") and for each of the reference's top segments."""
    data = _read_columns(config, table, bins)
    windows = {ALL: _profile_segment(config, bins, data, settings)}
    for segment in bins.segments:
        column, _, value = segment.partition("=")
        if column not in table.column_names:
            continue
        texts = categorical_values(table.column(column))
        mask = pc.fill_null(pc.equal(texts, value), False).to_numpy(zero_copy_only=False)
        windows[segment] = _profile_segment(config, bins, data.take(mask), settings)
    return windows
