"""The serving-side Logger: every event arrives once, and nothing ever raises into the caller.

Real transports against real files and a real HTTP server on 127.0.0.1; the only stand-ins are
small transports that block or fail on purpose. No test asserts how long anything takes.
"""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tripwire import Logger
from tripwire.config import parse_config
from tripwire.events import validate_events
from tripwire.logger import (
    CLOSED_SUFFIX,
    FileTransport,
    HttpTransport,
    LoggerStats,
    TransportError,
)

CONFIG = parse_config(
    """
name: fraud
task: binary
columns:
  features:
    amount: numeric
    country: categorical
  prediction: score
"""
)
TOKEN = "s3cret-token"
WAIT = 10.0  # seconds a test waits for a thread before failing, instead of hanging


def read_events(directory: Path) -> list[dict[str, Any]]:
    lines = []
    for path in sorted(directory.glob("events-*.ndjson")):
        lines += path.read_text(encoding="utf-8").splitlines()
    return [json.loads(line) for line in lines]


def accounted(stats: LoggerStats) -> int:
    return stats.sent + stats.rejected + stats.failed + stats.dropped + stats.invalid


class Gate:
    """A transport whose send blocks until released, to hold the worker while the buffer fills."""

    def __init__(self) -> None:
        self.entered = threading.Event()
        self.release = threading.Event()
        self.sent: list[str] = []

    def send(self, batch: list[dict[str, Any]]) -> None:
        self.entered.set()
        self.release.wait(WAIT)
        self.sent += [event["event_id"] for event in batch]

    def close(self) -> None:
        pass


class Collector:
    """A stand-in for the collector's POST /v1/events on 127.0.0.1: records every request, and
    answers with ``status`` (the collector's JSON body when it is 200)."""

    def __init__(self, status: int = 200, reject_prediction: float | None = None) -> None:
        self.status = status
        self.reject_prediction = reject_prediction
        self.requests: list[tuple[str, str | None, list[dict[str, Any]]]] = []
        collector = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers["Content-Length"])
                events = json.loads(self.rfile.read(length))["events"]
                collector.requests.append((self.path, self.headers["Authorization"], events))
                rejected = [
                    {"index": i, "reason": "prediction: rejected by the test"}
                    for i, event in enumerate(events)
                    if event["prediction"] == collector.reject_prediction
                ]
                body = {
                    "accepted": len(events) - len(rejected),
                    "duplicates": 0,
                    "rejected": rejected,
                }
                data = json.dumps(body).encode() if collector.status == 200 else b"{}"
                self.send_response(collector.status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, format: str, *args: Any) -> None:
                pass  # keep the test output clean

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def received(self) -> list[str]:
        return [event["event_id"] for _, _, events in self.requests for event in events]


@pytest.fixture
def collector() -> Iterator[Collector]:
    server = Collector()
    server.thread.start()
    yield server
    server.server.shutdown()
    server.server.server_close()


def test_file_transport_writes_valid_events_exactly_once(tmp_path: Path) -> None:
    logger = Logger(
        "fraud",
        FileTransport(tmp_path, max_bytes=20_000),  # small files, so that they rotate
        model_version="v7",
        batch_size=64,
        flush_interval=0.01,
    )
    ids = []
    for i in range(2000):
        ids.append(
            logger.log(
                features={"amount": float(i), "country": "US" if i % 2 else "DE"},
                prediction=i / 2000,
            )
        )
    # Every optional field, numpy values, an own id, and both kinds of timestamp.
    naive = dt.datetime(2026, 10, 1, 12, 0, 0)
    aware = dt.datetime(2026, 10, 1, 14, 0, 0, tzinfo=dt.timezone(dt.timedelta(hours=2)))
    ids.append(
        logger.log(
            features={"amount": np.float32(1.5), "country": "FR", "n": np.int64(3)},
            prediction=np.float64(0.25),
            event_id="request-1",
            timestamp=naive,
            latency_ms=12,
            status="ok",
            cost=0.002,
            segments={"user_type": "new"},
            metadata={"request": {"path": "/score"}},
        )
    )
    ids.append(
        logger.log(features={"amount": None, "country": "GB"}, prediction=1, timestamp=aware)
    )
    assert logger.close() is True

    assert ids[-2] == "request-1" and None not in ids and len(set(ids)) == len(ids)
    assert len(list(tmp_path.glob("events-*.ndjson"))) > 1
    events = read_events(tmp_path)
    accepted, rejected = validate_events(CONFIG, events)
    assert rejected == []
    assert [e.event_id for e in accepted] == ids  # all of them, once, in order
    own, last = accepted[-2], accepted[-1]
    assert own.features == {"amount": 1.5, "country": "FR", "n": 3}
    assert (own.prediction, own.latency_ms, own.status, own.cost) == (0.25, 12.0, "ok", 0.002)
    assert own.segments == {"user_type": "new"} and own.metadata == {"request": {"path": "/score"}}
    assert own.model_version == "v7" and own.role == "production"
    assert own.timestamp == last.timestamp == dt.datetime(2026, 10, 1, 12, tzinfo=dt.UTC)
    assert logger.stats == LoggerStats(
        sent=len(ids), dropped=0, invalid=0, failed=0, rejected=0, queued=0
    )


