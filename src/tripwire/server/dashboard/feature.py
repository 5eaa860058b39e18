"""A feature's page: its metrics in every segment, its drift over time, and its histogram
against the reference's in windows across the range shown.

The histograms are the stored window profiles' bucket counts (the reference's PSI buckets of a
numeric feature, its vocabulary of a categorical one) beside the reference profile's, which the
job keeps in the store with the windows it checks; only that feature's bins and counts are read
from each profile (:mod:`.profiles`), and only that feature's metric rows from the store.
"""

from __future__ import annotations

from datetime import datetime

import numpy as np

from tripwire.errors import TripwireError
from tripwire.layers.rows import MetricRow
from tripwire.server.dashboard.charts import Threshold, histogram, legend, line_chart
from tripwire.server.dashboard.html import badge, esc, href, number, page, table, when
from tripwire.server.dashboard.model import TOP_SEGMENTS, range_nav, segment_series
from tripwire.server.dashboard.profiles import (
    feature_counts,
    reference_counts,
    stored_reference_counts,
)
from tripwire.server.dashboard.series import grid
from tripwire.server.reader import NotFoundError, StoreReader, metric_rows

__all__ = ["HISTOGRAM_WINDOWS", "feature_page"]

HISTOGRAM_WINDOWS = 8
"""Windows whose histogram is drawn, evenly spread over the range shown (the latest always)."""
CHART_METRICS = ("psi", "js", "null_share", "unseen_share", "out_of_range_share")
NO_REFERENCE = (
    '<p class="muted">No reference profile is stored for this model yet (the job stores it as '
    "it checks windows): windows only.</p>"
)


def sampled(windows: list[datetime], count: int = HISTOGRAM_WINDOWS) -> list[datetime]:
    """``count`` windows evenly spread over ``windows``, the last one included."""
    if len(windows) <= count:
        return list(windows)
    picks = np.linspace(0, len(windows) - 1, count).round().astype(int)
    return [windows[i] for i in dict.fromkeys(picks.tolist())]


def _metrics_table(rows: list[MetricRow], segments: list[str]) -> str:
    metrics = list(dict.fromkeys(r.metric for r in rows))
    cells = {(r.segment, r.metric): r for r in rows}
    body = []
    for segment in ["all", *segments]:
        line = [esc(segment)]
        for metric in metrics:
            row = cells.get((segment, metric))
            if row is None:
                line.append("\u2014")
                continue
            text = esc(number(row.value))
            if row.status in ("alert", "watch", "error"):
                text += " " + badge(row.status)
            line.append(text)
        body.append(line)
    return table(["segment", *metrics], body, numeric=tuple(range(1, len(metrics) + 1)))


def _reference(
    reader: StoreReader, model: str, feature: str, segment: str
) -> tuple[list[str], list[float] | None, str]:
    """The buckets' labels, the reference's shares in them and a note when there are none."""
    stored = reader.reference(model)
    monitor = reader.monitors.get(model)
    try:
        if stored is not None:
            labels, ref = stored_reference_counts(stored.state, segment, feature)
        elif monitor is not None:  # a store filled before the job kept the reference
            labels, ref = reference_counts(monitor.bins_, monitor.reference_, segment, feature)
        else:
            return [], None, NO_REFERENCE
    except TripwireError as exc:
        return [], None, f'<p class="muted">The stored reference is unreadable: {esc(exc)}</p>'
    return labels, ref.shares if ref is not None else None, ""


