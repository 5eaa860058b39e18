"""What the server says of itself beside the dashboard: its OpenAPI spec names the whole
server (the collector, the read API, the dashboard, ``/metrics``), not the collector alone."""

from __future__ import annotations

from pathlib import Path

from fastapi.testclient import TestClient

from tripwire.config import parse_config
from tripwire.demo import scenario
from tripwire.server import create_app
from tripwire.store import DuckDBStore


def test_the_openapi_spec_describes_the_whole_server(tmp_path: Path) -> None:
    config = parse_config(scenario.CONFIG_YAML)
    with DuckDBStore(tmp_path / "s.duckdb") as store:
        app = create_app({config.name: config}, store, "ingest", "read")
        info = TestClient(app).get("/openapi.json").json()["info"]
    assert info["title"] == "tripwire"
    for part in ("/v1", "/dashboard", "/metrics", "quarantine"):
        assert part in info["description"], part
