"""What the ingest tests share, whichever source they consume: the demo's model and its events,
the count of stored events, and waiting on a consumer process.

Loaded by path, as ``tripwire_tests_ingest_shared`` (the suite runs with
``--import-mode=importlib``, so test directories are not on ``sys.path``): by ``test_files.py``,
and by the Redis and Kafka fixtures, which hand these on to their tests.
"""

from __future__ import annotations

import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tripwire.config import ModelConfig, parse_config
from tripwire.demo import scenario
from tripwire.events import table_to_events

WAIT_S = 60  # the most a wait may take before the test fails (never reached when fine)


@pytest.fixture(scope="session")
def config() -> ModelConfig:
    return parse_config(scenario.CONFIG_YAML)


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
