"""Consumer benchmark: how many events per second a broker consumer moves into the store.

Usage::

    python benchmarks/consumers.py redis                      # 200,000 events, batches of 1,000
    python benchmarks/consumers.py redis --store both         # into DuckDB, then PostgreSQL
    python benchmarks/consumers.py redis --events 50000 --batch 500 --json
    python benchmarks/consumers.py redis --redis-url redis://127.0.0.1:6379/0  # a running server
    python benchmarks/consumers.py kafka                      # 200,000 events, batches of 1,000
    python benchmarks/consumers.py kafka --bootstrap 127.0.0.1:9092  # a running cluster
    python benchmarks/consumers.py kafka --store postgres --postgres 'host=db user=bench'
    python benchmarks/consumers.py files                      # spool files, batches of 1,000

Each broker is a subcommand; ``--store`` picks the store the consumer writes to: ``duckdb`` (a
fresh file in a temporary directory; the default), ``postgres`` (a fresh schema in a throwaway
PostgreSQL cluster started here with Debian's ``initdb``/``pg_ctl`` on 127.0.0.1, with the
default durability: fsync and synchronous commits on; or in the database ``--postgres`` names)
or ``both``, one after the other. For ``redis``:

* a throwaway ``redis-server`` (Debian's package) is started on a free loopback port without
  persistence, unless ``--redis-url`` names a running server (a fresh stream key is used there
  and deleted afterwards);
* the stream is filled with ``--events`` demo events (``tripwire.demo.scenario``, one event per
  entry as ``RedisTransport`` writes them) before timing starts: producing is not the
  consumer's cost;
* one ``RedisConsumer`` in this process, with a ``Collector`` over the fresh store, polls until
  every entry is stored and acknowledged. Wall time runs from
  the first poll to the last acknowledgement.

For ``kafka``:

* librdkafka's mock cluster (``tests/ingest/mock_kafka_cluster.py``: real Kafka-protocol brokers
  on loopback, in a process of their own) is started with 3 brokers, unless ``--bootstrap``
  names a running cluster (a fresh topic is used there; it is not deleted);
* the topic (4 partitions) is filled with ``--events`` demo events through ``KafkaTransport``
  (one message per event), in rounds of 30,000 (the mock brokers keep ~5 MB per partition);
  producing is not timed;
* one ``KafkaConsumer`` in this process, with a ``Collector`` over the fresh store, polls
  until each round is stored and its offsets committed. Wall time is the sum of the rounds'
  consuming times, after the first batch (joining the group, ~3 s, is not counted).

For ``files``: ``--events`` demo events are written to spool files in a temporary directory
through ``FileTransport`` (64 MB files, as a Logger writes them; not timed), and one
``FileConsumer`` (what ``tripwire consume files`` runs) stores them until no line is left.

Reported: events/s stored (read back from the store over the wall time), the share of the time
spent inside the collector (``Collector.ingest_lines`` for the brokers: decoding the JSON,
validation and the store's transaction; ``ingest_events`` for spool files, whose lines the
consumer decodes) against the rest (XREADGROUP and XACK, fetching and committing offsets), the
process's CPU time, and the machine, the Redis server's version, whether redis-py parses
replies with hiredis (``pip install hiredis``: a large share of the reading cost without it)
and the load average.
"""

from __future__ import annotations

import argparse
import json
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack, contextmanager
from importlib.metadata import version
from pathlib import Path
from typing import Any, NamedTuple

from tripwire.config import parse_config
from tripwire.demo import scenario
from tripwire.events import table_to_events
from tripwire.server.body import Batch
from tripwire.server.collector import EVENTS_SOURCE, Collector
from tripwire.server.schemas import EventIngestResult
from tripwire.store import DuckDBStore, Store

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:  # loaded by path (the tests do) rather than run as a script
    sys.path.insert(0, str(HERE))
from _measure import load_average, machine, machine_lines  # noqa: E402
from _services import (  # noqa: E402
    backend_cpu_seconds,
    postgres_schema,
    postgres_server,
    postgres_version,
)

