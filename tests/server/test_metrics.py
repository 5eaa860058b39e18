"""``GET /metrics``: the gauges are the stored rows of each model's latest checked window, with
low cardinality, behind the read token; a real Prometheus (Debian's package) scrapes a real
``tripwire serve`` and loads the exported rules, and the Grafana dashboard asks only for what
the exporter exposes."""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from tripwire.cli import cli
from tripwire.commands.export import grafana_dashboard, prometheus_rules
from tripwire.config import ModelConfig, load_config, parse_config
from tripwire.demo import scenario
from tripwire.events import table_to_events
from tripwire.job import check_windows, derive_incidents, incidents_table
from tripwire.logger import DROPPED_HEADER, LOGGER_ID_HEADER
from tripwire.monitor import Monitor
from tripwire.scheduler import Scheduler
from tripwire.server import create_app
from tripwire.server.metrics import TOP_FEATURES, drift_selection
from tripwire.store import DuckDBStore

PROMETHEUS = shutil.which("prometheus")
PROMTOOL = shutil.which("promtool")
READ_TOKEN = "read-token-for-metrics"
INGEST_TOKEN = "ingest-token-for-metrics"
READ = {"Authorization": f"Bearer {READ_TOKEN}"}
INGEST = {"Authorization": f"Bearer {INGEST_TOKEN}"}
# The demo has nine features, fewer than TOP_FEATURES: all of them are exported, with the
# drift metrics its page and ticket rules use besides psi and null_share.
DRIFT_FEATURES = set(scenario.IMPORTANCE)
DRIFT_METRICS = {"psi", "null_share", "out_of_range_share", "unseen_share"}
CALIBRATED_PSI = 0.2  # a calibration stored for amount's PSI

Labels = frozenset[tuple[str, str]]
Samples = dict[tuple[str, Labels], float]


@dataclass(frozen=True)
class Seeded:
    directory: Path
    config_path: Path
    store_path: Path
    config: ModelConfig
    monitor: Monitor
    latest: datetime
    rows: list[dict[str, Any]]  # the latest window's stored rows
    incidents: list[dict[str, Any]]


@pytest.fixture(scope="module")
def seeded(tmp_path_factory: pytest.TempPathFactory) -> Seeded:
    """Sixteen days of the demo checked into a DuckDB file (so distance_km's PSI incident is
    open), with label times, so label lag is stored, and one calibration."""
    directory = tmp_path_factory.mktemp("metrics")
    data = scenario.generate(days=16, rows_per_day=400, reference_rows=2000)
    config_path = directory / "tripwire.yaml"
    config_path.write_text(scenario.CONFIG_YAML, encoding="utf-8")
    pq.write_table(data.reference, directory / "reference.parquet")
    config = load_config(config_path)
    monitor = Monitor(config).fit(data.reference)
    table = pa.concat_tables([day for _, day in data.days])
    table = table.append_column("label_time", pc.add(table["ts"], pa.scalar(timedelta(days=3))))
    store_path = directory / "store.duckdb"
    with DuckDBStore(store_path) as store:
        checked = check_windows(monitor, store, table, config.window)
        incidents, _ = derive_incidents(monitor, store, config.window)
        store.save_incidents(config.name, incidents_table(incidents))
        starts = [start for start, _ in checked]
        store.save_calibration(
            config.name, "psi", "amount", "all", CALIBRATED_PSI, 0.95, 0.1, starts[:14]
        )
        latest = store.window_starts(config.name, config.window)[-1]
        rows = store.history(config.name, config.window, since=latest).to_pylist()
        stored_incidents = store.incidents(config.name).to_pylist()
    return Seeded(
        directory, config_path, store_path, config, monitor, latest, rows, stored_incidents
    )


def _store_copy(seeded: Seeded, tmp_path: Path) -> Path:
    path = tmp_path / "store.duckdb"
    shutil.copyfile(seeded.store_path, path)
    return path


