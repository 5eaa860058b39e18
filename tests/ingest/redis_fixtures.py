"""Fixtures for the Redis tests: a throwaway ``redis-server`` this session starts (and stops)
itself, a fresh stream key per test.

The server needs Debian's ``redis-server`` package (``.ci/run`` installs it) and the tests need
the ``redis`` package (the ``redis`` extra); without either the Redis tests skip.

Imported by ``test_redis.py`` by path (the suite runs with ``--import-mode=importlib``, so test
directories are not on ``sys.path``), and kept out of a ``conftest.py`` so that the fixtures of
other brokers' tests in this directory stay apart.
"""

from __future__ import annotations

import itertools
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

NOT_INSTALLED = "redis-server is not installed (.ci/run installs Debian's redis-server)"
START_TIMEOUT_S = 20


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@dataclass
class RedisServer:
    """A running throwaway server on 127.0.0.1, without persistence."""

    port: int
    _names: Iterator[int]

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def client(self) -> Any:
        import redis

        return redis.Redis.from_url(self.url)

    def new_stream(self) -> str:
        """A stream key no other test uses, so tests share the server but not their data."""
        return f"tripwire-test-{next(self._names)}"


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    binary = shutil.which("redis-server")
    if binary is None:
        pytest.skip(NOT_INSTALLED)
    pytest.importorskip("redis", reason="the redis package is not installed: pip install '.[test]'")
    import redis

    workdir = tmp_path_factory.mktemp("redis")
    port = _free_port()
    log_path = workdir / "redis.log"
    # No RDB snapshots and no AOF: the data lives as long as the test session.
    command = [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly"]
    command += ["no", "--daemonize", "no", "--dir", str(workdir)]
    with log_path.open("wb") as log:
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
    try:
        client = redis.Redis(host="127.0.0.1", port=port)
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:
            if process.poll() is not None:
                pytest.fail(f"redis-server exited at start:\n{_tail(log_path)}")
            try:
                if client.ping():
                    break
            except redis.ConnectionError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"redis-server did not answer PING in {START_TIMEOUT_S} s")
            time.sleep(0.05)
        client.close()
        yield RedisServer(port=port, _names=itertools.count())
    finally:
        _shared().stop_server(process)


def _tail(path: Path) -> str:
    return path.read_text(errors="replace")[-2000:] if path.exists() else ""


def _shared() -> ModuleType:
    # tests/ingest/shared.py, which the tests that take these fixtures load (by path) first;
    # looked up when used, since --doctest-modules imports this module on its own too.
    return sys.modules["tripwire_tests_ingest_shared"]
