"""The read API (``/v1/models``, ``/v1/incidents``) and the dashboard's pages, over a store the
monitoring job filled: a small shop model whose ``price`` drifts from day 7 and whose AUC decays
on mobile from day 8, checked by ``job.run`` (incidents saved, alerts delivered to the console).

The browser tests (tests/browser/) drive the same pages in Chromium; these check what the
server answers.
"""

from __future__ import annotations

import json
import re
import socket
import threading
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pytest
from fastapi.testclient import TestClient

from tripwire.config import ModelConfig, parse_config
from tripwire.errors import TripwireError
from tripwire.job import run
from tripwire.layers.rows import MetricRow
from tripwire.monitor import Monitor
from tripwire.profile import serialize
from tripwire.scheduler import Scheduler
from tripwire.server import create_app
from tripwire.server import reader as reader_module
from tripwire.server.dashboard.local import local_dashboard
from tripwire.server.dashboard.profiles import feature_counts
from tripwire.store import DuckDBStore

READ, INGEST, ADMIN = "read-token-api", "ingest-token-api", "admin-token-api"
DAY = timedelta(days=1)
FIRST = datetime(2026, 3, 1)
DAYS = 14
RUNBOOK = (
    '{what_it_means: "Prices moved <b>away</b> from the reference.", '
    'what_to_check: "The price feed and the currency conversion.", '
    'who_owns_the_fix: "the pricing team"}'
)
CONFIG = f"""
name: shop
task: binary
columns:
  timestamp: ts
  id: event_id
  features: {{price: numeric, visits: numeric, device_os: categorical}}
  prediction: score
  label: bought
  segments: [device]
  latency_ms: latency_ms
window: 1d
importance: {{price: 0.6, visits: 0.3, device_os: 0.1}}
owners: [{{name: shop-ds, contact: "#shop-ml"}}]
performance: {{min_labels: 50}}
alerts:
  - name: price_drift
    metric: psi
    feature_set: [price]
    threshold: 0.25
    window: 2d
    severity: page
    owner: pricing-team
    runbook: {RUNBOOK}
  - name: auc_by_device
    metric: auc
    segment: each
    baseline: reference
    threshold: 0.05
    window: 2d
    severity: ticket
    min_samples: 50
    runbook: "Realized AUC fell in a device segment."
  - name: mean_pred_shift
    metric: mean_pred
    baseline: 7d_trailing
    threshold_z: 3.0
    severity: ticket
    runbook: "The mean score left its trailing band."
  - name: slow
    metric: p95_ms
    threshold: 500
    severity: page
    runbook: "Requests got slow."
"""


def _traffic(rng: np.random.Generator, n: int, day: int, start: datetime) -> pa.Table:
    device = rng.choice(["desktop", "mobile"], n, p=[0.6, 0.4])
    price = rng.normal(70.0 if day >= 7 else 50.0, 10.0, n)
    visits = rng.poisson(5, n).astype(float)
    logit = 0.08 * (price - 50) + 0.3 * (visits - 5) - 1.0
    score = 1 / (1 + np.exp(-logit))
    truth = rng.random(n) < score
    decayed = (device == "mobile") & (day >= 8)
    bought = np.where(decayed, rng.random(n) < 0.3, truth).astype(np.int64)
    ts = [start + timedelta(seconds=int(s)) for s in rng.integers(0, 86_400, n)]
    return pa.table(
        {
            "event_id": [f"{day}-{i}" for i in range(n)],
            "ts": pa.array(ts, pa.timestamp("us")),
            "price": price,
            "visits": visits,
            "device_os": rng.choice(["ios", "android", "web"], n),
            "score": score,
            "bought": bought,
            "device": device,
            "latency_ms": rng.gamma(4.0, 25.0, n),
        }
    )


@pytest.fixture(scope="module")
def config() -> ModelConfig:
    return parse_config(CONFIG)