def expected_samples(seeded: Seeded) -> Samples:
    """The layer gauges the stored rows imply, in Prometheus's units, written out here rather
    than taken from the exporter."""
    model = seeded.config.name
    expected: Samples = {}

    def put(name: str, value: float | None, **labels: str) -> None:
        if value is not None:
            expected[name, frozenset({"model": model, **labels}.items())] = value

    for row in seeded.rows:
        if row["value"] is None:
            continue
        layer, metric, feature, segment = (
            row["layer"],
            row["metric"],
            row["feature"],
            row["segment"],
        )
        lag = re.fullmatch(r"label_lag_p(\d+)_hours", metric)
        latency = re.fullmatch(r"p(\d+)_ms", metric)
        if layer == "inputs":
            if segment == "all" and feature in DRIFT_FEATURES and metric in DRIFT_METRICS:
                for suffix, value in (("", row["value"]), ("_reference", row["reference"])):
                    put(f"tripwire_feature_drift{suffix}", value, feature=feature, metric=metric)
        elif layer in ("predictions", "performance") and lag is None:
            base = "tripwire_prediction" if layer == "predictions" else "tripwire_performance"
            put(f"{base}_value", row["value"], metric=metric, segment=segment)
            put(f"{base}_reference", row["reference"], metric=metric, segment=segment)
        elif lag is not None:
            put(
                "tripwire_label_lag_seconds",
                row["value"] * 3600,
                segment=segment,
                percentile=lag.group(1),
            )
        elif latency is not None:
            for suffix, value in (("", row["value"]), ("_reference", row["reference"])):
                put(
                    f"tripwire_latency{suffix}_seconds",
                    None if value is None else value / 1000,
                    segment=segment,
                    percentile=latency.group(1),
                )
        elif metric == "error_rate":
            put("tripwire_error_ratio", row["value"], segment=segment)
            put("tripwire_error_reference_ratio", row["reference"], segment=segment)
        elif metric == "cost_per_1k":
            put("tripwire_cost_per_1k_predictions", row["value"], segment=segment)
            put("tripwire_cost_per_1k_predictions_reference", row["reference"], segment=segment)
    put(
        "tripwire_feature_drift_calibrated_threshold",
        CALIBRATED_PSI,
        feature="amount",
        metric="psi",
    )
    return expected


def _layer_family(name: str) -> bool:
    return name.startswith(
        (
            "tripwire_feature_drift",
            "tripwire_prediction_",
            "tripwire_performance_",
            "tripwire_label_lag",
            "tripwire_latency",
            "tripwire_error_",
            "tripwire_cost_",
        )
    )


def _parse(text: str) -> Samples:
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def assert_same_values(got: Samples, expected: Samples) -> None:
    """Exactly the expected series; values exact where tripwire's unit is Prometheus's, and
    within rounding where the exporter converted the unit."""
    assert set(got) - set(expected) == set()
    assert set(expected) - set(got) == set()
    for key, value in expected.items():
        if key[0].endswith("_seconds"):
            assert got[key] == pytest.approx(value, rel=1e-12), key
        else:
            assert got[key] == value, key


def _open_incidents(seeded: Seeded) -> dict[str, int]:
    counts = {"page": 0, "ticket": 0, "digest": 0}
    for incident in seeded.incidents:
        if incident["resolved_at"] is None:
            counts[incident["severity"]] += 1
    return counts


# -- the exporter in process ------------------------------------------------------------------


def _record_consumers(client: TestClient, lock: threading.Lock) -> None:
    """Reports of two consumer groups in the app's store, as tripwire consume writes them."""
    store = client.app.state.collector.store
    with lock:
        store.record_consumer("kafka", "predictions", "tripwire", 42, 1000)
        store.record_consumer("kafka", "predictions", "tripwire", 40, 5)
        store.record_consumer("redis", "predictions", "tripwire", None, 7)  # lag unknown


def _every_series(client: TestClient, lock: threading.Lock) -> str:
    """The exposition with a series of every family: consumers' reports stored too."""
    _record_consumers(client, lock)
    return client.get("/metrics", headers=READ).text


