"""While ``tripwire serve`` owns a DuckDB store, the commands that need the store send their work
to it: a real server process, the real CLI, no mocks. A server file left by a server that is gone
is ignored; a wrong admin token and a command that cannot go through the server say so."""

from __future__ import annotations

import json
import os
import signal
import socket
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

from tripwire.cli import cli
from tripwire.commands.remote import ServerFile, server_file
from tripwire.config import parse_config
from tripwire.demo import scenario
from tripwire.events import table_to_events, validate_events
from tripwire.store import DuckDBStore

pytestmark = pytest.mark.slow

INGEST = "ingest-token-for-tests"
READ = "read-token-for-tests"
CONFIG = parse_config(scenario.CONFIG_YAML)
DAY = timedelta(days=1)


@dataclass
class Served:
    process: subprocess.Popen[bytes]
    store: Path
    config: Path
    info: ServerFile
    events: list[dict[str, Any]]

    def log(self) -> str:
        return (self.store.parent / "server.log").read_text(encoding="utf-8", errors="replace")


def _model_dir(path: Path) -> tuple[Path, list[dict[str, Any]]]:
    """A config with its reference, and three days of the demo's events as a client sends them."""
    data = scenario.generate(days=3, rows_per_day=300, reference_rows=2000)
    pq.write_table(data.reference, path / "reference.parquet")
    config = path / "tripwire.yaml"
    config.write_text(scenario.CONFIG_YAML, encoding="utf-8")
    events = [e for _, day in data.days for e in table_to_events(CONFIG, day)]
    for event in events:
        event["timestamp"] = event["timestamp"].isoformat()
    return config, events


def _dead_pid() -> int:
    """The pid of a process that has exited."""
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid


def _stale_file(store: Path, pid: int) -> ServerFile:
    """A server file such as a killed server leaves: nothing listens at its URL."""
    info = ServerFile(
        url="http://127.0.0.1:9",  # the discard port: refused
        pid=pid,
        host=socket.gethostname(),
        store=os.path.realpath(store),
        token="stale",
        version="0",
    )
    server_file(str(store)).write_text(info.model_dump_json(), encoding="utf-8")
    return info


def invoke(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, list(args))
    return result.exit_code, result.stdout if result.exit_code == 0 else result.output


def flat(output: str) -> str:
    """The output as one line, however the terminal wrapped it."""
    return " ".join(output.split())


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    """``tripwire serve`` on a DuckDB file whose server file a killed server left behind."""
    base = tmp_path_factory.mktemp("served")
    config, events = _model_dir(base)
    store = base / "tripwire.duckdb"
    stale = _stale_file(store, _dead_pid())
    command = [sys.executable, "-m", "tripwire", "serve", "--config", str(config)]
    command += ["--store", str(store), "--host", "127.0.0.1", "--port", "0"]
    env = {**os.environ, "TRIPWIRE_INGEST_TOKEN": INGEST, "TRIPWIRE_READ_TOKEN": READ}
    env.pop("TRIPWIRE_ADMIN_TOKEN", None)  # the server makes one up
    path = server_file(str(store))
    with (base / "server.log").open("wb") as log:
        process = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 300  # a guard against a hang, not a measurement
        while (info := ServerFile.model_validate_json(path.read_text())).pid != process.pid:
            assert process.poll() is None, (base / "server.log").read_text()
            assert time.monotonic() < deadline, "the server did not write its server file"
            time.sleep(0.2)
        assert info.token != stale.token
        yield Served(process, store, config, info, events)
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=120)
    assert process.returncode == 0, (base / "server.log").read_text()
    assert not path.exists(), "the server left its file behind"
    with DuckDBStore(store) as opened:  # and let go of the store
        assert opened.events(CONFIG.name).num_rows in (0, len(events))


def test_the_server_file_is_private_and_names_the_server(served: Served) -> None:
    path = server_file(str(served.store))
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert served.info.store == os.path.realpath(served.store)
    owner = httpx.get(
        f"{served.info.url}/v1/admin/store",
        headers={"Authorization": f"Bearer {served.info.token}"},
        timeout=30,
    )
    assert owner.json()["pid"] == served.process.pid
    unauthorized = httpx.get(f"{served.info.url}/v1/admin/store", timeout=30)
    assert unauthorized.status_code == 401
    assert served.info.token not in served.log()


PERIOD = ("--since", "2026-10-01", "--until", "2026-10-04")


@pytest.fixture(scope="module")
def ran(served: Served) -> dict[str, Any]:
    """The three days posted to the server, then `tripwire run --json` on its store."""
    response = httpx.post(
        f"{served.info.url}/v1/events",
        json={"events": served.events},
        headers={"Authorization": f"Bearer {INGEST}"},
        timeout=60,
    )
    assert response.status_code == 200, response.text
    args = ["--config", str(served.config), "--store", str(served.store)]
    code, output = invoke("run", *args, *PERIOD, "--json")
    assert code == 0, output
    result: dict[str, Any] = json.loads(output)
    return result


