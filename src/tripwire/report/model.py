"""The result of checking one window: metric rows of the four layers, plus histograms."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from tripwire.layers.rows import LAYERS, SEVERITY, VERDICTS, Layer, MetricRow, Status


class Histogram(BaseModel):
    """Reference and current shares of one feature on its PSI buckets or categories."""

    labels: list[str]
    reference: list[float]
    current: list[float]


class Report(BaseModel):
    """Everything ``Monitor.check`` found in one window."""

    model: str
    task: str
    window: str | None = None
    n_rows: int
    reference_rows: int
    rows: list[MetricRow]
    histograms: dict[str, Histogram] = {}
    # How late labels arrive (the config's label_lag): from 7 days on, drift is the leading
    # indicator and performance the lagging confirmation (see report.estimated).
    label_lag: timedelta | None = None
    # Where performance is estimated without labels: how the reference's scores were made
    # probabilities, one line per calibration decision.
    estimation: list[str] = []

    def to_dict(self) -> dict[str, Any]:
        return self.model_dump(mode="json")

    def to_json(self, indent: int | None = 2) -> str:
        return self.model_dump_json(indent=indent)

    def to_html(self, path: str | Path | None = None) -> str:
        """Render a self-contained HTML page; write it to ``path`` when given."""
        from tripwire.report.html import render_report

        html = render_report(self)
        if path is not None:
            Path(path).write_text(html, encoding="utf-8")
        return html

    def select(
        self,
        layer: Layer | None = None,
        metric: str | None = None,
        feature: str | None = None,
        segment: str | None = "all",
    ) -> list[MetricRow]:
        return [
            r
            for r in self.rows
            if (layer is None or r.layer == layer)
            and (metric is None or r.metric == metric)
            and (feature is None or r.feature == feature)
            and (segment is None or r.segment == segment)
        ]

    def value(self, metric: str, feature: str | None = None, segment: str = "all") -> float | None:
        """The value of one metric, or None when absent or undefined."""
        rows = self.select(metric=metric, feature=feature, segment=segment)
        return rows[0].value if rows else None

    def status(self, layer: Layer | None = None, segment: str | None = "all") -> Status:
        """The worst verdict among the rows of a layer.

        ``insufficient_labels`` or ``no_data`` when the layer has rows but none with a verdict
        (e.g. too few labels yet), ``ok`` when it has no rows at all.
        """
        rows = self.select(layer=layer, segment=segment)
        judged = [r.status for r in rows if r.status in VERDICTS]
        if not judged:
            withheld = [r.status for r in rows if r.status in ("insufficient_labels", "no_data")]
            return min(withheld, key=SEVERITY.__getitem__, default="ok")
        return min(judged, key=SEVERITY.__getitem__)

    def flagged(self, segment: str | None = None) -> list[MetricRow]:
        """Rows at ``watch``, ``alert`` or ``error``, worst first, in rank order within a status."""
        rows = [r for r in self.select(segment=segment) if r.status in ("alert", "watch", "error")]
        return sorted(rows, key=lambda r: SEVERITY[r.status])

    def features(self, segment: str = "all") -> list[str]:
        """Features ranked by importance x drift, as the inputs layer ordered them."""
        seen: dict[str, None] = {}
        for row in self.select(layer="inputs", segment=segment):
            if row.feature is not None:
                seen.setdefault(row.feature)
        return list(seen)

    def layers(self) -> dict[Layer, Status]:
        return {layer: self.status(layer) for layer in LAYERS}