PRODUCE_BATCH = 5_000  # entries per pipeline while filling the stream
STORES = ("duckdb", "postgres")


# --------------------------------------------------------------------------- data


def make_events(n_events: int) -> list[dict[str, Any]]:
    """``n_events`` demo events (unique ids) as JSON-ready payloads."""
    config = parse_config(scenario.CONFIG_YAML)
    day = scenario.generate(days=1, rows_per_day=n_events, reference_rows=1).days[0][1]
    events = table_to_events(config, day)
    for event in events:
        event["timestamp"] = event["timestamp"].isoformat()
    return events


class TimedCollector(Collector):
    """A collector that adds up the wall time spent in it: in ``ingest_lines`` (the broker
    consumers: decoding, validation and the store's transaction) or ``ingest_events``."""

    seconds = 0.0
    _depth = 0  # ingest_lines calls ingest_events for a batch it cannot decode in one pass

    def _timed(self, call: Callable[[], EventIngestResult]) -> EventIngestResult:
        start = time.perf_counter()
        self._depth += 1
        try:
            return call()
        finally:
            self._depth -= 1
            if not self._depth:
                self.seconds += time.perf_counter() - start

    def ingest_events(self, batch: Batch, source: str = EVENTS_SOURCE) -> EventIngestResult:
        return self._timed(lambda: super(TimedCollector, self).ingest_events(batch, source))

    def ingest_lines(
        self, lines: Sequence[bytes | None], read: Callable[[], Batch], source: str
    ) -> EventIngestResult:
        return self._timed(lambda: super(TimedCollector, self).ingest_lines(lines, read, source))


# --------------------------------------------------------------------------- stores


STORE_NAMES = {"duckdb": "DuckDB", "postgres": "PostgreSQL"}


class Target(NamedTuple):
    """Where a run stores: which store, and for PostgreSQL the database and whether this
    benchmark started its cluster."""

    kind: str
    postgres: str | None = None
    started: bool = False


DUCKDB = Target("duckdb")


@contextmanager
def fresh_store(target: Target, workdir: Path) -> Iterator[Store]:
    """An empty store: a new DuckDB file, or a new schema in the PostgreSQL database."""
    if target.kind == "duckdb":
        with DuckDBStore(workdir / "store.duckdb") as store:
            yield store
        return
    from tripwire.store import PostgresStore

    assert target.postgres is not None
    with postgres_schema(target.postgres) as dsn, PostgresStore(dsn) as store:
        yield store


def describe(store: Store, target: Target) -> str:
    if target.kind == "duckdb":
        return f"DuckDB {version('duckdb')}, a file in a temporary directory"
    where = "throwaway cluster, loopback, fsync on" if target.started else "--postgres"
    return f"PostgreSQL {postgres_version(store)} ({where}), psycopg {version('psycopg')}"


def store_cpu(store: Store) -> float | None:
    """The store's own CPU seconds so far where it runs in a process of its own (PostgreSQL's
    backend for this connection); None for DuckDB, which runs in this process."""
    return None if isinstance(store, DuckDBStore) else backend_cpu_seconds(store)


def _spent(before: float | None, after: float | None) -> float | None:
    return None if before is None or after is None else after - before


def _store_cpu_line(r: dict[str, Any], events: int) -> list[str]:
    if r["store_cpu_seconds"] is None:
        return []
    return [
        f"PostgreSQL CPU      {r['store_cpu_seconds']:.2f} s, "
        f"{r['store_cpu_seconds'] / events * 1e6:.1f} us/event (the server process serving "
        "this consumer; not in the CPU time above)"
    ]


def stored_events(store: Store) -> int:
    ((count,),) = store.connection.execute("SELECT count(*) FROM events").fetchall()
    return int(count)


