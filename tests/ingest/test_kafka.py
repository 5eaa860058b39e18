"""The Kafka path against a real Kafka-protocol cluster (librdkafka's mock brokers, in a process
of their own): KafkaTransport writes what KafkaConsumer stores exactly once, messages that are
not events are quarantined, a failed batch is consumed again, offsets are committed only after
the store has the batch, and ``tripwire consume kafka`` killed with SIGKILL again and again
loses and duplicates nothing."""

from __future__ import annotations

import importlib.util
import json
import os
import random
import re
import subprocess
import sys
import time
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from click.testing import CliRunner

from tripwire.cli import cli
from tripwire.config import ModelConfig
from tripwire.demo import scenario
from tripwire.logger import Logger, TransportError
from tripwire.server.collector import Collector
from tripwire.server.validation import UNKNOWN_MODEL
from tripwire.store import DuckDBStore


def _load(name: str) -> ModuleType:
    """``<name>.py`` of this directory, loaded once, as ``tripwire_tests_ingest_<name>``: by
    path, since with --import-mode=importlib this directory is not on sys.path."""
    module_name = f"tripwire_tests_ingest_{name}"
    if module_name not in sys.modules:
        spec = importlib.util.spec_from_file_location(
            module_name, Path(__file__).parent / f"{name}.py"
        )
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[module_name] = module  # dataclasses look their module up by name
        spec.loader.exec_module(module)
    return sys.modules[module_name]


_shared = _load("shared")  # first: the fixtures take what they use of it from sys.modules
_fixtures = _load("kafka_fixtures")
kafka_cluster = _fixtures.kafka_cluster
config = _shared.config
store = _shared.store
collector = _shared.collector
demo_events = _shared.demo_events
_stored = _shared.stored
CONSUMER_SETTINGS = _fixtures.CONSUMER_SETTINGS
KafkaCluster = Any  # kafka_fixtures.KafkaCluster, loaded by path

PARTITIONS = 4  # what the mock cluster gives an auto-created topic
WAIT_S = _shared.WAIT_S


@pytest.fixture
def topic(kafka_cluster: KafkaCluster) -> str:
    return str(kafka_cluster.new_name("topic"))


@pytest.fixture
def group(kafka_cluster: KafkaCluster) -> str:
    return str(kafka_cluster.new_name("group"))


def _consumer(cluster: KafkaCluster, topic: str, group: str, collector: Collector, **options: Any):  # type: ignore[no-untyped-def]
    from tripwire.ingest.kafka_consumer import KafkaConsumer

    options = {"batch_size": 500, "poll_timeout": 0.2, **CONSUMER_SETTINGS, **options}
    return KafkaConsumer(cluster.bootstrap, topic, group, collector, **options)


def _drain(consumer: Any, n: int) -> int:
    """Poll until ``n`` messages were handled (joining the group takes a few seconds), then
    a little longer to see that nothing more comes; the messages handled."""
    deadline = time.monotonic() + WAIT_S
    while consumer.stats.messages < n:
        assert time.monotonic() < deadline, f"{consumer.stats.messages} of {n} messages"
        consumer.poll_once()
    for _ in range(3):
        consumer.poll_once()
    return int(consumer.stats.messages)


def _produce(cluster: KafkaCluster, topic: str, events: list[dict[str, Any]]) -> None:
    from tripwire.ingest.kafka_transport import KafkaTransport

    transport = KafkaTransport(cluster.bootstrap, topic)
    try:
        for start in range(0, len(events), 5000):
            transport.send(events[start : start + 5000])
    finally:
        transport.close()


def _produce_raw(cluster: KafkaCluster, topic: str, values: list[bytes | None]) -> None:
    from confluent_kafka import Producer

    producer = Producer({"bootstrap.servers": cluster.bootstrap})
    for value in values:
        producer.produce(topic, value=value)
    assert producer.flush(30) == 0


class _Offsets:
    """The group's committed offsets, read as any client reads them (no group membership)."""

    def __init__(self, cluster: KafkaCluster, topic: str, group: str) -> None:
        from confluent_kafka import Consumer, TopicPartition

        self._consumer = Consumer({"bootstrap.servers": cluster.bootstrap, "group.id": group})
        self._partitions = [TopicPartition(topic, p) for p in range(PARTITIONS)]

    def total(self) -> int:
        """Committed offsets summed over the partitions: the messages the group is done with
        (every partition starts at offset 0)."""
        committed = self._consumer.committed(self._partitions, timeout=10)
        return sum(max(tp.offset, 0) for tp in committed)

    def close(self) -> None:
        self._consumer.close()


