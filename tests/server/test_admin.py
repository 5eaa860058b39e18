"""``/v1/admin``: the commands' store work done by the server that owns the store, under the lock
its collector and scheduler hold, but never while an alert channel is answering."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pyarrow as pa
import pytest
from fastapi.testclient import TestClient

from tripwire import tasks
from tripwire.config import parse_config
from tripwire.demo import scenario
from tripwire.events import table_to_events
from tripwire.monitor import Monitor
from tripwire.scheduler import Scheduler
from tripwire.server import create_app
from tripwire.store import DuckDBStore

DAY = timedelta(days=1)
INGEST, READ, ADMIN = "ingest-token-admin", "read-token-admin", "admin-token-admin"
NULL_SPIKE = "null_share_top_features"  # the rule the scenario's days 5-6 fire
WAIT = 60.0  # a guard against a hang, not a measurement
# Less than a channel waits for an answer (10 s), so a batch held up by the send times out here.
QUICK = 5.0


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture(scope="module")
def data() -> scenario.Scenario:
    return scenario.generate(days=7, rows_per_day=1000, reference_rows=5000)


@pytest.fixture
def monitor(data: scenario.Scenario, http_receiver: Any) -> Monitor:
    """The demo's model, paging a webhook on the test's receiver."""
    text = (
        scenario.CONFIG_YAML.replace(
            "oncall: [{type: console}]",
            f"oncall: [{{type: webhook, url: '{http_receiver.url}/hook'}}]",
        )
        .replace("weekly-digest: [{type: console}]", "weekly-digest: []")
        .replace("fraud-ds: [{type: console}]", "fraud-ds: []")
    )
    return Monitor(parse_config(text)).fit(data.reference)


@pytest.fixture
def served(
    tmp_path: Path, monitor: Monitor
) -> Iterator[tuple[TestClient, DuckDBStore, threading.Lock]]:
    """The app over a store, its lock lent by a scheduler that is not started (no lifespan)."""
    with DuckDBStore(tmp_path / "store.duckdb") as store:
        lock = threading.Lock()
        scheduler = Scheduler({monitor.config.name: monitor}, store, lock)
        config = monitor.config
        app = create_app(
            {config.name: config}, store, INGEST, READ, scheduler=scheduler, admin_token=ADMIN
        )
        yield TestClient(app), store, lock


def test_a_run_sends_its_alerts_without_holding_the_store_lock(
    served: tuple[TestClient, DuckDBStore, threading.Lock],
    data: scenario.Scenario,
    monitor: Monitor,
    http_receiver: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    client, store, lock = served
    # The webhook's receiver takes its time answering: it waits until the test lets it go.
    answering, let_go = threading.Event(), threading.Event()
    status_for = http_receiver.status_for

    def slow(path: str) -> int:
        answering.set()
        let_go.wait(WAIT)
        return int(status_for(path))

    monkeypatch.setattr(http_receiver, "status_for", slow)
    days = pa.concat_tables([table for _, table in data.days[:6]])
    request = tasks.RunRequest.of(monitor, days, None, None, DAY)
    answers: dict[str, httpx.Response] = {}

    def post(name: str, url: str, token: str, body: Any) -> threading.Thread:
        def send() -> None:
            answers[name] = client.post(url, headers=auth(token), json=body)

        thread = threading.Thread(target=send, daemon=True)
        thread.start()
        return thread

    running = post("run", "/v1/admin/run", ADMIN, request.model_dump(mode="json"))
    try:
        assert answering.wait(WAIT), "no alert reached the webhook"
        # While the channel answers, the server stores a batch of events (under its lock).
        day7 = table_to_events(monitor.config, data.days[6][1].slice(0, 50))
        for event in day7:
            event["timestamp"] = event["timestamp"].isoformat()
        ingesting = post("events", "/v1/events", INGEST, {"events": day7})
        ingesting.join(QUICK)
        assert not ingesting.is_alive(), "the batch waited for the alert to be answered"
        assert answers["events"].status_code == 200, answers["events"].text
        assert answers["events"].json()["accepted"] == 50
        assert "run" not in answers  # the webhook is still answering
    finally:
        let_go.set()
        running.join(WAIT)
    assert answers["run"].status_code == 200, answers["run"].text
    result = tasks.RunResult.model_validate(answers["run"].json())
    assert len(result.windows) == 6
    assert result.announced == 1 and result.delivered == 1
    assert [r.body["rule"] for r in http_receiver.to("/hook")] == [NULL_SPIKE]
    with lock:
        stored = store.window_starts(monitor.config.name, DAY)
    assert stored == [w.replace(tzinfo=None) for w in result.windows]