def test_file_transport_marks_its_last_file_closed_and_never_shares_a_start(
    tmp_path: Path,
) -> None:
    first = FileTransport(tmp_path, max_bytes=100)
    second = FileTransport(tmp_path, max_bytes=100)
    second._start = first._start  # made in the same microsecond
    event = {"event_id": "e", "pad": "x" * 60}  # one line fills a file
    first.send([event])
    second.send([event])  # its first name is taken: a later start, not first's next number
    first.send([event])  # rotates: first's own next number
    names = sorted(p.name for p in tmp_path.iterdir())
    start = first._start
    assert names[:2] == [f"events-{start}-000000.ndjson", f"events-{start}-000001.ndjson"]
    [later] = names[2:]
    assert later.startswith("events-") and later.endswith("-000000.ndjson") and later > names[1]
    assert second._start > start
    first.close()
    second.close()
    # Each writer's last file gets a marker once closed, its earlier ones none (their next
    # file says they are finished).
    markers = sorted(p.name for p in tmp_path.glob(f"*{CLOSED_SUFFIX}"))
    assert markers == sorted([names[1] + CLOSED_SUFFIX, later + CLOSED_SUFFIX])
    first.close()  # again: nothing more


def test_a_mapping_changed_after_log_is_logged_as_it_was(tmp_path: Path) -> None:
    features: dict[str, object] = {"amount": 1.0, "country": "US"}
    with Logger("fraud", FileTransport(tmp_path), flush_interval=60) as logger:
        logger.log(features=features, prediction=0.5)
        features["amount"] = 2.0
    assert [e["features"]["amount"] for e in read_events(tmp_path)] == [1.0]


def test_http_transport_delivers_every_event_once_with_the_bearer_token(
    collector: Collector,
) -> None:
    logger = Logger(
        "fraud",
        HttpTransport(collector.url + "/", token=TOKEN),
        batch_size=100,
        flush_interval=0.01,
    )
    ids = [logger.log(features={"amount": i, "country": "US"}, prediction=0.1) for i in range(1234)]
    assert logger.close() is True
    assert sorted(collector.received()) == sorted(ids)
    assert {(path, auth) for path, auth, _ in collector.requests} == {
        ("/v1/events", f"Bearer {TOKEN}")
    }
    assert all(len(events) <= 100 for _, _, events in collector.requests)
    assert validate_events(CONFIG, [e for _, _, es in collector.requests for e in es])[1] == []
    assert logger.stats.sent == 1234 and accounted(logger.stats) == 1234
    assert TOKEN not in repr(logger.transport)


def test_events_the_collector_rejects_are_counted(collector: Collector) -> None:
    collector.reject_prediction = 0.5
    with Logger("fraud", HttpTransport(collector.url), flush_interval=0.01) as logger:
        for i in range(10):
            logger.log(features={"amount": 1, "country": "US"}, prediction=0.5 if i < 3 else 0.1)
    assert (logger.stats.sent, logger.stats.rejected) == (7, 3)