@pytest.fixture(scope="module")
def seeded(
    tmp_path_factory: pytest.TempPathFactory, config: ModelConfig
) -> Iterator[tuple[Path, Monitor]]:
    """The store after the job ran over 14 days, with estimated AUC in (at least) the last
    three windows and one calibrated threshold."""
    rng = np.random.default_rng(11)
    monitor = Monitor(config).fit(_traffic(rng, 3000, -1, FIRST - 7 * DAY))
    days = pa.concat_tables([_traffic(rng, 600, day, FIRST + day * DAY) for day in range(DAYS)])
    path = tmp_path_factory.mktemp("api") / "shop.duckdb"
    with DuckDBStore(path) as store:
        run(monitor, store, days, DAY)
        starts = store.window_starts("shop", DAY)
        for start in starts[-3:]:
            rows = store.history("shop", DAY, since=start, until=start + DAY).to_pylist()
            [(_, profile)] = store.profiles("shop", DAY, start, start + DAY)
            kept = [MetricRow(**{k: v for k, v in r.items() if k != "window_start"}) for r in rows]
            present = {(r.metric, r.segment) for r in kept}
            estimated = [
                MetricRow(
                    layer="performance",
                    metric="estimated_auc",
                    segment=s,
                    value=v,
                    status="info",
                    n=300,
                )
                for s, v in (("all", 0.74), ("device=mobile", 0.61), ("device=desktop", 0.8))
                if ("estimated_auc", s) not in present  # the job may estimate it already
            ]
            store.write_window("shop", start, DAY, kept + estimated, profile, 600)
        store.save_calibration("shop", "psi", "visits", "all", 0.123, 0.95, 0.1, starts[:5])
    yield path, monitor


@pytest.fixture
def app_parts(
    seeded: tuple[Path, Monitor], config: ModelConfig, tmp_path: Path
) -> Iterator[tuple[Any, DuckDBStore, threading.Lock]]:
    path, monitor = seeded
    copy = tmp_path / "shop.duckdb"
    copy.write_bytes(path.read_bytes())
    with DuckDBStore(copy) as store:
        lock = threading.Lock()
        # The scheduler is not started (no lifespan): it lends the dashboard its monitors.
        scheduler = Scheduler({config.name: monitor}, store, lock)
        app = create_app(
            {config.name: config}, store, INGEST, READ, scheduler=scheduler, admin_token=ADMIN
        )
        yield app, store, lock


@pytest.fixture
def client(app_parts: tuple[Any, DuckDBStore, threading.Lock]) -> TestClient:
    return TestClient(app_parts[0])


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def get(client: TestClient, url: str, **params: Any) -> Any:
    response = client.get(url, headers=auth(READ), params=params)
    assert response.status_code == 200, response.text
    return response.json()


# -- the API --------------------------------------------------------------------------------

READ_URLS = [
    "/v1/models",
    "/v1/models/shop",
    "/v1/models/shop/windows",
    "/v1/models/shop/windows/2026-03-05T00:00:00Z",
    "/v1/models/shop/metrics",
    "/v1/incidents",
    "/v1/models/shop/incidents",
    "/v1/models/shop/calibrations",
    "/v1/models/shop/digest",
    "/v1/models/shop/gate",
]


@pytest.mark.parametrize("url", READ_URLS)
def test_reads_need_the_read_token(client: TestClient, url: str) -> None:
    assert client.get(url).status_code == 401
    for wrong in (INGEST, ADMIN, "nope"):
        assert client.get(url, headers=auth(wrong)).status_code == 401
    assert client.get(url, headers=auth(READ)).status_code == 200


def test_the_model_has_its_layers_states_and_open_incidents(client: TestClient) -> None:
    page = get(client, "/v1/models")
    assert (page["total"], page["limit"], page["offset"]) == (1, 100, 0)
    [model] = page["items"]
    assert model == get(client, "/v1/models/shop")
    assert model["windows"] == DAYS
    assert model["window"] == "1d"
    assert model["latest_window"] == "2026-03-14T00:00:00Z"
    assert model["owners"] == [{"name": "shop-ds", "role": None, "contact": "#shop-ml"}]
    states = {layer["layer"]: layer for layer in model["layers"]}
    assert list(states) == ["inputs", "predictions", "performance", "cost"]
    assert states["inputs"]["state"] == "alert"
    assert any(w["feature"] == "price" for w in states["inputs"]["worst"])
    assert states["performance"]["state"] == "alert"
    assert states["cost"]["state"] in ("ok", "watch")
    open_rules = {(i["rule"], i["segment"]) for i in model["open_incidents"]}
    assert ("price_drift", "all") in open_rules
    assert ("auc_by_device", "device=mobile") in open_rules
    owners = {i["rule"]: i["owner"] for i in model["open_incidents"]}
    assert owners["price_drift"] == "pricing-team"  # the rule's owner
    assert owners["auc_by_device"] == "shop-ds"  # no owner in the rule: the model's


