"""The Redis Streams path against a real ``redis-server``: RedisTransport writes what
RedisConsumer stores exactly once, malformed entries are quarantined, unacknowledged entries
(of a dead consumer, of a failed batch) are stored after all, and ``tripwire consume redis``
killed with SIGKILL again and again loses and duplicates nothing."""

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
from tripwire.events import Rejected
from tripwire.ingest.redis_consumer import RedisConsumer, decode
from tripwire.ingest.redis_transport import RedisTransport
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
_fixtures = _load("redis_fixtures")
redis_server = _fixtures.redis_server
config = _shared.config
store = _shared.store
collector = _shared.collector
demo_events = _shared.demo_events
_stored = _shared.stored
_drain = _shared.drain
RedisServer = Any  # redis_fixtures.RedisServer, loaded by path

GROUP = "tripwire"


@pytest.fixture
def stream(redis_server: RedisServer) -> str:
    return str(redis_server.new_stream())


def _consumer(
    server: RedisServer, stream: str, collector: Collector, name: str = "c1", **options: Any
) -> RedisConsumer:
    options = {"batch_size": 500, "block_ms": 50, **options}
    return RedisConsumer(server.url, stream, GROUP, name, collector, **options)


def _pending(server: RedisServer, stream: str) -> int:
    client = server.client()
    try:
        return int(client.xpending(stream, GROUP)["pending"])
    finally:
        client.close()


def _add(server: RedisServer, stream: str, events: list[dict[str, Any]]) -> None:
    transport = RedisTransport(server.url, stream)
    try:
        for start in range(0, len(events), 2000):
            transport.send(events[start : start + 2000])
    finally:
        transport.close()


# --------------------------------------------------------------------------- in process


def test_logger_to_store_stores_every_event_once(
    redis_server: RedisServer, stream: str, config: ModelConfig, collector: Collector
) -> None:
    rows = scenario.generate(days=1, rows_per_day=1500, reference_rows=1).days[0][1].to_pylist()
    columns = config.columns
    transport = RedisTransport(redis_server.url, stream)
    with Logger(config.name, transport, batch_size=400, flush_interval=0.05) as logger:
        ids = [
            logger.log(
                features={name: row[name] for name in columns.features},
                prediction=row[columns.prediction],
                timestamp=row[columns.timestamp],
            )
            for row in rows
        ]
        # Every event is in the stream once flush returns, before the logger is closed.
        assert logger.flush(timeout=60) is True
        assert logger.stats.sent == len(rows) and logger.stats.queued == 0
    assert logger.stats.sent == len(rows) and None not in ids

    consumer = _consumer(redis_server, stream, collector)
    assert _drain(consumer) == len(rows)
    assert _stored(collector.store) == (len(rows), len(rows))
    stored_ids = set(collector.store.events(config.name)["event_id"].to_pylist())
    assert stored_ids == set(ids)
    assert consumer.stats.stored == len(rows) and consumer.stats.quarantined == 0
    assert _pending(redis_server, stream) == 0
    consumer.close()


def test_a_repeated_batch_is_stored_once(
    redis_server: RedisServer, stream: str, config: ModelConfig, collector: Collector
) -> None:
    events = demo_events(config, 300)
    _add(redis_server, stream, events)
    _add(redis_server, stream, events[:120])  # the logger retried a batch Redis had taken
    with _consumer(redis_server, stream, collector) as consumer:
        assert _drain(consumer) == 420
        assert (consumer.stats.stored, consumer.stats.duplicates) == (300, 120)
    assert _stored(collector.store) == (300, 300)


