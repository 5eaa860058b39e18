"""``tripwire serve``: the HTTP collector and its scheduler; ``tripwire labels load``: labels from
a file."""

from __future__ import annotations

import gc
import os
import secrets
import signal
import socket
import threading
from datetime import timedelta
from pathlib import Path
from typing import Any

import click
import pyarrow as pa

from tripwire import tasks
from tripwire.commands.common import (
    about,
    config_option,
    err,
    on_store,
    open_store,
    out,
    store_option,
)
from tripwire.commands.remote import is_file_store, remove_server_file, write_server_file
from tripwire.config import ModelConfig, load_config
from tripwire.durations import format_duration, parse_duration
from tripwire.errors import TripwireError
from tripwire.events import validate_labels
from tripwire.monitor import Monitor
from tripwire.tabular import read_table

LABEL_COLUMNS = ("event_id", "label", "labelled_at")


def _token(env: str, insecure: bool, role: str) -> str | None:
    token = os.environ.get(env) or None
    if token is None and not insecure:
        raise TripwireError(
            f"no {role} token: set the environment variable {env} (or name another with "
            f"--{role}-token-env), or pass --insecure to accept requests without one"
        )
    return token


def _configs(paths: tuple[Path, ...]) -> dict[str, ModelConfig]:
    configs: dict[str, ModelConfig] = {}
    for path in paths:
        config = load_config(path)
        if config.name in configs:
            raise TripwireError(
                f"{path}: model {config.name!r} is already served by another --config"
            )
        configs[config.name] = config
    return configs


def _grace(_: click.Context, __: click.Parameter, value: str) -> timedelta:
    try:
        return parse_duration(value)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from exc


def _monitors(configs: dict[str, ModelConfig]) -> tuple[dict[str, Monitor], dict[str, str]]:
    """Each model's monitor fitted on its config's reference, and why any could not be fitted.

    A model that cannot be scheduled is still collected for: the collector must keep taking
    events while its config is being fixed.
    """
    monitors: dict[str, Monitor] = {}
    failed: dict[str, str] = {}
    for name, config in configs.items():
        where = config.source or name
        try:
            if config.reference is None:
                raise TripwireError(f"{where}: the config names no reference to check against")
            path = config.resolve_path(str(config.reference))
            with about(path):
                monitor = Monitor(config).fit(read_table(path))
            # The fitted state's bytes, which the job stores beside the windows it checks
            # (save_reference), made now, before a request can come: they take seconds for a
            # wide model, and the first check would make them holding the store's lock.
            monitor.to_bytes()
            monitors[name] = monitor
        except TripwireError as exc:
            failed[name] = str(exc)
    return monitors, failed


