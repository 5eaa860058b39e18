"""Inline SVG charts drawn in Python: line charts over windows, sparklines, histograms.

Windows are equally spaced on the x axis (a chart is over consecutive stored windows); missing
values break a line rather than being interpolated. Colours come from the style sheet's classes
(``s0`` … ``s5``), so the SVG carries no style of its own.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

from tripwire.server.dashboard.html import esc, number, when

__all__ = ["Band", "Series", "Threshold", "histogram", "legend", "line_chart", "sparkline"]

PALETTE = 6


@dataclass(frozen=True)
class Series:
    """One line: its values aligned with the chart's windows (None where there is none)."""

    name: str
    values: Sequence[float | None]
    color: int = 0
    dashed: bool = False
    flagged: Sequence[bool] = field(default_factory=tuple)  # windows drawn as a red point


@dataclass(frozen=True)
class Threshold:
    """A horizontal line at ``value``; ``color`` None draws it in the alert colour."""

    value: float
    label: str
    color: int | None = None


@dataclass(frozen=True)
class Band:
    """A shaded band between two series (the trailing baseline's mean ± k standard deviations)."""

    lower: Sequence[float | None]
    upper: Sequence[float | None]
    label: str


def _fmt(x: float) -> str:
    text = f"{x:.1f}"
    return text[:-2] if text.endswith(".0") else text


def _finite(values: Sequence[float | None]) -> list[float]:
    return [v for v in values if v is not None and math.isfinite(v)]


def _ticks(low: float, high: float, count: int = 4) -> list[float]:
    """About ``count`` round values covering [low, high]."""
    span = high - low
    if span <= 0:
        return [low]
    raw = span / count
    magnitude = 10 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in (1, 2, 2.5, 5, 10) if m * magnitude >= raw)
    first = math.ceil(low / step) * step
    out = []
    value = first
    while value <= high + step * 1e-9:
        out.append(round(value, 12))
        value += step
    return out


def _runs(values: Sequence[float | None]) -> list[list[int]]:
    """Index runs of consecutive finite values."""
    runs: list[list[int]] = []
    current: list[int] = []
    for i, v in enumerate(values):
        if v is not None and math.isfinite(v):
            current.append(i)
        elif current:
            runs.append(current)
            current = []
    if current:
        runs.append(current)
    return runs