# --------------------------------------------------------------------------- in process


def test_logger_to_store_stores_every_event_once(
    kafka_cluster: KafkaCluster, topic: str, group: str, config: ModelConfig, collector: Collector
) -> None:
    from tripwire.ingest.kafka_transport import KafkaTransport

    rows = scenario.generate(days=1, rows_per_day=1500, reference_rows=1).days[0][1].to_pylist()
    columns = config.columns
    transport = KafkaTransport(kafka_cluster.bootstrap, topic)
    with Logger(config.name, transport, batch_size=400, flush_interval=0.05) as logger:
        ids = [
            logger.log(
                features={name: row[name] for name in columns.features},
                prediction=row[columns.prediction],
                timestamp=row[columns.timestamp],
            )
            for row in rows
        ]
        # Every event is on the topic once flush returns, before the logger is closed.
        assert logger.flush(timeout=60) is True
        assert logger.stats.sent == len(rows) and logger.stats.queued == 0
    assert logger.stats.sent == len(rows) and None not in ids

    with _consumer(kafka_cluster, topic, group, collector) as consumer:
        assert consumer.check() == PARTITIONS
        assert _drain(consumer, len(rows)) == len(rows)
        assert consumer.stats.stored == len(rows) and consumer.stats.quarantined == 0
        assert consumer.stats.commit_failures == 0
    assert _stored(collector.store) == (len(rows), len(rows))
    stored_ids = set(collector.store.events(config.name)["event_id"].to_pylist())
    assert stored_ids == set(ids)
    offsets = _Offsets(kafka_cluster, topic, group)
    assert offsets.total() == len(rows)  # every message committed
    offsets.close()


def test_repeats_are_stored_once_and_bad_messages_quarantined(
    kafka_cluster: KafkaCluster, topic: str, group: str, config: ModelConfig, collector: Collector
) -> None:
    events = demo_events(config, 300)
    broken = dict(events[1], features={})  # valid JSON, but an invalid event
    _produce(kafka_cluster, topic, events)
    _produce(kafka_cluster, topic, events[:120])  # the logger retried a batch Kafka had taken
    _produce(kafka_cluster, topic, [broken, dict(events[2], model="nobody")])
    _produce_raw(kafka_cluster, topic, [b'{"event_id": "x", not json', b"[1, 2]", None])
    with _consumer(kafka_cluster, topic, group, collector, batch_size=64) as consumer:
        assert _drain(consumer, 425) == 425
        assert (consumer.stats.stored, consumer.stats.duplicates) == (300, 120)
        assert consumer.stats.quarantined == 5
    assert _stored(collector.store) == (300, 300)
    unknown = collector.store.quarantined(UNKNOWN_MODEL).to_pylist()
    reasons = " | ".join(row["reason"] for row in unknown)
    assert "not JSON" in reasons and "not a JSON object" in reasons and "no value" in reasons
    assert f"message {topic}[" in reasons  # the partition and offset of what was not JSON
    assert any("not json" in row["payload"] for row in unknown)
    [missing] = collector.store.quarantined(config.name).to_pylist()
    assert "features" in missing["reason"] and events[1]["event_id"] in missing["payload"]
    assert len(collector.store.quarantined("nobody")) == 1
    # Each quarantined item is named by its partition and offset...
    quarantined = [*unknown, missing, *collector.store.quarantined("nobody").to_pylist()]
    sources = {row["source"] for row in quarantined}
    assert len(sources) == 5
    assert all(re.fullmatch(rf"kafka {topic}\[\d+\]@\d+", source) for source in sources)
    # ...so reading the topic again (another group: a redelivery of everything) stores none of
    # it a second time.
    with _consumer(kafka_cluster, topic, f"{group}-again", collector, batch_size=64) as again:
        assert _drain(again, 425) == 425
        assert again.stats.quarantined == 5 and again.stats.stored == 0
    assert len(collector.store.quarantined(UNKNOWN_MODEL)) == len(unknown)
    assert len(collector.store.quarantined(config.name)) == 1


