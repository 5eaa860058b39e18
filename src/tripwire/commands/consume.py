"""``tripwire consume``: read prediction events from message brokers into the store."""

from __future__ import annotations

import logging
import os
import signal
import socket
import threading
from pathlib import Path
from types import FrameType

import click

from tripwire.commands.common import err, open_store, store_option
from tripwire.commands.serve import _configs
from tripwire.errors import TripwireError

DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/0"


@click.group()
def consume() -> None:
    """Consume prediction events from a message broker into the store."""


@consume.command("redis")
@click.option(
    "--config",
    "config_paths",
    required=True,
    multiple=True,
    type=click.Path(path_type=Path),
    help="A model's tripwire.yaml; repeat for each model whose events the stream carries.",
)
@click.option("--stream", required=True, help="The stream's key.")
@click.option("--group", required=True, help="The consumer group (created when missing).")
@click.option(
    "--consumer",
    "consumer_name",
    help="This consumer's name in the group; keep it across restarts (default: the host name).",
)
@click.option(
    "--url-env",
    default="TRIPWIRE_REDIS_URL",
    show_default=True,
    help=f"The environment variable holding the Redis URL (unset: {DEFAULT_REDIS_URL}).",
)
@store_option
@click.option(
    "--batch-size",
    default=1000,
    show_default=True,
    type=click.IntRange(min=1),
    help="Entries stored in one transaction and acknowledged together.",
)
@click.option(
    "--claim-idle-ms",
    default=30_000,
    show_default=True,
    type=click.IntRange(min=0),
    help="Take over entries another consumer has left unacknowledged this long.",
)
def redis_command(
    config_paths: tuple[Path, ...],
    stream: str,
    group: str,
    consumer_name: str | None,
    url_env: str,
    store_path: Path | None,
    batch_size: int,
    claim_idle_ms: int,
) -> None:
    """Consume events from a Redis stream (as written by RedisTransport) into the store.

    Each entry holds one event as JSON in its `event` field. Entries are acknowledged only
    after their batch is committed to the store, so a crash loses nothing: the batch is read
    again and events already stored are not stored twice. Invalid entries are quarantined.
    Entries another consumer of the group read but never acknowledged are taken over after
    --claim-idle-ms. The consumer owns the store while it runs (DuckDB allows one writing
    process); SIGTERM or Ctrl-C stops it after the batch in hand. The URL is read from an
    environment variable, never from the command line, since it may hold a password.

    \b
    Example:
      export TRIPWIRE_REDIS_URL=redis://:password@redis.internal:6379/0
      tripwire consume redis --config fraud.yaml --stream tripwire:events \\
                             --group tripwire --store tripwire.duckdb
    """
    try:
        import redis
    except ImportError:
        raise TripwireError(
            "consuming from Redis needs the redis package: pip install 'tripwire[redis]'"
        ) from None

    from tripwire.ingest.redis_consumer import RedisConsumer
    from tripwire.server.collector import Collector

    configs = _configs(config_paths)
    url = os.environ.get(url_env) or DEFAULT_REDIS_URL
    name = consumer_name or socket.gethostname()
    # Warnings (quarantined entries) and errors (a failed poll, retried) go to stderr.
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(message)s")
    store = open_store(next(iter(configs.values())), store_path)
    stop = threading.Event()

    def request_stop(signum: int, _frame: FrameType | None) -> None:
        err.print(f"{signal.Signals(signum).name}: stopping after the batch in hand")
        stop.set()

    try:
        collector = Collector(configs, store)
        with RedisConsumer(
            url, stream, group, name, collector, batch_size=batch_size, claim_idle_ms=claim_idle_ms
        ) as consumer:
            for signum in (signal.SIGTERM, signal.SIGINT):
                signal.signal(signum, request_stop)
            try:
                consumer.poll_once()  # fail at startup on a wrong URL or a bad stream key
            except redis.RedisError as exc:
                raise TripwireError(f"Redis ({url_env}): {exc}") from exc
            err.print(
                f"consuming stream {stream!r} as {name!r} of group {group!r} "
                f"for {', '.join(sorted(configs))} into {store.path}"
            )
            consumer.run(stop)
            s = consumer.stats
            err.print(
                f"stopped: {s.entries:,} entries: {s.stored:,} events stored, "
                f"{s.duplicates:,} already stored, {s.quarantined:,} quarantined"
            )
    finally:
        store.close()


COMMANDS = (consume,)
