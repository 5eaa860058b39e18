"""The monitoring loop through the CLI, on the demo's 30 days: run, rules check, calibrate,
backtest, gate and digest against a real DuckDB store."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from tripwire.cli import cli
from tripwire.store import DuckDBStore


def invoke(*args: str) -> tuple[int, str]:
    """Exit code and standard output (the console channel writes alerts to standard error)."""
    result = CliRunner().invoke(cli, list(args))
    return result.exit_code, result.stdout if result.exit_code == 0 else result.output


@pytest.fixture(scope="module")
def ran(demo_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The demo's days through `tripwire run` once, into a store of this module's own."""
    store = tmp_path_factory.mktemp("store") / "tripwire.duckdb"
    config = demo_dir / "tripwire.yaml"
    code, output = invoke(
        "run",
        "--config",
        str(config),
        "--store",
        str(store),
        "--data",
        str(demo_dir / "days" / "*.parquet"),
        "--json",
    )
    assert code == 0, output
    return {"config": config, "store": store, "result": json.loads(output)}


def test_run_pages_the_real_incidents_and_not_the_benign_spike(ran: dict[str, Any]) -> None:
    result = ran["result"]
    assert len(result["windows"]) == 30
    pages = {
        (i["rule"], i["feature"], i["evidence_start"][:10])
        for i in result["incidents"]
        if i["severity"] == "page"
    }
    assert ("psi_top_feature_drift", "distance_km", "2026-10-12") in pages
    assert ("latency_p95", "", "2026-10-25") in pages
    assert not any(feature == "session_jitter" for _, feature, _ in pages)


def test_run_is_idempotent_and_announces_once(ran: dict[str, Any], demo_dir: Path) -> None:
    code, output = invoke(
        "run",
        "--config",
        str(ran["config"]),
        "--store",
        str(ran["store"]),
        "--data",
        str(demo_dir / "days" / "2026-10-30.parquet"),
        "--json",
    )
    assert code == 0, output
    again = json.loads(output)
    assert again["announced"] == 0  # the outbox already holds every announcement
    with DuckDBStore(ran["store"]) as store:
        rows = store.connection.execute(
            "SELECT count(*) FROM metrics WHERE window_start = '2026-10-30'"
        ).fetchone()
        windows = store.window_starts("fraud-detector", __import__("datetime").timedelta(days=1))
    assert rows is not None and rows[0] > 0
    assert len(windows) == 30


def test_rules_check_lists_the_rules(ran: dict[str, Any]) -> None:
    code, output = invoke("rules", "check", str(ran["config"]))
    assert code == 0, output
    assert "psi_top_feature_drift" in output and "valid" in output


def test_rules_check_names_the_rule_and_field(tmp_path: Path) -> None:
    config = tmp_path / "tripwire.yaml"
    config.write_text(
        "name: m\ntask: binary\ncolumns: {features: {x: numeric}, prediction: p}\n"
        "alerts:\n"
        "  - name: rate\n    metric: mean_pred\n    threshold_z: 3\n    runbook: r\n",
        encoding="utf-8",
    )
    code, output = invoke("rules", "check", str(config))
    assert code == 2
    assert "tripwire.yaml:5: alerts[0]: threshold_z needs a baseline" in output


def test_rules_check_accepts_proxy_and_segment_rules(tmp_path: Path) -> None:
    config = tmp_path / "tripwire.yaml"
    head = (
        "name: m\ntask: binary\ncolumns: {features: {x: numeric}, prediction: p}\n"
        "segments: {columns: [user]}\n"
        "proxies: [{name: blocked, column: decision, equals: block, direction: above}]\n"
        "alerts:\n"
    )
    rule = "  - {name: b, metric: proxy_blocked, threshold: 0.1, segment: top, runbook: r}\n"
    config.write_text(head + rule, encoding="utf-8")
    code, output = invoke("rules", "check", str(config))
    assert code == 0, output
    assert "proxy_blocked in the tracked segments" in output
    config.write_text(head + rule.replace("proxy_blocked,", "proxy_blockd,"), encoding="utf-8")
    code, output = invoke("rules", "check", str(config))
    assert code == 2 and "unknown proxy metric 'proxy_blockd'" in output


def test_gate_investigates_drift_without_a_performance_drop(ran: dict[str, Any]) -> None:
    code, output = invoke(
        "gate", "--config", str(ran["config"]), "--store", str(ran["store"]), "--json"
    )
    decision = json.loads(output)
    assert decision["decision"] in ("investigate", "retrain")
    assert code == decision["exit_code"] == {"investigate": 10, "retrain": 20}[decision["decision"]]
    assert decision["drift"], "the open distance_km drift is evidence"


