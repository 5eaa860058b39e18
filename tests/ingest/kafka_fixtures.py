"""Fixtures for the Kafka tests: a Kafka-protocol cluster this session starts (and stops)
itself, fresh topic and group names per test.

The cluster is librdkafka's mock cluster, run by ``mock_kafka_cluster.py`` in a process of its
own: real brokers as far as any client can tell (TCP, the Kafka protocol, consumer groups,
committed offsets), started in well under a second, with nothing to install beyond
confluent-kafka (the ``kafka`` extra); without it the Kafka tests skip. Topics are created on
first use with 4 partitions.

Imported by ``test_kafka.py`` by path (the suite runs with ``--import-mode=importlib``, so test
directories are not on ``sys.path``), and kept out of a ``conftest.py`` so that the fixtures of
other brokers' tests in this directory stay apart.
"""

from __future__ import annotations

import itertools
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

HELPER = Path(__file__).with_name("mock_kafka_cluster.py")
BROKERS = 3
START_TIMEOUT_S = 30
# The mock's group coordinator holds a new group's first join for 3 s, and a member whose
# session times out before its join completes is dropped, so the session must be longer than
# that; short enough that a killed consumer's partitions move on within a few seconds.
SESSION_TIMEOUT_MS = 3500
CONSUMER_SETTINGS: dict[str, Any] = {
    "session.timeout.ms": SESSION_TIMEOUT_MS,
    "heartbeat.interval.ms": 500,
}


@dataclass
class KafkaCluster:
    """A running mock cluster on 127.0.0.1."""

    bootstrap: str
    _names: Iterator[int]

    def new_name(self, kind: str) -> str:
        """A topic or group name no other test uses: tests share the cluster, not data."""
        return f"tripwire-test-{kind}-{next(self._names)}"


def _first_line(process: subprocess.Popen[str], timeout: float) -> str:
    line: list[str] = []
    assert process.stdout is not None
    reader = threading.Thread(target=lambda: line.append(process.stdout.readline()))  # type: ignore[union-attr]
    reader.daemon = True
    reader.start()
    reader.join(timeout)
    return line[0] if line else ""


@pytest.fixture(scope="session")
def kafka_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KafkaCluster]:
    pytest.importorskip(
        "confluent_kafka", reason="confluent-kafka is not installed: pip install '.[test]'"
    )
    log_path = tmp_path_factory.mktemp("kafka") / "mock_kafka_cluster.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, str(HELPER), "--brokers", str(BROKERS)],
            stdout=subprocess.PIPE,
            stderr=log,  # librdkafka's own messages
            text=True,
        )
    try:
        line = _first_line(process, START_TIMEOUT_S)
        if not line.startswith("BOOTSTRAP "):
            pytest.fail(
                f"the mock Kafka cluster did not start: {line!r}\n"
                + log_path.read_text(errors="replace")[-2000:]
            )
        yield KafkaCluster(bootstrap=line.split()[1], _names=itertools.count())
    finally:
        _shared().stop_server(process)
        if process.stdout is not None:
            process.stdout.close()


def _shared() -> ModuleType:
    # tests/ingest/shared.py, which the tests that take these fixtures load (by path) first;
    # looked up when used, since --doctest-modules imports this module on its own too.
    return sys.modules["tripwire_tests_ingest_shared"]
