"""The ``tripwire`` command."""

from __future__ import annotations

from contextlib import suppress
from pathlib import Path
from typing import Any

import click
from rich.text import Text

from tripwire import __version__
from tripwire.commands.alerting import COMMANDS as ALERTING_COMMANDS
from tripwire.commands.common import (
    about,
    config_option,
    err,
    fit_monitor,
    out,
    progress_bar,
    reference_option,
)
from tripwire.commands.consume import COMMANDS as CONSUME_COMMANDS
from tripwire.commands.demo import demo
from tripwire.commands.export import export
from tripwire.commands.serve import COMMANDS as SERVER_COMMANDS
from tripwire.config import ConfigError
from tripwire.errors import TripwireError
from tripwire.importance import importance_command
from tripwire.monitor import Monitor
from tripwire.report.terminal import print_report
from tripwire.tabular import read_table


class _Cli(click.Group):
    """Turns errors into one clear line; ``--debug`` shows the traceback instead."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except (click.exceptions.Exit, click.ClickException, click.Abort):
            raise
        except (TripwireError, ConfigError) as exc:
            if ctx.params.get("debug"):
                raise
            err.print(Text(f"error: {exc}", style="red"))
            ctx.exit(2)
        except Exception as exc:
            if ctx.params.get("debug"):
                raise
            err.print(Text(f"internal error: {type(exc).__name__}: {exc}", style="red"))
            err.print("run the same command with --debug to see the traceback")
            ctx.exit(1)


@click.group(cls=_Cli, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--debug", is_flag=True, help="Show tracebacks instead of one-line errors.")
@click.version_option(__version__, prog_name="tripwire")
def cli(debug: bool) -> None:
    """Monitor machine-learning models in production.

    \b
    Start with the built-in scenario:
      tripwire demo
    """


@cli.command()
@config_option
@reference_option
@click.option(
    "--monitor",
    "monitor_path",
    type=click.Path(path_type=Path),
    help="A monitor saved by `tripwire fit`, instead of re-reading the reference.",
)
@click.option(
    "--current",
    required=True,
    type=click.Path(path_type=Path),
    help="The window to check (Parquet or CSV).",
)
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@click.option(
    "--html",
    "html_path",
    type=click.Path(path_type=Path),
    help="Also write a self-contained HTML report here.",
)
def check(
    config_path: Path,
    reference: Path | None,
    monitor_path: Path | None,
    current: Path,
    as_json: bool,
    html_path: Path | None,
) -> None:
    """Check one window of production data against the reference, across the four layers.

    \b
    Example:
      tripwire check --config tripwire.yaml --reference reference.parquet \\
                     --current today.parquet --html report.html
    """
    with progress_bar() as progress:
        task = progress.add_task("reading the config")
        if monitor_path is not None:
            progress.update(task, description=f"loading {monitor_path}")
            monitor = Monitor.load(monitor_path)
        else:
            progress.update(task, description="reading and fitting the reference")
            monitor = fit_monitor(config_path, reference)
        progress.update(task, description=f"checking {current}")
        with about(current):
            report = monitor.check(read_table(current), window=current.stem)
    if html_path is not None:
        report.to_html(html_path)
    if as_json:
        click.echo(report.to_json())
        return
    print_report(report, out)
    if html_path is not None:
        out.print(f"HTML report: {html_path}")


@cli.command()
@config_option
@reference_option
@click.option(
    "--out",
    "out_path",
    required=True,
    type=click.Path(path_type=Path),
    help="Where to save the fitted monitor.",
)
def fit(config_path: Path, reference: Path | None, out_path: Path) -> None:
    """Fit the reference once and save it, so daily checks need not re-read it.

    \b
    Example:
      tripwire fit --config tripwire.yaml --out fraud.monitor
      tripwire check --config tripwire.yaml --monitor fraud.monitor --current today.parquet
    """
    with progress_bar() as progress:
        progress.add_task("reading and fitting the reference")
        monitor = fit_monitor(config_path, reference)
        monitor.save(out_path)
    out.print(f"saved the fitted monitor to {out_path} ({out_path.stat().st_size:,} bytes)")


@cli.command()
@click.argument("reference", type=click.Path(path_type=Path))
@click.option("--name", help="The model's name (default: the file's stem).")
@click.option(
    "--out",
    "out_path",
    default=Path("tripwire.yaml"),
    show_default=True,
    type=click.Path(path_type=Path),
    help="Where to write the config.",
)
@click.option("--force", is_flag=True, help="Overwrite an existing config.")
def init(reference: Path, name: str | None, out_path: Path, force: bool) -> None:
    """Write a starting tripwire.yaml with roles and types guessed from a reference file.

    \b
    Example:
      tripwire init reference.parquet --name fraud-detector
    """
    from tripwire.init_config import infer_config

    if out_path.exists() and not force:
        raise TripwireError(f"{out_path} exists; pass --force to overwrite it")
    table = read_table(reference)
    relative = Path(reference).resolve()
    with suppress(ValueError):
        relative = relative.relative_to(out_path.resolve().parent)
    try:
        text = infer_config(table, name or reference.stem, relative.as_posix())
    except ValueError as exc:
        raise TripwireError(f"{reference}: {exc}") from exc
    out_path.write_text(text, encoding="utf-8")
    out.print(f"wrote {out_path}: check the roles and types it guessed, then run")
    out.print(f"  tripwire check --config {out_path} --current <window.parquet>")


for command in (*ALERTING_COMMANDS, *SERVER_COMMANDS, *CONSUME_COMMANDS, demo, importance_command):
    cli.add_command(command)
cli.add_command(export)


def main() -> None:
    cli(prog_name="tripwire")