# --------------------------------------------------------------------------- redis


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@contextmanager
def redis_server(url: str | None, workdir: Path) -> Iterator[str]:
    """``url`` as it is, or the URL of a throwaway server started (and stopped) here."""
    if url is not None:
        yield url
        return
    import redis

    binary = shutil.which("redis-server")
    if binary is None:
        raise SystemExit("redis-server is not installed (apt-get install redis-server)")
    port = _free_port()
    command = [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly"]
    command += ["no", "--daemonize", "no", "--dir", str(workdir)]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
    try:
        client = redis.Redis(host="127.0.0.1", port=port)
        deadline = time.monotonic() + 20
        while True:
            try:
                client.ping()
                break
            except redis.ConnectionError:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("redis-server did not start") from None
                time.sleep(0.05)
        client.close()
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        process.terminate()  # the server started above, by its pid
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


def run_redis(
    n_events: int, batch: int, url: str | None, target: Target = DUCKDB
) -> dict[str, Any]:
    import redis
    from redis.utils import HIREDIS_AVAILABLE

    from tripwire.ingest.redis_consumer import RedisConsumer
    from tripwire.ingest.redis_transport import RedisTransport

    config = parse_config(scenario.CONFIG_YAML)
    events = make_events(n_events)
    stream = f"tripwire-benchmark-{uuid.uuid4().hex[:8]}"
    with tempfile.TemporaryDirectory() as tmp, redis_server(url, Path(tmp)) as server_url:
        client = redis.Redis.from_url(server_url)
        server_version = client.info("server").get("redis_version")
        transport = RedisTransport(server_url, stream)
        for start in range(0, n_events, PRODUCE_BATCH):
            transport.send(events[start : start + PRODUCE_BATCH])
        transport.close()
        del events
        stream_mb = client.memory_usage(stream, samples=0) or 0
        try:
            with fresh_store(target, Path(tmp)) as store:
                collector = TimedCollector({config.name: config}, store)
                consumer = RedisConsumer(
                    server_url, stream, "benchmark", "c1", collector, batch_size=batch, block_ms=1
                )
                load_before = load_average()
                server_cpu = store_cpu(store)
                wall, cpu = time.perf_counter(), time.process_time()
                while consumer.stats.entries < n_events:
                    consumer.poll_once()
                wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
                server_cpu = _spent(server_cpu, store_cpu(store))
                load_after = load_average()
                consumer.close()
                stored = stored_events(store)
                store_name = describe(store, target)
            pending = int(client.xpending(stream, "benchmark")["pending"])
        finally:
            client.delete(stream)
            client.close()
    return {
        "broker": "redis",
        "store_kind": target.kind,
        "store": store_name,
        "events": n_events,
        "batch": batch,
        "seconds": wall,
        "stored": stored,
        "pending_after": pending,
        "stored_per_s": stored / wall,
        "cpu_seconds": cpu,
        "cpu_us_per_event": cpu / n_events * 1e6,
        "store_cpu_seconds": server_cpu,
        "ingest_share": collector.seconds / wall,
        "stream_mb": stream_mb / 1024 / 1024,
        "server": f"redis-server {server_version}"
        + (" (throwaway, loopback)" if url is None else " (--redis-url)"),
        # redis-py parses replies in C with hiredis when it is installed, in Python otherwise;
        # reading the stream costs several times more without it.
        "reply_parser": "hiredis" if HIREDIS_AVAILABLE else "pure Python (no hiredis)",
        "machine": machine(["redis", "pydantic"]),
        "load_average": {"before": load_before, "after": load_after},
    }


# --------------------------------------------------------------------------- kafka

MOCK_CLUSTER = Path(__file__).resolve().parents[1] / "tests" / "ingest" / "mock_kafka_cluster.py"
MOCK_BROKERS = 3
# The mock brokers keep about 5 MB per partition and drop older messages beyond that (as
# retention would), so the topic is filled and consumed in rounds that fit: ~30,000 demo events
# are ~14 MB over 4 partitions. Only consuming is timed.
ROUND = 30_000


@contextmanager
def kafka_cluster(bootstrap: str | None) -> Iterator[str]:
    """``bootstrap`` as it is, or the address of a mock cluster started (and stopped) here."""
    if bootstrap is not None:
        yield bootstrap
        return
    command = [sys.executable, str(MOCK_CLUSTER), "--brokers", str(MOCK_BROKERS)]
    process = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline()  # the helper prints it within a second or exits
        if not line.startswith("BOOTSTRAP "):
            raise RuntimeError(f"the mock Kafka cluster did not start: {line!r}")
        yield line.split()[1]
    finally:
        process.terminate()  # the helper started above, by its pid
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)
        if process.stdout is not None:
            process.stdout.close()