@pytest.fixture
def app_client(seeded: Seeded, tmp_path: Path) -> Iterator[tuple[TestClient, threading.Lock]]:
    """The app over a copy of the seeded store, with a scheduler that is not started (no
    lifespan), so nothing but the test changes the store."""
    with DuckDBStore(_store_copy(seeded, tmp_path)) as store:
        lock = threading.Lock()
        scheduler = Scheduler({seeded.config.name: seeded.monitor}, store, lock)
        app = create_app(
            {seeded.config.name: seeded.config},
            store,
            INGEST_TOKEN,
            READ_TOKEN,
            scheduler=scheduler,
        )
        yield TestClient(app), lock


def test_metrics_need_the_read_token(app_client: tuple[TestClient, threading.Lock]) -> None:
    client, _ = app_client
    assert client.get("/metrics").status_code == 401
    assert client.get("/metrics", headers=INGEST).status_code == 401
    response = client.get("/metrics", headers=READ)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain; version=0.0.4")
    assert "/metrics" in client.get("/openapi.json").json()["paths"]


def test_gauges_are_the_latest_windows_stored_rows(
    seeded: Seeded, app_client: tuple[TestClient, threading.Lock]
) -> None:
    client, _ = app_client
    samples = _parse(client.get("/metrics", headers=READ).text)
    layers = {key: value for key, value in samples.items() if _layer_family(key[0])}
    assert_same_values(layers, expected_samples(seeded))

    model = seeded.config.name

    def one(name: str, **labels: str) -> float:
        return samples[name, frozenset({"model": model, **labels}.items())]

    for severity, count in _open_incidents(seeded).items():
        assert one("tripwire_open_incidents", severity=severity) == count
    assert one("tripwire_open_incidents", severity="page") >= 1  # distance_km's PSI
    latest = seeded.latest.replace(tzinfo=UTC).timestamp()
    assert one("tripwire_latest_window_start_timestamp_seconds") == latest
    assert one("tripwire_window_length_seconds") == 86400
    assert one("tripwire_window_predictions", segment="all") == 400
    assert one("tripwire_logger_dropped_events_total") == 0  # no logger reported any
    assert samples["tripwire_outbox_pending", frozenset()] == 0
    assert samples["tripwire_outbox_dead", frozenset()] == 0
    assert samples["tripwire_store_up", frozenset()] == 1
    assert samples["tripwire_scheduler_running", frozenset()] == 0  # not started here
    assert one("tripwire_scheduler_failing") == 0
    next_due = latest + 2 * 86400 + 600  # the next window's end plus the 10-minute grace
    assert one("tripwire_scheduler_next_due_timestamp_seconds") == next_due


@pytest.mark.skipif(PROMTOOL is None, reason="promtool (Debian package prometheus) is missing")
def test_promtool_finds_nothing_to_lint_in_the_exposition(
    app_client: tuple[TestClient, threading.Lock],
) -> None:
    text = _every_series(*app_client)
    linted = subprocess.run(
        [str(PROMTOOL), "check", "metrics"], input=text, capture_output=True, text=True, check=False
    )
    assert linted.returncode == 0, linted.stdout + linted.stderr


def test_the_collector_counts_what_it_stored_and_quarantined(
    seeded: Seeded, app_client: tuple[TestClient, threading.Lock]
) -> None:
    client, _ = app_client
    day = scenario.generate(days=1, rows_per_day=20, reference_rows=200).days[0][1]
    events = table_to_events(seeded.config, day)[:6]
    for event in events:
        event["timestamp"] = event["timestamp"].isoformat()
        event["event_id"] = "new-" + event["event_id"]
    del events[5]["features"]  # invalid: quarantined
    first = client.post("/v1/events", json={"events": events}, headers=INGEST)
    assert first.json()["accepted"] == 5, first.text
    again = client.post("/v1/events", json={"events": events[:2]}, headers=INGEST)
    assert again.json()["duplicates"] == 2, again.text
    labels = [{"model": seeded.config.name, "event_id": events[0]["event_id"], "label": 1}]
    labels.append({"model": seeded.config.name, "event_id": "x"})  # no label: quarantined
    client.post("/v1/labels", json={"labels": labels}, headers=INGEST)

    samples = _parse(client.get("/metrics", headers=READ).text)

    def count(kind: str, outcome: str) -> float:
        return samples[f"tripwire_collector_{kind}_total", frozenset({("outcome", outcome)})]

    assert count("events", "stored") == 5
    assert count("events", "duplicate") == 2
    assert count("events", "quarantined") == 1
    assert count("labels", "stored") == 1
    assert count("labels", "quarantined") == 1


