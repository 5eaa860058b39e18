"""The pipeline end to end, as separate processes, on each store (a DuckDB file and a
PostgreSQL database, see tests/conftest.py):

- a serving process's ``tripwire.Logger`` sends over HTTP to ``tripwire serve``, whose scheduler
  checks the windows as they close, stores the incidents and pages once, through the outbox, to
  a webhook on 127.0.0.1;
- a Logger puts events on a Redis stream, ``tripwire consume redis`` stores them, and
  ``tripwire run --since/--until`` (as cron would run it) checks those days and pages.

The data is the demo's fraud model, placed in the past days so that every window has closed:
a pipeline breakage nulls a top feature on days 5 and 6, which pages on-call.
"""

from __future__ import annotations

import datetime as dt
import importlib.util
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from types import ModuleType
from typing import Any

import httpx
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

from tripwire.alerts.outbox import Outbox
from tripwire.cli import cli
from tripwire.config import ModelConfig, load_config
from tripwire.demo import scenario
from tripwire.events import table_to_events
from tripwire.ingest.redis_transport import RedisTransport
from tripwire.logger import HttpTransport, Logger, Transport
from tripwire.store import open_store

DAY = dt.timedelta(days=1)
DAYS = 6  # the breakage is on days 5 and 6
INGEST_TOKEN = "pipeline-ingest-token"
READ_TOKEN = "pipeline-read-token"
PAGE = "null_share_top_features"


def _load_ingest(name: str) -> ModuleType:
    # tests/ingest/<name>.py by path, under the name tests/ingest's modules give it (so one
    # module, and one session's Redis server, serve both): with --import-mode=importlib the
    # test directories are not on sys.path.
    module_name = f"tripwire_tests_ingest_{name}"
    if module_name not in sys.modules:
        path = Path(__file__).parent / "ingest" / f"{name}.py"
        spec = importlib.util.spec_from_file_location(module_name, path)
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[module_name] = module  # dataclasses look their module up by name
        spec.loader.exec_module(module)
    return sys.modules[module_name]


_load_ingest("shared")  # first: the Redis fixtures take what they use of it from sys.modules
redis_server = _load_ingest("redis_fixtures").redis_server


# --- the model and its traffic ---------------------------------------------------------------


def _model(directory: Path, webhook: str) -> tuple[ModelConfig, list[dict[str, Any]], dt.date]:
    """The demo's config (paging a webhook, its other routes silent) and reference in
    ``directory``, and the events of the days that ended yesterday; also the first day."""
    first = dt.datetime.now(dt.UTC).date() - (DAYS + 1) * DAY
    data = scenario.generate(days=DAYS, rows_per_day=2000, reference_rows=10000, start=first)
    text = (
        scenario.CONFIG_YAML.replace(
            "oncall: [{type: console}]", f"oncall: [{{type: webhook, url: '{webhook}'}}]"
        )
        .replace("weekly-digest: [{type: console}]", "weekly-digest: []")
        .replace("fraud-ds: [{type: console}]", "fraud-ds: []")
    )
    path = directory / "tripwire.yaml"
    path.write_text(text, encoding="utf-8")
    pq.write_table(data.reference, directory / "reference.parquet")
    config = load_config(path)
    return config, table_to_events(config, pa.concat_tables(t for _, t in data.days)), first


def _log(model: str, transport: Transport, events: list[dict[str, Any]]) -> None:
    """Log ``events`` as a serving process would, and flush them."""
    logger = Logger(model, transport, flush_interval=0.05)
    for e in events:
        logged = logger.log(
            features=e["features"],
            prediction=e["prediction"],
            event_id=e["event_id"],
            timestamp=e["timestamp"],
            latency_ms=e.get("latency_ms"),
            status=e.get("status"),
            cost=e.get("cost"),
            segments=e["segments"],
        )
        assert logged == e["event_id"]
    # The collector may wait for the scheduler, which checks windows as the days arrive.
    assert logger.close(timeout=60)
    assert (logger.stats.sent, logger.stats.failed) == (len(events), 0)


def _pages(receiver: Any) -> list[tuple[str, str]]:
    return [(r.body["rule"], r.body["event"]) for r in receiver.to("/hook")]


def _check_store(target: str, config: ModelConfig, events: list[dict[str, Any]]) -> None:
    """Every event stored once, the days checked, the incident stored and its page delivered."""
    with open_store(target) as store:
        stored = store.events(config.name)
        assert sorted(stored["event_id"].to_pylist()) == sorted(e["event_id"] for e in events)
        assert len(store.window_starts(config.name, DAY)) == DAYS
        incidents = store.incidents(config.name).to_pylist()
        assert PAGE in {i["rule"] for i in incidents}
        outbox = Outbox(store)
        assert outbox.backlog() == 0
        delivered = [(row.message.rule, row.event) for row in outbox.delivered()]
        assert delivered == [(PAGE, "firing")]


# --- processes -------------------------------------------------------------------------------


@contextmanager
def _process(
    command: list[str], env: dict[str, str], log: Path
) -> Iterator[subprocess.Popen[bytes]]:
    """``command`` running, its output in ``log``; stopped afterwards by its pid."""
    with log.open("wb") as out:
        process = subprocess.Popen(command, env=env, stdout=out, stderr=subprocess.STDOUT)
    try:
        yield process
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=30)


