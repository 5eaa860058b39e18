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

from collections.abc import Sequence
from datetime import datetime
from html import escape

import pyarrow as pa
import pyarrow.compute as pc

from tripwire.config import ModelConfig

__all__ = ["CHART_CSS", "performance_trend"]

CHART_CSS = """
.trend{--s0:#0969da;--s1:#bf3989;--s2:#1a7f37;--s3:#bc4c00;--s4:#8250df;--s5:#57606a}
.trend .charts{display:flex;flex-wrap:wrap;gap:1.2rem}
.trend figure{margin:0}.trend figcaption{font-weight:600;margin-bottom:.2rem}
.trend .legend{display:flex;flex-wrap:wrap;gap:.2rem .9rem;font-size:.85em}
.trend .key{display:inline-block;width:1.1em;height:.25em;vertical-align:.25em;margin:0 .3em 0 0}
.trend .key.dash{height:0;border-top-width:2px;border-top-style:dashed}
.trend .key.thr{height:0;border-top:1px dashed var(--alert)}
.trend .c0{background:var(--s0);border-color:var(--s0)}
.trend .c1{background:var(--s1);border-color:var(--s1)}
.trend .c2{background:var(--s2);border-color:var(--s2)}
.trend .c3{background:var(--s3);border-color:var(--s3)}
.trend .c4{background:var(--s4);border-color:var(--s4)}
.trend .c5{background:var(--s5);border-color:var(--s5)}
.trend .key.dash{background:none}
.trend .small{font-size:.85em}
.trend svg text{font-size:10px;fill:var(--grey)}
.trend svg .axis{stroke:var(--line)}.trend svg .grid{stroke:#eaeef2}
.trend svg .thr{stroke:var(--alert);stroke-dasharray:4 3;stroke-width:1}
.trend svg .thr.faint{stroke-opacity:.45}
.trend svg .ln{fill:none;stroke-width:1.6}.trend svg .ln.dash{stroke-dasharray:5 3}
.trend svg .s0{stroke:var(--s0)}.trend svg .s1{stroke:var(--s1)}
.trend svg .s2{stroke:var(--s2)}.trend svg .s3{stroke:var(--s3)}
.trend svg .s4{stroke:var(--s4)}.trend svg .s5{stroke:var(--s5)}
.trend svg .pt{stroke:none}.trend svg .pt.s0{fill:var(--s0)}.trend svg .pt.s1{fill:var(--s1)}
.trend svg .pt.s2{fill:var(--s2)}.trend svg .pt.s3{fill:var(--s3)}
.trend svg .pt.s4{fill:var(--s4)}.trend svg .pt.s5{fill:var(--s5)}
.trend svg .pt.bad{fill:var(--alert)}
"""


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
