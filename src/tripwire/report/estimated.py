"""What a report says about late labels and estimated performance.

* :func:`lag_note`: with labels 7 days late or more (the gate's threshold), drift on inputs
  and predictions is the leading indicator and performance the lagging confirmation; the HTML
  header and the terminal say so in one sentence.
* :func:`side_by_side`: per estimated metric, the estimate, the realized value once labels
  land, and the estimation error, for the HTML performance section and the terminal.
* :func:`estimation_html`: that table and the estimate's assumptions, in the HTML report's
  performance section.
"""

from __future__ import annotations

from dataclasses import dataclass
from html import escape

from tripwire.alerts.gate import TIMELY_LABELS
from tripwire.durations import format_duration
from tripwire.layers.catalog import ESTIMATED_PREFIX
from tripwire.layers.estimated import ASSUMPTIONS, ERROR_PREFIX
from tripwire.layers.rows import MetricRow
from tripwire.report.model import Report

LEADING = "leading indicator"
LAGGING = "lagging confirmation"


def lag_note(report: Report) -> str | None:
    """The sentence a report shows when labels lag 7 days or more; None otherwise."""
    lag = report.label_lag
    if lag is None or lag < TIMELY_LABELS:
        return None
    return (
        f"Labels arrive {format_duration(lag)} after the prediction: drift on inputs and "
        f"predictions is the {LEADING}, performance the {LAGGING}. Until labels land, "
        "estimated performance and proxy metrics stand in for it, and the retraining gate "
        "never retrains on realized performance alone."
    )


@dataclass(frozen=True)
class SideBySide:
    """One metric, estimated without labels and, once they land, realized."""

    metric: str
    estimated: MetricRow
    realized: MetricRow | None
    error: MetricRow | None


def side_by_side(report: Report, segment: str = "all") -> list[SideBySide]:
    """Per ``estimated_<metric>`` row of ``segment``, the realized ``<metric>`` row and the
    ``estimation_error_<metric>`` row where they exist."""
    rows = {r.metric: r for r in report.select(layer="performance", segment=segment)}
    out = []
    for name, row in rows.items():
        if name.startswith(ESTIMATED_PREFIX):
            metric = name.removeprefix(ESTIMATED_PREFIX)
            out.append(SideBySide(metric, row, rows.get(metric), rows.get(ERROR_PREFIX + metric)))
    return out


def estimation_html(report: Report) -> str:
    """The performance section's part on estimation: estimated next to realized, and the
    assumptions behind the estimate; empty when nothing is estimated."""
    from tripwire.report.html import _status_cell, _table, _value_text, format_number

    pairs = side_by_side(report)
    if not pairs:
        return ""

    def realized(pair: SideBySide) -> str:
        row = pair.realized
        if row is None or row.value is None:
            return "no labels yet"
        text = _value_text(row)
        if row.status == "insufficient_labels":
            text += f' <span class="pm">({escape(format_number(row.n))} labelled, too few)</span>'
        return text

    body = (
        f'<tr><th scope="row">{escape(p.metric)}</th>'
        f'<td class="num">{_value_text(p.estimated)}</td>{_status_cell(p.estimated.status)}'
        f'<td class="num">{realized(p)}</td>'
        f'<td class="num">{escape(format_number(p.error.value if p.error else None))}</td>'
        f'<td class="note">{escape(p.error.reason if p.error and p.error.reason else "")}</td>'
        "</tr>"
        for p in pairs
    )
    headers = ["Metric", "Estimated (no labels)", "Status", "Realized", "Error", "Note"]
    calibration = "".join(f"<li>{escape(line)}</li>" for line in report.estimation)
    assumptions = "".join(f"<li>{escape(a)}</li>" for a in ASSUMPTIONS)
    return (
        "<h3>Estimated without labels</h3>"
        '<p class="muted">Estimated from the scores alone (confidence-based for a classifier, '
        "direct loss estimation for a regression model), on every row of the window; "
        "realized on its labelled rows once they land. Error = estimated \u2212 realized; "
        "the interval is the estimate \u00b1 its standard error times the confidence "
        "level's z.</p>"
        + _table(headers, body)
        + '<details class="assumptions" open><summary>Assumptions of the estimate</summary>'
        f"<ul>{assumptions}</ul>"
        + (f"<p>Calibration on the reference:</p><ul>{calibration}</ul>" if calibration else "")
        + "</details>"
    )


def lag_html(report: Report) -> str:
    """The header's paragraph on late labels; empty when labels are timely."""
    note = lag_note(report)
    if note is None:
        return ""
    return (
        '<p class="lag"><span class="badge s-watch">Inputs &amp; predictions: '
        f'{LEADING}</span> <span class="badge s-info">Performance: {LAGGING}</span> '
        f"{escape(note)}</p>"
    )
