"""``tripwire demo``: the whole loop on the built-in fraud scenario, in the terminal and HTML."""

from __future__ import annotations

import dataclasses
import datetime as dt
import html
import json
from pathlib import Path

import click
from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table
from rich.text import Text

from tripwire.alerts.digest import Digest, to_markdown
from tripwire.alerts.engine import Incident, paging_features
from tripwire.commands.common import err, out
from tripwire.demo import run as demo_run
from tripwire.demo.findings import Finding, findings
from tripwire.demo.pipeline import Throughput
from tripwire.demo.scenario import LABEL_LAG_DAYS
from tripwire.layers.rows import MetricRow
from tripwire.monitor import Monitor
from tripwire.report.html import render_timeline
from tripwire.report.summary import headline, worst_per_subject
from tripwire.report.terminal import STYLE
from tripwire.report.trend import performance_trend
from tripwire.store import DuckDBStore


@click.command()
@click.option(
    "--out",
    "out_dir",
    default=Path("tripwire-demo"),
    show_default=True,
    type=click.Path(path_type=Path),
    help="Where to write the scenario, the store, the alerts and the report.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the findings as JSON.")
@click.option(
    "--serve",
    is_flag=True,
    help="Then open the dashboard on the demo's store (127.0.0.1:8080, or a free port) and "
    "print its address and read token; Ctrl-C stops it.",
)
def demo(out_dir: Path, as_json: bool, serve: bool) -> None:
    """Run the whole loop on a built-in fraud scenario: 30 days, five incidents.

    Generates a reference and 30 days of traffic (nothing is downloaded) and lives through
    them as production would: a serving process logs each prediction with tripwire.Logger to a
    collector on 127.0.0.1, started for the run, which stores it in a DuckDB file; labels
    arrive a week late; the scheduler checks each day's window when it closes and again when
    its labels land, evaluates the starter alert rules and delivers alerts through the outbox
    (the console channel's go to alerts.txt). Prints a day-by-day timeline of the four layers
    and the incidents opened and resolved with their routes, the weekly digest, and writes an
    HTML report. With --serve, the dashboard then shows the store (overview, layers,
    incidents with their runbooks) until Ctrl-C.

    \b
    Example:
      tripwire demo --out /tmp/tripwire-demo
      tripwire demo --serve
    """
    # Refreshed on each step only: while the scheduler delivers alerts, the run sends stderr
    # (where the console channel prints) to a file, and a refresh from the progress bar's own
    # thread would draw the bar in that file.
    with Progress(
        SpinnerColumn(),
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total}"),
        TimeElapsedColumn(),
        console=err,
        transient=True,
        auto_refresh=False,
    ) as bar:
        task = bar.add_task("generating the scenario", total=31)

        def step(label: str) -> None:
            bar.update(task, advance=1, description=f"checked {label}", refresh=True)

        result = demo_run.run(out_dir, step)
    found = findings(result.days)
    report_path = out_dir / "report.html"
    report_path.write_text(
        render_timeline(
            "tripwire demo: fraud-detector, 30 days",
            [(str(d.date), d.timeline_report) for d in result.days],
            _findings_html(found)
            + _trend_html(result)
            + _incidents_html(result.incidents)
            + "".join(_digest_html(to_markdown(d)) for d in result.digests),
        ),
        encoding="utf-8",
    )
    if as_json:
        listed = [
            {
                "incident": f.incident,
                "first_flagged": str(f.first_flagged or ""),
                "evidence": f.evidence,
                "signals": [
                    {
                        "signal": s.name,
                        "first_flagged": str(s.first_flagged or ""),
                        "evidence": s.evidence,
                    }
                    for s in f.signals
                ],
            }
            for f in found
        ]
        summary = {
            "report": str(report_path),
            "findings": listed,
            "pipeline": dataclasses.asdict(result.throughput),
            "alerts": str(out_dir / demo_run.ALERTS),
        }
        click.echo(json.dumps(summary, indent=2))
        if serve:
            _serve(out_dir, result.monitor)
        return
    _print_pipeline(result.throughput, out_dir)
    monitor = result.monitor
    sent = {(d.until - dt.timedelta(days=1)).date(): d for d in result.digests}
    _print_timeline(result.days, paging_features(monitor.config, monitor.importance_), sent)
    out.print(f"\n[bold]What tripwire found[/] ({monitor.config.name})")
    for f in found:
        when = f"{f.first_flagged}: {f.evidence}" if f.first_flagged else "not flagged"
        out.print(Text(f"  {f.incident}\n    {when}"))
        for s in f.signals:
            seen = f"{s.first_flagged}: {s.evidence}" if s.first_flagged else "not flagged"
            out.print(Text(f"      {s.name}: {seen}"))
    out.print("\n[bold]Weekly digests[/] (what moved on features no pager watches)")
    for digest in result.digests:
        # The Markdown minus its title line, which repeats the model and the dates.
        body = to_markdown(digest).split("\n", 1)[1].strip()
        last_day = digest.until - dt.timedelta(days=1)
        out.print(Text(f"{digest.since:%m-%d} to {last_day:%m-%d}", "bold"))
        out.print(Text(body))
    out.print(f"HTML report: {report_path}")
    out.print(
        f"Store: {out_dir / 'tripwire.duckdb'} (try: tripwire gate --config "
        f"{out_dir / 'tripwire.yaml'} --store {out_dir / 'tripwire.duckdb'})"
    )
    out.print(
        f"Replay a day: tripwire check --config {out_dir / 'tripwire.yaml'} "
        f"--current {out_dir / 'days' / f'{result.days[11].date}.parquet'}"
    )
    if serve:
        _serve(out_dir, result.monitor)


