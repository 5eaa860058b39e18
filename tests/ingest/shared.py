"""What the ingest tests share, whichever source they consume: the demo's model and its events,
a DuckDB store and a collector over it, the count of stored events, a collector that fails
once, draining a consumer, the consumer benchmark, and the consumer and server processes
(started, waited on, killed, stopped).

Loaded by path, as ``tripwire_tests_ingest_shared`` (the suite runs with
``--import-mode=importlib``, so test directories are not on ``sys.path``), by ``test_files.py``,
``test_redis.py`` and ``test_kafka.py``; the last two load it before their fixtures module,
which takes what it uses of it from ``sys.modules``.
"""

from __future__ import annotations

import importlib.util
import random
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from tripwire.config import ModelConfig, parse_config
from tripwire.demo import scenario
from tripwire.events import Event, table_to_events
from tripwire.server.collector import Collector
from tripwire.store import DuckDBStore

WAIT_S = 60  # the most a wait may take before the test fails (never reached when fine)
BENCHMARK = Path(__file__).resolve().parents[2] / "benchmarks" / "consumers.py"


@pytest.fixture(scope="session")
def config() -> ModelConfig:
    return parse_config(scenario.CONFIG_YAML)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[DuckDBStore]:
    """A DuckDB store in the test's directory (the broker tests'; ``test_files.py`` takes the
    suite's ``store``, which runs each test on DuckDB and on PostgreSQL)."""
    with DuckDBStore(tmp_path / "store.duckdb") as store:
        yield store


@pytest.fixture
def collector(config: ModelConfig, store: DuckDBStore) -> Collector:
    return Collector({config.name: config}, store)


def demo_events(config: ModelConfig, n: int) -> list[dict[str, Any]]:
    """``n`` events of the demo's first day, as a serving process would send them."""
    day = scenario.generate(days=1, rows_per_day=n, reference_rows=1).days[0][1]
    events = table_to_events(config, day)
    for event in events:
        event["timestamp"] = event["timestamp"].isoformat()
    return events


def stored(store: Any) -> tuple[int, int]:
    """Rows in the store's events table, and distinct event ids among them (DuckDB or
    PostgreSQL)."""
    ((count, distinct),) = store.connection.execute(
        "SELECT count(*), count(DISTINCT event_id) FROM events"
    ).fetchall()
    return int(count), int(distinct)


class _FailsOnceStore:
    """A store whose first write of events fails (a full disk, say); the rest of it is the
    real store's."""

    def __init__(self, store: Any) -> None:
        self._store = store
        self.failed = False

    def _fail_once(self) -> None:
        if not self.failed:
            self.failed = True
            raise OSError("disk full")

    def insert_events(self, events: Sequence[Event]) -> None:
        if events:
            self._fail_once()
        self._store.insert_events(events)

    def write_events(self, events: Sequence[Event]) -> int:
        if events:
            self._fail_once()
        return int(self._store.write_events(events))

    def __getattr__(self, name: str) -> Any:
        return getattr(self._store, name)


class FailsOnce(Collector):
    """A collector whose store fails on the first batch with events, however the batch came."""

    def __init__(self, configs: Mapping[str, ModelConfig], store: Any) -> None:
        super().__init__(configs, _FailsOnceStore(store))


def drain(consumer: Any) -> int:
    """Poll ``consumer`` until a poll finds nothing; the items (entries, lines) it took."""
    total = 0
    while n := consumer.poll_once():
        total += n
    return total


def benchmark(name: str) -> ModuleType:
    """``benchmarks/consumers.py``, loaded afresh as ``name``."""
    spec = importlib.util.spec_from_file_location(name, BENCHMARK)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# -- processes -------------------------------------------------------------------------------


def start(
    args: list[str], log: Path, env: Mapping[str, str] | None = None
) -> subprocess.Popen[bytes]:
    """``python -m tripwire <args>`` (a consumer), its output appended to ``log``."""
    command = [sys.executable, "-m", "tripwire", *args]
    with log.open("ab") as out:
        return subprocess.Popen(command, env=env, stdout=out, stderr=subprocess.STDOUT)


def wait_for(
    predicate: Callable[[], bool],
    process: subprocess.Popen[bytes],
    log: Path,
    what: str,
    timeout: float = WAIT_S,
) -> None:
    """Wait until ``predicate()`` holds; fail if the consumer ``process`` exits first (with
    the end of its ``log``) or ``timeout`` passes."""
    deadline = time.monotonic() + timeout
    while not predicate():
        assert process.poll() is None, f"the consumer exited:\n{log.read_text()[-3000:]}"
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.01)


def kill_within(process: subprocess.Popen[bytes], rng: random.Random, seconds: float) -> None:
    """SIGKILL the consumer ``process`` at a moment drawn from the next ``seconds`` (at
    whatever point of its batch that is), and wait until it is gone."""
    time.sleep(rng.uniform(0.0, seconds))
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=30)


def stop_cleanly(process: subprocess.Popen[bytes], log: Path) -> None:
    """SIGTERM the consumer ``process``: it finishes its batch, says it stopped, exits with 0."""
    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=30) == 0, log.read_text()
    assert b"stopped:" in log.read_bytes()


def stop_server(process: subprocess.Popen[Any]) -> None:
    """Stop a server this session started (a broker), by its pid: nothing else. SIGTERM, then
    SIGKILL when it has not exited within 10 s."""
    process.terminate()
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=10)