def test_a_failed_batch_is_not_committed_and_is_stored_after_all(
    kafka_cluster: KafkaCluster, topic: str, group: str, config: ModelConfig, store: DuckDBStore
) -> None:
    events = demo_events(config, 800)
    _produce(kafka_cluster, topic, events)
    collector = _shared.FailsOnce({config.name: config}, store)
    offsets = _Offsets(kafka_cluster, topic, group)
    with _consumer(kafka_cluster, topic, group, collector) as consumer:
        deadline = time.monotonic() + WAIT_S
        with pytest.raises(OSError, match="disk full"):
            while time.monotonic() < deadline:  # polls find nothing until the group is joined
                consumer.poll_once()
        assert offsets.total() == 0  # read, not committed
        # The same consumer goes back to the failed batch's offsets: nothing is skipped.
        assert _drain(consumer, 800) == 800
    assert _stored(store) == (800, 800)
    assert offsets.total() == 800
    offsets.close()


def test_the_groups_lag_and_stored_events_are_recorded_in_the_store(
    kafka_cluster: KafkaCluster, topic: str, group: str, config: ModelConfig, collector: Collector
) -> None:
    events = demo_events(config, 600)
    _produce(kafka_cluster, topic, events)
    _produce(kafka_cluster, topic, events[:50])  # repeats: consumed, not new to the store
    offsets = _Offsets(kafka_cluster, topic, group)
    store = collector.store
    options = {"batch_size": 100, "report_interval_s": 0}
    with _consumer(kafka_cluster, topic, group, collector, **options) as consumer:
        # Before the consumer reads anything, each report counts the whole topic as lag.
        consumer.poll_once()
        if consumer.stats.messages == 0:
            [row] = store.consumers().to_pylist()
            assert row["lag"] == 650 and row["events_stored"] == 0
        deadline = time.monotonic() + WAIT_S
        while consumer.stats.messages == 0:
            assert time.monotonic() < deadline
            consumer.poll_once()
        # Some of the topic is stored and committed: reported after the commit.
        assert 0 < consumer.stats.messages < 650
        [row] = store.consumers().to_pylist()
        assert (row["source"], row["stream"], row["group_id"]) == ("kafka", topic, group)
        assert row["lag"] == 650 - offsets.total() == 650 - consumer.stats.messages
        assert row["events_stored"] == consumer.stats.stored > 0
        assert consumer.stats.lag == row["lag"]

        assert _drain(consumer, 650) == 650
        [row] = store.consumers().to_pylist()
        assert row["lag"] == 0 and row["events_stored"] == 600
        # Another group's member counts every partition's messages from the start: it has
        # committed none.
        with _consumer(kafka_cluster, topic, f"{group}-new", collector) as newcomer:
            assert newcomer.lag() == 650
        _produce(kafka_cluster, topic, demo_events(config, 700)[600:])
        assert consumer.lag() == 100
    assert offsets.total() == 650
    offsets.close()


def test_transport_errors_say_whether_to_retry() -> None:
    pytest.importorskip("confluent_kafka")
    from tripwire.ingest.kafka_transport import KafkaTransport

    event = {"event_id": "e1", "model": "m", "prediction": 0.5}
    # Nothing listens on port 1: the batch is not acknowledged in time; sending it again may
    # succeed once the cluster is back.
    unreachable = KafkaTransport("127.0.0.1:1", "events", timeout=0.5)
    with pytest.raises(TransportError) as caught:
        unreachable.send([event])
    assert caught.value.retryable and "not acknowledged" in str(caught.value)
    unreachable.close()
    # Larger than the producer may send: no retry can fix that.
    small = KafkaTransport("127.0.0.1:1", "events", timeout=0.5, **{"message.max.bytes": 1000})
    with pytest.raises(TransportError) as caught:
        small.send([{**event, "metadata": {"blob": "x" * 5000}}])
    assert not caught.value.retryable and "MSG_SIZE_TOO_LARGE" in str(caught.value)
    small.close()


# --------------------------------------------------------------------------- the command


def test_consume_kafka_help_has_an_example() -> None:
    result = CliRunner().invoke(cli, ["consume", "kafka", "--help"])
    assert result.exit_code == 0
    assert "Example:" in result.output and "tripwire consume kafka" in result.output