def _wait(
    done: Callable[[], bool],
    process: subprocess.Popen[bytes],
    log: Path,
    what: str,
    state: Callable[[], object] = lambda: None,
) -> None:
    deadline = time.monotonic() + 120
    while not done():
        assert process.poll() is None, f"{process.args[3]} exited:\n{log.read_text()[-3000:]}"
        assert time.monotonic() < deadline, f"timed out waiting for {what}: {state()}"
        time.sleep(0.1)


def _tripwire(*args: str) -> list[str]:
    return [sys.executable, "-m", "tripwire", *args]


# --- the collector and its scheduler -----------------------------------------------------------


@pytest.mark.slow
def test_logged_predictions_are_checked_as_their_windows_close_and_page_once(
    tmp_path: Path, store_target: str, http_receiver: Any, free_port: Callable[[], int]
) -> None:
    config, events, first = _model(tmp_path, f"{http_receiver.url}/hook")
    base = f"http://127.0.0.1:{free_port()}"
    command = _tripwire("serve", "--config", str(tmp_path / "tripwire.yaml"))
    command += ["--store", store_target, "--host", "127.0.0.1", "--port", base.rsplit(":", 1)[1]]
    # A pass every second, and no grace: the days are over, nothing late is coming.
    command += ["--interval", "1s", "--grace", "0s"]
    env = {**os.environ, "TRIPWIRE_INGEST_TOKEN": INGEST_TOKEN, "TRIPWIRE_READ_TOKEN": READ_TOKEN}
    log = tmp_path / "serve.log"
    last_day = dt.datetime.combine(first + (DAYS - 1) * DAY, dt.time(), dt.UTC)

    def jobs() -> dict[str, Any]:
        headers = {"Authorization": f"Bearer {READ_TOKEN}"}
        answer: dict[str, Any] = httpx.get(f"{base}/v1/jobs", headers=headers, timeout=10).json()
        return answer

    def healthy() -> bool:
        try:
            return httpx.get(f"{base}/v1/health", timeout=1).status_code == 200
        except httpx.TransportError:
            return False

    def all_checked() -> bool:
        (model,) = jobs()["models"]
        checked = model["last_checked"]
        return checked is not None and dt.datetime.fromisoformat(checked) >= last_day

    with _process(command, env, log) as server:
        _wait(healthy, server, log, "the server to answer")
        _log(config.name, HttpTransport(base, INGEST_TOKEN), events)
        _wait(all_checked, server, log, "the scheduler to check every day", jobs)
        assert jobs()["models"][0]["last_error"] is None
        assert _pages(http_receiver) == [(PAGE, "firing")]
    assert INGEST_TOKEN not in log.read_text()

    _check_store(store_target, config, events)
    assert _pages(http_receiver) == [(PAGE, "firing")]  # once, whatever the passes since


# --- a queue consumer, then the batch job ------------------------------------------------------


@pytest.mark.slow
def test_events_a_consumer_stored_are_checked_by_tripwire_run(
    tmp_path: Path, store_target: str, http_receiver: Any, redis_server: Any
) -> None:
    config, events, first = _model(tmp_path, f"{http_receiver.url}/hook")
    stream = redis_server.new_stream()
    _log(config.name, RedisTransport(redis_server.url, stream), events)

    command = _tripwire("consume", "redis", "--config", str(tmp_path / "tripwire.yaml"))
    command += ["--stream", stream, "--group", "tripwire", "--store", store_target]
    env = {**os.environ, "TRIPWIRE_REDIS_URL": redis_server.url}
    log = tmp_path / "consume.log"
    client = redis_server.client()

    def consumed() -> bool:
        [group] = client.xinfo_groups(stream)
        return bool(group["pending"] == 0 and group["lag"] == 0)

    try:
        with _process(command, env, log) as consumer:
            _wait(lambda: b"consuming" in log.read_bytes(), consumer, log, "the consumer")
            _wait(consumed, consumer, log, "the stream to be consumed", client.xinfo_groups)
    finally:
        client.close()
    assert consumer.returncode == 0 and b"stopped:" in log.read_bytes(), log.read_text()

    # As cron would run it once the week is over (a DuckDB file is free again by now).
    on = ["--config", str(tmp_path / "tripwire.yaml"), "--store", store_target]
    on += ["--since", str(first), "--until", str(first + DAYS * DAY)]
    run = ["run", *on, "--json"]
    result = CliRunner().invoke(cli, run)
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert len(report["windows"]) == DAYS
    assert report["announced"] == report["delivered"] == 1
    assert _pages(http_receiver) == [(PAGE, "firing")]

    _check_store(store_target, config, events)
    # Run again: the same windows, the same incidents, nothing announced twice.
    again = json.loads(CliRunner().invoke(cli, run).output)
    assert (again["windows"], again["announced"]) == (report["windows"], 0)
    assert _pages(http_receiver) == [(PAGE, "firing")]

    # A replay of the stored days lands in its own namespace and sends nothing.
    replay = CliRunner().invoke(cli, ["replay", *on])
    assert replay.exit_code == 0, replay.output
    assert f"replayed {DAYS} windows" in replay.output
    with open_store(store_target) as store:
        replayed = store.incidents(config.name, "replay").to_pylist()
    assert PAGE in {i["rule"] for i in replayed}
    assert _pages(http_receiver) == [(PAGE, "firing")]