def test_run_replay_labels_and_gate_go_through_the_server(
    served: Served, ran: dict[str, Any]
) -> None:
    assert [w[:10] for w in ran["windows"]] == ["2026-10-01", "2026-10-02", "2026-10-03"]
    store, config, period = str(served.store), str(served.config), PERIOD
    code, output = invoke("run", "--config", config, "--store", store, *period)
    assert code == 0, output
    assert "checked 3 1d windows of fraud-detector" in flat(output)
    # The server's own API sees what the command stored.
    jobs = httpx.get(
        f"{served.info.url}/v1/jobs", headers={"Authorization": f"Bearer {READ}"}, timeout=60
    ).json()
    (model,) = jobs["models"]
    assert model["last_checked"].startswith("2026-10-03")

    code, output = invoke("replay", "--config", config, "--store", store, *period)
    assert code == 0, output
    assert "replayed 3 windows into namespace 'replay'; nothing was sent" in flat(output)

    labels = served.store.parent / "labels.csv"
    first, second = (e["event_id"] for e in served.events[:2])
    labels.write_text(f"event_id,label\n{first},1\n{second},maybe\n", encoding="utf-8")
    code, output = invoke("labels", "load", str(labels), "--config", config, "--store", store)
    assert code == 0, output
    assert "1 labels stored, 1 quarantined" in flat(output)
    assert "row 2: label:" in flat(output)

    code, output = invoke("gate", "--config", config, "--store", store, "--json")
    assert code in (0, 10, 20), output
    assert json.loads(output)["decision"] in ("hold", "investigate", "retrain")


def test_calibrate_backtest_and_digest_go_through_the_server(
    served: Served, ran: dict[str, Any], tmp_path: Path
) -> None:
    args = ["--config", str(served.config), "--store", str(served.store)]
    code, output = invoke("calibrate", *args, "--days", "3")
    assert code == 0, output
    assert "calibrated thresholds" in flat(output)

    rules = tmp_path / "rules.yaml"
    rules.write_text(
        "alerts:\n"
        "  - name: psi_any_feature_daily\n    metric: psi\n    threshold: 0.25\n"
        "    severity: page\n    runbook: naive alerting, for comparison\n",
        encoding="utf-8",
    )
    code, output = invoke("backtest", *args, "--rules", str(rules), "--json")
    assert code == 0, output
    assert json.loads(output)["windows"] == 3

    code, output = invoke("digest", *args, "--days", "3", "--out", str(tmp_path))
    assert code == 0, output
    assert "tripwire digest for fraud-detector" in flat(output)
    assert (tmp_path / "digest.md").read_text(encoding="utf-8").startswith("# tripwire digest")


def test_an_error_of_the_task_reads_as_the_local_command_would_print_it(served: Served) -> None:
    args = ["--config", str(served.config), "--store", str(served.store)]
    code, output = invoke("run", *args, "--since", "2030-01-01")
    assert code == 2
    assert "error: no stored events in that period and no --data given" in flat(output)
    assert "Traceback" not in output


def test_a_command_that_cannot_go_through_the_server_names_it(served: Served) -> None:
    result = CliRunner(env={"TRIPWIRE_INGEST_TOKEN": INGEST, "TRIPWIRE_READ_TOKEN": READ}).invoke(
        cli, ["serve", "--config", str(served.config), "--store", str(served.store)]
    )
    message = flat(result.output)
    assert result.exit_code == 2, result.output
    pid = served.process.pid
    assert f"is owned by the running tripwire serve (pid {pid}) at {served.info.url}" in message
    assert f"kill {pid}" in message and "--store" in message
    assert "Traceback" not in result.output


def test_a_token_that_does_not_match_says_so(served: Served) -> None:
    path = server_file(str(served.store))
    original = path.read_text(encoding="utf-8")
    path.write_text(
        served.info.model_copy(update={"token": "not-the-token"}).model_dump_json(),
        encoding="utf-8",
    )
    try:
        code, output = invoke("gate", "--config", str(served.config), "--store", str(served.store))
    finally:
        path.write_text(original, encoding="utf-8")
    message = flat(output)
    assert code == 2, output
    assert f"refused the admin token in {path}" in message
    assert "does not match" in message
    assert "Traceback" not in output


@pytest.mark.parametrize("owner", ["exited", "not listening"])
def test_a_stale_server_file_is_ignored(tmp_path: Path, owner: str) -> None:
    config, events = _model_dir(tmp_path)
    store = tmp_path / "tripwire.duckdb"
    with DuckDBStore(store) as opened:
        opened.write_events(validate_events(CONFIG, events[:2])[0])
    # A pid that has exited, or one that lives (this test's) with nothing at the file's URL.
    _stale_file(store, _dead_pid() if owner == "exited" else os.getpid())
    labels = tmp_path / "labels.csv"
    labels.write_text(f"event_id,label\n{events[0]['event_id']},1\n", encoding="utf-8")
    code, output = invoke(
        "labels", "load", str(labels), "--config", str(config), "--store", str(store)
    )
    assert code == 0, output
    assert "1 labels stored, 0 quarantined" in flat(output)
    with DuckDBStore(store) as opened:
        stored = opened.events(CONFIG.name).to_pylist()
    assert sorted(e["label"] for e in stored if e["label"] is not None) == [1.0]