def test_unknown_model_is_404(client: TestClient) -> None:
    for url in ("/v1/models/nope", "/v1/models/nope/metrics", "/v1/models/nope/incidents"):
        assert client.get(url, headers=auth(READ)).status_code == 404


def test_windows_are_pages_newest_first(client: TestClient) -> None:
    page = get(client, "/v1/models/shop/windows", limit=5, offset=2)
    assert (page["total"], page["limit"], page["offset"]) == (DAYS, 5, 2)
    assert [w["start"][:10] for w in page["items"]] == [
        f"2026-03-{d:02d}" for d in (12, 11, 10, 9, 8)
    ]
    assert page["items"][0]["end"] == "2026-03-13T00:00:00Z"
    ranged = get(
        client, "/v1/models/shop/windows", since="2026-03-03T00:00:00Z", until="2026-03-05"
    )
    assert [w["start"][:10] for w in ranged["items"]] == ["2026-03-04", "2026-03-03"]
    for limit in (0, 1001):
        assert (
            client.get(
                "/v1/models/shop/windows", headers=auth(READ), params={"limit": limit}
            ).status_code
            == 422
        )


def test_one_window(client: TestClient) -> None:
    window = get(client, "/v1/models/shop/windows/2026-03-10T00:00:00Z")
    assert window["start"] == "2026-03-10T00:00:00Z"
    assert window["statuses"]["alert"] > 0
    assert {s["layer"]: s["state"] for s in window["layers"]}["inputs"] == "alert"
    early = get(client, "/v1/models/shop/windows/2026-03-02T00:00:00Z")
    assert {s["layer"]: s["state"] for s in early["layers"]}["inputs"] == "ok"
    missing = client.get("/v1/models/shop/windows/2027-01-01T00:00:00Z", headers=auth(READ))
    assert missing.status_code == 404


def test_metric_series_filters(client: TestClient) -> None:
    psi = get(client, "/v1/models/shop/metrics", metric="psi", feature="price", segment="all")
    assert psi["total"] == DAYS
    values = [p["value"] for p in psi["items"]]
    assert max(values[:6]) < 0.1 < 0.25 < min(values[7:])
    assert {p["layer"] for p in psi["items"]} == {"inputs"}
    ranged = get(
        client,
        "/v1/models/shop/metrics",
        metric=["psi", "null_share"],
        feature="price",
        segment="all",
        since="2026-03-03T00:00:00Z",
        until="2026-03-05T00:00:00Z",
    )
    assert ranged["total"] == 4
    assert {p["metric"] for p in ranged["items"]} == {"psi", "null_share"}
    outputs = get(client, "/v1/models/shop/metrics", layer="performance", feature="", limit=10)
    assert outputs["total"] > 10 and len(outputs["items"]) == 10
    assert all(p["feature"] is None for p in outputs["items"])
    page2 = get(client, "/v1/models/shop/metrics", layer="performance", limit=10, offset=10)
    assert page2["items"][0] != outputs["items"][0]
    estimated = get(client, "/v1/models/shop/metrics", metric="estimated_auc")
    assert estimated["total"] >= 9


def test_incidents_with_runbooks_and_deliveries(client: TestClient) -> None:
    page = get(client, "/v1/models/shop/incidents")
    incidents = {(i["rule"], i["segment"]): i for i in page["items"]}
    drift = incidents["price_drift", "all"]
    assert drift["state"] == "open"
    assert drift["evidence_start"] == "2026-03-08T00:00:00Z"
    assert drift["runbook"] == {
        "what_it_means": "Prices moved <b>away</b> from the reference.",
        "what_to_check": "The price feed and the currency conversion.",
        "who_owns_the_fix": "the pricing team",
    }
    [delivery] = drift["deliveries"]
    assert (delivery["event"], delivery["state"], delivery["channel_type"]) == (
        "firing",
        "delivered",
        "console",
    )
    bare = incidents["auc_by_device", "device=mobile"]["runbook"]
    assert bare["what_it_means"] == "Realized AUC fell in a device segment."
    one = get(client, f"/v1/models/shop/incidents/{drift['dedup_key']}")
    assert one == drift
    assert client.get("/v1/models/shop/incidents/shop/nope", headers=auth(READ)).status_code == 404
    assert get(client, "/v1/models/shop/incidents", state="open", severity="page")["total"] == 1
    everywhere = get(client, "/v1/incidents", state="all", limit=1)
    assert everywhere["total"] == page["total"] and len(everywhere["items"]) == 1


