"""Incidents on the dashboard: the list on a model's page, and an incident's own page."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence

from tripwire.alerts.engine import Incident
from tripwire.alerts.outbox import OutboxRow
from tripwire.config import Runbook
from tripwire.server.dashboard.charts import Series, Threshold, legend, line_chart
from tripwire.server.dashboard.html import (
    badge,
    esc,
    href,
    incident_href,
    number,
    page,
    table,
    when,
)
from tripwire.server.dashboard.series import grid
from tripwire.server.reader import StoreReader

__all__ = ["RAISED_NOTE", "incident_page", "incidents_table", "raised", "what"]

CONTEXT_WINDOWS = 14
"""Windows shown before an incident's evidence window on its page."""


def what(incident: Incident) -> str:
    """``psi distance_km [user_type=new]``, escaped."""
    parts = [incident.metric]
    if incident.feature:
        parts.append(incident.feature)
    if incident.segment != "all":
        parts.append(f"[{incident.segment}]")
    return esc(" ".join(parts))


def _state(incident: Incident) -> str:
    return badge("open") if incident.is_open else badge("resolved")


def deliveries_summary(rows: Sequence[OutboxRow]) -> str:
    if not rows:
        return '<span class="muted">none queued</span>'
    counts = Counter(row.state for row in rows)
    return " ".join(
        badge(f"{counts[state]} {state}", state)
        for state in ("delivered", "pending", "dead")
        if counts[state]
    )


def runbook_html(runbook: Runbook | None) -> str:
    if runbook is None:
        return '<p class="muted">The rule is no longer in the config: no runbook.</p>'
    sections = (
        ("What this means", runbook.what_it_means),
        ("What to check", runbook.what_to_check),
        ("Who owns the fix", runbook.who_owns_the_fix),
    )
    return (
        '<dl class="runbook">'
        + "".join(f"<dt>{title}</dt><dd>{esc(text or '—')}</dd>" for title, text in sections)
        + "</dl>"
    )


def _evidence(reader: StoreReader, incident: Incident) -> str:
    length = reader.config(incident.model).window
    return f"{esc(when(incident.evidence_start))} to {esc(when(incident.last_breach_at + length))}"


def raised(incident: Incident) -> str:
    """When tripwire raised the incident (the job's clock as it first found it), escaped."""
    if incident.detected_at is None:
        return '<span class="muted" title="saved before the store kept it">not recorded</span>'
    # One line: a date and time broken in two made the overview's rows twice as tall.
    return f'<span class="when">{esc(when(incident.detected_at, with_time=True))}</span>'


RAISED_NOTE = (
    '<p class="muted small">Raised: when the monitoring job found the incident. Evidence: '
    "the windows whose rows breached, from the first to the end of the latest. A rule on "
    "realized performance is raised when the labels land, after its evidence.</p>"
)


def incidents_table(
    reader: StoreReader,
    model: str,
    incidents: Sequence[Incident],
    deliveries: Mapping[str, list[OutboxRow]],
) -> str:
    """Every incident with when it was raised, its evidence window, its runbook (folded) and
    delivery status, in the order given (the reader's: newest raised first)."""
    if not incidents:
        return '<p class="muted">No incidents.</p>'
    rows = []
    for i in incidents:
        link = incident_href(model, i.dedup_key)
        runbook = reader.runbook(model, i)
        summary = esc(runbook.what_it_means) if runbook else "runbook"
        rows.append(
            [
                f'<a href="{esc(link)}">{esc(i.rule)}</a>',
                badge(i.severity),
                _state(i),
                what(i),
                raised(i),
                _evidence(reader, i),
                esc(when(i.resolved_at)),
                esc(reader.owner(model, i) or "—"),
                deliveries_summary(deliveries.get(i.dedup_key, [])),
                f"<details><summary>{summary}</summary>{runbook_html(runbook)}</details>",
            ]
        )
    return (
        table(
            [
                "rule",
                "severity",
                "state",
                "what",
                "raised",
                "evidence window",
                "resolved",
                "owner",
                "deliveries",
                "runbook",
            ],
            rows,
        )
        + RAISED_NOTE
    )


