"""The dashboard's first page: every model, the state of its four layers, its open incidents
and who owns them."""

from __future__ import annotations

from tripwire.layers.rows import MetricRow
from tripwire.report.summary import headline
from tripwire.server.dashboard.html import badge, esc, href, incident_href, page, table, when
from tripwire.server.dashboard.incidents import RAISED_NOTE, raised, what
from tripwire.server.reader import LayerSnapshot, StoreReader, raised_order

__all__ = ["layer_badges", "overview_page"]


def _tip(snapshot: LayerSnapshot) -> str:
    if snapshot.window_start is None:
        return f"{snapshot.layer}: no verdict yet"
    worst = "; ".join(headline(r) for r in snapshot.flagged[:3])
    return f"{snapshot.layer} in the window of {when(snapshot.window_start)}" + (
        f": {worst}" if worst else ""
    )


def layer_badges(snapshots: list[LayerSnapshot]) -> str:
    return (
        '<div class="layers">'
        + "".join(
            badge(f"{s.layer}: {s.state.replace('_', ' ')}", s.state, _tip(s)) for s in snapshots
        )
        + "</div>"
    )


def _flagged(rows: list[MetricRow]) -> str:
    return "<br>".join(esc(headline(r)) for r in rows[:2])


def overview_page(reader: StoreReader, *, signed_in: bool) -> str:
    cards = []
    open_rows = []
    for name in sorted(reader.configs):
        config = reader.config(name)
        starts = reader.window_starts(name)
        snapshots = reader.layer_states(name, starts)
        incidents = [i for i in reader.incidents(name) if i.is_open]
        owners = ", ".join(o.name + (f" ({o.contact})" if o.contact else "") for o in config.owners)
        worst = [r for s in snapshots for r in s.flagged[:1]]
        value = config.business_value.annual_usd if config.business_value else None
        cards.append(
            '<div class="card model">'
            f'<h3><a href="{esc(href("models", name))}">{esc(name)}</a></h3>'
            f"{layer_badges(snapshots)}"
            f'<p class="small">{len(incidents)} open incident{"s" if len(incidents) != 1 else ""}'
            f" \u00b7 {len(starts)} windows, latest {esc(when(starts[-1] if starts else None))}"
            + (f" \u00b7 worth ${value:,.0f}/yr" if value else "")
            + "</p>"
            + (f'<p class="small">{_flagged(worst)}</p>' if worst else "")
            + f'<p class="small muted">owners: {esc(owners or "none named")}</p></div>'
        )
        for i in incidents:
            link = incident_href(name, i.dedup_key)
            open_rows.append(
                (
                    raised_order(i),
                    [
                        f'<a href="{esc(href("models", name))}">{esc(name)}</a>',
                        f'<a href="{esc(link)}">{esc(i.rule)}</a>',
                        badge(i.severity),
                        what(i),
                        raised(i),
                        esc(when(i.evidence_start)),
                        esc(reader.owner(name, i) or "—"),
                        esc(i.route),
                    ],
                )
            )
    open_rows.sort(key=lambda r: r[0], reverse=True)
    incidents_html = (
        table(
            ["model", "incident", "severity", "what", "raised", "evidence from", "owner", "route"],
            [cells for _, cells in open_rows],
        )
        + RAISED_NOTE
        if open_rows
        else '<p class="muted">No open incidents.</p>'
    )
    body = (
        "<h1>Models</h1>"
        '<p class="muted">Each layer shows the worst verdict of its latest judged window: '
        "inputs, predictions and cost as each window closes, performance once labels arrive."
        "</p>"
        f'<div class="cards">{"".join(cards) or "<p>No models configured.</p>"}</div>'
        f"<h2>Open incidents</h2>{incidents_html}"
    )
    return page("Models", body, signed_in=signed_in)