def test_calibrations_digest_and_gate(client: TestClient) -> None:
    [calibration] = get(client, "/v1/models/shop/calibrations")["items"]
    assert calibration["metric"] == "psi" and calibration["feature"] == "visits"
    assert calibration["threshold"] == pytest.approx(0.123)
    assert calibration["windows_used"] == 5
    digest = get(client, "/v1/models/shop/digest", days=7)
    assert digest["since"] == "2026-03-08T00:00:00Z"
    assert digest["until"] == "2026-03-15T00:00:00Z"
    assert digest["subject"].startswith("tripwire digest for shop")
    gate = get(client, "/v1/models/shop/gate")
    assert gate["decision"] == "retrain"
    assert gate["exit_code"] == 20
    assert [i["rule"] for i in gate["drift"]] == ["price_drift"]
    assert "auc_by_device" in {i["rule"] for i in gate["performance"]}


def test_backtest_of_proposed_rules(client: TestClient) -> None:
    proposed = {
        "alerts": [
            {
                "name": "any_drift",
                "metric": "psi",
                "threshold": 0.25,
                "window": "2d",
                "severity": "ticket",
                "runbook": "Any feature drifted.",
            }
        ]
    }
    response = client.post("/v1/models/shop/backtest", headers=auth(READ), json=proposed)
    assert response.status_code == 200, response.text
    result = response.json()
    assert result["windows"] == DAYS
    assert result["per_rule"]["any_drift"] >= 1
    assert result["removed"]["total"] == result["current"]  # every current rule is dropped
    assert {i["rule"] for i in result["added"]["items"]} == {"any_drift"}
    bad = {"alerts": [{**proposed["alerts"][0], "feature_set": ["no_such_feature"]}]}
    response = client.post("/v1/models/shop/backtest", headers=auth(READ), json=bad)
    assert response.status_code == 422
    assert client.post("/v1/models/shop/backtest", json=proposed).status_code == 401


def test_marking_a_window_abnormal_needs_the_admin_token(
    client: TestClient, app_parts: tuple[Any, DuckDBStore, threading.Lock]
) -> None:
    url = "/v1/models/shop/windows/2026-03-04T00:00:00Z/abnormal"
    body = {"reason": "payment outage"}
    assert client.post(url, json=body).status_code == 401
    assert client.post(url, json=body, headers=auth(READ)).status_code == 401
    response = client.post(url, json=body, headers=auth(ADMIN))
    assert response.status_code == 200, response.text
    assert response.json()["abnormal"] is True
    assert app_parts[1].abnormal_windows("shop") == {datetime(2026, 3, 4)}
    listed = get(client, "/v1/models/shop/windows", since="2026-03-04", until="2026-03-06")
    assert [w["abnormal"] for w in listed["items"]] == [False, True]
    missing = "/v1/models/shop/windows/2020-01-01T00:00:00Z/abnormal"
    assert client.post(missing, json=body, headers=auth(ADMIN)).status_code == 404
    assert client.post(url, json={"reason": ""}, headers=auth(ADMIN)).status_code == 422


def test_without_an_admin_token_nothing_changes(
    seeded: tuple[Path, Monitor], config: ModelConfig
) -> None:
    with DuckDBStore(seeded[0]) as store:
        app = create_app({config.name: config}, store, INGEST, READ)
        client = TestClient(app)
        url = "/v1/models/shop/windows/2026-03-04T00:00:00Z/abnormal"
        for token in (READ, ADMIN):
            response = client.post(url, json={"reason": "x"}, headers=auth(token))
            assert response.status_code in (404, 405)