def _serve(out_dir: Path, monitor: Monitor) -> None:
    """The dashboard on the demo's store until Ctrl-C (its address on stderr)."""
    from tripwire.server.dashboard.local import local_dashboard

    with DuckDBStore(out_dir / "tripwire.duckdb") as store:
        dashboard = local_dashboard(monitor.config, store, monitor)
        err.print(
            f"\nDashboard: {dashboard.sign_in_url}\n(read token {dashboard.token}: the address "
            "signs your browser in once; Ctrl-C stops the server)",
            highlight=False,
        )
        dashboard.run_until_stopped()


def _print_pipeline(throughput: Throughput, out_dir: Path) -> None:
    t = throughput
    out.print(
        f"Pipeline: {t.events:,} predictions (tripwire.Logger) and {t.labels:,} labels "
        f"({LABEL_LAG_DAYS} days late) went through the collector into "
        f"{out_dir / 'tripwire.duckdb'}; the scheduler checked {t.checked} windows as they "
        f"closed and {t.rechecked} again when their labels landed; {t.alerts} alert messages "
        f"went through the outbox (console channel: {out_dir / demo_run.ALERTS}).",
        highlight=False,
    )


def _cell(rows: list[MetricRow], paging: set[str] | None = None) -> Text:
    text = Text()
    flagged = worst_per_subject(rows)
    for row in flagged[:2]:
        if text:
            text.append("\n")
        text.append(headline(row), STYLE.get(row.status, "dim"))
        if paging is not None and row.feature and row.feature not in paging:
            text.append(" (digest)", "dim")
    if len(flagged) > 2:
        text.append(f"\n+{len(flagged) - 2} more", "dim")
    return text or Text("ok", "green")


def _incident_cell(day: demo_run.DemoDay, digest: Digest | None) -> Text:
    text = Text()
    if digest is not None:
        text.append(
            f"✉ weekly digest: {len(digest.items)} movements, "
            f"{len(digest.incidents)} digest incidents",
            "cyan",
        )
    for incident, event in [(i, "opened") for i in day.opened] + [
        (i, "resolved") for i in day.resolved
    ]:
        if text:
            text.append("\n")
        style = (
            "bold red"
            if incident.severity == "page" and event == "opened"
            else ("green" if event == "resolved" else "yellow")
        )
        mark = "▲" if event == "opened" else "▼"
        text.append(f"{mark} {incident.severity}→{incident.route}: {_what(incident)}", style)
    return text