def test_the_consumers_reports_in_the_store_are_exported(
    app_client: tuple[TestClient, threading.Lock],
) -> None:
    client, lock = app_client
    _record_consumers(client, lock)
    samples = _parse(client.get("/metrics", headers=READ).text)
    kafka = frozenset({"source": "kafka", "stream": "predictions", "group": "tripwire"}.items())
    redis = frozenset({"source": "redis", "stream": "predictions", "group": "tripwire"}.items())
    assert samples["tripwire_consumer_lag_events", kafka] == 40
    assert ("tripwire_consumer_lag_events", redis) not in samples
    assert samples["tripwire_consumer_events_stored_total", kafka] == 1005
    assert samples["tripwire_consumer_events_stored_total", redis] == 7
    for labels in (kafka, redis):
        reported = samples["tripwire_consumer_report_timestamp_seconds", labels]
        assert time.time() - 60 < reported <= time.time()


def test_a_scrape_during_a_long_job_serves_the_last_snapshot(
    app_client: tuple[TestClient, threading.Lock],
) -> None:
    client, lock = app_client
    before = _parse(client.get("/metrics", headers=READ).text)
    with lock:  # a job checking a window holds the store
        during = _parse(client.get("/metrics", headers=READ).text)
    snapshot = ("tripwire_store_snapshot_timestamp_seconds", frozenset())
    assert during[snapshot] == before[snapshot]
    layers = {k: v for k, v in during.items() if _layer_family(k[0])}
    assert layers == {k: v for k, v in before.items() if _layer_family(k[0])}
    assert during["tripwire_store_up", frozenset()] == 1
    assert during["tripwire_scheduler_running", frozenset()] == 0  # the status last read
    # Once the job lets go, scrapes read the store again (and the status asked meanwhile).
    after = _parse(client.get("/metrics", headers=READ).text)
    assert after[snapshot] > before[snapshot]


def test_drift_is_exported_for_the_features_that_matter_only() -> None:
    # Thirty features: the ten most important and the one a ticket rule names; psi and
    # null_share, plus the metrics of page and ticket rules; a digest rule adds nothing.
    features = "\n".join(f"    f{i:02d}: numeric" for i in range(30))
    importance = "\n".join(f"  f{i:02d}: {30 - i}" for i in range(30))
    runbook = "    runbook: Look."
    config = parse_config(
        f"""\
name: wide
task: binary
columns:
  features:
{features}
  prediction: p
importance:
{importance}
alerts:
  - name: ks_top
    metric: ks
    feature_set: {{top_k: 3}}
    threshold: 0.2
    severity: page
{runbook}
  - name: nulls_of_f29
    metric: null_share
    feature_set: [f29]
    threshold: 0.1
    severity: ticket
{runbook}
  - name: js_everywhere
    metric: js
    threshold: 0.2
    severity: digest
{runbook}
"""
    )
    chosen = drift_selection(config, config.resolve_importance())
    assert chosen.features == {f"f{i:02d}" for i in range(TOP_FEATURES)} | {"f29"}
    assert chosen.metrics == {"psi", "null_share", "ks"}


# -- a real Prometheus scraping a real tripwire serve -------------------------------------------


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _stop(process: subprocess.Popen[bytes]) -> None:
    process.terminate()
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=30)


def _wait_for(what: str, check: Any, process: subprocess.Popen[bytes], log: Path) -> Any:
    """Poll ``check`` until it returns something truthy; fail if the process exits first."""
    deadline = time.monotonic() + 120  # a hung service fails the test rather than hanging it
    while True:
        assert process.poll() is None, f"{what}: the process exited\n{log.read_text()}"
        try:
            found = check()
        except httpx.TransportError:
            found = None
        except httpx.HTTPStatusError as exc:
            # Prometheus answers 503 while it starts up (and replays its write-ahead log).
            if exc.response.status_code != 503:
                raise
            found = None
        if found:
            return found
        assert time.monotonic() < deadline, f"gave up waiting for {what}\n{log.read_text()}"
        time.sleep(0.25)