def test_consume_kafka_refuses_a_malformed_setting(tmp_path: Path) -> None:
    pytest.importorskip("confluent_kafka")
    (tmp_path / "tripwire.yaml").write_text(scenario.CONFIG_YAML, encoding="utf-8")
    args = ["consume", "kafka", "--config", str(tmp_path / "tripwire.yaml"), "--topic", "t"]
    args += ["--group", "g", "--store", str(tmp_path / "s.duckdb"), "-X", "no-equals-sign"]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 2 and "KEY=VALUE" in result.output


def _start(
    tmp_path: Path, cluster: KafkaCluster, topic: str, group: str, log: Path
) -> subprocess.Popen[bytes]:
    args = ["consume", "kafka", "--config", str(tmp_path / "tripwire.yaml"), "--topic", topic]
    args += ["--group", group, "--store", str(tmp_path / "s.duckdb"), "--batch-size", "500"]
    for key, value in CONSUMER_SETTINGS.items():
        args += ["-X", f"{key}={value}"]
    env = {**os.environ, "TRIPWIRE_KAFKA_BOOTSTRAP": cluster.bootstrap}
    return _shared.start(args, log, env)


@pytest.mark.slow
def test_consumer_killed_mid_batch_again_and_again_stores_every_event_once(
    tmp_path: Path, kafka_cluster: KafkaCluster, topic: str, group: str, config: ModelConfig
) -> None:
    n, kills = 20_000, 8
    (tmp_path / "tripwire.yaml").write_text(scenario.CONFIG_YAML, encoding="utf-8")
    events = demo_events(config, n)
    _produce(kafka_cluster, topic, events)
    offsets = _Offsets(kafka_cluster, topic, group)
    rng = random.Random(7)
    ahead = 0  # kills that caught a batch stored but not yet committed
    for k in range(kills):
        log = tmp_path / f"consumer-{k}.log"
        before = offsets.total()
        process = _start(tmp_path, kafka_cluster, topic, group, log)
        # Once this run has committed a batch it is mid-stream; kill it a moment later, at
        # whatever point of its next batch that is.
        _shared.wait_for(lambda b=before: offsets.total() > b, process, log, "a commit")
        _shared.kill_within(process, rng, 0.05)
        committed = offsets.total()
        with DuckDBStore(tmp_path / "s.duckdb") as store:
            count, distinct = _stored(store)
        # The one promise: offsets are committed only for what the store already has.
        assert count == distinct >= committed, (k, count, distinct, committed)
        ahead += count > committed
    # The kills came before the end: the last run below still has work to do.
    assert offsets.total() < n

    log = tmp_path / "consumer-final.log"
    process = _start(tmp_path, kafka_cluster, topic, group, log)
    _shared.wait_for(lambda: offsets.total() == n, process, log, "the topic to be consumed")
    _shared.stop_cleanly(process, log)
    offsets.close()

    with DuckDBStore(tmp_path / "s.duckdb") as store:
        assert _stored(store) == (n, n)
        ids = set(store.events(config.name)["event_id"].to_pylist())
        assert ids == {e["event_id"] for e in events}
        assert store.quarantined(UNKNOWN_MODEL).num_rows == 0
    print(f"{ahead} of {kills} kills left a stored batch uncommitted (redelivered)")


# --------------------------------------------------------------------------- the benchmark


def test_consumer_benchmark_runs_and_reports_every_figure(
    kafka_cluster: KafkaCluster, capsys: pytest.CaptureFixture[str]
) -> None:
    benchmark = _shared.benchmark("tripwire_benchmark_consumers_kafka")
    tiny = ["kafka", "--events", "1500", "--batch", "400", "--bootstrap", kafka_cluster.bootstrap]
    # One run (joining a group costs seconds): its JSON, and the text made from it.
    assert benchmark.main([*tiny, "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["stored"] == 1500 and result["stored_per_s"] > 0
    assert 0 < result["ingest_share"] <= 1  # the collector's time is counted
    assert {"platform", "cpu", "logical_cores", "versions"} <= set(result["machine"])
    text = benchmark.format_kafka_report(result)
    for label in (
        "events/s stored",
        "1,500 (0 messages left uncommitted)",
        "machine",
        "librdkafka",
    ):
        assert label in text, label