def line_chart(
    windows: Sequence[datetime],
    series: Sequence[Series],
    *,
    thresholds: Sequence[Threshold] = (),
    band: Band | None = None,
    shade: tuple[int, int] | None = None,
    width: int = 620,
    height: int = 210,
    label: str = "",
) -> str:
    """A chart of ``series`` over ``windows``; ``shade`` marks a range of window indices."""
    n = len(windows)
    values = [v for s in series for v in _finite(s.values)]
    values += [t.value for t in thresholds if math.isfinite(t.value)]
    if band is not None:
        values += _finite(band.lower) + _finite(band.upper)
    if n == 0 or not values:
        return f'<p class="muted">No values for {esc(label or "this chart")} yet.</p>'
    low, high = min(values), max(values)
    pad = (high - low) * 0.08 or abs(high) * 0.1 or 1.0
    low, high = low - pad, high + pad
    left, right, top, bottom = 52, 12, 8, 22
    plot_w, plot_h = width - left - right, height - top - bottom
    step = plot_w / max(n - 1, 1)

    def x(i: int) -> float:
        return left + (i * step if n > 1 else plot_w / 2)

    def y(v: float) -> float:
        return top + plot_h * (1 - (v - low) / (high - low))

    parts = []
    for tick in _ticks(low, high):
        parts.append(
            f'<line class="grid" x1="{left}" x2="{width - right}" y1="{_fmt(y(tick))}" '
            f'y2="{_fmt(y(tick))}"/><text x="{left - 4}" y="{_fmt(y(tick) + 3)}" '
            f'text-anchor="end">{esc(number(tick))}</text>'
        )
    for i in sorted({0, n // 2, n - 1}):
        anchor = "start" if i == 0 else "end" if i == n - 1 else "middle"
        parts.append(
            f'<text x="{_fmt(x(i))}" y="{height - 6}" text-anchor="{anchor}">'
            f"{esc(when(windows[i]))}</text>"
        )
    if shade is not None:
        a, b = shade
        x0, x1 = max(left, x(a) - step / 2), min(width - right, x(b) + step / 2)
        parts.append(
            f'<rect class="shade" x="{_fmt(x0)}" y="{top}" width="{_fmt(max(x1 - x0, 2))}" '
            f'height="{plot_h}"><title>evidence window</title></rect>'
        )
    if band is not None:
        both = [
            None if lo is None or hi is None else lo
            for lo, hi in zip(band.lower, band.upper, strict=True)
        ]
        for run in _runs(both):
            upper = [f"{_fmt(x(i))},{_fmt(y(band.upper[i]))}" for i in run]  # type: ignore[arg-type]
            lower = [f"{_fmt(x(i))},{_fmt(y(band.lower[i]))}" for i in reversed(run)]  # type: ignore[arg-type]
            parts.append(
                f'<polygon class="band" points="{" ".join(upper + lower)}">'
                f"<title>{esc(band.label)}</title></polygon>"
            )
    for t in thresholds:
        extra = "" if t.color is None else f" faint s{t.color % PALETTE}"
        parts.append(
            f'<line class="thr{extra}" x1="{left}" x2="{width - right}" y1="{_fmt(y(t.value))}" '
            f'y2="{_fmt(y(t.value))}"><title>{esc(t.label)}: {esc(number(t.value))}</title>'
            "</line>"
        )
    for s in series:
        color = f"s{s.color % PALETTE}"
        dash = " dash" if s.dashed else ""
        for run in _runs(s.values):
            points = " ".join(f"{_fmt(x(i))},{_fmt(y(s.values[i]))}" for i in run)  # type: ignore[arg-type]
            if len(run) == 1:
                i = run[0]
                parts.append(
                    f'<circle class="pt {color}" cx="{_fmt(x(i))}" '
                    f'cy="{_fmt(y(s.values[i]))}" r="2.5"/>'  # type: ignore[arg-type]
                )
            else:
                parts.append(
                    f'<polyline class="ln {color}{dash}" points="{points}">'
                    f"<title>{esc(s.name)}</title></polyline>"
                )
        for i, bad in enumerate(s.flagged):
            value = s.values[i] if i < len(s.values) else None
            if bad and value is not None and math.isfinite(value):
                parts.append(
                    f'<circle class="pt bad" cx="{_fmt(x(i))}" cy="{_fmt(y(value))}" r="3">'
                    f"<title>{esc(s.name)} {esc(when(windows[i]))}: {esc(number(value))}"
                    "</title></circle>"
                )
    parts.append(
        f'<line class="axis" x1="{left}" x2="{left}" y1="{top}" y2="{top + plot_h}"/>'
        f'<line class="axis" x1="{left}" x2="{width - right}" y1="{top + plot_h}" '
        f'y2="{top + plot_h}"/>'
    )
    return (
        f'<svg class="chart" viewBox="0 0 {width} {height}" width="{width}" height="{height}" '
        f'role="img" aria-label="{esc(label)}">{"".join(parts)}</svg>'
    )


def legend(
    series: Sequence[Series], thresholds: Sequence[Threshold] = (), band: Band | None = None
) -> str:
    items = [
        f'<span><span class="key{" dash" if s.dashed else ""} c{s.color % PALETTE}"></span>'
        f"{esc(s.name)}</span>"
        for s in series
    ]
    if band is not None:
        items.append(f'<span><span class="key band"></span>{esc(band.label)}</span>')
    seen: set[str] = set()
    for t in thresholds:
        if t.label not in seen:
            seen.add(t.label)
            items.append(f'<span><span class="key thr"></span>{esc(t.label)}</span>')
    return f'<div class="legend">{"".join(items)}</div>'


def sparkline(
    values: Sequence[float | None],
    threshold: float | None = None,
    *,
    width: int = 140,
    height: int = 28,
    label: str = "",
) -> str:
    """A small line of ``values`` with the threshold dashed; the last point red above it."""
    finite = _finite(values)
    if not finite:
        return '<span class="muted">\u2014</span>'
    bounds = finite + ([threshold] if threshold is not None and math.isfinite(threshold) else [])
    low, high = min(bounds), max(bounds)
    span = high - low or abs(high) or 1.0
    n = len(values)

    def x(i: int) -> float:
        return 2 + (width - 4) * (i / max(n - 1, 1))

    def y(v: float) -> float:
        return 2 + (height - 4) * (1 - (v - low) / span)

    parts = []
    if threshold is not None and math.isfinite(threshold):
        parts.append(
            f'<line class="thr" x1="0" x2="{width}" y1="{_fmt(y(threshold))}" '
            f'y2="{_fmt(y(threshold))}"/>'
        )
    for run in _runs(values):
        points = " ".join(f"{_fmt(x(i))},{_fmt(y(values[i]))}" for i in run)  # type: ignore[arg-type]
        parts.append(f'<polyline class="ln" points="{points}"/>')
    last = next(
        (i for i in range(n - 1, -1, -1) if values[i] is not None and math.isfinite(values[i])),  # type: ignore[arg-type]
        None,
    )
    if last is not None:
        value = values[last]
        assert value is not None
        bad = threshold is not None and value > threshold
        parts.append(
            f'<circle class="pt {"bad" if bad else "s0"}" cx="{_fmt(x(last))}" '
            f'cy="{_fmt(y(value))}" r="2"/>'
        )
    return (
        f'<svg class="spark" viewBox="0 0 {width} {height}" width="{width}" height="{height}" '
        f'role="img" aria-label="{esc(label)}"><title>{esc(label)}</title>{"".join(parts)}</svg>'
    )


def histogram(
    labels: Sequence[str],
    current: Sequence[float],
    reference: Sequence[float] | None,
    *,
    width: int = 300,
    height: int = 120,
    label: str = "",
) -> str:
    """Bars of bucket shares: the reference's (grey) beside the window's (blue)."""
    n = len(current)
    if n == 0:
        return '<p class="muted">No values.</p>'
    top_share = max([*current, *(reference or [])] or [1.0]) or 1.0
    bottom = 14
    plot_h = height - bottom - 4
    slot = (width - 4) / n
    bar = slot * (0.42 if reference is not None else 0.8)
    parts = []
    for i in range(n):
        name = labels[i] if i < len(labels) else f"bucket {i + 1}"
        x0 = 2 + i * slot + slot * 0.08
        pairs = [("cur", current[i])]
        if reference is not None:
            pairs.insert(0, ("ref", reference[i]))
        for j, (cls, share) in enumerate(pairs):
            h = plot_h * share / top_share
            parts.append(
                f'<rect class="{cls}" x="{_fmt(x0 + j * bar)}" y="{_fmt(4 + plot_h - h)}" '
                f'width="{_fmt(bar)}" height="{_fmt(h)}"><title>{esc(name)}: '
                f"{'reference' if cls == 'ref' else 'window'} {share:.1%}</title></rect>"
            )
    parts.append(
        f'<line class="axis" x1="0" x2="{width}" y1="{4 + plot_h}" y2="{4 + plot_h}"/>'
        f'<text x="2" y="{height - 2}">{esc(labels[0] if labels else "")}</text>'
        f'<text x="{width - 2}" y="{height - 2}" text-anchor="end">'
        f"{esc(labels[-1] if labels else '')}</text>"
    )
    return (
        f'<svg class="hist" viewBox="0 0 {width} {height}" width="{width}" height="{height}" '
        f'role="img" aria-label="{esc(label)}">{"".join(parts)}</svg>'
    )