def _fill(transport: Any, events: Sequence[dict[str, Any]], start: int) -> int:
    """Produce the next round of events (not timed); the index after it."""
    end = min(start + ROUND, len(events))
    for first in range(start, end, PRODUCE_BATCH):
        transport.send(list(events[first : min(first + PRODUCE_BATCH, end)]))
    return end


def run_kafka(
    n_events: int, batch: int, bootstrap: str | None, target: Target = DUCKDB
) -> dict[str, Any]:
    import confluent_kafka
    from confluent_kafka import Consumer, TopicPartition

    from tripwire.ingest.kafka_consumer import KafkaConsumer
    from tripwire.ingest.kafka_transport import KafkaTransport

    config = parse_config(scenario.CONFIG_YAML)
    events = make_events(n_events)
    topic = f"tripwire-benchmark-{uuid.uuid4().hex[:8]}"
    group = f"tripwire-benchmark-{uuid.uuid4().hex[:8]}"
    topic_bytes = sum(len(json.dumps(e, separators=(",", ":"))) for e in events)
    with tempfile.TemporaryDirectory() as tmp, kafka_cluster(bootstrap) as servers:
        transport = KafkaTransport(servers, topic)

        with fresh_store(target, Path(tmp)) as store:
            collector = TimedCollector({config.name: config}, store)
            consumer = KafkaConsumer(servers, topic, group, collector, batch, poll_timeout=0.05)
            produced = _fill(transport, events, 0)
            partitions = consumer.check()
            while not consumer.poll_once():  # join the group: not the consumer's throughput
                pass
            # The first batch (and the join) are not timed; the rest of the rounds are.
            skipped = consumer.stats.messages
            wall = cpu = collector.seconds = 0.0
            load_before = load_average()
            server_cpu = store_cpu(store)
            while consumer.stats.messages < n_events:
                if consumer.stats.messages >= produced:
                    produced = _fill(transport, events, produced)
                round_wall, round_cpu = time.perf_counter(), time.process_time()
                while consumer.stats.messages < produced:
                    consumer.poll_once()
                wall += time.perf_counter() - round_wall
                cpu += time.process_time() - round_cpu
            load_after = load_average()
            server_cpu = _spent(server_cpu, store_cpu(store))
            consumer.close()
            stored = stored_events(store)
            store_name = describe(store, target)
        transport.close()
        del events, transport  # the producer's connections go with it
        reader = Consumer({"bootstrap.servers": servers, "group.id": group})
        committed = reader.committed(
            [TopicPartition(topic, p) for p in range(partitions)], timeout=10
        )
        reader.close()
    uncommitted = n_events - sum(max(tp.offset, 0) for tp in committed)
    where = (
        f"librdkafka mock cluster, {MOCK_BROKERS} brokers in their own process, loopback"
        if bootstrap is None
        else "--bootstrap"
    )
    return {
        "broker": "kafka",
        "store_kind": target.kind,
        "store": store_name,
        "events": n_events,
        "batch": batch,
        "partitions": partitions,
        "seconds": wall,
        "stored": stored,
        "uncommitted_after": uncommitted,
        "timed_events": n_events - skipped,
        "stored_per_s": (n_events - skipped) / wall,
        "cpu_seconds": cpu,
        "cpu_us_per_event": cpu / (n_events - skipped) * 1e6,
        "store_cpu_seconds": server_cpu,
        "ingest_share": collector.seconds / wall,
        "topic_mb": topic_bytes / 1024 / 1024,
        "server": f"{where}; librdkafka {confluent_kafka.libversion()[0]}",
        "machine": machine(["confluent-kafka", "pydantic"]),
        "load_average": {"before": load_before, "after": load_after},
    }


