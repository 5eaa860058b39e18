"""Performance over time for an HTML page: the dashboard's performance charts, drawn from the
stored metric rows of a run of windows.

One chart per watched metric (the headline one and those the alert rules watch): realized
(solid) and estimated (dashed), overall and in each tracked segment, each series with its alert
level; then label coverage and the proxies. The same code draws the dashboard's performance
section (:func:`tripwire.server.dashboard.model.performance_figures`), so a page and the
dashboard show the same lines. The SVG's classes are styled by :data:`CHART_CSS`, scoped to
``.trend`` so that they leave the rest of a report alone.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import datetime
from html import escape

import pyarrow as pa
import pyarrow.compute as pc

from tripwire.config import ModelConfig

__all__ = ["CHART_CSS", "CHART_RULES", "performance_trend", "scoped"]

CHART_RULES = """
.charts{display:flex;flex-wrap:wrap;gap:1.2rem}
figure{margin:0}figcaption{font-weight:600;margin-bottom:.2rem}
.legend{display:flex;flex-wrap:wrap;gap:.2rem .9rem;font-size:.85em}
.key{display:inline-block;width:1.1em;height:.25em;vertical-align:.25em;margin:0 .3em 0 0}
.key.dash{height:0;border-top-width:2px;border-top-style:dashed}
.key.thr{height:0;border-top:1px dashed var(--alert)}
.c0{background:var(--s0);border-color:var(--s0)}.c1{background:var(--s1);border-color:var(--s1)}
.c2{background:var(--s2);border-color:var(--s2)}.c3{background:var(--s3);border-color:var(--s3)}
.c4{background:var(--s4);border-color:var(--s4)}.c5{background:var(--s5);border-color:var(--s5)}
.key.dash{background:none}
svg text{font-size:10px;fill:var(--grey)}
svg .axis{stroke:var(--line)}svg .grid{stroke:#eaeef2}
svg .thr{stroke:var(--alert);stroke-dasharray:4 3;stroke-width:1}
svg .thr.faint{stroke-opacity:.45}
svg .ln{fill:none;stroke-width:1.6}svg .ln.dash{stroke-dasharray:5 3}
svg .s0{stroke:var(--s0)}svg .s1{stroke:var(--s1)}svg .s2{stroke:var(--s2)}
svg .s3{stroke:var(--s3)}svg .s4{stroke:var(--s4)}svg .s5{stroke:var(--s5)}
svg .pt{stroke:none}svg .pt.s0{fill:var(--s0)}svg .pt.s1{fill:var(--s1)}
svg .pt.s2{fill:var(--s2)}svg .pt.s3{fill:var(--s3)}svg .pt.s4{fill:var(--s4)}
svg .pt.s5{fill:var(--s5)}svg .pt.bad{fill:var(--alert)}
"""
"""The charts' rules, shared by the dashboard's style sheet and (scoped) the reports'. A dashed
(estimated) series' legend key is a dashed top border in its series' colour: the ``cN`` class
sets the colour and ``.key.dash`` only the border's width and style (a ``border-top``
shorthand there would reset the colour to the text's, being the more specific rule)."""


def scoped(css: str, scope: str) -> str:
    """``css`` (flat rules, no at-rules) with each selector prefixed by ``scope``."""

    def rule(match: re.Match[str]) -> str:
        selectors = ",".join(f"{scope} {s.strip()}" for s in match[1].split(","))
        return f"{selectors}{{{match[2]}}}\n"

    return re.sub(r"([^{}]+)\{([^{}]*)\}", rule, css)


CHART_CSS = (
    ".trend{--s0:#0969da;--s1:#bf3989;--s2:#1a7f37;--s3:#bc4c00;--s4:#8250df;--s5:#57606a}\n"
    + scoped(CHART_RULES, ".trend")
    + ".trend .small{font-size:.85em}\n"
)
"""The chart rules for a report, scoped to ``.trend`` so that they leave the rest of it alone."""


def performance_trend(
    config: ModelConfig,
    history: pa.Table,
    windows: Sequence[datetime],
    segments: Sequence[str],
    intro: str = "",
) -> str:
    """A ``<section>`` with the performance charts of ``history`` (stored metric rows, as
    ``Store.history`` returns them) over ``windows`` (their starts, ascending), overall and in
    ``segments`` (most valuable first; the first five are drawn). ``intro`` is plain text."""
    # Imported here: the dashboard's modules load the HTTP app, which a report rarely needs.
    from tripwire.server.dashboard.model import TOP_SEGMENTS, performance_figures
    from tripwire.server.dashboard.series import grid

    rows = history.filter(pc.equal(history["layer"], "performance"))
    metrics = list(dict.fromkeys(rows["metric"].to_pylist()))
    figures = performance_figures(config, grid(rows, windows), metrics, segments[:TOP_SEGMENTS])
    if not figures:
        body = '<p class="muted">No performance rows.</p>'
    else:
        body = f'<div class="charts">{"".join(figures)}</div>'
    lead = f"<p>{escape(intro)}</p>" if intro else ""
    return f'<section class="trend"><h2>Performance over time</h2>{lead}{body}</section>'