@click.command()
@click.option(
    "--config",
    "config_paths",
    required=True,
    multiple=True,
    type=click.Path(path_type=Path),
    help="A model's tripwire.yaml; repeat for each model the collector accepts.",
)
@store_option
@click.option("--host", default="127.0.0.1", show_default=True, help="The address to listen on.")
@click.option("--port", default=8080, show_default=True, type=int, help="The port to listen on.")
@click.option(
    "--ingest-token-env",
    default="TRIPWIRE_INGEST_TOKEN",
    show_default=True,
    help="The environment variable holding the bearer token for POST /v1/events and /v1/labels.",
)
@click.option(
    "--read-token-env",
    default="TRIPWIRE_READ_TOKEN",
    show_default=True,
    help="The environment variable holding the bearer token for GET /v1/quarantine and /v1/jobs.",
)
@click.option(
    "--admin-token-env",
    default="TRIPWIRE_ADMIN_TOKEN",
    show_default=True,
    help="The environment variable holding the bearer token for /v1/admin (unset: a new "
    "random token, kept in the server file beside a DuckDB store).",
)
@click.option(
    "--insecure",
    is_flag=True,
    help="Accept requests without a token when its environment variable is unset.",
)
@click.option(
    "--schedule/--no-schedule",
    default=True,
    show_default=True,
    help="Check each model's windows as they close (needs each config's reference).",
)
@click.option(
    "--grace",
    default="10m",
    show_default=True,
    callback=_grace,
    help="How long after a window ends to wait for late events before checking it.",
)
@click.option(
    "--interval",
    default="30s",
    show_default=True,
    callback=_grace,
    help="How often to look for windows that have closed (and windows to check again).",
)
@click.option(
    "--recheck-every",
    "recheck_every",
    default="1h",
    show_default=True,
    callback=_grace,
    help="At most how often one window is checked again while its labels or late events "
    "trickle in.",
)
@click.option(
    "--parse-workers",
    type=click.IntRange(min=0),
    default=None,
    help="Processes that decode and validate event batches beside the server's own "
    "[default: the cores less one, at most 4; none on one core].",
)
def serve(
    config_paths: tuple[Path, ...],
    store_path: str | None,
    host: str,
    port: int,
    ingest_token_env: str,
    read_token_env: str,
    admin_token_env: str,
    insecure: bool,
    schedule: bool,
    grace: timedelta,
    interval: timedelta,
    recheck_every: timedelta,
    parse_workers: int | None,
) -> None:
    """Collect prediction events and labels over HTTP into the store, and check each model's
    windows as they close.

    Clients POST batches to /v1/events and /v1/labels (JSON or NDJSON) with the ingest token;
    invalid items are rejected one by one and quarantined. The collector owns the store while it
    runs (DuckDB allows one writing process). Tokens are read from environment variables, never
    from the command line. The API is documented at /docs.

    Each window is checked (as `tripwire run` checks it) once it has ended and --grace has
    passed, and checked again when labels or late events arrive for it (at most once per
    --recheck-every); GET /v1/jobs shows where each model is. --no-schedule only collects.

    On a DuckDB store the server writes <store>.server.json beside it (its URL, pid and admin
    token; readable by you only) and removes it when it stops. While it runs, `tripwire run`,
    `replay`, `labels load`, `calibrate`, `backtest`, `gate` and `digest` on that store send
    their work to it (/v1/admin); other commands that need the store say that the server owns
    it. Stop the server with SIGTERM or Ctrl-C.

    \b
    Example:
      export TRIPWIRE_INGEST_TOKEN=... TRIPWIRE_READ_TOKEN=...
      tripwire serve --config fraud.yaml --config churn.yaml --store tripwire.duckdb --port 8080
    """
    import uvicorn

    from tripwire.scheduler import Scheduler
    from tripwire.server import create_app
    from tripwire.server.parsing import default_workers

    configs = _configs(config_paths)
    ingest_token = _token(ingest_token_env, insecure, "ingest")
    read_token = _token(read_token_env, insecure, "read")
    admin_token = os.environ.get(admin_token_env) or secrets.token_urlsafe(32)
    scheduler = None
    # Refused, naming the server, when another tripwire serve owns the file.
    store = open_store(next(iter(configs.values())), store_path)
    announced = None
    try:
        if schedule:
            monitors, failed = _monitors(configs)
            for reason in failed.values():
                err.print(f"warning: not scheduled: {reason}")
            scheduler = Scheduler(
                monitors,
                store,
                threading.Lock(),
                grace=grace,
                interval=interval.total_seconds(),
                recheck_interval=recheck_every,
                unscheduled=failed,
            )
        app = create_app(
            configs,
            store,
            ingest_token,
            read_token,
            scheduler=scheduler,
            admin_token=admin_token,
            parse_workers=default_workers() if parse_workers is None else parse_workers,
        )
        server = uvicorn.Server(uvicorn.Config(app, host=host, port=port, log_level="info"))
        # Bound and listening before the server file names it: a command that finds the file
        # can connect at once (it waits in the backlog until the app has started).
        sock = server.config.bind_socket()
        sock.listen(server.config.backlog)
        open_to = [role for role, t in (("ingest", ingest_token), ("read", read_token)) if not t]
        if open_to:
            err.print(f"warning: --insecure: {' and '.join(open_to)} endpoints need no token")
        base = f"http://{host}:{sock.getsockname()[1]}"
        err.print(
            f"collecting for {', '.join(sorted(configs))} into {store.where} "
            f"on {base} (API docs at /docs)"
        )
        sign_in = " (sign in with the read token)" if read_token else ""
        err.print(f"dashboard at {base}/dashboard{sign_in}")
        if scheduler is not None and scheduler.monitors:
            err.print(
                f"checking windows of {', '.join(sorted(scheduler.monitors))} "
                f"{format_duration(grace)} after they close"
            )
        if is_file_store(store.where):
            announced = store.where
            path = write_server_file(announced, _url(sock), admin_token)
            err.print(f"commands on {store.where} come here through {path}")
        # uvicorn stops gracefully on SIGTERM, then raises it again for the handler it found:
        # a no-op one lets this function clean up (the server file, the store) and exit 0.
        previous = signal.signal(signal.SIGTERM, lambda *_: None)
        # What start-up made lives as long as the server: out of the cyclic GC's way, so that
        # a collection walks only what requests make (the collector's batches make thousands
        # of containers each; measured, about a tenth less server CPU per event).
        gc.collect()
        gc.freeze()
        try:
            with sock:
                server.run(sockets=[sock])
        finally:
            signal.signal(signal.SIGTERM, previous)
    finally:
        if announced is not None:
            remove_server_file(announced)
        store.close()


