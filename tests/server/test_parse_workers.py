"""The collector with parse workers: bodies read in spawned processes answer and store exactly
what the server process would, bad bodies are still refused, and a worker that dies costs no
batch."""

from __future__ import annotations

import json
import os
import signal
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tripwire.config import ModelConfig
from tripwire.server import create_app
from tripwire.server.collector import Collector
from tripwire.store import DuckDBStore

from .conftest import INGEST_TOKEN, READ_TOKEN

NDJSON = {"Content-Type": "application/x-ndjson"}


def _app_client(config: ModelConfig, path: Path, workers: int) -> tuple[TestClient, DuckDBStore]:
    store = DuckDBStore(path)
    app = create_app({config.name: config}, store, INGEST_TOKEN, READ_TOKEN, parse_workers=workers)
    return TestClient(app), store


@pytest.fixture
def pooled(config: ModelConfig, tmp_path: Path) -> Iterator[tuple[TestClient, DuckDBStore]]:
    client, store = _app_client(config, tmp_path / "pooled.duckdb", workers=1)
    with client, store:
        yield client, store


def _collector(client: TestClient) -> Collector:
    collector = client.app.state.collector  # type: ignore[attr-defined]
    assert isinstance(collector, Collector)
    return collector


def _mixed_body(events: list[dict[str, Any]]) -> bytes:
    """NDJSON with valid events, a duplicate, a wrong type, an unknown model and a bad line."""
    bad_type = {**events[3], "prediction": "high"}
    unknown = {**events[4], "model": "no-such-model"}
    lines = [json.dumps(e) for e in events[:3]]
    lines += [json.dumps(events[0]), json.dumps(bad_type), json.dumps(unknown), "{not json"]
    lines += [json.dumps(e) for e in events[5:40]]
    return ("\n".join(lines) + "\n").encode()


def test_workers_answer_and_store_what_the_server_process_does(
    pooled: tuple[TestClient, DuckDBStore],
    config: ModelConfig,
    events: list[dict[str, Any]],
    ingest: dict[str, str],
    tmp_path: Path,
) -> None:
    client, store = pooled
    assert _collector(client).parser.worker_pids(), "the pool's worker is started"
    body = _mixed_body(events)
    answer = client.post("/v1/events", content=body, headers={**ingest, **NDJSON})
    assert answer.status_code == 200, answer.text

    inline_client, inline_store = _app_client(config, tmp_path / "inline.duckdb", workers=0)
    with inline_client, inline_store:
        expected = inline_client.post("/v1/events", content=body, headers={**ingest, **NDJSON})
        assert answer.json() == expected.json()
        assert answer.json()["accepted"] == 38
        assert [r["index"] for r in answer.json()["rejected"]] == [4, 5, 6]
        columns = ["event_id", "ts", "prediction", "features", "segments", "metadata"]
        stored, inline = store.events(config.name), inline_store.events(config.name)
        assert stored.select(columns).to_pylist() == inline.select(columns).to_pylist()
        assert store.quarantined(config.name).column("reason").to_pylist() == (
            inline_store.quarantined(config.name).column("reason").to_pylist()
        )


def test_bodies_that_are_not_batches_are_still_refused(
    pooled: tuple[TestClient, DuckDBStore], ingest: dict[str, str]
) -> None:
    client, _ = pooled
    not_json = client.post(
        "/v1/events", content=b"{", headers={**ingest, "Content-Type": "application/json"}
    )
    assert not_json.status_code == 400
    assert "not valid JSON" in not_json.json()["detail"]
    wrong_type = client.post(
        "/v1/events", content=b"x", headers={**ingest, "Content-Type": "text/csv"}
    )
    assert wrong_type.status_code == 415


def test_a_killed_worker_costs_no_batch(
    pooled: tuple[TestClient, DuckDBStore],
    config: ModelConfig,
    events: list[dict[str, Any]],
    ingest: dict[str, str],
) -> None:
    client, store = pooled
    parser = _collector(client).parser
    (first,) = parser.worker_pids()
    os.kill(first, signal.SIGKILL)

    answer = client.post("/v1/events", json={"events": events[:100]}, headers=ingest)
    assert answer.status_code == 200, answer.text
    assert answer.json()["accepted"] == 100
    later = client.post("/v1/events", json={"events": events[100:200]}, headers=ingest)
    assert later.json()["accepted"] == 100
    assert store.events(config.name).num_rows == 200
    assert first not in parser.worker_pids()
    assert parser.worker_pids(), "a new pool took over"
