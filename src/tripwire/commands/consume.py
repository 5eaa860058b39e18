"""``tripwire consume``: read prediction events from message brokers or spool files into the
store."""

from __future__ import annotations

import logging
import os
import signal
import socket
import threading
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Any, TypeVar

import click

from tripwire.commands.common import err, open_store, store_option
from tripwire.commands.serve import _configs
from tripwire.errors import TripwireError

if TYPE_CHECKING:
    from tripwire.config import ModelConfig
    from tripwire.ingest.file_consumer import OnFinished
    from tripwire.ingest.progress import ConsumerStats
    from tripwire.server.collector import Collector
    from tripwire.store import Store

DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/0"
DEFAULT_KAFKA_BOOTSTRAP = "127.0.0.1:9092"

_Command = TypeVar("_Command", bound=Callable[..., Any])


def _config_option(events: str) -> Callable[[_Command], _Command]:
    """``--config``, repeatable: the models whose events ``events`` ("the topic carries")."""
    return click.option(
        "--config",
        "config_paths",
        required=True,
        multiple=True,
        type=click.Path(path_type=Path),
        help=f"A model's tripwire.yaml; repeat for each model whose events {events}.",
    )


def _batch_size_option(items: str, done: str) -> Callable[[_Command], _Command]:
    """``--batch-size``: how many ``items`` ("Messages") are stored in one transaction and
    ``done`` ("committed") together."""
    return click.option(
        "--batch-size",
        default=1000,
        show_default=True,
        type=click.IntRange(min=1),
        help=f"{items} stored in one transaction and {done} together.",
    )


@dataclass
class _Consuming:
    """What a consume command consumes with: the store it opened, a collector for it, and the
    event that stops the consumer (see :func:`_stop_on_signals`)."""

    configs: Mapping[str, ModelConfig]
    store: Store
    collector: Collector
    stop: threading.Event

    @property
    def destination(self) -> str:
        """For the line that says what is being consumed: the models and the store."""
        return f"for {', '.join(sorted(self.configs))} into {self.store.where}"


@contextmanager
def _consuming(configs: Mapping[str, ModelConfig], store_path: str | None) -> Iterator[_Consuming]:
    """Open the store of ``configs`` (``--store``, else the DuckDB file beside the first) for a
    consumer, and close it at the end. Warnings (quarantined items, a broker's errors) and
    errors (a failed poll, retried) go to stderr from now on."""
    from tripwire.server.collector import Collector

    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(message)s")
    store = open_store(next(iter(configs.values())), store_path)
    stop = threading.Event()
    try:
        yield _Consuming(configs, store, Collector(configs, store), stop)
    finally:
        store.close()


def _tally(stats: ConsumerStats, items: int, unit: str) -> str:
    """What became of the ``items`` ``unit`` ("messages") a consumer took, for its last line."""
    return (
        f"{items:,} {unit}: {stats.stored:,} events stored, {stats.duplicates:,} already "
        f"stored, {stats.quarantined:,} quarantined"
    )


@click.group()
def consume() -> None:
    """Consume prediction events from a message broker or spool files into the store."""


