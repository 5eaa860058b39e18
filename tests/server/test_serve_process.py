"""``tripwire serve`` as a real process: it refuses to start without a token, and with one it
stores what a client sends over HTTP."""

from __future__ import annotations

import json
import os
import runpy
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from click.testing import CliRunner

from tripwire.cli import cli
from tripwire.config import ModelConfig
from tripwire.demo import scenario
from tripwire.store import DuckDBStore

TOKEN = "a-token-that-must-not-be-logged"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _stop(process: subprocess.Popen[bytes]) -> None:
    process.terminate()
    try:
        process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=15)


def test_serve_refuses_to_start_without_a_token(tmp_path: Path) -> None:
    config_path = tmp_path / "tripwire.yaml"
    config_path.write_text(scenario.CONFIG_YAML, encoding="utf-8")
    result = CliRunner(env={"TRIPWIRE_INGEST_TOKEN": None, "TRIPWIRE_READ_TOKEN": None}).invoke(
        cli, ["serve", "--config", str(config_path), "--store", str(tmp_path / "s.duckdb")]
    )
    assert result.exit_code == 2
    assert "TRIPWIRE_INGEST_TOKEN" in result.output and "--insecure" in result.output


@pytest.mark.slow
def test_a_batch_posted_to_the_running_server_is_stored(
    tmp_path: Path, config: ModelConfig, events: list[dict[str, Any]]
) -> None:
    config_path = tmp_path / "tripwire.yaml"
    config_path.write_text(scenario.CONFIG_YAML, encoding="utf-8")
    store_path = tmp_path / "store.duckdb"
    port = _free_port()
    env = {**os.environ, "TRIPWIRE_INGEST_TOKEN": TOKEN, "TRIPWIRE_READ_TOKEN": TOKEN + "-read"}
    log_path = tmp_path / "server.log"
    command = [sys.executable, "-m", "tripwire", "serve", "--config", str(config_path)]
    command += ["--store", str(store_path), "--host", "127.0.0.1", "--port", str(port)]
    base = f"http://127.0.0.1:{port}"
    with log_path.open("wb") as log:
        process = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT)
        try:
            deadline = time.monotonic() + 60
            while True:
                assert process.poll() is None, log_path.read_text()
                try:
                    if httpx.get(f"{base}/v1/health", timeout=1).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                assert time.monotonic() < deadline, "the server did not answer in 60 s"
                time.sleep(0.2)
            response = httpx.post(
                f"{base}/v1/events",
                json={"events": events[:200]},
                headers={"Authorization": f"Bearer {TOKEN}"},
                timeout=30,
            )
            assert response.status_code == 200, response.text
            assert response.json() == {"accepted": 200, "duplicates": 0, "rejected": []}
        finally:
            _stop(process)
    with DuckDBStore(store_path) as store:
        stored = store.events(config.name)
    assert stored.num_rows == 200
    assert set(stored.column("event_id").to_pylist()) == {e["event_id"] for e in events[:200]}
    output = log_path.read_text()
    assert TOKEN not in output
    assert f"dashboard at {base}/dashboard" in output  # the start-up line names it


@pytest.mark.slow
def test_the_collector_benchmark_stores_and_reports_every_event(
    capsys: pytest.CaptureFixture[str],
) -> None:
    main = runpy.run_path(str(Path(__file__).parents[2] / "benchmarks" / "collector.py"))["main"]
    args = ["--events", "3000", "--batch", "500", "--clients", "3", "--repeat", "2", "--json"]
    assert main(args) == 0
    result = json.loads(capsys.readouterr().out)
    assert (result["stored"], result["accepted"], result["duplicates"]) == (3000, 3000, 0)
    assert result["trials_stored"] == [3000, 3000]
    assert result["stored_per_s"] in result["trials_stored_per_s"]
    assert result["clients"] == 3 and result["stored_per_s"] > 0
    stages = result["stages_cpu_us_per_event"]
    assert set(stages) == {"decode", "long_way", "write", "write_group"}
    assert result["machine"]["logical_cores"] and "load_average" in result
