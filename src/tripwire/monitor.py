"""``Monitor``: fit a reference once, then check windows of production data against it.

The contract follows scikit-learn's estimators: settings in the constructor, ``fit`` learns
from the reference and stores what it learned in attributes ending in ``_``, and ``check``
computes on new data without changing that state.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Self

from tripwire.config import ModelConfig, load_config, parse_config
from tripwire.errors import TripwireError
from tripwire.layers.classes import class_rows
from tripwire.layers.cost import cost_rows
from tripwire.layers.estimated import estimated_rows
from tripwire.layers.inputs import input_rows
from tripwire.layers.performance import performance_rows
from tripwire.layers.predictions import prediction_rows
from tripwire.layers.proxies import proxy_rows
from tripwire.layers.rows import MetricRow
from tripwire.profile import serialize
from tripwire.profile.categorical import CategoricalBins, CategoricalWindow
from tripwire.profile.numeric import NumericWindow
from tripwire.profile.window import (
    ALL,
    Bins,
    SegmentWindow,
    Settings,
    fit_bins,
    profile_table,
)
from tripwire.report.model import Histogram, Report
from tripwire.stats.intervals import z_for
from tripwire.tabular import to_table

Windows = dict[str, SegmentWindow]


@serialize.register
@dataclass(frozen=True)
class FittedState:
    """What a saved monitor holds: its config, settings, bins and the reference's profile."""

    config_yaml: str
    settings: Settings
    bins: Bins
    reference: dict[str, SegmentWindow]
    importance: dict[str, float]