def test_backtest_diffs_proposed_rules_and_sends_nothing(
    ran: dict[str, Any], tmp_path: Path
) -> None:
    rules = tmp_path / "rules.yaml"
    rules.write_text(
        "alerts:\n"
        "  - name: psi_any_feature_daily\n    metric: psi\n    threshold: 0.25\n"
        "    severity: page\n    runbook: naive alerting, for comparison\n",
        encoding="utf-8",
    )
    with DuckDBStore(ran["store"]) as store:
        before = store.connection.execute("SELECT count(*) FROM outbox").fetchone()
    code, output = invoke(
        "backtest",
        "--config",
        str(ran["config"]),
        "--store",
        str(ran["store"]),
        "--rules",
        str(rules),
        "--from",
        "2026-10-01",
        "--to",
        "2026-10-31",
        "--json",
    )
    assert code == 0, output
    result = json.loads(output)
    features = {i["feature"] for i in result["incidents"]}
    assert {"distance_km", "session_jitter"} <= features  # naive rules page on the benign spike
    assert result["removed"], "the current latency rule has no counterpart in the proposal"
    with DuckDBStore(ran["store"]) as store:
        after = store.connection.execute("SELECT count(*) FROM outbox").fetchone()
    assert before == after


def test_calibrate_stores_thresholds_with_provenance(ran: dict[str, Any], tmp_path: Path) -> None:
    config = tmp_path / "tripwire.yaml"
    text = ran["config"].read_text(encoding="utf-8")
    text = text.replace(
        "reference: reference.parquet", f"reference: {ran['config'].parent / 'reference.parquet'}"
    )
    text = text.replace(
        "    threshold: 0.25\n    window: 3d", "    threshold: calibrated\n    window: 3d"
    )
    config.write_text(text, encoding="utf-8")
    code, output = invoke(
        "calibrate", "--config", str(config), "--store", str(ran["store"]), "--days", "14"
    )
    assert code == 0, output
    with DuckDBStore(ran["store"]) as store:
        rows = store.calibrations("fraud-detector").to_pylist()
    by_feature = {r["feature"]: r for r in rows}
    assert {"amount", "merchant_risk"} <= set(by_feature)
    # Every recent day of distance_km lies inside its drift incident: none is normal.
    assert "distance_km" not in by_feature
    amount = by_feature["amount"]
    assert amount["threshold"] >= amount["floor"] == 0.1
    assert len(json.loads(amount["windows_used"])) >= 7


def test_digest_lists_the_low_importance_spike(ran: dict[str, Any], tmp_path: Path) -> None:
    code, output = invoke(
        "digest",
        "--config",
        str(ran["config"]),
        "--store",
        str(ran["store"]),
        "--days",
        "30",
        "--out",
        str(tmp_path),
    )
    assert code == 0, output
    markdown = (tmp_path / "digest.md").read_text(encoding="utf-8")
    assert "session_jitter" in markdown
    assert "distance_km" not in markdown.split("## Digest incidents")[0]  # it pages instead
    assert (tmp_path / "digest.html").read_text(encoding="utf-8").startswith("<!DOCTYPE html>")


def test_run_reads_the_stored_prediction_log(demo_dir: Path, tmp_path: Path) -> None:
    from tripwire.config import load_config
    from tripwire.events import table_to_events, validate_events
    from tripwire.tabular import read_table

    config = load_config(demo_dir / "tripwire.yaml")
    store_path = tmp_path / "log.duckdb"
    with DuckDBStore(store_path) as store:
        for day in ("2026-10-04", "2026-10-05", "2026-10-06"):
            table = read_table(demo_dir / "days" / f"{day}.parquet")
            events, rejected = validate_events(config, table_to_events(config, table))
            assert not rejected
            store.write_events(events)
    code, output = invoke(
        "run",
        "--config",
        str(demo_dir / "tripwire.yaml"),
        "--store",
        str(store_path),
        "--since",
        "2026-10-05",
        "--until",
        "2026-10-07",
        "--json",
    )
    assert code == 0, output
    result = json.loads(output)
    assert [w[:10] for w in result["windows"]] == ["2026-10-05", "2026-10-06"]
    assert any(
        i["rule"] == "null_share_top_features" and i["feature"] == "merchant_risk"
        for i in result["incidents"]
    )
