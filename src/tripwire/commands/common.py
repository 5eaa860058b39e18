"""What every command shares: consoles, common options, progress, and opening inputs."""

from __future__ import annotations

import glob
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import click
import pyarrow as pa
from rich.console import Console
from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

from tripwire.commands.remote import find_server
from tripwire.config import ModelConfig, load_config
from tripwire.errors import TripwireError
from tripwire.monitor import Monitor
from tripwire.store import Store
from tripwire.store import open_store as store_at
from tripwire.tabular import read_table
from tripwire.tasks import Request, Result, Task

out = Console()
# Errors are never hard-wrapped: a path or a line number must survive copy and paste.
err = Console(stderr=True, soft_wrap=True)

config_option = click.option(
    "--config",
    "config_path",
    required=True,
    type=click.Path(path_type=Path),
    help="The model's tripwire.yaml.",
)
reference_option = click.option(
    "--reference",
    type=click.Path(path_type=Path),
    help="Reference data (Parquet or CSV); default: the config's `reference`.",
)


@contextmanager
def progress_bar(total: int | None = None) -> Iterator[Progress]:
    columns = [SpinnerColumn(), TextColumn("{task.description}")]
    if total:
        columns += [BarColumn(), TextColumn("{task.completed}/{task.total}")]
    with Progress(*columns, TimeElapsedColumn(), console=err, transient=True) as progress:
        yield progress


@contextmanager
def about(path: Path) -> Iterator[None]:
    """Name the data file in errors about its content (a missing column, say)."""
    try:
        yield
    except TripwireError as exc:
        if str(path) in str(exc):
            raise
        raise TripwireError(f"{path}: {exc}") from exc


def fit_monitor(config_path: Path, reference: Path | None) -> Monitor:
    config = load_config(config_path)
    if reference is None and config.reference is None:
        raise TripwireError(f"{config_path}: no --reference given and the config names none")
    path = reference or config.resolve_path(str(config.reference))
    with about(path):
        return Monitor(config).fit(read_table(path))


store_option = click.option(
    "--store",
    "store_path",
    metavar="PATH|URI",
    help=(
        "A DuckDB file, or a PostgreSQL URI such as postgresql://tripwire@db/tripwire "
        "(default: tripwire.duckdb beside the config)."
    ),
)


def store_target(config: ModelConfig, store_path: str | Path | None) -> str:
    """The store named by ``--store``, or the DuckDB file beside the config."""
    if store_path is None:
        base = config.source.parent if config.source else Path.cwd()
        store_path = base / "tripwire.duckdb"
    return str(store_path)


def open_store(config: ModelConfig, store_path: str | Path | None) -> Store:
    """The store named by ``--store``, or the DuckDB file beside the config.

    A DuckDB file that a running ``tripwire serve`` owns is refused with an error that names
    the server: only the commands that send their work to it (see :func:`on_store`) run then.
    """
    target = store_target(config, store_path)
    server = find_server(target)
    if server is not None:
        context = click.get_current_context(silent=True)
        raise server.refusal(context.command_path if context else "this command")
    return store_at(target)


def on_store(
    config: ModelConfig,
    store_path: str | Path | None,
    task: Task[Request, Result],
    request: Request,
    doing: str,
) -> Result:
    """Do ``task`` on the store, or have the ``tripwire serve`` that owns it do it; either way
    the result is the same. ``doing`` describes the work on the progress line."""
    target = store_target(config, store_path)
    server = find_server(target)
    with progress_bar() as progress:
        if server is not None:
            progress.add_task(f"{doing} on {server}")
            return server.perform(task, request)
        line = progress.add_task(doing)
        with store_at(target) as store:
            return task.work(store, request, lambda text: progress.update(line, description=text))


def read_logs(pattern: str) -> pa.Table:
    """Every Parquet or CSV file matching a glob, as one table."""
    paths = sorted(glob.glob(pattern))
    if not paths:
        raise TripwireError(f"no files match {pattern!r}")
    tables = []
    for path in paths:
        with about(Path(path)):
            tables.append(read_table(path))
    try:
        return pa.concat_tables(tables, promote_options="permissive")
    except pa.ArrowInvalid as exc:
        raise TripwireError(f"the files matching {pattern!r} do not share a schema: {exc}") from exc
