"""POST /v1/events: batches as JSON and NDJSON, duplicates, per-item rejection and quarantine,
malformed bodies."""

from __future__ import annotations

import json
from typing import Any

from fastapi.testclient import TestClient

from tripwire.config import ModelConfig
from tripwire.store import DuckDBStore

NDJSON = {"Content-Type": "application/x-ndjson"}


def _ndjson(lines: list[str]) -> bytes:
    return ("\n".join(lines) + "\n").encode()


def test_a_json_batch_is_stored(
    client: TestClient,
    store: DuckDBStore,
    config: ModelConfig,
    events: list[dict[str, Any]],
    ingest: dict[str, str],
) -> None:
    response = client.post("/v1/events", json={"events": events}, headers=ingest)
    assert response.status_code == 200, response.text
    assert response.json() == {"accepted": 300, "duplicates": 0, "rejected": []}
    stored = store.events(config.name)
    assert stored.num_rows == 300
    assert set(stored.column("event_id").to_pylist()) == {e["event_id"] for e in events}


def test_an_ndjson_batch_is_stored(
    client: TestClient,
    store: DuckDBStore,
    config: ModelConfig,
    events: list[dict[str, Any]],
    ingest: dict[str, str],
) -> None:
    body = _ndjson([json.dumps(e) for e in events[:50]])
    response = client.post("/v1/events", content=body, headers={**ingest, **NDJSON})
    assert response.json() == {"accepted": 50, "duplicates": 0, "rejected": []}
    assert store.events(config.name).num_rows == 50


def test_redelivered_events_are_counted_as_duplicates_and_stored_once(
    client: TestClient,
    store: DuckDBStore,
    config: ModelConfig,
    events: list[dict[str, Any]],
    ingest: dict[str, str],
) -> None:
    client.post("/v1/events", json={"events": events[:100]}, headers=ingest)
    # 50 already stored, 50 new, and one sent twice in the same batch.
    again = [*events[50:150], events[120]]
    response = client.post("/v1/events", json={"events": again}, headers=ingest)
    assert response.json() == {"accepted": 50, "duplicates": 51, "rejected": []}
    assert store.events(config.name).num_rows == 150


def test_invalid_items_are_rejected_one_by_one_and_quarantined(
    client: TestClient,
    store: DuckDBStore,
    config: ModelConfig,
    events: list[dict[str, Any]],
    ingest: dict[str, str],
    read: dict[str, str],
) -> None:
    good = events[:4]
    batch = [
        good[0],
        {**good[1], "prediction": "high"},
        good[2],
        {**good[3], "model": "churn-model"},
        {k: v for k, v in events[4].items() if k != "model"},
        {**events[5], "features": {"amount": 1.0}},
        "not an event",
    ]
    response = client.post("/v1/events", json={"events": batch}, headers=ingest)
    result = response.json()
    assert (result["accepted"], result["duplicates"]) == (2, 0)
    reasons = {r["index"]: r["reason"] for r in result["rejected"]}
    assert sorted(reasons) == [1, 3, 4, 5, 6]
    assert reasons[1].startswith("prediction:")
    assert "unknown model 'churn-model'" in reasons[3] and "'fraud-detector'" in reasons[3]
    assert reasons[4].startswith("model: missing")
    assert reasons[5].startswith("features: missing") and "merchant_risk" in reasons[5]
    assert "not a JSON object" in reasons[6]
    assert store.events(config.name).num_rows == 2

    kept = store.quarantined(config.name).to_pylist()
    assert [k["source"] for k in kept] == ["POST /v1/events[1]", "POST /v1/events[5]"]
    assert json.loads(kept[0]["payload"])["prediction"] == "high"
    # An unknown model's items are kept under its name, so its owner can find them.
    (other,) = store.quarantined("churn-model").to_pylist()
    assert other["source"] == "POST /v1/events[3]"
    assert json.loads(other["payload"])["event_id"] == good[3]["event_id"]

    page = client.get("/v1/quarantine", params={"model": config.name, "limit": 1}, headers=read)
    assert page.status_code == 200, page.text
    body = page.json()
    assert (body["total"], body["limit"], body["offset"]) == (2, 1, 0)
    assert [item["source"] for item in body["items"]] == ["POST /v1/events[1]"]
    second = client.get(
        "/v1/quarantine", params={"model": config.name, "offset": 1}, headers=read
    ).json()
    assert [item["source"] for item in second["items"]] == ["POST /v1/events[5]"]
    assert second["items"][0]["reason"].startswith("features: missing")


def test_an_ndjson_line_that_is_not_json_is_rejected_alone(
    client: TestClient,
    store: DuckDBStore,
    config: ModelConfig,
    events: list[dict[str, Any]],
    ingest: dict[str, str],
) -> None:
    lines = [json.dumps(e) for e in events[:3]]
    lines.insert(2, '{"event_id": "x", "model": ')
    response = client.post("/v1/events", content=_ndjson(lines), headers={**ingest, **NDJSON})
    result = response.json()
    assert result["accepted"] == 3
    assert [r["index"] for r in result["rejected"]] == [2]
    assert result["rejected"][0]["reason"].startswith("not JSON")
    assert store.events(config.name).num_rows == 3
    (kept,) = store.quarantined("(unknown)").to_pylist()
    assert kept["source"] == "POST /v1/events[2]"
    assert kept["payload"] == lines[2]


def test_a_malformed_body_is_refused_whole_and_nothing_stored_is_lost(
    client: TestClient,
    store: DuckDBStore,
    config: ModelConfig,
    events: list[dict[str, Any]],
    ingest: dict[str, str],
) -> None:
    client.post("/v1/events", json={"events": events[:10]}, headers=ingest)
    json_type = {**ingest, "Content-Type": "application/json"}
    truncated = json.dumps({"events": events[10:20]})[:-30].encode()
    response = client.post("/v1/events", content=truncated, headers=json_type)
    assert response.status_code == 400
    assert "not valid JSON" in response.json()["detail"]
    for wrong_shape in ([events[10]], {"events": events[10]}, {"labels": []}):
        response = client.post("/v1/events", json=wrong_shape, headers=ingest)
        assert response.status_code == 400
        assert 'a JSON object with an "events" list' in response.json()["detail"]
    response = client.post(
        "/v1/events", content=b"event_id,model", headers={**ingest, "Content-Type": "text/csv"}
    )
    assert response.status_code == 415
    assert "application/x-ndjson" in response.json()["detail"]
    assert store.events(config.name).num_rows == 10
    assert store.quarantined(config.name).num_rows == 0


def test_a_body_over_the_limit_is_refused(
    config: ModelConfig,
    store: DuckDBStore,
    events: list[dict[str, Any]],
    ingest: dict[str, str],
) -> None:
    from tripwire.server import create_app

    app = create_app({config.name: config}, store, "t", None, max_body_bytes=1000)
    with TestClient(app) as client:
        response = client.post(
            "/v1/events", json={"events": events[:10]}, headers={"Authorization": "Bearer t"}
        )
    assert response.status_code == 413
    assert store.events(config.name).num_rows == 0