def test_malformed_entries_are_quarantined_not_dropped(
    redis_server: RedisServer, stream: str, config: ModelConfig, collector: Collector
) -> None:
    events = demo_events(config, 50)
    broken = dict(events[1], features={})  # valid JSON, but an invalid event
    client = redis_server.client()
    client.xadd(stream, {"event": b'{"event_id": "x", not json'})
    client.xadd(stream, {"payload": b"{}"})  # no `event` field
    client.xadd(stream, {"event": b"[1, 2]"})  # JSON, not an object
    _add(redis_server, stream, [events[0], broken, dict(events[2], model="nobody")])
    _add(redis_server, stream, events[3:])
    with _consumer(redis_server, stream, collector, batch_size=4) as consumer:
        assert _drain(consumer) == 53
        assert consumer.stats.quarantined == 5
    assert _stored(collector.store) == (48, 48)
    unknown = collector.store.quarantined(UNKNOWN_MODEL).to_pylist()
    reasons = " | ".join(row["reason"] for row in unknown)
    assert "not JSON" in reasons and "no 'event' field" in reasons
    assert "not a JSON object" in reasons
    assert any("not json" in row["payload"] for row in unknown)
    [missing] = collector.store.quarantined(config.name).to_pylist()
    assert "features" in missing["reason"] and events[1]["event_id"] in missing["payload"]
    assert len(collector.store.quarantined("nobody")) == 1
    # Each quarantined item is named by its stream entry id, so a redelivery is kept once.
    sources = [row["source"] for row in [*unknown, missing]]
    assert all(re.fullmatch(rf"redis {stream} \d+-\d+", source) for source in sources)
    assert _pending(redis_server, stream) == 0
    client.close()


def test_a_dead_consumers_pending_entries_are_reclaimed(
    redis_server: RedisServer, stream: str, config: ModelConfig, collector: Collector
) -> None:
    events = demo_events(config, 1200)
    _add(redis_server, stream, events)
    client = redis_server.client()
    client.xgroup_create(stream, GROUP, id="0")
    # A consumer that read 700 entries and died before acknowledging any.
    client.xreadgroup(GROUP, "dead", {stream: ">"}, count=700)
    assert _pending(redis_server, stream) == 700

    # Not idle long enough yet: a live consumer's batch is left alone.
    with _consumer(redis_server, stream, collector, claim_idle_ms=60_000) as patient:
        assert _drain(patient) == 500
        assert patient.stats.reclaimed == 0
    assert _pending(redis_server, stream) == 700
    assert _stored(collector.store) == (500, 500)

    time.sleep(0.1)
    with _consumer(redis_server, stream, collector, name="c2", claim_idle_ms=50) as consumer:
        assert _drain(consumer) == 700
        assert consumer.stats.reclaimed == 700
    assert _stored(collector.store) == (1200, 1200)
    assert _pending(redis_server, stream) == 0
    client.close()


def test_the_groups_lag_and_stored_events_are_recorded_in_the_store(
    redis_server: RedisServer, stream: str, config: ModelConfig, collector: Collector
) -> None:
    events = demo_events(config, 1000)
    _add(redis_server, stream, events)
    _add(redis_server, stream, events[:50])  # repeats: consumed, not new to the store
    store = collector.store
    client = redis_server.client()
    client.xgroup_create(stream, GROUP, id="0")
    # Another consumer of the group read 100 entries and has not acknowledged them yet: they
    # are not stored, so they count in the lag.
    client.xreadgroup(GROUP, "other", {stream: ">"}, count=100)
    with _consumer(redis_server, stream, collector, batch_size=300, report_interval_s=0) as c:
        assert c.poll_once() == 300
        [row] = store.consumers().to_pylist()
        assert (row["source"], row["stream"], row["group_id"]) == ("redis", stream, GROUP)
        assert row["lag"] == 1050 - 300 == c.stats.lag
        assert row["events_stored"] == 300
        assert _drain(c) == 650
        [row] = store.consumers().to_pylist()
        assert row["lag"] == 100  # the other consumer's, still pending
        # The repeats of the first 50 events were new to the store: "other" has them pending.
        assert row["events_stored"] == 950 == c.stats.stored
        _add(redis_server, stream, demo_events(config, 1030)[1000:])
        assert c.lag() == 130
    # A second consumer of the group adds what it stores to the group's count.
    options = {"claim_idle_ms": 0, "report_interval_s": 0}
    with _consumer(redis_server, stream, collector, name="c2", **options) as c2:
        assert _drain(c2) == 130
        [row] = store.consumers().to_pylist()
        assert row["lag"] == 0
        # It took over the other consumer's 100 (50 of them stored since) and the 30 new.
        assert c2.stats.stored == 50 + 30
        assert row["events_stored"] == 950 + 50 + 30 == len(store.events(config.name))
    client.close()