def format_kafka_report(r: dict[str, Any]) -> str:
    lines = [
        f"tripwire consumer benchmark ({r['broker']}): {r['events']:,} events in a topic filled "
        f"ahead in rounds ({r['partitions']} partitions, {r['topic_mb']:.1f} MB of JSON), "
        f"batches of {r['batch']:,}, one consumer, {STORE_NAMES[r['store_kind']]} store",
        "",
        f"wall time           {r['seconds']:.2f} s consuming {r['timed_events']:,} events "
        "(after the first batch)",
        f"stored (read back)  {r['stored']:,} ({r['uncommitted_after']:,} messages left "
        "uncommitted)",
        f"throughput          {r['stored_per_s']:,.0f} events/s stored",
        f"CPU time            {r['cpu_seconds']:.2f} s, {r['cpu_us_per_event']:.1f} us/event "
        "(this process, all threads)",
        *_store_cpu_line(r, r["timed_events"]),
        f"in the collector    {r['ingest_share']:.0%} of the wall time (JSON decoding, "
        "validation + the store's transaction); the rest: fetching, the synchronous offset commit",
        "",
        f"store               {r['store']}",
        f"cluster             {r['server']}",
        *machine_lines(r["machine"], r["load_average"]),
    ]
    return "\n".join(lines)


# --------------------------------------------------------------------------- files


def run_files(n_events: int, batch: int, target: Target = DUCKDB) -> dict[str, Any]:
    from tripwire.ingest.file_consumer import FileConsumer
    from tripwire.logger import FileTransport

    config = parse_config(scenario.CONFIG_YAML)
    events = make_events(n_events)
    with tempfile.TemporaryDirectory() as tmp:
        spool = Path(tmp) / "spool"
        transport = FileTransport(spool)
        for start in range(0, n_events, PRODUCE_BATCH):
            transport.send(events[start : start + PRODUCE_BATCH])
        transport.close()
        del events
        spool_mb = sum(p.stat().st_size for p in spool.glob("*.ndjson")) / 1024 / 1024
        with fresh_store(target, Path(tmp)) as store:
            collector = TimedCollector({config.name: config}, store)
            with FileConsumer(spool, collector, batch_size=batch) as consumer:
                load_before = load_average()
                server_cpu = store_cpu(store)
                wall, cpu = time.perf_counter(), time.process_time()
                while consumer.poll_once():
                    pass
                wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
                server_cpu = _spent(server_cpu, store_cpu(store))
                load_after = load_average()
                left = consumer.lag()
            stored = stored_events(store)
            store_name = describe(store, target)
    return {
        "broker": "files",
        "store_kind": target.kind,
        "store": store_name,
        "events": n_events,
        "batch": batch,
        "seconds": wall,
        "stored": stored,
        "left": left,
        "stored_per_s": stored / wall,
        "cpu_seconds": cpu,
        "cpu_us_per_event": cpu / n_events * 1e6,
        "store_cpu_seconds": server_cpu,
        "ingest_share": collector.seconds / wall,
        "spool_mb": spool_mb,
        "machine": machine(["pydantic"]),
        "load_average": {"before": load_before, "after": load_after},
    }


def format_files_report(r: dict[str, Any]) -> str:
    lines = [
        f"tripwire consumer benchmark (files): {r['events']:,} events in spool files written "
        f"ahead ({r['spool_mb']:.1f} MB of NDJSON), batches of {r['batch']:,}, one consumer, "
        f"{STORE_NAMES[r['store_kind']]} store",
        "",
        f"wall time           {r['seconds']:.2f} s",
        f"stored (read back)  {r['stored']:,} ({r['left']:,} lines left)",
        f"throughput          {r['stored_per_s']:,.0f} events/s stored",
        f"CPU time            {r['cpu_seconds']:.2f} s, {r['cpu_us_per_event']:.1f} us/event "
        "(this process, all threads)",
        *_store_cpu_line(r, r["events"]),
        f"in the collector    {r['ingest_share']:.0%} of the wall time (validation + the store's "
        "transaction); the rest: reading lines, JSON decoding, the state file's fsyncs",
        "",
        f"store               {r['store']}",
        *machine_lines(r["machine"], r["load_average"]),
    ]
    return "\n".join(lines)