class Monitor:
    """Watch one model: four layers of metrics for any window, against a fitted reference.

    Parameters
    ----------
    config
        The model's :class:`~tripwire.config.ModelConfig` (see ``tripwire.yaml``).
    settings
        Binning settings; the defaults follow DESIGN.md.
    min_rows
        Rows a segment needs in a window, and labelled rows performance needs, for a verdict;
        by default the config's ``segments.min_rows`` and ``performance.min_labels``.

    Examples
    --------
    >>> import numpy as np, pyarrow as pa
    >>> from tripwire.config import parse_config
    >>> config = parse_config('''
    ... name: toy
    ... task: binary
    ... columns: {features: {x: numeric}, prediction: score}
    ... ''')
    >>> rng = np.random.default_rng(0)
    >>> reference = pa.table({"x": rng.normal(size=5000), "score": rng.random(5000)})
    >>> shifted = pa.table({"x": rng.normal(1.0, size=5000), "score": rng.random(5000)})
    >>> report = Monitor(config).fit(reference).check(shifted)
    >>> report.status("inputs"), report.value("psi", feature="x") > 0.25
    ('alert', True)
    """

    def __init__(
        self, config: ModelConfig, *, settings: Settings | None = None, min_rows: int | None = None
    ) -> None:
        self.config = config
        self.settings = settings or Settings()
        self.min_rows = min_rows

    @classmethod
    def from_yaml(cls, path: str | Path, **kwargs: Any) -> Monitor:
        return cls(load_config(path), **kwargs)

    def fit(self, reference: Any) -> Self:
        """Learn bins and profile the reference (a table, DataFrame, or None for the config's
        ``reference`` file)."""
        from tripwire.tabular import read_table

        if reference is None:
            if self.config.reference is None:
                raise TripwireError("no reference given and the config names none")
            reference = read_table(self.config.resolve_path(self.config.reference))
        table = to_table(reference)
        self.bins_ = fit_bins(self.config, table, self.settings)
        self.reference_ = profile_table(self.config, self.bins_, table, self.settings)
        self.importance_ = self.config.resolve_importance()
        return self

    def _fitted(self) -> tuple[Bins, Windows]:
        if not hasattr(self, "bins_"):
            raise TripwireError("this monitor is not fitted: call fit(reference) or load(path)")
        return self.bins_, self.reference_

    def profile(self, data: Any) -> Windows:
        """Profile a window: one mergeable profile per segment, on the reference's bins."""
        bins, _ = self._fitted()
        return profile_table(self.config, bins, to_table(data), self.settings)

    def check(self, current: Any, window: str | None = None) -> Report:
        """Compute the four layers for ``current`` against the reference."""
        return self.evaluate(self.profile(current), window)

    def evaluate(self, windows: Windows, window: str | None = None) -> Report:
        """The four layers from profiles alone (e.g. days merged into a week)."""
        bins, reference = self._fitted()
        rows: list[MetricRow] = []
        binary = self.config.task == "binary"
        min_rows = self.config.segments.min_rows if self.min_rows is None else self.min_rows
        performance = self.config.performance
        if self.min_rows is not None:
            performance = performance.model_copy(update={"min_labels": self.min_rows})
        z = z_for(performance.confidence)
        for segment, current in windows.items():
            ref = reference.get(segment)
            if ref is None:
                continue
            if segment != ALL and current.n_rows < min_rows:
                rows.append(
                    MetricRow(
                        layer="inputs",
                        metric="rows",
                        segment=segment,
                        value=current.n_rows,
                        status="no_data",
                        n=current.n_rows,
                        reason=f"{current.n_rows} rows, a segment verdict needs {min_rows}",
                    )
                )
                continue
            rows += input_rows(bins, ref, current, segment, self.importance_)
            rows += prediction_rows(ref, current, segment, binary)
            rows += class_rows(bins, ref, current, segment)
            rows += performance_rows(ref, current, segment, performance)
            rows += estimated_rows(ref, current, segment, performance)
            rows += proxy_rows(self.config, ref, current, segment, z)
            rows += cost_rows(ref, current, segment)
        overall = windows.get(ALL)
        return Report(
            model=self.config.name,
            task=self.config.task,
            window=window,
            n_rows=overall.n_rows if overall else 0,
            reference_rows=reference[ALL].n_rows,
            rows=rows,
            histograms=_histograms(bins, reference[ALL], overall) if overall else {},
            label_lag=self.config.label_lag,
            estimation=bins.estimation.reasons() if bins.estimation else [],
        )

    def save(self, path: str | Path) -> None:
        """Save the fitted state (config and reference profile), not the reference data."""
        Path(path).write_bytes(self.to_bytes())

    def to_bytes(self) -> bytes:
        """The fitted state as :meth:`save` writes it (pickle-free), e.g. to send elsewhere.

        Kept once made (it takes seconds for a wide model, and the job stores it beside every
        run's windows) for as long as the fitted attributes are the same objects."""
        bins, reference = self._fitted()
        parts = (self.config, self.settings, bins, reference, self.importance_)
        kept: tuple[tuple[object, ...], bytes] | None = getattr(self, "_state_bytes", None)
        if kept is not None and all(a is b for a, b in zip(kept[0], parts, strict=True)):
            return kept[1]
        state = FittedState(self.config.to_yaml(), self.settings, bins, reference, self.importance_)
        data = serialize.to_bytes(state)
        self._state_bytes = (parts, data)
        return data

    @classmethod
    def load(cls, path: str | Path) -> Monitor:
        path = Path(path)
        if not path.exists():
            raise TripwireError(f"{path}: no such file")
        return cls.from_bytes(path.read_bytes(), source=str(path))

    @classmethod
    def from_bytes(cls, data: bytes, source: str = "<bytes>") -> Monitor:
        """The monitor :meth:`to_bytes` gave; ``source`` names the bytes in errors."""
        state = serialize.from_bytes(data, source=source)
        if not isinstance(state, FittedState):
            raise TripwireError(f"{source}: not a saved monitor")
        monitor = cls(parse_config(state.config_yaml, source=source), settings=state.settings)
        monitor.bins_, monitor.reference_ = state.bins, state.reference
        monitor.importance_ = state.importance
        parts = (monitor.config, monitor.settings, state.bins, state.reference, state.importance)
        monitor._state_bytes = (parts, data)
        return monitor


def _histograms(
    bins: Bins, reference: SegmentWindow, current: SegmentWindow
) -> dict[str, Histogram]:
    out = {}
    for name, feature_bins in bins.features.items():
        ref, cur = reference.features.get(name), current.features.get(name)
        if ref is None or cur is None:
            continue
        if isinstance(ref, NumericWindow) and isinstance(cur, NumericWindow):
            edges = [f"{e:.4g}" for e in feature_bins.psi_edges]  # type: ignore[union-attr]
            labels = [f"[{a}, {b})" for a, b in itertools.pairwise(edges)]
            ref_counts, cur_counts = ref.psi_counts, cur.psi_counts
        elif isinstance(ref, CategoricalWindow) and isinstance(cur, CategoricalWindow):
            assert isinstance(feature_bins, CategoricalBins)
            labels = ["(other)" if x == feature_bins.labels[-1] else x for x in feature_bins.labels]
            ref_counts, cur_counts = ref.counts, cur.counts
        else:
            continue
        out[name] = Histogram(
            labels=labels,
            reference=[float(c) / max(ref.n, 1) for c in ref_counts],
            current=[float(c) / max(cur.n, 1) for c in cur_counts],
        )
    return out
