"""Tokens, health, labels joining their events, and the OpenAPI spec."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from tripwire.config import ModelConfig
from tripwire.server import create_app
from tripwire.store import DuckDBStore


@pytest.mark.parametrize(
    ("method", "path", "headers"),
    [
        ("POST", "/v1/events", {}),
        ("POST", "/v1/events", {"Authorization": "Bearer wrong"}),
        ("POST", "/v1/events", {"Authorization": "Basic aW5nZXN0LXRva2Vu"}),
        ("POST", "/v1/labels", {}),
        ("GET", "/v1/quarantine?model=fraud-detector", {}),
        # The ingest token does not read, and the read token does not write.
        ("GET", "/v1/quarantine?model=fraud-detector", "ingest"),
        ("POST", "/v1/events", "read"),
    ],
)
def test_requests_without_the_right_token_are_refused(
    client: TestClient,
    store: DuckDBStore,
    config: ModelConfig,
    events: list[dict[str, Any]],
    method: str,
    path: str,
    headers: dict[str, str] | str,
    request: pytest.FixtureRequest,
) -> None:
    sent = request.getfixturevalue(headers) if isinstance(headers, str) else headers
    response = client.request(method, path, json={"events": events[:5]}, headers=sent)
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == "Bearer"
    assert store.events(config.name).num_rows == 0


def test_health_needs_no_token(client: TestClient) -> None:
    response = client.get("/v1/health")
    assert response.status_code == 200
    assert response.json()["models"] == ["fraud-detector"]


def test_without_tokens_every_endpoint_is_open(
    config: ModelConfig, store: DuckDBStore, events: list[dict[str, Any]]
) -> None:
    with TestClient(create_app({config.name: config}, store, None, None)) as client:
        assert client.post("/v1/events", json={"events": events[:5]}).json()["accepted"] == 5
        assert client.get("/v1/quarantine", params={"model": config.name}).status_code == 200


def test_labels_join_their_events(
    client: TestClient,
    store: DuckDBStore,
    config: ModelConfig,
    events: list[dict[str, Any]],
    ingest: dict[str, str],
) -> None:
    client.post("/v1/events", json={"events": events[:20]}, headers=ingest)
    labels: list[Any] = [
        {"event_id": e["event_id"], "model": config.name, "label": i % 2}
        for i, e in enumerate(events[:10])
    ]
    labels[3]["label"] = "fraud"
    labels.append({"event_id": "evt-x", "model": "churn-model", "label": 1})
    labels[0]["labelled_at"] = "2026-10-08T12:00:00Z"
    response = client.post("/v1/labels", json={"labels": labels}, headers=ingest)
    assert response.status_code == 200, response.text
    result = response.json()
    assert result["accepted"] == 9
    assert [r["index"] for r in result["rejected"]] == [3, 10]
    assert result["rejected"][0]["reason"].startswith("label:")

    joined = {row["event_id"]: row["label"] for row in store.events(config.name).to_pylist()}
    for i, event in enumerate(events[:10]):
        assert joined[event["event_id"]] == (None if i == 3 else float(i % 2))
    assert all(joined[e["event_id"]] is None for e in events[10:20])
    (kept,) = store.quarantined(config.name).to_pylist()
    assert kept["source"] == "POST /v1/labels[3]"

    # NDJSON too, and a later label replaces the earlier one.
    line = f'{{"event_id": "{events[1]["event_id"]}", "model": "{config.name}", "label": 0}}'
    response = client.post(
        "/v1/labels",
        content=line.encode(),
        headers={**ingest, "Content-Type": "application/x-ndjson"},
    )
    assert response.json() == {"accepted": 1, "rejected": []}
    joined = {row["event_id"]: row["label"] for row in store.events(config.name).to_pylist()}
    assert joined[events[1]["event_id"]] == 0.0


def test_the_openapi_spec_documents_bodies_and_answers(client: TestClient) -> None:
    spec = client.get("/openapi.json").json()
    schemas = spec["components"]["schemas"]
    for name in ("EventBatch", "Event", "LabelBatch", "Label", "EventIngestResult"):
        assert name in schemas, name
    assert set(schemas["EventIngestResult"]["properties"]) == {"accepted", "duplicates", "rejected"}
    body = spec["paths"]["/v1/events"]["post"]["requestBody"]["content"]
    assert set(body) == {"application/json", "application/x-ndjson"}
    assert body["application/json"]["schema"]["$ref"] == "#/components/schemas/EventBatch"
    assert {"IngestToken", "ReadToken"} <= set(spec["components"]["securitySchemes"])