def _histograms(
    reader: StoreReader, model: str, feature: str, segment: str, shown: list[datetime]
) -> str:
    labels, reference, note = _reference(reader, model, feature, segment)
    figures = []
    for start in sampled(shown):
        profile = reader.profile_bytes(model, start)
        try:
            counts = feature_counts(profile, segment, feature) if profile is not None else None
        except TripwireError as exc:
            figures.append(
                f"<figure><figcaption>{esc(when(start))}</figcaption>"
                f'<p class="muted">{esc(exc)}</p></figure>'
            )
            continue
        if counts is None:
            figures.append(
                f"<figure><figcaption>{esc(when(start))}</figcaption>"
                '<p class="muted">Not in this window.</p></figure>'
            )
            continue
        refs = reference if reference is not None and len(reference) == len(counts.counts) else None
        nulls = counts.n_null / counts.n_rows if counts.n_rows else 0.0
        figures.append(
            f"<figure><figcaption>{esc(when(start))}</figcaption>"
            + histogram(labels, counts.shares, refs, label=f"{feature} on {when(start)}")
            + f'<p class="muted small">{counts.n_rows:,} rows, {nulls:.1%} null</p></figure>'
        )
    key = (
        '<div class="legend"><span><span class="key ref"></span>reference</span>'
        '<span><span class="key c0"></span>window</span></div>'
    )
    return note + key + f'<div class="hists">{"".join(figures)}</div>'


def feature_page(
    reader: StoreReader,
    model: str,
    feature: str,
    *,
    windows: int,
    segment: str,
    signed_in: bool,
) -> str:
    config = reader.config(model)
    kind = config.columns.features.get(feature)
    if kind is None:
        raise NotFoundError(f"{model} has no feature {feature!r}")
    starts = reader.window_starts(model)
    crumbs = (
        f'<p class="muted"><a href="{esc(href())}">All models</a> / '
        f'<a href="{esc(href("models", model))}">{esc(model)}</a></p>'
    )
    importance = reader.importance(model).get(feature)
    head = (
        f"{crumbs}<h1>{esc(feature)}</h1><p>{esc(kind)} feature of {esc(model)}"
        f" \u00b7 importance {esc(number(importance))}</p>"
    )
    if not starts:
        return page(feature, head + '<p class="muted">No windows yet.</p>', signed_in=signed_in)
    shown = starts[-windows:]
    mine = reader.window_rows(model, starts[-1], features=[feature])
    segments = reader.segments(model, mine["segment"].to_pylist())
    if segment != "all" and segment not in segments:
        segment = "all"
    top = segments[:TOP_SEGMENTS]
    rows = metric_rows(mine)
    metrics = [m for m in CHART_METRICS if m in {r.metric for r in rows}]
    history = (
        reader.history(model, metrics, since=shown[0], features=[feature]) if metrics else None
    )
    figures = []
    if history is not None:
        g = grid(history, shown)
        calibrated = reader.calibrated(model)
        for metric in metrics:
            series = segment_series(g, metric, feature, top)
            level = calibrated.get((metric, feature, "all"))
            label = "calibrated threshold"
            if level is None:
                level = g.latest_threshold((metric, feature, "all"))
                label = "alert level"
            thresholds = [Threshold(level, label)] if level is not None else []
            figures.append(
                f"<figure><figcaption>{esc(metric)}</figcaption>"
                + line_chart(shown, series, thresholds=thresholds, label=f"{metric} of {feature}")
                + legend(series, thresholds)
                + "</figure>"
            )
    segment_links = "".join(
        f'<a href="{esc(href("models", model, "features", feature, windows=windows, segment=s))}"'
        + (' class="on"' if s == segment else "")
        + f">{esc(s)}</a>"
        for s in ["all", *segments]
    )
    body = (
        head
        + range_nav(
            href("models", model, "features", feature), windows, len(starts), segment=segment
        )
        + f"<h2>Latest window ({esc(when(starts[-1]))})</h2>"
        + _metrics_table(rows, segments)
        + "<h2>Over time</h2>"
        + f'<div class="charts">{"".join(figures)}</div>'
        + "<h2>Reference vs current</h2>"
        + f'<nav class="segments">Segment: {segment_links}</nav>'
        + _histograms(reader, model, feature, segment, shown)
    )
    return page(f"{feature} · {model}", body, signed_in=signed_in)