def test_the_lag_is_unknown_only_where_redis_cannot_tell(
    redis_server: RedisServer, stream: str, config: ModelConfig, collector: Collector
) -> None:
    events = demo_events(config, 8)
    _add(redis_server, stream, events[:5])
    client = redis_server.client()
    with _consumer(redis_server, stream, collector) as consumer:
        assert consumer.lag() is None  # no group yet
        assert _drain(consumer) == 5
        assert consumer.lag() == 0
        _add(redis_server, stream, events[5:])
        # An entry deleted after the group's last read: Redis no longer counts what follows.
        client.xdel(stream, client.xrange(stream)[-2][0])
        assert consumer.lag() is None
        assert _drain(consumer) == 2
        assert consumer.lag() == 0  # read to the stream's end: nothing is left
    client.close()


def test_a_failed_batch_is_not_acknowledged_and_is_stored_after_all(
    redis_server: RedisServer, stream: str, config: ModelConfig, store: DuckDBStore
) -> None:
    events = demo_events(config, 800)
    _add(redis_server, stream, events)
    collector = _shared.FailsOnce({config.name: config}, store)
    consumer = _consumer(redis_server, stream, collector)
    with pytest.raises(OSError, match="disk full"):
        consumer.poll_once()
    assert _pending(redis_server, stream) == 500  # read, not acknowledged
    consumer.close()
    # A restart under the same name resumes its own pending entries first, without waiting
    # for claim_idle_ms.
    with _consumer(redis_server, stream, collector) as restarted:
        assert restarted.poll_once() == 500
        assert _drain(restarted) == 300
    assert _stored(store) == (800, 800)
    assert _pending(redis_server, stream) == 0


def test_entries_trimmed_before_they_were_stored_are_quarantined(
    redis_server: RedisServer, stream: str, config: ModelConfig, collector: Collector
) -> None:
    events = demo_events(config, 10)
    _add(redis_server, stream, events)
    client = redis_server.client()
    client.xgroup_create(stream, GROUP, id="0")
    [[_, read]] = client.xreadgroup(GROUP, "c1", {stream: ">"}, count=10)
    client.xdel(stream, read[0][0], read[1][0])  # as MAXLEN trimming would
    with _consumer(redis_server, stream, collector) as consumer:
        assert _drain(consumer) == 10
    assert _stored(collector.store) == (8, 8)
    reasons = collector.store.quarantined(UNKNOWN_MODEL)["reason"].to_pylist()
    assert len(reasons) == 2 and all("trimmed" in r for r in reasons)
    assert _pending(redis_server, stream) == 0
    client.close()


def test_decode_keeps_entry_order_and_ids() -> None:
    entries = [(b"1-0", {b"event": b'{"a": 1}'}), (b"1-1", {b"x": b"y"}), (b"1-2", {})]
    batch, ids = decode(entries, [b"0-5"])
    assert ids == [b"1-0", b"1-1", b"1-2", b"0-5"]
    assert batch.items == [{"a": 1}] and batch.indices == [0]
    assert [r.index for r in batch.unreadable] == [1, 2, 3]
    assert all(isinstance(r, Rejected) for r in batch.unreadable)


def test_transport_errors_say_whether_to_retry(redis_server: RedisServer, stream: str) -> None:
    unreachable = RedisTransport(f"redis://127.0.0.1:{_fixtures._free_port()}/0", stream)
    with pytest.raises(TransportError) as caught:
        unreachable.send([{"event_id": "e"}])
    assert caught.value.retryable
    redis_server.client().set(stream, "not a stream")
    wrong_type = RedisTransport(redis_server.url, stream)
    with pytest.raises(TransportError) as caught:
        wrong_type.send([{"event_id": "e"}])
    assert not caught.value.retryable
    wrong_type.close()


