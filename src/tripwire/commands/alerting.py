"""Commands of the monitoring loop: run, rules check, calibrate, backtest, gate, digest."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import click
from rich.table import Table
from rich.text import Text

from tripwire import tasks
from tripwire.alerts.channels import DeliveryError, send_digest
from tripwire.alerts.digest import to_html, to_markdown
from tripwire.alerts.engine import Incident, rule_features
from tripwire.alerts.gate import decide
from tripwire.commands.common import (
    config_option,
    fit_monitor,
    on_store,
    out,
    read_logs,
    reference_option,
    store_option,
)
from tripwire.config import load_config, load_rules
from tripwire.durations import format_duration, parse_duration
from tripwire.errors import TripwireError
from tripwire.layers.catalog import CATALOG
from tripwire.report.terminal import STYLE
from tripwire.tasks import ConfigPayload

# Each command that needs the store does its task (tripwire.tasks) through on_store: on the
# store, or on the running `tripwire serve` that owns it. Either way it prints the same result.


def _duration(_: click.Context, __: click.Parameter, value: str | None) -> timedelta | None:
    try:
        return None if value is None else parse_duration(value)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from exc


def _when(moment: datetime) -> str:
    return (
        f"{moment:%Y-%m-%d}" if moment.time() == datetime.min.time() else f"{moment:%Y-%m-%d %H:%M}"
    )


def _incident_table(incidents: list[Incident], title: str) -> Table:
    table = Table(title=title, title_justify="left")
    for column in ("rule", "severity", "what", "since", "opened", "resolved", "value", "limit"):
        # In a narrow terminal only "what" wraps; truncated rule names and dates are useless.
        table.add_column(column, no_wrap=column != "what")
    for i in incidents:
        where = f"{i.metric} {i.feature}".strip() + (
            "" if i.segment == "all" else f" [{i.segment}]"
        )
        table.add_row(
            i.rule,
            Text(i.severity, STYLE["alert"] if i.severity == "page" else ""),
            Text(where),
            _when(i.evidence_start),
            _when(i.opened_at),
            "open" if i.resolved_at is None else _when(i.resolved_at),
            "—" if i.value is None else f"{i.value:.3g}",
            "—" if i.threshold is None else f"{i.threshold:.3g}",
        )
    return table


def _incident_json(i: Incident) -> dict[str, Any]:
    return {k: (v.isoformat() if isinstance(v, datetime) else v) for k, v in i.__dict__.items()}


@click.command()
@config_option
@reference_option
@store_option
@click.option(
    "--data",
    help="Logged predictions: a file or a glob of files (default: the events in the store).",
)
@click.option("--since", type=click.DateTime(), help="With stored events: the first window.")
@click.option("--until", type=click.DateTime(), help="With stored events: windows before this.")
@click.option("--window", callback=_duration, help="Window length (default: the config's).")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
def run(
    config_path: Path,
    reference: Path | None,
    store_path: str | None,
    data: str | None,
    since: datetime | None,
    until: datetime | None,
    window: timedelta | None,
    as_json: bool,
) -> None:
    """Run the monitoring job: check every window in the data, store the metric rows, evaluate
    the alert rules over the stored history and deliver what they raise.

    Without --data it reads the prediction log in the store (what `tripwire serve` collected),
    with the labels that have arrived. Re-running a window replaces its rows, so the job is
    safe to repeat, e.g. from cron or Airflow. While `tripwire serve` owns the store, the
    server runs the job (between its scheduled checks).

    \b
    Example:
      tripwire run --config tripwire.yaml --data 'logs/*.parquet' --window 1d
      tripwire run --config tripwire.yaml --since 2026-11-01 --until 2026-11-08
    """
    monitor = fit_monitor(config_path, reference)
    length = window or monitor.config.window
    logs = None if data is None else read_logs(data)
    request = tasks.RunRequest.of(monitor, logs, since, until, length)
    result = on_store(monitor.config, store_path, tasks.RUN, request, "checking windows")
    open_now = [i for i in result.incidents if i.is_open]
    if as_json:
        click.echo(
            json.dumps(
                {
                    "windows": [w.isoformat() for w in result.windows],
                    "incidents": [_incident_json(i) for i in result.incidents],
                    "announced": result.announced,
                    "delivered": result.delivered,
                    "failed": result.retry + result.dead,
                },
                indent=2,
            )
        )
        return
    out.print(
        f"checked {len(result.windows)} {format_duration(result.window)} windows of "
        f"{result.model}; {len(open_now)} open incidents, "
        f"{len(result.incidents) - len(open_now)} resolved"
    )
    if result.incidents:
        out.print(_incident_table(result.incidents, "Incidents"))
    out.print(
        f"alerts: {result.announced} queued, {result.delivered} delivered, {result.retry} to "
        f"retry, {result.dead} given up"
    )


@click.command()
@config_option
@reference_option
@store_option
@click.option("--since", type=click.DateTime(), help="First window to replay.")
@click.option("--until", type=click.DateTime(), help="Replay windows before this.")
@click.option(
    "--namespace",
    default="replay",
    show_default=True,
    help="Where the replayed series go; 'production' overwrites the production series.",
)
def replay(
    config_path: Path,
    reference: Path | None,
    store_path: str | None,
    since: datetime | None,
    until: datetime | None,
    namespace: str,
) -> None:
    """Run a new or changed config over a stored past period of the prediction log, without
    touching serving or production series, and show the incidents it would have raised.
    Nothing is sent.

    \b
    Example:
      tripwire replay --config candidate.yaml --store tripwire.duckdb \\
                      --since 2026-11-01 --until 2026-11-08
    """
    monitor = fit_monitor(config_path, reference)
    request = tasks.ReplayRequest(
        monitor=monitor.to_bytes(), since=since, until=until, namespace=namespace
    )
    result = on_store(monitor.config, store_path, tasks.REPLAY, request, "replaying")
    out.print(
        f"replayed {len(result.windows)} windows into namespace {result.namespace!r}; "
        "nothing was sent"
    )
    out.print(_incident_table(result.incidents, f"{len(result.incidents)} incidents"))


@click.group()
def rules() -> None:
    """Alert rules."""


@rules.command("check")
@click.argument("config_path", type=click.Path(path_type=Path))
def rules_check(config_path: Path) -> None:
    """Validate a config's alert rules (metric names, thresholds, windows, runbooks, routes),
    the same way the job does at load, and show what each watches.

    \b
    Example:
      tripwire rules check tripwire.yaml
    """
    config = load_config(config_path)
    importance = config.resolve_importance()
    out.print(f"{config_path}: {len(config.alerts)} rules, all valid")
    for rule in config.alerts:
        features = [f for f in rule_features(rule, config, importance) if f]
        where = f" on {len(features)} features" if CATALOG[rule.metric].per_feature else ""
        if isinstance(rule.segment, list):
            where += f" in {', '.join(rule.segment)}"
        elif rule.segment != "all":
            where += " in each segment" if rule.segment == "each" else " in the tracked segments"
        if rule.threshold_z is not None:
            limit = f"|z| > {rule.threshold_z} against {rule.baseline}"
        elif rule.baseline == "reference":
            limit = f"{rule.threshold} beyond the reference value"
        else:
            limit = f"past {rule.threshold}"
        persistence = f" for {format_duration(rule.window)}" if rule.window else ""
        out.print(
            Text(
                f"  {rule.name}: {rule.metric}{where}, {limit}{persistence} -> "
                f"{rule.severity} via {config.route_for(rule)}"
            )
        )


@click.command()
@config_option
@store_option
@click.option("--days", default=14, show_default=True, help="Normal days to learn from.")
@click.option("--quantile", default=0.95, show_default=True, help="Quantile of normal values.")
def calibrate(config_path: Path, store_path: str | None, days: int, quantile: float) -> None:
    """Learn per-feature thresholds for rules with `threshold: calibrated` from the last days
    of stored history, leaving out days inside incidents or marked abnormal.

    \b
    Example:
      tripwire calibrate --config tripwire.yaml --days 14
    """
    config = load_config(config_path)
    request = tasks.CalibrateRequest(config=ConfigPayload.of(config), days=days, quantile=quantile)
    result = on_store(config, store_path, tasks.CALIBRATE, request, "calibrating thresholds")
    found = result.calibrations
    table = Table(title=f"{len(found)} calibrated thresholds", title_justify="left")
    for column in ("metric", "feature", "segment", "threshold", "floor", "normal windows"):
        table.add_column(column)
    for c in found:
        table.add_row(
            c.metric,
            Text(c.feature),
            Text(c.segment),
            f"{c.threshold:.4g}",
            f"{c.floor:.4g}",
            str(len(c.windows_used)),
        )
    out.print(table)
    for note in result.notes:
        out.print(Text(note, "yellow"))


@click.command()
@config_option
@store_option
@click.option(
    "--rules",
    "rules_path",
    required=True,
    type=click.Path(path_type=Path),
    help="A YAML file with the proposed `alerts:` list.",
)
@click.option("--from", "since", type=click.DateTime(), help="First window to replay.")
@click.option("--to", "until", type=click.DateTime(), help="Replay windows before this.")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
def backtest(
    config_path: Path,
    store_path: str | None,
    rules_path: Path,
    since: datetime | None,
    until: datetime | None,
    as_json: bool,
) -> None:
    """Replay stored history through proposed rules with the production code path; nothing
    is sent. Shows per rule how many incidents, when, where, and the diff against the
    current rules.

    \b
    Example:
      tripwire backtest --config tripwire.yaml --rules new-rules.yaml \\
                        --from 2026-10-01 --to 2026-11-01
    """
    config = load_config(config_path)
    proposed = load_rules(rules_path, config)
    request = tasks.BacktestRequest(
        config=ConfigPayload.of(config), proposed=proposed.to_yaml(), since=since, until=until
    )
    result = on_store(config, store_path, tasks.BACKTEST, request, "backtesting").backtest()
    windows = result.windows
    if as_json:
        click.echo(
            json.dumps(
                {
                    "windows": len(windows),
                    "per_rule": result.per_rule(),
                    "incidents": [_incident_json(i) for i in result.proposed],
                    "added": [_incident_json(i) for i in result.added],
                    "removed": [_incident_json(i) for i in result.removed],
                },
                indent=2,
            )
        )
        return
    out.print(
        f"replayed {len(windows)} windows ({windows[0]:%Y-%m-%d} to {windows[-1]:%Y-%m-%d}); "
        "nothing was sent"
    )
    counts = Table(title="Incidents per proposed rule", title_justify="left")
    counts.add_column("rule")
    counts.add_column("incidents", justify="right")
    for name in [r.name for r in proposed.alerts]:
        counts.add_row(name, str(result.per_rule().get(name, 0)))
    out.print(counts)
    out.print(_incident_table(result.added, f"{len(result.added)} more than the current rules"))
    out.print(_incident_table(result.removed, f"{len(result.removed)} fewer"))


@click.command()
@config_option
@reference_option
@store_option
@click.option("--json", "as_json", is_flag=True, help="Print the decision as JSON.")
@click.pass_context
def gate(
    ctx: click.Context,
    config_path: Path,
    reference: Path | None,
    store_path: str | None,
    as_json: bool,
) -> None:
    """Decide whether to retrain: `retrain` needs drift on important features AND a measured
    performance drop (or, with labels under 7 days late, a performance drop alone);
    otherwise `investigate` or `hold`. Exit code: hold 0, investigate 10, retrain 20.

    \b
    Example:
      tripwire gate --config tripwire.yaml --json && echo "nothing to do"
    """
    monitor = fit_monitor(config_path, reference)
    request = tasks.GateRequest(monitor=monitor.to_bytes())
    found = on_store(monitor.config, store_path, tasks.GATE, request, "evaluating the rules")
    result = decide(monitor.config, found.incidents, monitor.importance_)
    if as_json:
        click.echo(
            json.dumps(
                {
                    "decision": result.decision,
                    "exit_code": result.exit_code,
                    "reasons": result.reasons,
                    "drift": [_incident_json(i) for i in result.drift],
                    "performance": [_incident_json(i) for i in result.performance],
                },
                indent=2,
            )
        )
    else:
        style = {"hold": "green", "investigate": "yellow", "retrain": "bold red"}[result.decision]
        out.print(Text(f"decision: {result.decision}", style))
        for reason in result.reasons:
            out.print(Text(f"  - {reason}"))
    ctx.exit(result.exit_code)


@click.command()
@config_option
@store_option
@click.option("--days", default=7, show_default=True, help="How many days back the digest covers.")
@click.option(
    "--out",
    "out_dir",
    type=click.Path(path_type=Path),
    default=Path("."),
    show_default=True,
    help="Where to write digest.md and digest.html.",
)
@click.option("--send", is_flag=True, help="Also send it through the digest severity's route.")
def digest(config_path: Path, store_path: str | None, days: int, out_dir: Path, send: bool) -> None:
    """Write the digest of features outside the paging set: what moved, by how much, since
    when; and the digest-severity incidents.

    \b
    Example:
      tripwire digest --config tripwire.yaml --days 7 --out reports/
    """
    config = load_config(config_path)
    request = tasks.DigestRequest(config=ConfigPayload.of(config), days=days)
    result = on_store(config, store_path, tasks.DIGEST, request, "reading the history").digest
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "digest.md").write_text(to_markdown(result), encoding="utf-8")
    (out_dir / "digest.html").write_text(to_html(result), encoding="utf-8")
    out.print(Text(to_markdown(result)))
    out.print(f"wrote {out_dir / 'digest.md'} and {out_dir / 'digest.html'}")
    if send:
        route = config.severity_routes["digest"]
        failures = []
        for channel in config.routes[route]:
            try:
                send_digest(channel, result.subject, to_markdown(result), to_html(result))
            except DeliveryError as exc:
                failures.append(str(exc))
        if failures:
            raise TripwireError("the digest was not delivered: " + "; ".join(failures))
        out.print(f"sent through route {route!r}")


COMMANDS = (run, replay, rules, calibrate, backtest, gate, digest)
