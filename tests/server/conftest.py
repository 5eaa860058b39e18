"""Fixtures for the collector: the demo's model, a day of its events as JSON payloads, a store
in a temporary file and a test client of the app that owns it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tripwire.config import ModelConfig, parse_config
from tripwire.demo import scenario
from tripwire.events import table_to_events
from tripwire.server import create_app
from tripwire.store import DuckDBStore

INGEST_TOKEN = "ingest-token-for-tests"
READ_TOKEN = "read-token-for-tests"


@pytest.fixture(scope="session")
def config() -> ModelConfig:
    return parse_config(scenario.CONFIG_YAML)


@pytest.fixture(scope="session")
def day_events(config: ModelConfig) -> list[dict[str, Any]]:
    """300 events of the demo's first day, as a serving process would send them."""
    day = scenario.generate(days=1, rows_per_day=300, reference_rows=2000).days[0][1]
    events = table_to_events(config, day)
    for event in events:
        event["timestamp"] = event["timestamp"].isoformat()
    return events


@pytest.fixture
def events(day_events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """A copy each test may change."""
    return [dict(event) for event in day_events]


@pytest.fixture
def store(tmp_path: Path) -> Iterator[DuckDBStore]:
    with DuckDBStore(tmp_path / "store.duckdb") as store:
        yield store


@pytest.fixture
def client(config: ModelConfig, store: DuckDBStore) -> Iterator[TestClient]:
    app = create_app({config.name: config}, store, INGEST_TOKEN, READ_TOKEN)
    with TestClient(app) as client:
        yield client


@pytest.fixture
def ingest() -> dict[str, str]:
    return {"Authorization": f"Bearer {INGEST_TOKEN}"}


@pytest.fixture
def read() -> dict[str, str]:
    return {"Authorization": f"Bearer {READ_TOKEN}"}
