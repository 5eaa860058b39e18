"""Render reports as one self-contained HTML page: inline CSS and SVG, no scripts, no URLs.

Everything taken from the data (model, feature and category names, reasons, segment and day
labels) goes through :func:`html.escape`. The page stays small: a report of 100 features with
their histograms is a few hundred kilobytes.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from html import escape

from tripwire.layers.rows import LAYERS, SEVERITY, Layer, MetricRow, Status
from tripwire.report.model import Histogram, Report
from tripwire.report.summary import headline, worst_per_subject
from tripwire.report.trend import CHART_CSS

__all__ = ["format_number", "render_report", "render_timeline"]

LAYER_TITLES: dict[Layer, str] = {
    "inputs": "Inputs",
    "predictions": "Predictions",
    "performance": "Performance",
    "cost": "Cost & latency",
}
FLAGGED: tuple[Status, ...] = ("alert", "error", "watch")
# (column heading, metrics shown in it: the first one a feature has).
INPUT_COLUMNS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("PSI", ("psi",)),
    ("KS", ("ks",)),
    ("JS", ("js",)),
    ("W\u2081/\u03c3", ("wasserstein_norm",)),
    ("Nulls", ("null_share",)),
    ("Out of range / unseen", ("out_of_range_share", "unseen_share")),
    ("\u03c7\u00b2 p", ("chi2_pvalue",)),
)
TIMELINE_ITEMS = 6  # flagged rows shown per timeline cell; the rest fold into "+N more"
SVG_WIDTH, SVG_HEIGHT = 160.0, 36.0
DASH = "\u2014"

CSS = """
:root{--ok:#1a7f37;--ok-bg:#dafbe1;--watch:#8a5a00;--watch-bg:#fff1c2;--alert:#c21f2b;
--alert-bg:#ffe3e1;--grey:#57606a;--grey-bg:#eaeef2;--error:#7a3fd1;--error-bg:#f3e8ff;
--ref:#8fa8c8;--cur:#e0792b;--line:#d0d7de}
*{box-sizing:border-box}
body{margin:0 auto;max-width:1400px;padding:1.5rem;color:#1f2328;background:#fff;
font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif}
h1{font-size:1.5rem;margin:0 0 .5rem}h2{font-size:1.2rem;margin:2rem 0 .5rem;
border-bottom:1px solid var(--line);padding-bottom:.25rem}h3{font-size:1rem;margin:1.2rem 0 .4rem}
dl.meta{display:flex;flex-wrap:wrap;gap:.25rem 1.5rem;margin:.25rem 0 .75rem}
dl.meta dt{color:var(--grey)}dl.meta dd{margin:0 0 0 .35rem;font-weight:600}
dl.meta div{display:flex}
.badges{display:flex;flex-wrap:wrap;gap:.5rem;margin:.5rem 0}
.badge{display:inline-block;padding:.35rem .75rem;border-radius:6px;text-decoration:none;
border:1px solid currentColor;font-weight:600}
.scroll{overflow-x:auto}
table{border-collapse:collapse;margin:.25rem 0 .75rem;font-variant-numeric:tabular-nums}
th,td{border-bottom:1px solid var(--line);padding:.25rem .6rem;text-align:left;
vertical-align:middle}
thead th{background:#f6f8fa;font-weight:600;white-space:nowrap}
td.num{text-align:right;white-space:nowrap}
td.st{font-weight:600;white-space:nowrap}
td.note{color:var(--grey);max-width:28rem}
.s-ok{color:var(--ok);background:var(--ok-bg)}
.s-watch{color:var(--watch);background:var(--watch-bg)}
.s-alert{color:var(--alert);background:var(--alert-bg)}
.s-info,.s-no_data,.s-insufficient_labels{color:var(--grey);background:var(--grey-bg)}
.s-error{color:var(--error);background:var(--error-bg)}
td.m-watch{color:var(--watch);font-weight:600}td.m-alert{color:var(--alert);font-weight:700}
td.m-error{color:var(--error);font-weight:600}
.pm{color:var(--grey);font-size:.85em}
svg.hist{display:block}svg.hist .r{fill:var(--ref)}svg.hist .c{fill:var(--cur)}
svg.hist line{stroke:var(--line)}
.legend{color:var(--grey);font-size:.9em}
.key{display:inline-block;width:.8em;height:.8em;margin:0 .25em 0 .75em;vertical-align:-.05em}
details{margin:.4rem 0}summary{cursor:pointer;font-weight:600}
summary .badge{padding:.05rem .45rem;margin-left:.5rem;font-size:.85em}
table.timeline td{vertical-align:top;min-width:11rem}
table.timeline summary{font-weight:400}
table.timeline ul{margin:.2rem 0 0;padding-left:1.1rem;font-weight:400;color:#1f2328}
.muted{color:var(--grey)}
p.lag{margin:.5rem 0}p.lag .badge{padding:.1rem .5rem;font-size:.85em}
footer{margin-top:2rem;color:var(--grey);font-size:.85em}
"""


# Formatting -----------------------------------------------------------------------------------


def format_number(value: float | int | None, digits: int = 4) -> str:
    """A number for people: ``digits`` significant digits, thousands separated, None as "—".

    >>> [format_number(v) for v in (None, 0.0, 0.123456, 412.37, 123456.7, 2_000_000, 1e-7)]
    ['—', '0', '0.1235', '412.4', '123,457', '2,000,000', '1e-07']
    """
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "\u2014"
    if isinstance(value, int):
        return f"{value:,}"
    if math.isinf(value):
        return "\u221e" if value > 0 else "-\u221e"
    text = f"{value:.{digits}g}"
    if 10**digits <= abs(float(text)) < 1e15:  # 9999.7 rounds to 1e+04: show 9,999.7 as 10,000
        return f"{value:,.0f}"
    return text


def _svg_number(x: float) -> str:
    """SVG coordinates rounded to one decimal, without a trailing ".0"."""
    text = f"{x:.1f}"
    return text[:-2] if text.endswith(".0") else text


def _percent(share: float) -> str:
    return f"{100 * share:.1f}%"


def _status_cell(status: Status) -> str:
    return f'<td class="st s-{status}">{escape(status)}</td>'


def _badge(label: str, status: Status, href: str | None = None) -> str:
    inner = f"{escape(label)}: {escape(status)}"
    if href is None:
        return f'<span class="badge s-{status}">{inner}</span>'
    return f'<a class="badge s-{status}" href="#{escape(href)}">{inner}</a>'


def _table(headers: Sequence[str], body_rows: Iterable[str], css_class: str = "") -> str:
    head = "".join(f'<th scope="col">{escape(h)}</th>' for h in headers)
    cls = f' class="{css_class}"' if css_class else ""
    body = "\n".join(body_rows)
    return (
        f'<div class="scroll"><table{cls}><thead><tr>{head}</tr></thead>\n'
        f"<tbody>\n{body}\n</tbody></table></div>"
    )


def _worst(statuses: Iterable[Status]) -> Status:
    """The worst status by :data:`SEVERITY` (``info`` when there are none)."""
    return min(statuses, key=lambda s: SEVERITY[s], default="info")


def _value_text(row: MetricRow) -> str:
    text = escape(format_number(row.value))
    if row.bound:
        text += f' <span class="pm">\u00b1{escape(format_number(row.bound, 2))}</span>'
    if row.ci_low is not None and row.ci_high is not None:
        low, high = format_number(row.ci_low, 3), format_number(row.ci_high, 3)
        text += (
            f' <span class="pm" title="confidence interval">[{escape(low)}, {escape(high)}]</span>'
        )
    return text


def _n_text(row: MetricRow) -> str:
    """The sample size, with the share of the window labelled for performance rows."""
    text = format_number(row.n)
    if row.coverage is not None and row.metric != "label_coverage":
        text += f" ({100 * row.coverage:.0f} % labelled)"
    return escape(text)


def _segments(rows: Iterable[MetricRow]) -> dict[str, list[MetricRow]]:
    """Rows of segments other than "all", grouped by segment in report order."""
    groups: dict[str, list[MetricRow]] = {}
    for row in rows:
        if row.segment != "all":
            groups.setdefault(row.segment, []).append(row)
    return groups


# Header ---------------------------------------------------------------------------------------


def _header(report: Report, heading: str) -> str:
    facts = (
        ("Model", report.model),
        ("Task", report.task),
        ("Window", report.window or "\u2014"),
        ("Rows", format_number(report.n_rows)),
        ("Reference rows", format_number(report.reference_rows)),
    )
    meta = "".join(f"<div><dt>{escape(k)}</dt><dd>{escape(v)}</dd></div>" for k, v in facts)
    badges = "".join(
        _badge(LAYER_TITLES[layer], status, layer) for layer, status in report.layers().items()
    )
    n_flagged = len(report.flagged())
    from tripwire.report.estimated import lag_html  # it uses this module's helpers

    return (
        f'<header>{heading}<dl class="meta">{meta}</dl>'
        f'<div class="badges">{badges}</div>{lag_html(report)}'
        f'<p class="muted">{n_flagged} metric rows at watch, alert or error '
        "(all segments).</p></header>"
    )


# Inputs ---------------------------------------------------------------------------------------


def _histogram_svg(feature: str, hist: Histogram) -> str:
    """Reference and current shares side by side per bucket; each bucket's label as tooltip."""
    n = len(hist.labels)
    if n == 0:
        return ""
    top = max([*hist.reference, *hist.current, 1e-12])
    slot = SVG_WIDTH / n
    bar = slot * 0.42
    parts = []
    for i, (label, ref, cur) in enumerate(
        zip(hist.labels, hist.reference, hist.current, strict=False)
    ):
        x = i * slot + slot * 0.08
        tip = escape(f"{label}: reference {_percent(ref)}, current {_percent(cur)}")
        bars = "".join(
            _bar(cls, x + offset, bar, share / top)
            for cls, offset, share in (("r", 0.0, ref), ("c", bar, cur))
        )
        parts.append(f"<g><title>{tip}</title>{bars}</g>")
    w, h = _svg_number(SVG_WIDTH), _svg_number(SVG_HEIGHT)
    label = escape(f"histogram of {feature}: reference vs current shares", quote=True)
    return (
        f'<svg class="hist" viewBox="0 0 {w} {h}" width="{w}" height="{h}" role="img" '
        f'aria-label="{label}"><line x1="0" y1="{h}" x2="{w}" y2="{h}"/>{"".join(parts)}</svg>'
    )


def _bar(css_class: str, x: float, width: float, fraction: float) -> str:
    height = max(fraction, 0.0) * (SVG_HEIGHT - 1)
    if height < 0.05:
        return ""
    return (
        f'<rect class="{css_class}" x="{_svg_number(x)}" y="{_svg_number(SVG_HEIGHT - height)}" '
        f'width="{_svg_number(width)}" height="{_svg_number(height)}"/>'
    )


def _metric_cell(row: MetricRow | None) -> str:
    if row is None:
        return '<td class="num">\u2014</td>'
    cls = f"num m-{row.status}" if row.status in FLAGGED else "num"
    tip = f"{row.metric}: {row.status}"
    if row.threshold is not None:
        tip += f", alert at {format_number(row.threshold)}"
    return f'<td class="{cls}" title="{escape(tip)}">{_value_text(row)}</td>'


def _feature_row(feature: str, rows: list[MetricRow], hist: Histogram | None) -> str:
    by_metric = {row.metric: row for row in rows}
    importance = next((r.importance for r in rows if r.importance is not None), None)
    notes = dict.fromkeys(r.reason for r in rows if r.reason)
    cells = [
        f'<th scope="row">{escape(feature)}</th>',
        f'<td class="num">{escape(format_number(importance))}</td>',
        _status_cell(_worst(r.status for r in rows)),
    ]
    for _, metrics in INPUT_COLUMNS:
        cells.append(_metric_cell(next((by_metric[m] for m in metrics if m in by_metric), None)))
    cells.append(f'<td class="note">{escape("; ".join(notes))}</td>')
    cells.append(f"<td>{_histogram_svg(feature, hist) if hist else DASH}</td>")
    return "<tr>" + "".join(cells) + "</tr>"


def _drift_table(report: Report) -> str:
    rows_by_feature: dict[str, list[MetricRow]] = {}
    for row in report.select(layer="inputs"):
        if row.feature is not None:
            rows_by_feature.setdefault(row.feature, []).append(row)
    headers = [
        "Feature", "Importance", "Status", *(h for h, _ in INPUT_COLUMNS), "Notes", "Histogram"
    ]  # fmt: skip
    body = (
        _feature_row(name, rows_by_feature.get(name, []), report.histograms.get(name))
        for name in report.features()
    )
    return _table(headers, body, "drift")


def _legend() -> str:
    return (
        '<p class="legend">Histograms:<span class="key" style="background:var(--ref)"></span>'
        'reference<span class="key" style="background:var(--cur)"></span>current '
        "(shares per bucket or category; hover a bar for its label).</p>"
    )


def _inputs_section(report: Report) -> str:
    rows = report.select(layer="inputs")
    parts = [_legend(), _drift_table(report)] if rows else ['<p class="muted">No input rows.</p>']
    segments = _segments(report.select(layer="inputs", segment=None))
    if segments:
        parts.append("<h3>By segment</h3>")
        parts.append('<p class="muted">Rows at watch, alert, error or no_data only.</p>')
        for segment, seg_rows in segments.items():
            shown = [r for r in seg_rows if r.status in (*FLAGGED, "no_data")]
            parts.append(_segment_block(segment, seg_rows, shown, with_feature=True))
    return _section("inputs", "".join(parts))


# Output layers --------------------------------------------------------------------------------


def _metric_row(row: MetricRow, with_feature: bool) -> str:
    cells = [f'<th scope="row">{escape(row.metric)}</th>']
    if with_feature:
        cells.append(f"<td>{escape(row.feature or '')}</td>")
    cells += [
        f'<td class="num">{_value_text(row)}</td>',
        f'<td class="num">{escape(format_number(row.threshold))}</td>',
        _status_cell(row.status),
        f'<td class="num">{_n_text(row)}</td>',
        f'<td class="note">{escape(row.reason or "")}</td>',
    ]
    return "<tr>" + "".join(cells) + "</tr>"


def _metric_table(rows: Sequence[MetricRow], with_feature: bool = False) -> str:
    if not rows:
        return '<p class="muted">No rows.</p>'
    headers = ["Metric", *(["Feature"] if with_feature else []), "Value", "Alert at", "Status"]
    headers += ["n", "Reason"]
    return _table(headers, (_metric_row(r, with_feature) for r in rows))


def _segment_block(
    segment: str, rows: Sequence[MetricRow], shown: Sequence[MetricRow], with_feature: bool
) -> str:
    """A collapsible block per segment, open when the segment has a flagged row."""
    status = _worst(r.status for r in rows)
    opened = " open" if status in FLAGGED else ""
    summary = f"<summary>{escape(segment)}{_badge('segment', status)}</summary>"
    return f"<details{opened}>{summary}{_metric_table(shown, with_feature)}</details>"


def _output_section(report: Report, layer: Layer) -> str:
    parts = [_metric_table(report.select(layer=layer))]
    if layer == "performance":
        from tripwire.report.estimated import estimation_html  # it uses this module's helpers

        parts.append(estimation_html(report))
    segments = _segments(report.select(layer=layer, segment=None))
    if segments:
        parts.append("<h3>By segment</h3>")
        parts += [_segment_block(s, rows, rows, False) for s, rows in segments.items()]
    return _section(layer, "".join(parts))


def _section(layer: Layer, body: str) -> str:
    title = escape(LAYER_TITLES[layer])
    return f'<section id="{layer}"><h2>{title}</h2>\n{body}</section>'


# Pages ----------------------------------------------------------------------------------------


def _report_body(report: Report, heading: str) -> str:
    sections = [_inputs_section(report)]
    sections += [_output_section(report, layer) for layer in LAYERS if layer != "inputs"]
    return _header(report, heading) + "\n" + "\n".join(sections)


def _page(title: str, body: str) -> str:
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{escape(title)}</title><style>{CSS}{CHART_CSS}</style></head>\n<body>\n{body}\n"
        "<footer>Generated by tripwire.</footer>\n</body></html>\n"
    )


def render_report(report: Report) -> str:
    """The whole report as one self-contained HTML page (see ``Report.to_html``)."""
    title = f"tripwire: {report.model}" + (f" \u2014 {report.window}" if report.window else "")
    return _page(title, _report_body(report, f"<h1>{escape(title)}</h1>"))


def _timeline_cell(report: Report, layer: Layer) -> str:
    """The layer's status, its flagged rows (segment "all" first) and the rest folded away."""
    status = report.status(layer)
    # One line per feature and segment: its worst metric names the problem.
    flagged = worst_per_subject(report.select(layer=layer, segment=None))
    flagged.sort(key=lambda r: (r.segment != "all", SEVERITY[r.status]))
    items = [f"<li>{escape(headline(r))}</li>" for r in flagged]
    listing = f"<ul>{''.join(items[:TIMELINE_ITEMS])}</ul>" if items else ""
    if len(items) > TIMELINE_ITEMS:
        more = len(items) - TIMELINE_ITEMS
        rest = "".join(items[TIMELINE_ITEMS:])
        listing += f"<details><summary>+{more} more</summary><ul>{rest}</ul></details>"
    return f'<td class="s-{status}"><b>{escape(status)}</b>{listing}</td>'


def _timeline_table(days: Sequence[tuple[str, Report]]) -> str:
    headers = ["Day", *(LAYER_TITLES[layer] for layer in LAYERS)]
    body = (
        f'<tr><th scope="row">{escape(label)}</th>'
        + "".join(_timeline_cell(report, layer) for layer in LAYERS)
        + "</tr>"
        for label, report in days
    )
    return _table(headers, body, "timeline")


def render_timeline(title: str, days: list[tuple[str, Report]], extra_sections: str = "") -> str:
    """A day-by-day page: one row per day, one coloured cell per layer listing what was flagged,
    then ``extra_sections`` (trusted HTML, inserted as is), then the last day's full report."""
    parts = [f"<h1>{escape(title)}</h1>", "<h2>Timeline</h2>"]
    if days:
        parts.append(_timeline_table(days))
    else:
        parts.append('<p class="muted">No days.</p>')
    parts.append(extra_sections)
    if days:
        label, last = days[-1]
        heading = f"<h2>Last day: {escape(label)} \u2014 {escape(last.model)}</h2>"
        parts.append(_report_body(last, heading))
    return _page(title, "\n".join(p for p in parts if p))