def _query(base: str, promql: str) -> list[dict[str, Any]]:
    response = httpx.get(f"{base}/api/v1/query", params={"query": promql}, timeout=10)
    response.raise_for_status()
    result: list[dict[str, Any]] = response.json()["data"]["result"]
    return result


@pytest.mark.slow
@pytest.mark.skipif(PROMETHEUS is None, reason="prometheus (Debian package) is not installed")
def test_prometheus_scrapes_the_stored_values_and_evaluates_the_exported_rules(
    seeded: Seeded, tmp_path: Path
) -> None:
    store_path = _store_copy(seeded, tmp_path)
    with DuckDBStore(store_path) as store:  # a consumer group's report, as tripwire consume's
        store.record_consumer("kafka", "predictions", "tripwire", 17, 250)
    serve_port, prometheus_port = _free_port(), _free_port()
    rules_path = tmp_path / "rules.yml"
    exported = CliRunner().invoke(
        cli,
        [
            "export",
            "prometheus-rules",
            "--config",
            str(seeded.config_path),
            "--out",
            str(rules_path),
        ],
    )
    assert exported.exit_code == 0, exported.output
    scrape = {
        "job_name": "tripwire",
        "metrics_path": "/metrics",
        "authorization": {"type": "Bearer", "credentials": READ_TOKEN},
        "static_configs": [{"targets": [f"127.0.0.1:{serve_port}"]}],
    }
    prometheus_yml = {
        "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
        "rule_files": [str(rules_path)],
        "scrape_configs": [scrape],
    }
    (tmp_path / "prometheus.yml").write_text(json.dumps(prometheus_yml), encoding="utf-8")

    env = {**os.environ, "TRIPWIRE_INGEST_TOKEN": INGEST_TOKEN, "TRIPWIRE_READ_TOKEN": READ_TOKEN}
    serve_command = [sys.executable, "-m", "tripwire", "serve", "--config", str(seeded.config_path)]
    serve_command += ["--store", str(store_path), "--no-schedule"]
    serve_command += ["--host", "127.0.0.1", "--port", str(serve_port)]
    prometheus_command = [
        str(PROMETHEUS),
        f"--config.file={tmp_path / 'prometheus.yml'}",
        f"--storage.tsdb.path={tmp_path / 'prometheus-data'}",
        f"--web.listen-address=127.0.0.1:{prometheus_port}",
    ]
    serve_log, prometheus_log = tmp_path / "serve.log", tmp_path / "prometheus.log"
    tripwire_url = f"http://127.0.0.1:{serve_port}"
    prometheus_url = f"http://127.0.0.1:{prometheus_port}"
    with serve_log.open("wb") as log_a, prometheus_log.open("wb") as log_b:
        server = subprocess.Popen(serve_command, env=env, stdout=log_a, stderr=subprocess.STDOUT)
        prometheus = None
        try:
            _wait_for(
                "tripwire serve",
                lambda: httpx.get(f"{tripwire_url}/v1/health", timeout=2).status_code == 200,
                server,
                serve_log,
            )
            events = table_to_events(
                seeded.config,
                scenario.generate(days=1, rows_per_day=10, reference_rows=200).days[0][1],
            )[:3]
            for event in events:
                event["timestamp"] = event["timestamp"].isoformat()
                event["event_id"] = "late-" + event["event_id"]
            # As a tripwire.Logger that has dropped 4 events says with its batch.
            logger = {LOGGER_ID_HEADER: "0123456789abcdef", DROPPED_HEADER: "4"}
            posted = httpx.post(
                f"{tripwire_url}/v1/events",
                json={"events": events},
                headers={**INGEST, **logger},
                timeout=30,
            )
            assert posted.json()["accepted"] == 3, posted.text

            prometheus = subprocess.Popen(
                prometheus_command, stdout=log_b, stderr=subprocess.STDOUT
            )
            _wait_for(
                "the first scrape",
                lambda: _query(prometheus_url, 'up{job="tripwire"} == 1'),
                prometheus,
                prometheus_log,
            )
            expected = expected_samples(seeded)
            got: Samples = {}
            for name in sorted({name for name, _ in expected}):
                for series in _query(prometheus_url, name):
                    labels = {
                        k: v
                        for k, v in series["metric"].items()
                        if k not in ("__name__", "job", "instance")
                    }
                    got[name, frozenset(labels.items())] = float(series["value"][1])
            assert_same_values(got, expected)

            model = seeded.config.name
            for severity, count in _open_incidents(seeded).items():
                promql = f'tripwire_open_incidents{{model="{model}", severity="{severity}"}}'
                (series,) = _query(prometheus_url, promql)
                assert float(series["value"][1]) == count
            (stored,) = _query(prometheus_url, 'tripwire_collector_events_total{outcome="stored"}')
            assert float(stored["value"][1]) == 3
            group = '{source="kafka", stream="predictions", group="tripwire"}'
            (lag,) = _query(prometheus_url, f"tripwire_consumer_lag_events{group}")
            assert float(lag["value"][1]) == 17
            (consumed,) = _query(prometheus_url, f"tripwire_consumer_events_stored_total{group}")
            assert float(consumed["value"][1]) == 250
            promql = f'tripwire_logger_dropped_events_total{{model="{model}"}}'
            (dropped,) = _query(prometheus_url, promql)
            assert float(dropped["value"][1]) == 4

            # The exported rules load and evaluate on what was scraped: distance_km's PSI is
            # above 0.25, so its page is pending (for: 2d) in Prometheus too.
            def rules_evaluated() -> list[dict[str, Any]] | None:
                response = httpx.get(f"{prometheus_url}/api/v1/rules", timeout=10).json()
                (group,) = response["data"]["groups"]
                rules: list[dict[str, Any]] = group["rules"]
                return rules if all(r.get("health") == "ok" for r in rules) else None

            rules = _wait_for("the rules' evaluation", rules_evaluated, prometheus, prometheus_log)
            # Every rule of the demo's config but the digest's, which Prometheus cannot send.
            written, _ = prometheus_rules([seeded.config])
            assert len(rules) == len(written["groups"][0]["rules"]) == len(seeded.config.alerts) - 1

            def psi_pending() -> list[dict[str, Any]]:
                alerts = httpx.get(f"{prometheus_url}/api/v1/alerts", timeout=10).json()
                return [
                    a
                    for a in alerts["data"]["alerts"]
                    if a["labels"]["alertname"] == "psi_top_feature_drift"
                ]

            (alert,) = _wait_for("the PSI alert", psi_pending, prometheus, prometheus_log)
            assert alert["state"] == "pending"
            assert alert["labels"]["feature"] == "distance_km"
            assert alert["labels"]["severity"] == "page"
            stored_psi = next(
                r["value"]
                for r in seeded.rows
                if (r["metric"], r["feature"], r["segment"]) == ("psi", "distance_km", "all")
            )
            assert float(alert["value"]) == stored_psi
        finally:
            if prometheus is not None:
                _stop(prometheus)
            _stop(server)


def test_the_dashboard_and_the_rules_ask_only_for_exposed_metrics(
    seeded: Seeded, app_client: tuple[TestClient, threading.Lock]
) -> None:
    exposed = {name for name, _ in _parse(_every_series(*app_client))}
    dashboard = grafana_dashboard()
    exprs = [t["expr"] for p in dashboard["panels"] for t in p.get("targets", [])]
    exprs += [v["definition"] for v in dashboard["templating"]["list"] if "definition" in v]
    rules, _ = prometheus_rules([seeded.config])
    exprs += [rule["expr"] for group in rules["groups"] for rule in group["rules"]]
    asked = {name for expr in exprs for name in re.findall(r"\btripwire_\w+", expr)}
    assert asked, exprs
    assert asked <= exposed, sorted(asked - exposed)