def test_a_failing_collector_never_reaches_the_caller_and_failures_are_counted(
    collector: Collector,
) -> None:
    collector.status = 500
    logger = Logger(
        "fraud",
        HttpTransport(collector.url, token=TOKEN),
        batch_size=10,
        flush_interval=0.01,
        retries=2,
        backoff=0.001,
    )
    ids = [logger.log(features={"amount": i, "country": "US"}, prediction=0.1) for i in range(60)]
    assert None not in ids  # the buffer had room, so every call was accepted
    assert logger.close() is True
    assert logger.stats.failed == 60 and logger.stats.sent == 0 and accounted(logger.stats) == 60
    # Each batch was tried 1 + retries times, and nothing else was sent.
    attempts: dict[tuple[str, ...], int] = {}
    for _, _, events in collector.requests:
        key = tuple(e["event_id"] for e in events)
        attempts[key] = attempts.get(key, 0) + 1
    assert set(attempts.values()) == {3}
    assert sorted(i for key in attempts for i in key) == sorted(ids)


def test_an_unreachable_collector_is_counted_too() -> None:
    # Port 9 on 127.0.0.1 (discard) refuses connections on a test machine.
    transport = HttpTransport("http://127.0.0.1:9", timeout=1.0)
    with Logger("fraud", transport, flush_interval=0.01, retries=1, backoff=0.001) as logger:
        assert logger.log(features={"amount": 1, "country": "US"}, prediction=0.1) is not None
    assert logger.stats.failed == 1


def test_a_non_retryable_error_is_not_retried() -> None:
    class Refusing:
        calls = 0

        def send(self, batch: list[dict[str, Any]]) -> None:
            Refusing.calls += 1
            raise TransportError("forbidden", retryable=False)

        def close(self) -> None:
            raise OSError("and closing fails too")

    with Logger("fraud", Refusing(), flush_interval=0.01, retries=5, backoff=0.001) as logger:
        logger.log(features={"amount": 1, "country": "US"}, prediction=0.1)
    assert Refusing.calls == 1 and logger.stats.failed == 1


def test_a_full_buffer_drops_and_counts_the_overflow_without_blocking() -> None:
    gate = Gate()
    logger = Logger("fraud", gate, batch_size=1, flush_interval=0.01, max_buffer=5)
    try:
        first = logger.log(features={"amount": 0, "country": "US"}, prediction=0.1)
        assert gate.entered.wait(WAIT)  # the worker holds that one event and is stuck sending
        kept = [
            logger.log(features={"amount": i, "country": "US"}, prediction=0.1) for i in range(5)
        ]
        over = [
            logger.log(features={"amount": i, "country": "US"}, prediction=0.1) for i in range(7)
        ]
        assert None not in kept and over == [None] * 7  # the calls returned: nothing blocked
        assert logger.stats.dropped == 7 and logger.stats.queued == 6
    finally:
        gate.release.set()
    assert logger.close() is True
    assert gate.sent == [first, *kept]  # the oldest events were kept, the overflow refused
    assert logger.stats == LoggerStats(sent=6, dropped=7, invalid=0, failed=0, rejected=0, queued=0)


def test_drops_from_many_threads_are_all_counted() -> None:
    gate = Gate()
    logger = Logger("fraud", gate, batch_size=10, flush_interval=0.01, max_buffer=50)
    calls = 4000

    def hammer() -> None:
        for i in range(calls):
            logger.log(features={"amount": i}, prediction=0.1)

    threads = [threading.Thread(target=hammer) for _ in range(8)]
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(WAIT * 6)
    finally:
        gate.release.set()
    assert logger.close(timeout=None) is True
    stats = logger.stats
    assert stats.dropped > 0 and stats.sent == len(gate.sent) == len(set(gate.sent))
    assert accounted(stats) == 8 * calls  # no count lost between threads