def _deliveries_table(rows: Sequence[OutboxRow]) -> str:
    if not rows:
        return (
            '<p class="muted">No message queued for this incident (digest rules and incidents '
            "found by a replay send none).</p>"
        )
    return table(
        ["event", "route", "channel", "state", "attempts", "queued", "delivered", "last error"],
        [
            [
                esc(r.event),
                esc(r.route),
                esc(r.channel_type),
                badge(r.state),
                str(r.attempts),
                esc(when(r.created_at, with_time=True)),
                esc(when(r.delivered_at, with_time=True)),
                esc(r.last_error or "—"),
            ]
            for r in rows
        ],
        numeric=(4,),
    )


def _chart(reader: StoreReader, incident: Incident) -> str:
    """The incident's series around its evidence window, with the level it breached."""
    model = incident.model
    starts = reader.window_starts(model)
    if incident.evidence_start not in starts:
        return ""
    first = max(0, starts.index(incident.evidence_start) - CONTEXT_WINDOWS)
    shown = starts[first:]
    rows = reader.history(model, [incident.metric], since=shown[0])
    key = (incident.metric, incident.feature, incident.segment)
    g = grid(rows, shown)
    series = [Series(what_text(incident), g.values(key), 0, flagged=g.flagged(key))]
    thresholds = []
    if incident.threshold is not None:
        thresholds.append(Threshold(incident.threshold, "level breached"))
    end = incident.resolved_at or incident.last_breach_at
    shade = (
        shown.index(incident.evidence_start),
        shown.index(end) if end in shown else len(shown) - 1,
    )
    return (
        "<figure><figcaption>"
        + what(incident)
        + "</figcaption>"
        + line_chart(shown, series, thresholds=thresholds, shade=shade, label=what_text(incident))
        + legend(series, thresholds)
        + '<p class="muted small">Shaded: from the first breaching window to the last one '
        "(or the resolution).</p></figure>"
    )


def what_text(incident: Incident) -> str:
    parts = [incident.metric, incident.feature, f"[{incident.segment}]"]
    return " ".join(p for p in parts if p)


def incident_page(reader: StoreReader, incident: Incident, *, signed_in: bool) -> str:
    model = incident.model
    deliveries = reader.deliveries().get(incident.dedup_key, [])
    runbook = reader.runbook(model, incident)
    feature = (
        f'<a href="{esc(href("models", model, "features", incident.feature))}">'
        f"{esc(incident.feature)}</a>"
        if incident.feature
        else '<span class="muted">the model\'s outputs</span>'
    )
    facts = [
        ("model", f'<a href="{esc(href("models", model))}">{esc(model)}</a>'),
        ("metric", esc(incident.metric)),
        ("feature", feature),
        ("segment", esc(incident.segment)),
        ("raised", raised(incident)),
        ("evidence window", _evidence(reader, incident)),
        ("opened in the window of", esc(when(incident.opened_at))),
        ("last breach in the window of", esc(when(incident.last_breach_at))),
        ("resolved in the window of", esc(when(incident.resolved_at))),
        ("value", esc(number(incident.value))),
        ("level", esc(number(incident.threshold))),
        ("route", esc(incident.route)),
        ("owner", esc(reader.owner(model, incident) or "—")),
        ("reopened", str(incident.reopened)),
        ("dedup key", f'<code class="small">{esc(incident.dedup_key)}</code>'),
    ]
    body = (
        f'<p class="muted"><a href="{esc(href())}">All models</a> / '
        f'<a href="{esc(href("models", model))}">{esc(model)}</a></p>'
        f"<h1>{esc(incident.rule)} {badge(incident.severity)} {_state(incident)}</h1>"
        '<dl class="facts">'
        + "".join(f"<dt>{k}</dt><dd>{v}</dd>" for k, v in facts)
        + "</dl>"
        + RAISED_NOTE
        + "<h2>Runbook</h2>"
        + runbook_html(runbook)
        + "<h2>Evidence</h2>"
        + _chart(reader, incident)
        + "<h2>Deliveries</h2>"
        + _deliveries_table(deliveries)
    )
    return page(f"{incident.rule} · {model}", body, signed_in=signed_in)