# --------------------------------------------------------------------------- report


def format_report(r: dict[str, Any]) -> str:
    lines = [
        f"tripwire consumer benchmark ({r['broker']}): {r['events']:,} events in a pre-filled "
        f"stream ({r['stream_mb']:.1f} MB in Redis), batches of {r['batch']:,}, one consumer, "
        f"{STORE_NAMES[r['store_kind']]} store",
        "",
        f"wall time           {r['seconds']:.2f} s",
        f"stored (read back)  {r['stored']:,} ({r['pending_after']:,} entries left pending)",
        f"throughput          {r['stored_per_s']:,.0f} events/s stored",
        f"CPU time            {r['cpu_seconds']:.2f} s, {r['cpu_us_per_event']:.1f} us/event "
        "(this process, all threads)",
        *_store_cpu_line(r, r["events"]),
        f"in the collector    {r['ingest_share']:.0%} of the wall time (JSON decoding, "
        "validation + the store's transaction); the rest: XREADGROUP, XACK",
        "",
        f"store               {r['store']}",
        f"server              {r['server']}, replies parsed by {r['reply_parser']}",
        *machine_lines(r["machine"], r["load_average"]),
    ]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    brokers = parser.add_subparsers(dest="broker", required=True)
    redis_parser = brokers.add_parser("redis", help="a Redis stream through RedisConsumer")
    redis_parser.add_argument(
        "--redis-url", help="a running server to use (default: start a throwaway one)"
    )
    kafka_parser = brokers.add_parser("kafka", help="a Kafka topic through KafkaConsumer")
    kafka_parser.add_argument(
        "--bootstrap", help="a running cluster to use (default: start a mock cluster)"
    )
    files_parser = brokers.add_parser("files", help="spool files through FileConsumer")
    for broker, unit in (
        (redis_parser, "entries"),
        (kafka_parser, "messages"),
        (files_parser, "lines"),
    ):
        broker.add_argument("--events", type=int, default=200_000, help="events to consume")
        broker.add_argument("--batch", type=int, default=1_000, help=f"{unit} per batch")
        broker.add_argument(
            "--store",
            choices=[*STORES, "both"],
            default="duckdb",
            help="the store the consumer writes to (both: one run each)",
        )
        broker.add_argument(
            "--postgres",
            metavar="DSN",
            help="a PostgreSQL database to use, in a fresh schema (default: a throwaway cluster)",
        )
        broker.add_argument("--json", action="store_true", help="print the results as JSON")
    args = parser.parse_args(argv)
    kinds = STORES if args.store == "both" else (args.store,)
    results: list[dict[str, Any]] = []
    with ExitStack() as services:
        postgres = None
        if "postgres" in kinds:
            postgres = services.enter_context(postgres_server(args.postgres))
        for kind in kinds:
            target = Target(kind, postgres, started=args.postgres is None)
            if args.broker == "redis":
                result = run_redis(args.events, args.batch, args.redis_url, target)
                result["left"] = result["pending_after"]
                text = format_report(result)
            elif args.broker == "files":
                result = run_files(args.events, args.batch, target)
                text = format_files_report(result)
            else:
                result = run_kafka(args.events, args.batch, args.bootstrap, target)
                result["left"] = result["uncommitted_after"]
                text = format_kafka_report(result)
            results.append(result)
            if not args.json:
                print(text + "\n", flush=True)
    if args.json:
        print(json.dumps(results[0] if len(results) == 1 else results, indent=2))
    return 0 if all(r["stored"] == args.events and r["left"] == 0 for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