def _url(sock: socket.socket) -> str:
    """The URL a client on this machine reaches ``sock`` at."""
    host, port = sock.getsockname()[:2]
    if ":" in host:  # IPv6
        return f"http://[{'::1' if host == '::' else host}]:{port}"
    return f"http://{'127.0.0.1' if host == '0.0.0.0' else host}:{port}"


@click.group()
def labels() -> None:
    """Load labels (the outcomes of logged predictions) into the store."""


@labels.command("load")
@click.argument("path", type=click.Path(path_type=Path))
@config_option
@store_option
def load(path: Path, config_path: Path, store_path: str | None) -> None:
    """Load labels from a CSV or Parquet file with columns event_id, label[, labelled_at].

    Labels join their events by event_id; a later label for an event replaces the earlier one.
    Rows that do not validate are quarantined with their row number (1 is the first row after
    the header) and the rest are stored. While `tripwire serve` owns the store, the server
    stores them.

    \b
    Example:
      tripwire labels load labels.csv --config tripwire.yaml --store tripwire.duckdb
    """
    config = load_config(config_path)
    items = _label_rows(read_table(path), path, config.name)
    accepted, invalid = validate_labels(config, items)
    # Rows are numbered from 1, as a reader counts them.
    rejected = [r.model_copy(update={"index": r.index + 1}) for r in invalid]
    request = tasks.LabelsRequest(
        model=config.name, source=f"labels load {path}", labels=accepted, rejected=rejected
    )
    on_store(config, store_path, tasks.LABELS, request, "storing labels")
    out.print(f"{path}: {len(accepted):,} labels stored, {len(rejected):,} quarantined")
    for r in rejected[:10]:
        out.print(f"  row {r.index}: {r.reason}")
    if len(rejected) > 10:
        out.print(f"  ... and {len(rejected) - 10:,} more (see the store's quarantine)")


def _label_rows(table: pa.Table, path: Path, model: str) -> list[dict[str, Any]]:
    missing = [name for name in LABEL_COLUMNS[:2] if name not in table.column_names]
    if missing:
        raise TripwireError(
            f"{path}: missing column {', '.join(missing)} (expected event_id, label[, labelled_at])"
        )
    # A CSV reader types numeric ids as integers; an event id is text.
    ids = table.column("event_id").cast(pa.string())
    columns = {"event_id": ids, "label": table.column("label")}
    if "labelled_at" in table.column_names:
        columns["labelled_at"] = table.column("labelled_at")
    rows: list[dict[str, Any]] = pa.table(columns).to_pylist()
    for row in rows:
        row["model"] = model
    return rows


COMMANDS = (serve, labels)