def test_invalid_arguments_never_raise_and_are_counted(tmp_path: Path) -> None:
    bad_calls: list[dict[str, Any]] = [
        # Refused in log(): None comes back.
        {"features": None, "prediction": 0.1},
        {"features": {"amount": 1}, "prediction": "abc"},
        {"features": {"amount": 1}, "prediction": None},
        {"features": "amount=1", "prediction": 0.1},
        {"features": {"amount": 1}, "prediction": 0.1, "segments": 5},
        # Refused by the worker: the id came back, the event is counted and not sent.
        {"features": {"amount": [1, 2]}, "prediction": 0.1},
        {"features": {1: 1.0}, "prediction": 0.1},
        {"features": {"amount": 1}, "prediction": float("nan")},
        {"features": {"amount": 1}, "prediction": 0.1, "event_id": "x" * 201},
        {"features": {"amount": 1}, "prediction": 0.1, "timestamp": "yesterday"},
        {"features": {"amount": 1}, "prediction": 0.1, "latency_ms": "fast"},
        {"features": {"amount": 1}, "prediction": 0.1, "status": 200},
        {"features": {"amount": 1}, "prediction": 0.1, "metadata": {"o": object()}},
    ]
    with Logger("fraud", FileTransport(tmp_path), flush_interval=0.01) as logger:
        returned = [logger.log(**call) for call in bad_calls]
        good = logger.log(features={"amount": 2.0, "country": "US"}, prediction=0.2)
    assert returned[:5] == [None] * 5 and None not in returned[5:]
    assert [e["event_id"] for e in read_events(tmp_path)] == [good]
    assert logger.stats.invalid == len(bad_calls) and logger.stats.sent == 1


def test_close_flushes_what_is_queued_and_later_calls_are_dropped(tmp_path: Path) -> None:
    # The worker would not wake on its own for an hour, nor for a full batch.
    logger = Logger("fraud", FileTransport(tmp_path), batch_size=10_000, flush_interval=3600)
    ids = [logger.log(features={"amount": i, "country": "US"}, prediction=0.1) for i in range(25)]
    assert logger.stats.queued == 25
    assert logger.close() is True and logger.close() is True
    assert [e["event_id"] for e in read_events(tmp_path)] == ids
    assert logger.log(features={"amount": 1, "country": "US"}, prediction=0.1) is None
    assert logger.stats.dropped == 1 and logger.stats.sent == 25


def test_close_gives_up_at_its_timeout_and_counts_what_was_left() -> None:
    gate = Gate()
    logger = Logger("fraud", gate, batch_size=1, flush_interval=0.01)
    try:
        logger.log(features={"amount": 0}, prediction=0.1)
        assert gate.entered.wait(WAIT)
        for i in range(4):
            logger.log(features={"amount": i}, prediction=0.1)
        assert logger.close(timeout=0.05) is False  # the worker is still stuck in send
        assert logger.stats.dropped == 4 and logger.stats.queued == 1
    finally:
        gate.release.set()
    logger.close()
    assert logger.stats.sent == 1 and accounted(logger.stats) == 5


def test_flush_waits_until_what_was_logged_is_shipped_and_the_logger_goes_on(
    tmp_path: Path,
) -> None:
    # The worker would not wake on its own for an hour, nor for a full batch: flush wakes it.
    logger = Logger("fraud", FileTransport(tmp_path), batch_size=10_000, flush_interval=3600)
    first = [logger.log(features={"amount": i, "country": "US"}, prediction=0.1) for i in range(25)]
    assert logger.flush() is True
    assert [e["event_id"] for e in read_events(tmp_path)] == first
    assert logger.stats == LoggerStats(
        sent=25, dropped=0, invalid=0, failed=0, rejected=0, queued=0
    )
    assert logger.flush(timeout=0) is True  # nothing left to wait for

    # Invalid events and failures count as shipped too: nothing is left to wait for.
    later = [logger.log(features={"amount": i, "country": "US"}, prediction=0.1) for i in range(5)]
    logger.log(features={"amount": 1}, prediction=0.1, timestamp="yesterday")  # invalid
    assert logger.flush(timeout=WAIT) is True
    assert [e["event_id"] for e in read_events(tmp_path)] == first + later
    assert logger.stats.sent == 30 and logger.stats.invalid == 1 and logger.stats.queued == 0
    assert logger.close() is True
    # After close, flush returns at once, and never raises.
    assert logger.log(features={"amount": 1}, prediction=0.1) is None
    assert logger.flush() is True and logger.flush(timeout=0) is True