def test_a_busy_store_answers_503(
    client: TestClient,
    app_parts: tuple[Any, DuckDBStore, threading.Lock],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(reader_module, "LOCK_WAIT", 0.01)
    with app_parts[2]:  # a job holds the store
        response = client.get("/v1/models/shop/incidents", headers=auth(READ))
    assert response.status_code == 503
    assert response.headers["retry-after"]


def test_openapi_documents_typed_pages(client: TestClient) -> None:
    spec = client.get("/openapi.json").json()
    paths = spec["paths"]
    for path in (
        "/v1/models",
        "/v1/models/{model}",
        "/v1/models/{model}/windows",
        "/v1/models/{model}/windows/{start}",
        "/v1/models/{model}/metrics",
        "/v1/incidents",
        "/v1/models/{model}/incidents",
        "/v1/models/{model}/incidents/{key}",
        "/v1/models/{model}/calibrations",
        "/v1/models/{model}/digest",
        "/v1/models/{model}/gate",
    ):
        schema = paths[path]["get"]["responses"]["200"]["content"]["application/json"]["schema"]
        assert "$ref" in schema, path
        assert paths[path]["get"]["security"] == [{"ReadToken": []}]
    assert "/v1/models/{model}/backtest" in paths
    change = paths["/v1/models/{model}/windows/{start}/abnormal"]["post"]
    assert change["security"] == [{"AdminToken": []}]
    schemas = spec["components"]["schemas"]
    page = schemas["Page_ModelSummary_"]
    assert set(page["required"]) >= {"total", "limit", "offset", "items"}
    assert {"runbook", "deliveries"} <= set(schemas["IncidentDetail"]["properties"])
    assert not any(p.startswith("/dashboard") for p in paths)


# -- the dashboard's pages ------------------------------------------------------------------


def signed_in(client: TestClient) -> TestClient:
    response = client.get(f"/dashboard?token={READ}", follow_redirects=False)
    assert response.status_code == 303
    return client


def test_the_dashboard_asks_for_the_read_token(client: TestClient) -> None:
    response = client.get("/dashboard/models/shop", follow_redirects=False)
    assert response.status_code == 303
    assert response.headers["location"] == "/dashboard/login?next=%2Fdashboard%2Fmodels%2Fshop"
    form = client.get(response.headers["location"])
    assert 'name="token"' in form.text and 'type="password"' in form.text
    wrong = client.get("/dashboard/models/shop?token=wrong", follow_redirects=False)
    assert wrong.status_code == 401
    assert "Wrong token" in wrong.text
    assert client.get("/dashboard", headers=auth(READ), follow_redirects=False).status_code == 303


def test_token_once_becomes_a_cookie_that_is_not_the_token(client: TestClient) -> None:
    response = client.get(f"/dashboard/models/shop?windows=30&token={READ}", follow_redirects=False)
    assert response.status_code == 303
    assert response.headers["location"] == "/dashboard/models/shop?windows=30"
    cookie = response.headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=lax" in cookie and "Path=/dashboard" in cookie
    assert READ not in cookie
    value = client.cookies["tripwire_dashboard"]
    assert client.get("/dashboard/models/shop").status_code == 200
    # The cookie opens pages, not the API.
    assert client.get("/v1/models", headers=auth(value)).status_code == 401
    client.post("/dashboard/logout")
    assert client.get("/dashboard", follow_redirects=False).status_code == 303


def test_login_form(client: TestClient) -> None:
    bad = client.post("/dashboard/login", data={"token": "nope", "next": "/dashboard"})
    assert bad.status_code == 401
    good = client.post(
        "/dashboard/login",
        data={"token": READ, "next": "/dashboard/models/shop"},
        follow_redirects=False,
    )
    assert good.status_code == 303
    assert good.headers["location"] == "/dashboard/models/shop"
    elsewhere = client.post(
        "/dashboard/login", data={"token": READ, "next": "//evil.example/"}, follow_redirects=False
    )
    assert elsewhere.headers["location"] == "/dashboard"


def _external_references(html: str) -> list[str]:
    return [
        url
        for url in re.findall(r'(?:src|href)="([^"]*)"', html)
        if not url.startswith(("/", "#", "data:"))
    ]


def test_overview_page(client: TestClient) -> None:
    response = signed_in(client).get("/dashboard")
    assert response.status_code == 200
    assert "script-src" not in response.headers["content-security-policy"]
    assert "default-src 'none'" in response.headers["content-security-policy"]
    html = response.text
    for text in ("shop", "inputs: alert", "performance: alert", "price_drift", "auc_by_device"):
        assert text in html
    assert "pricing-team" in html and "shop-ds" in html
    assert "<script" not in html and 'style="' not in html
    assert _external_references(html) == []
    css = client.get("/dashboard/static/dashboard.css")
    assert css.headers["content-type"].startswith("text/css")


def test_model_page(client: TestClient) -> None:
    html = signed_in(client).get("/dashboard/models/shop").text
    for section in ("inputs", "predictions", "performance", "cost", "incidents"):
        assert f'<section id="{section}">' in html
    drift_table = html[html.index('id="inputs"') : html.index('id="predictions"')]
    features = re.findall(r"/features/(\w+)\?", drift_table)
    assert features[0] == "price"  # the most important and most drifted feature ranks first
    assert 'class="spark"' in drift_table
    assert "0.123" in drift_table and "calibrated" in drift_table  # visits' calibrated threshold
    predictions = html[html.index('id="predictions"') : html.index('id="performance"')]
    assert 'class="band"' in predictions and "mean_pred_shift" in predictions
    performance = html[html.index('id="performance"') : html.index('id="cost"')]
    for line in ("all", "device=mobile", "device=desktop", "device=mobile (estimated)"):
        assert f"</span>{line}</span>" in performance
    assert "label_coverage" in performance
    assert "Prices moved &lt;b&gt;away&lt;/b&gt;" in html  # a runbook, escaped
    assert "<b>away</b>" not in html
    assert "delivered" in html
    assert _external_references(html) == []


def test_feature_page_has_reference_histograms(client: TestClient) -> None:
    html = signed_in(client).get("/dashboard/models/shop/features/price").text
    assert html.count('class="hist"') == 8
    assert "reference" in html and 'class="ref"' in html
    assert "device=mobile" in html
    mobile = client.get("/dashboard/models/shop/features/price?segment=device%3Dmobile").text
    assert 'class="on">device=mobile<' in mobile
    assert client.get("/dashboard/models/shop/features/nope").status_code == 404
    assert client.get("/dashboard/models/nope").status_code == 404


def test_incident_page(client: TestClient) -> None:
    key = get(client, "/v1/models/shop/incidents", severity="page")["items"][0]["dedup_key"]
    html = signed_in(client).get(f"/dashboard/models/shop/incidents/{key}").text
    assert "price_drift" in html
    assert "What this means" in html and "The price feed and the currency conversion." in html
    assert 'class="shade"' in html  # the evidence window on the chart
    assert "delivered" in html and "console" in html
    assert client.get("/dashboard/models/shop/incidents/shop/nope").status_code == 404


def test_profile_reader_agrees_with_the_full_decoder(seeded: tuple[Path, Monitor]) -> None:
    path, _ = seeded
    with DuckDBStore(path) as store:
        [(_, blob)] = store.profiles("shop", DAY, FIRST + 9 * DAY, FIRST + 10 * DAY)
    windows = serialize.from_bytes(blob)
    for segment, window in windows.items():
        for feature, counts in window.features.items():
            fast = feature_counts(blob, segment, feature)
            assert fast is not None
            expected = getattr(counts, "psi_counts", getattr(counts, "counts", None))
            assert fast.counts.tolist() == expected.tolist()
            assert (fast.n_rows, fast.n_null) == (counts.n_rows, counts.n_null)
    assert feature_counts(blob, "device=tablet", "price") is None
    assert feature_counts(blob, "all", "nope") is None
    with pytest.raises(TripwireError, match="not a tripwire profile"):
        feature_counts(b"not a profile at all", "all", "price")


def test_local_dashboard_serves_a_store_with_a_token_of_its_own(
    seeded: tuple[Path, Monitor], config: ModelConfig, tmp_path: Path
) -> None:
    """What ``tripwire demo --serve`` opens: the pages over the store on 127.0.0.1, the
    read token made up for the session, the port taken: another one."""
    import httpx

    path, monitor = seeded
    copy = tmp_path / "shop.duckdb"
    copy.write_bytes(path.read_bytes())
    with socket.socket() as taken, DuckDBStore(copy) as store:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        busy = taken.getsockname()[1]
        dashboard = local_dashboard(config, store, monitor, port=busy)
        assert dashboard.url.startswith("http://127.0.0.1:")
        assert not dashboard.url.startswith(f"http://127.0.0.1:{busy}/")
        thread = threading.Thread(target=dashboard.run)
        thread.start()
        try:
            with httpx.Client(timeout=60) as http:
                assert http.get(dashboard.url).headers["location"].startswith("/dashboard/login")
                signed = http.get(dashboard.sign_in_url, follow_redirects=True)
                assert signed.status_code == 200
                assert "price_drift" in signed.text
                feature = http.get(dashboard.url + "/models/shop/features/price")
                assert 'class="ref"' in feature.text  # the monitor's reference histograms
                api = http.get(
                    dashboard.url.replace("/dashboard", "/v1/models"),
                    headers={"Authorization": f"Bearer {dashboard.token}"},
                )
                assert api.json()["total"] == 1
                # Nothing can be sent in: the ingest token was never shown.
                sent = http.post(
                    dashboard.url.replace("/dashboard", "/v1/events"), json={"events": []}
                )
                assert sent.status_code == 401
        finally:
            dashboard.stop()
            thread.join()


def test_dashboard_benchmark_runs_on_a_tiny_store(capsys: pytest.CaptureFixture[str]) -> None:
    """benchmarks/dashboard.py at a tiny size: every page answers and is reported (no
    wall-clock assertion: timings depend on the machine)."""
    import importlib.util
    import sys

    path = Path(__file__).resolve().parents[2] / "benchmarks" / "dashboard.py"
    spec = importlib.util.spec_from_file_location("tripwire_benchmark_dashboard", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    try:
        spec.loader.exec_module(module)
        args = ["--days", "10", "--features", "12", "--segments", "2", "--rows", "400"]
        assert module.main([*args, "--repeat", "1", "--json"]) == 0
    finally:
        sys.modules.pop(spec.name, None)
    result = json.loads(capsys.readouterr().out)
    assert result["windows"] == 10
    assert set(result["pages"]) >= {"overview", "model, 90 windows", "feature", "incident"}
    assert all(p["best"] > 0 and p["bytes"] > 0 for p in result["pages"].values())
    assert result["machine"]["logical_cores"]


def test_performance_state_is_the_worse_of_realized_and_estimated(
    config: ModelConfig, tmp_path: Path
) -> None:
    """Labels lag: the realized verdict comes from an older window, the estimate judges the
    latest; the layer shows the worse, from the window that gave it."""
    from tripwire.server.reader import StoreReader

    def row(metric: str, status: str, value: float | None = 0.7) -> MetricRow:
        return MetricRow(layer="performance", metric=metric, value=value, status=status, n=500)

    windows = {
        0: [row("auc", "alert", 0.6), row("estimated_auc", "ok")],
        1: [row("auc", "insufficient_labels", None), row("estimated_auc", "ok")],
        2: [row("auc", "insufficient_labels", None), row("estimated_auc", "ok")],
    }
    with DuckDBStore(tmp_path / "s.duckdb") as store:
        for day, rows in windows.items():
            store.write_window("shop", FIRST + day * DAY, DAY, rows, b"", 500)
        reader = StoreReader({"shop": config}, store, threading.Lock())
        starts = store.window_starts("shop", DAY)
        performance = {s.layer: s for s in reader.layer_states("shop", starts)}["performance"]
        assert (performance.state, performance.window_start) == ("alert", FIRST)
        assert [r.metric for r in performance.flagged] == ["auc"]
        store.write_window(
            "shop", FIRST + 3 * DAY, DAY, [row("estimated_auc", "watch", 0.65)], b"", 500
        )
        store.write_window("shop", FIRST, DAY, [row("auc", "ok")], b"", 500)
        starts = store.window_starts("shop", DAY)
        performance = {s.layer: s for s in reader.layer_states("shop", starts)}["performance"]
        assert (performance.state, performance.window_start) == ("watch", FIRST + 3 * DAY)
        inputs = {s.layer: s for s in reader.layer_states("shop", starts)}["inputs"]
        assert (inputs.state, inputs.window_start) == ("no_data", None)