# --------------------------------------------------------------------------- the command


def test_consume_redis_help_has_an_example() -> None:
    result = CliRunner().invoke(cli, ["consume", "redis", "--help"])
    assert result.exit_code == 0
    assert "Example:" in result.output and "tripwire consume redis" in result.output


def _start(
    tmp_path: Path, server: RedisServer, stream: str, name: str, log: Path
) -> subprocess.Popen[bytes]:
    args = ["consume", "redis", "--config", str(tmp_path / "tripwire.yaml"), "--stream", stream]
    args += ["--group", GROUP, "--consumer", name, "--store", str(tmp_path / "s.duckdb")]
    args += ["--batch-size", "500", "--claim-idle-ms", "200"]
    env = {**os.environ, "TRIPWIRE_REDIS_URL": server.url}
    return _shared.start(args, log, env)


@pytest.mark.slow
def test_consumer_killed_mid_batch_again_and_again_stores_every_event_once(
    tmp_path: Path, redis_server: RedisServer, stream: str, config: ModelConfig
) -> None:
    n, kills = 20_000, 8
    (tmp_path / "tripwire.yaml").write_text(scenario.CONFIG_YAML, encoding="utf-8")
    events = demo_events(config, n)
    _add(redis_server, stream, events)
    client = redis_server.client()
    rng = random.Random(7)
    left_pending = 0
    for k in range(kills):
        log = tmp_path / f"consumer-{k}.log"
        # Two names in turn: a restart under its own name resumes its own pending entries,
        # and the other name's are taken over with XAUTOCLAIM (--claim-idle-ms 200).
        process = _start(tmp_path, redis_server, stream, "ab"[k % 2], log)
        # "consuming ..." is printed after the first batch: from then on it is mid-stream.
        _shared.wait_for(lambda log=log: b"consuming" in log.read_bytes(), process, log, "a start")
        _shared.kill_within(process, rng, 0.15)
        left_pending += int(client.xpending(stream, GROUP)["pending"]) > 0

    log = tmp_path / "consumer-final.log"
    process = _start(tmp_path, redis_server, stream, "a", log)

    def done() -> bool:
        [group] = client.xinfo_groups(stream)
        return bool(group["pending"] == 0 and group["entries-read"] == n and group["lag"] == 0)

    _shared.wait_for(done, process, log, "the stream to be consumed")
    _shared.stop_cleanly(process, log)
    client.close()

    # Some kills must have caught a batch read but not acknowledged, or redelivery was
    # never exercised.
    assert left_pending >= 1
    with DuckDBStore(tmp_path / "s.duckdb") as store:
        assert _stored(store) == (n, n)
        ids = set(store.events(config.name)["event_id"].to_pylist())
        assert ids == {e["event_id"] for e in events}
        assert store.quarantined(UNKNOWN_MODEL).num_rows == 0


# --------------------------------------------------------------------------- the benchmark


def test_consumer_benchmark_runs_and_reports_every_figure(
    redis_server: RedisServer, capsys: pytest.CaptureFixture[str]
) -> None:
    benchmark = _shared.benchmark("tripwire_benchmark_consumers")
    tiny = ["redis", "--events", "1500", "--batch", "400", "--redis-url", redis_server.url]
    assert benchmark.main(tiny) == 0
    out = capsys.readouterr().out
    for label in ("events/s stored", "1,500 (0 entries left pending)", "machine", "redis-server"):
        assert label in out, label
    assert benchmark.main([*tiny, "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["stored"] == 1500 and result["stored_per_s"] > 0
    assert 0 < result["ingest_share"] <= 1  # the collector's time is counted
    assert {"platform", "cpu", "logical_cores", "versions"} <= set(result["machine"])