@consume.command("redis")
@_config_option("the stream carries")
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
@_batch_size_option("Entries", "acknowledged")
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
    store_path: str | None,
    batch_size: int,
    claim_idle_ms: int,
) -> None:
    """Consume events from a Redis stream (as written by RedisTransport) into the store.

    Each entry holds one event as JSON in its `event` field. Entries are acknowledged only
    after their batch is committed to the store, so a crash loses nothing: the batch is read
    again and events already stored are not stored twice. Invalid entries are quarantined.
    Entries another consumer of the group read but never acknowledged are taken over after
    --claim-idle-ms. The consumer owns the store while it runs (DuckDB allows one writing
    process); SIGTERM or Ctrl-C stops it after the batch in hand. Every few seconds it records
    the group's lag and the events stored in the store, for the /metrics of a tripwire serve on
    the same store. The URL is read from an environment variable, never from the command line,
    since it may hold a password.

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

    configs = _configs(config_paths)
    url = os.environ.get(url_env) or DEFAULT_REDIS_URL
    name = consumer_name or socket.gethostname()
    with (
        _consuming(configs, store_path) as run,
        RedisConsumer(
            url,
            stream,
            group,
            name,
            run.collector,
            batch_size=batch_size,
            claim_idle_ms=claim_idle_ms,
        ) as consumer,
    ):
        _stop_on_signals(run.stop)
        try:
            consumer.poll_once()  # fail at startup on a wrong URL or a bad stream key
        except redis.RedisError as exc:
            raise TripwireError(f"Redis ({url_env}): {exc}") from exc
        err.print(f"consuming stream {stream!r} as {name!r} of group {group!r} {run.destination}")
        consumer.run(run.stop)
        err.print(f"stopped: {_tally(consumer.stats, consumer.stats.entries, 'entries')}")


def _stop_on_signals(stop: threading.Event) -> None:
    """SIGTERM and Ctrl-C set ``stop``: the consumer finishes the batch in hand, then exits."""

    def request_stop(signum: int, _frame: FrameType | None) -> None:
        err.print(f"{signal.Signals(signum).name}: stopping after the batch in hand")
        stop.set()

    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, request_stop)


def _kafka_options(options: tuple[str, ...]) -> dict[str, Any]:
    settings: dict[str, Any] = {}
    for option in options:
        key, sep, value = option.partition("=")
        if not sep or not key.strip():
            raise click.BadParameter(f"{option!r} is not KEY=VALUE", param_hint="'-X'")
        settings[key.strip()] = value
    return settings


@consume.command("kafka")
@_config_option("the topic carries")
@click.option("--topic", required=True, help="The topic to consume.")
@click.option("--group", required=True, help="The consumer group (its committed offsets).")
@click.option(
    "--bootstrap-env",
    default="TRIPWIRE_KAFKA_BOOTSTRAP",
    show_default=True,
    help=f"The environment variable holding the bootstrap servers, host:port[,host:port...] "
    f"(unset: {DEFAULT_KAFKA_BOOTSTRAP}).",
)
@store_option
@_batch_size_option("Messages", "committed")
@click.option(
    "-X",
    "--kafka-option",
    "kafka_options",
    multiple=True,
    metavar="KEY=VALUE",
    help="A librdkafka consumer setting, e.g. -X session.timeout.ms=10000; repeatable. "
    "Visible in the process list: keep passwords out of it.",
)
def kafka_command(
    config_paths: tuple[Path, ...],
    topic: str,
    group: str,
    bootstrap_env: str,
    store_path: str | None,
    batch_size: int,
    kafka_options: tuple[str, ...],
) -> None:
    """Consume events from a Kafka topic (as written by KafkaTransport) into the store.

    Each message holds one event as JSON. Offsets are committed only after their batch is
    committed to the store, so a crash loses nothing: the batch is read again and events
    already stored are not stored twice. Invalid messages are quarantined. Run several with
    the same --group to share the topic's partitions (each with its own store, or one
    consumer per store: DuckDB allows one writing process). Every few seconds it records the
    group's lag (over all the topic's partitions) and the events stored in the store, for the
    /metrics of a tripwire serve on the same store. SIGTERM or Ctrl-C stops it after the batch
    in hand and leaves the group.

    \b
    Example:
      export TRIPWIRE_KAFKA_BOOTSTRAP=kafka-1.internal:9092,kafka-2.internal:9092
      tripwire consume kafka --config fraud.yaml --topic tripwire-events \\
                             --group tripwire --store tripwire.duckdb
    """
    try:
        from confluent_kafka import KafkaException
    except ImportError:
        raise TripwireError(
            "consuming from Kafka needs confluent-kafka: pip install 'tripwire[kafka]'"
        ) from None

    from tripwire.ingest.kafka_consumer import KafkaConsumer

    configs = _configs(config_paths)
    settings = _kafka_options(kafka_options)
    bootstrap = os.environ.get(bootstrap_env) or DEFAULT_KAFKA_BOOTSTRAP
    with _consuming(configs, store_path) as run:
        try:
            consumer = KafkaConsumer(
                bootstrap, topic, group, run.collector, batch_size=batch_size, **settings
            )
        except KafkaException as exc:
            raise TripwireError(f"Kafka: {exc}") from exc
        with consumer:
            _stop_on_signals(run.stop)
            try:
                # librdkafka retries an unreachable cluster forever: fail at startup instead.
                partitions = consumer.check()
            except KafkaException as exc:
                raise TripwireError(f"Kafka at {bootstrap} ({bootstrap_env}): {exc}") from exc
            if not partitions:
                err.print(f"warning: topic {topic!r} does not exist yet; waiting for it")
            err.print(
                f"consuming topic {topic!r} ({partitions} partitions) as group {group!r} "
                f"{run.destination}"
            )
            consumer.run(run.stop)
        err.print(f"stopped: {_tally(consumer.stats, consumer.stats.messages, 'messages')}")


@consume.command("files")
@click.option(
    "--directory",
    required=True,
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    help="The spool directory a Logger's FileTransport writes to.",
)
@_config_option("the files hold")
@store_option
@click.option(
    "--follow",
    is_flag=True,
    help="Keep watching for new lines and files until SIGTERM or Ctrl-C (default: store what "
    "is there, then exit, as from cron).",
)
@click.option(
    "--poll-interval",
    default=1.0,
    show_default=True,
    type=click.FloatRange(min=0.01),
    help="Seconds between looks for new lines with --follow.",
)
@click.option(
    "--on-finished",
    type=click.Choice(["keep", "delete", "move"]),
    default="keep",
    show_default=True,
    help="What to do with a file once it is finished (see above) and all of it is stored: keep "
    "it, delete it, or move it to the directory's done/ folder.",
)
@click.option(
    "--pattern",
    default="*.ndjson",
    show_default=True,
    help="Which files of the directory to read (a shell pattern on the name).",
)
@_batch_size_option("Lines", "recorded")
def files_command(
    directory: Path,
    config_paths: tuple[Path, ...],
    store_path: str | None,
    follow: bool,
    poll_interval: float,
    on_finished: OnFinished,
    pattern: str,
    batch_size: int,
) -> None:
    """Load the NDJSON files a Logger's FileTransport writes (events-<start>-<n>.ndjson, one
    event per line) into the store.

    Files are read in name order, each up to its last complete line: the line a logger is
    still writing waits until it ends. Each file's position is recorded, in the directory's
    .tripwire-consume.json, only after its batch is committed to the store, so a crash loses
    nothing: the batch is read again and events already stored are not stored twice. Lines
    that are not JSON or not valid events are quarantined, named by file and line. One
    consumer per directory (it holds .tripwire-consume.lock) and one per DuckDB store.

    A file is finished once the same writer's next file exists (events-<start>-<n+1>) or a
    marker <file>.closed does (the Logger leaves one on close; touch it by hand for the last
    file of a process that died). --on-finished delete or move removes only finished files,
    never one still being written. Every few seconds it records the lines not stored yet and
    the events stored in the store, for the /metrics of a tripwire serve on the same store.

    \b
    Example (from cron, every minute):
      tripwire consume files --directory /var/spool/tripwire --config fraud.yaml \\
                             --store tripwire.duckdb --on-finished delete
    Or as a service:
      tripwire consume files --directory /var/spool/tripwire --config fraud.yaml --follow
    """
    from tripwire.ingest.file_consumer import DONE_DIR, STATE_NAME, FileConsumer

    configs = _configs(config_paths)
    with (
        _consuming(configs, store_path) as run,
        FileConsumer(
            directory,
            run.collector,
            batch_size=batch_size,
            pattern=pattern,
            on_finished=on_finished,
        ) as consumer,
    ):
        _stop_on_signals(run.stop)
        waiting = consumer.lag()
        err.print(
            f"consuming {consumer.directory} ({waiting:,} lines to store"
            f"{', following' if follow else ''}) {run.destination}"
        )
        try:
            consumer.run(run.stop, follow=follow, poll_interval=poll_interval)
        except Exception as exc:
            raise TripwireError(
                f"{consumer.directory}: storing a batch failed: {exc} (the files' positions "
                f"up to the last stored batch are kept in {STATE_NAME}; run again to go on)"
            ) from exc
        s = consumer.stats
        moved = "deleted" if on_finished == "delete" else f"moved to {DONE_DIR}/"
        done = f", {s.files_done:,} finished files {moved}" if s.files_done else ""
        err.print(
            f"{'stopped' if follow else 'done'}: {_tally(s, s.lines, 'lines')}{done}; "
            f"{s.lag if s.lag is not None else 'unknown'} lines left to store"
        )


COMMANDS = (consume,)