def _what(incident: Incident) -> str:
    where = f" {incident.feature}" if incident.feature else ""
    segment = f" [{incident.segment}]" if incident.segment != "all" else ""
    return f"{incident.rule}{where}{segment}"


def _print_timeline(
    days: list[demo_run.DemoDay], paging: set[str], digests: dict[dt.date, Digest]
) -> None:
    table = Table(title="Day by day (segments in brackets)", title_justify="left")
    for column in (
        "day",
        "inputs",
        "predictions",
        f"performance\n(estimated, proxy; realized {LABEL_LAG_DAYS} days late)",
        "cost / latency",
        "incidents (▲ opened, ▼ resolved)",
    ):
        # Fold rather than cut: a truncated rule or route name tells nobody anything.
        table.add_column(column, no_wrap=column == "day", overflow="fold")
    for day in days:
        performance = _cell(day.performance)
        if day.labelled is None:
            performance.append("\nrealized: awaiting labels", "dim")
        table.add_row(
            f"{day.date:%m-%d}",
            _cell(day.report.select(layer="inputs"), paging),
            _cell(day.report.select(layer="predictions")),
            performance,
            _cell(day.report.select(layer="cost")),
            _incident_cell(day, digests.get(day.date)),
        )
    out.print(table)


def _findings_html(found: list[Finding]) -> str:
    def flagged(day: dt.date | None, evidence: str) -> str:
        return f"{day}: {html.escape(evidence)}" if day else "not flagged"

    items = "".join(
        f"<li><b>{html.escape(f.incident)}</b>: "
        + flagged(f.first_flagged, f.evidence)
        + (
            "<ul>"
            + "".join(
                f"<li>{html.escape(s.name)}: {flagged(s.first_flagged, s.evidence)}</li>"
                for s in f.signals
            )
            + "</ul>"
            if f.signals
            else ""
        )
        + "</li>"
        for f in found
    )
    return f"<section><h2>What tripwire found</h2><ul>{items}</ul></section>"


def _trend_html(result: demo_run.DemoRun) -> str:
    """The performance charts over the month, as the store holds them at the end."""
    monitor = result.monitor
    return performance_trend(
        monitor.config,
        result.history,
        result.windows,
        monitor.bins_.segments,
        intro="Overall and in each segment, on one chart with each line's alert level: the "
        "estimated values (dashed) from each day's scores, the realized ones (solid) once the "
        f"labels landed, {LABEL_LAG_DAYS} days later (the last {LABEL_LAG_DAYS} days still "
        "await theirs).",
    )


def _incidents_html(incidents: list[Incident]) -> str:
    rows = "".join(
        "<tr>"
        + "".join(
            f"<td>{html.escape(str(v))}</td>"
            for v in (
                i.rule,
                i.severity,
                i.route,
                _what(i),
                f"{i.evidence_start:%Y-%m-%d}",
                f"{i.opened_at:%Y-%m-%d}",
                "open" if i.resolved_at is None else f"{i.resolved_at:%Y-%m-%d}",
                "—" if i.value is None else f"{i.value:.3g}",
            )
        )
        + "</tr>"
        for i in incidents
    )
    head = "".join(
        f"<th>{h}</th>"
        for h in (
            "rule",
            "severity",
            "route",
            "what",
            "evidence from",
            "opened",
            "resolved",
            "value",
        )
    )
    return (
        f"<section><h2>Incidents</h2><table><tr>{head}</tr>{rows}</table>"
        "<p>Each rule's runbook is in tripwire.yaml and in every message.</p></section>"
    )


def _digest_html(markdown: str) -> str:
    return f"<section><h2>Weekly digest</h2><pre>{html.escape(markdown)}</pre></section>"