def test_flush_times_out_while_the_transport_is_stuck_and_waits_only_for_earlier_events() -> None:
    class Turnstile:
        """A transport that sends one batch per permit the test hands out."""

        def __init__(self) -> None:
            self.permits = threading.Semaphore(0)
            self.entered = threading.Event()
            self.sent: list[str] = []

        def send(self, batch: list[dict[str, Any]]) -> None:
            self.entered.set()
            assert self.permits.acquire(timeout=WAIT)
            self.sent += [event["event_id"] for event in batch]

        def close(self) -> None:
            pass

    turnstile = Turnstile()
    logger = Logger("fraud", turnstile, batch_size=1, flush_interval=3600)
    try:
        first = logger.log(features={"amount": 0}, prediction=0.1)
        flushed: list[bool] = []
        waiting = threading.Thread(target=lambda: flushed.append(logger.flush()), daemon=True)
        waiting.start()
        assert turnstile.entered.wait(WAIT)  # flush woke the worker, which is stuck in send
        second = logger.log(features={"amount": 1}, prediction=0.1)
        assert logger.flush(timeout=0.05) is False
        assert waiting.is_alive() and flushed == []
        # One batch through: the first flush returns, though the event logged after it waits.
        turnstile.permits.release()
        waiting.join(WAIT)
        assert flushed == [True] and turnstile.sent == [first]
        assert logger.stats.sent == 1
        turnstile.permits.release()
        assert logger.flush(timeout=WAIT) is True and turnstile.sent == [first, second]
    finally:
        turnstile.permits.release(5)
        logger.close()
    assert logger.stats.sent == 2


def test_flush_waits_through_retries_and_counts_the_failures(collector: Collector) -> None:
    collector.status = 503
    transport = HttpTransport(collector.url, token=TOKEN)
    logger = Logger("fraud", transport, batch_size=10, flush_interval=3600, backoff=0.001)
    for i in range(25):
        logger.log(features={"amount": i, "country": "US"}, prediction=0.1)
    assert logger.flush(timeout=WAIT) is True
    assert logger.stats.failed == 25 and logger.stats.queued == 0
    collector.status = 200
    ids = [logger.log(features={"amount": i, "country": "US"}, prediction=0.1) for i in range(7)]
    assert logger.flush(timeout=WAIT) is True
    assert logger.stats.sent == 7 and set(ids) <= set(collector.received())
    assert logger.close() is True


def test_the_queue_is_flushed_at_interpreter_exit(tmp_path: Path) -> None:
    script = """
import sys
from tripwire import Logger
from tripwire.logger import FileTransport

logger = Logger("fraud", FileTransport(sys.argv[1]), batch_size=10_000, flush_interval=3600)
for i in range(40):
    logger.log(features={"amount": i, "country": "US"}, prediction=0.5)
print(logger.stats.queued)
"""  # and exits without close()
    done = subprocess.run(
        [sys.executable, "-c", script, str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    assert done.stdout.strip() == "40"
    accepted, rejected = validate_events(CONFIG, read_events(tmp_path))
    assert len(accepted) == 40 and rejected == []


def test_prometheus_text_has_the_documented_metrics() -> None:
    gate = Gate()
    gate.release.set()
    with Logger('fr"aud', gate, role="shadow", flush_interval=0.01, max_buffer=1) as logger:
        logger.log(features={"amount": 1}, prediction="abc")
        text = logger.prometheus_text()
    samples = {}
    types = {}
    for line in text.splitlines():
        if line.startswith("# TYPE "):
            _, _, name, kind = line.split()
            types[name] = kind
        elif not line.startswith("#"):
            series, value = line.rsplit(" ", 1)
            samples[series] = float(value)
    labels = '{model="fr\\"aud",role="shadow"}'
    counters = ["sent", "dropped", "invalid", "failed", "rejected"]
    for name in counters:
        assert types[f"tripwire_logger_events_{name}_total"] == "counter"
    assert types["tripwire_logger_events_queued"] == "gauge"
    assert types["tripwire_logger_last_send_timestamp_seconds"] == "gauge"
    assert samples[f"tripwire_logger_events_invalid_total{labels}"] == 1
    assert samples[f"tripwire_logger_events_dropped_total{labels}"] == 0
    assert len(samples) == len(types) == 7


def test_bad_configuration_raises_at_construction(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="batch_size"):
        Logger("fraud", FileTransport(tmp_path), batch_size=0)
    with pytest.raises(ValueError, match="role"):
        Logger("fraud", FileTransport(tmp_path), role="canary")  # type: ignore[arg-type]
