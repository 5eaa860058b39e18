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

from tripwire.config import ModelConfig, load_config
from tripwire.errors import TripwireError
from tripwire.monitor import Monitor
from tripwire.store import Store
from tripwire.store import open_store as store_at
from tripwire.tabular import read_table

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


def open_store(config: ModelConfig, store_path: str | Path | None) -> Store:
    """The store named by ``--store``, or the DuckDB file beside the config."""
    if store_path is None:
        base = config.source.parent if config.source else Path.cwd()
        store_path = base / "tripwire.duckdb"
    return store_at(str(store_path))


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
