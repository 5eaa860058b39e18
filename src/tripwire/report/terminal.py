"""A report in the terminal, with rich."""

from __future__ import annotations

from rich.console import Console
from rich.table import Table
from rich.text import Text

from tripwire.layers.rows import LAYERS
from tripwire.report.estimated import lag_note, side_by_side
from tripwire.report.model import Report
from tripwire.report.summary import headline, worst_per_subject

STYLE = {"ok": "green", "watch": "yellow", "alert": "bold red", "error": "magenta"}


def status_text(status: str) -> Text:
    return Text(
        status.upper() if status in ("alert", "watch") else status, STYLE.get(status, "dim")
    )


def _fmt(value: float | None) -> str:
    return "—" if value is None else f"{value:.3g}"


def print_report(report: Report, console: Console, top: int = 15) -> None:
    title = f"[bold]{report.model}[/] ({report.task})"
    if report.window:
        title += f" · window {report.window}"
    console.print(f"{title} · {report.n_rows:,} rows vs {report.reference_rows:,} reference rows")
    line = Text()
    for layer in LAYERS:
        line.append(f"{layer} ")
        line.append_text(status_text(report.status(layer)))
        line.append("   ")
    console.print(line)
    note = lag_note(report)
    if note:
        console.print(Text(note, "italic"))

    features = Table(title="Inputs, ranked by importance × drift", title_justify="left")
    for column in ("feature", "importance", "psi", "ks", "js", "null share", "status", "note"):
        features.add_column(column, justify="left" if column in ("feature", "note") else "right")
    for name in report.features()[:top]:
        rows = report.select(layer="inputs", feature=name)
        worst = worst_per_subject(rows)
        status = worst[0].status if worst else "ok"
        notes = [r.reason for r in rows if r.reason and r.status != "info"]
        features.add_row(
            Text(name),
            _fmt(rows[0].importance if rows else None),
            _fmt(report.value("psi", name)),
            _fmt(report.value("ks", name)),
            _fmt(report.value("js", name)),
            _fmt(report.value("null_share", name)),
            status_text(status),
            Text("; ".join(dict.fromkeys(notes))),
        )
    console.print(features)
    hidden = len(report.features()) - top
    if hidden > 0:
        console.print(f"[dim]… {hidden} more features in --json or --html[/]")

    flagged = [
        r for r in worst_per_subject(report.rows) if r.layer != "inputs" or r.segment != "all"
    ]
    if flagged:
        table = Table(title="Flagged outputs and segments", title_justify="left")
        for column in ("layer", "what", "threshold", "status"):
            table.add_column(column)
        for row in flagged:
            # Text, not markup: a segment like "[country=DE]" would be read as a style tag.
            table.add_row(
                row.layer, Text(headline(row)), _fmt(row.threshold), status_text(row.status)
            )
        console.print(table)

    pairs = side_by_side(report)
    if pairs:
        table = Table(title="Performance estimated without labels", title_justify="left")
        for column in ("metric", "estimated", "status", "realized", "error"):
            table.add_column(column, justify="left" if column == "metric" else "right")
        for pair in pairs:
            realized = pair.realized.value if pair.realized else None
            table.add_row(
                pair.metric,
                _fmt(pair.estimated.value),
                status_text(pair.estimated.status),
                "no labels yet" if realized is None else _fmt(realized),
                _fmt(pair.error.value if pair.error else None),
            )
        console.print(table)
