"""``tripwire export``: the Prometheus rules carry each alert rule's meaning (checked by Debian's
promtool where it is installed, and proved to fire by ``promtool test rules``), and the Grafana
dashboard has what Grafana needs to import it."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner

from tripwire.cli import cli
from tripwire.config import load_config
from tripwire.demo import scenario

PROMTOOL = shutil.which("promtool")
needs_promtool = pytest.mark.skipif(
    PROMTOOL is None, reason="promtool (Debian package prometheus) is not installed"
)

# Two rules the demo's starter set does not have: a calibrated threshold and a runbook that is
# a link, and a static threshold on a metric that may move either way.
EXTRA_RULES = """\
  - name: psi_calibrated
    metric: psi
    feature_set: {top_k: 2}
    threshold: calibrated
    window: 2d
    severity: ticket
    runbook: https://runbooks.example.com/psi
  - name: error_rate_moved
    metric: error_rate
    threshold: 0.02
    direction: both
    segment: [user_type=new]
    severity: ticket
    runbook: "The error rate of new users moved."
"""


@pytest.fixture
def config_path(tmp_path: Path) -> Path:
    path = tmp_path / "tripwire.yaml"
    path.write_text(scenario.CONFIG_YAML + EXTRA_RULES, encoding="utf-8")
    return path


def _rules(config_path: Path, *options: str) -> tuple[dict[str, dict[str, Any]], str]:
    """The exported rules by alert name, and what the command said on stderr."""
    result = CliRunner().invoke(
        cli, ["export", "prometheus-rules", "--config", str(config_path), *options]
    )
    assert result.exit_code == 0, result.output
    (group,) = yaml.safe_load(result.stdout)["groups"]
    assert group["name"] == "tripwire-fraud-detector"
    return {rule["alert"]: rule for rule in group["rules"]}, result.stderr


def test_each_rule_keeps_its_threshold_persistence_severity_and_runbook(
    config_path: Path,
) -> None:
    rules, notes = _rules(config_path, "--runbook-url", "https://wiki.example.com/{model}#{rule}")
    # Digest rules stay with tripwire's weekly digest, and the command says so.
    assert "drift_digest" not in rules
    assert "'drift_digest' left out" in notes

    psi = rules["psi_top_feature_drift"]
    assert psi["expr"] == (
        'tripwire_feature_drift{model="fraud-detector", metric="psi", '
        'feature=~"amount|merchant_risk|distance_km"} > 0.25'
    )
    # Three windows in a row: the third breach is checked two windows after the first.
    assert psi["for"] == "2d"
    assert psi["keep_firing_for"] == "1d"  # resolve_after: 2
    assert psi["labels"] == {"severity": "page", "route": "oncall"}
    annotations = psi["annotations"]
    assert annotations["runbook_url"] == (
        "https://wiki.example.com/fraud-detector#psi_top_feature_drift"
    )
    assert "{{ $labels.feature }}" in annotations["summary"]
    assert annotations["what_it_means"].startswith("One of the most important inputs")
    assert annotations["who_owns_the_fix"] in annotations["description"]

    # 350 ms in Prometheus's base unit; one window is enough, so no for:.
    latency = rules["latency_p95"]
    assert latency["expr"] == (
        'tripwire_latency_seconds{model="fraud-detector", percentile="95", segment="all"} > 0.35'
    )
    assert "for" not in latency

    # baseline: reference compares with the reference gauge; segment: each leaves the segment
    # free; AUC gets worse downwards.
    auc = rules["segment_performance"]
    assert auc["expr"] == (
        'tripwire_performance_value{model="fraud-detector", metric="auc"} < '
        'tripwire_performance_reference{model="fraud-detector", metric="auc"} - 0.05'
    )
    assert auc["for"] == "1d"

    # threshold_z over a 7-window trailing baseline that ends one window back.
    shift = rules["prediction_rate_shift"]["expr"]
    assert "avg_over_time(" in shift and "stddev_over_time(" in shift
    assert "[7d] offset 1d" in shift and " or " in shift  # both directions

    calibrated = rules["psi_calibrated"]
    assert calibrated["expr"] == (
        'tripwire_feature_drift{model="fraud-detector", metric="psi", '
        'feature=~"amount|merchant_risk"} > tripwire_feature_drift_calibrated_threshold'
        '{model="fraud-detector", metric="psi", feature=~"amount|merchant_risk"} or '
        '(tripwire_feature_drift{model="fraud-detector", metric="psi", '
        'feature=~"amount|merchant_risk"} unless tripwire_feature_drift_calibrated_threshold'
        '{model="fraud-detector", metric="psi", feature=~"amount|merchant_risk"}) > 0.25'
    )
    # A runbook that is a link is the runbook_url, whatever the template says.
    assert calibrated["annotations"]["runbook_url"] == "https://runbooks.example.com/psi"

    moved = rules["error_rate_moved"]["expr"]
    selector = '{model="fraud-detector", segment=~"user_type=new"}'
    assert (
        moved == f"tripwire_error_ratio{selector} > 0.02 or tripwire_error_ratio{selector} < -0.02"
    )


def test_without_a_runbook_url_template_the_annotation_is_left_out(config_path: Path) -> None:
    rules, _ = _rules(config_path)
    assert "runbook_url" not in rules["latency_p95"]["annotations"]
    assert "what_to_check" in rules["latency_p95"]["annotations"]


@needs_promtool
def test_promtool_accepts_the_rules(config_path: Path, tmp_path: Path) -> None:
    out = tmp_path / "rules.yml"
    result = CliRunner().invoke(
        cli, ["export", "prometheus-rules", "--config", str(config_path), "--out", str(out)]
    )
    assert result.exit_code == 0, result.output
    # The demo's rules and the two extra ones, but the digest's.
    count = len(load_config(config_path).alerts) - 1
    assert f"wrote {count} rules to {out}" in result.stderr
    checked = subprocess.run(
        [str(PROMTOOL), "check", "rules", str(out)], capture_output=True, text=True, check=False
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert f"SUCCESS: {count} rules found" in checked.stdout + checked.stderr


@needs_promtool
def test_promtool_proves_the_psi_rule_fires_after_three_windows_and_resolves_late(
    tmp_path: Path,
) -> None:
    config = tmp_path / "tripwire.yaml"
    config.write_text(scenario.CONFIG_YAML, encoding="utf-8")
    rules_path = tmp_path / "rules.yml"
    result = CliRunner().invoke(
        cli, ["export", "prometheus-rules", "--config", str(config), "--out", str(rules_path)]
    )
    assert result.exit_code == 0, result.output
    (group,) = yaml.safe_load(rules_path.read_text(encoding="utf-8"))["groups"]
    psi = next(rule for rule in group["rules"] if rule["alert"] == "psi_top_feature_drift")
    annotations = dict(psi["annotations"])
    annotations["summary"] = "fraud-detector: psi of distance_km is 0.4, above 0.25 for 3 windows"
    firing = [
        {
            "exp_labels": {
                "severity": "page",
                "route": "oncall",
                "model": "fraud-detector",
                "feature": "distance_km",
                "metric": "psi",
            },
            "exp_annotations": annotations,
        }
    ]
    psi_of = 'tripwire_feature_drift{{model="fraud-detector", feature="{}", metric="psi"}}'
    tests = {
        "rule_files": [rules_path.name],
        "evaluation_interval": "1h",
        "tests": [
            {
                "interval": "1h",
                "input_series": [
                    # Three daily windows above 0.25 (hours 0 to 71), then back to normal.
                    {"series": psi_of.format("distance_km"), "values": "0.4x71 0.1x48"},
                    # Far above, but not a top feature: the digest's business, never a page.
                    {"series": psi_of.format("session_jitter"), "values": "0.9x119"},
                ],
                "alert_rule_test": [
                    {"eval_time": "47h", "alertname": "psi_top_feature_drift", "exp_alerts": []},
                    {
                        "eval_time": "49h",
                        "alertname": "psi_top_feature_drift",
                        "exp_alerts": firing,
                    },
                    # Back to normal at 72 h: open for one more window, as tripwire keeps it.
                    {
                        "eval_time": "90h",
                        "alertname": "psi_top_feature_drift",
                        "exp_alerts": firing,
                    },
                    {"eval_time": "98h", "alertname": "psi_top_feature_drift", "exp_alerts": []},
                ],
            }
        ],
    }
    test_path = tmp_path / "rules_test.yml"
    test_path.write_text(yaml.safe_dump(tests, sort_keys=False), encoding="utf-8")
    tested = subprocess.run(
        [str(PROMTOOL), "test", "rules", test_path.name],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=False,
    )
    assert tested.returncode == 0, tested.stdout + tested.stderr


def test_errors_are_one_line_without_a_traceback(tmp_path: Path, config_path: Path) -> None:
    missing = CliRunner().invoke(
        cli, ["export", "prometheus-rules", "--config", str(tmp_path / "nope.yaml")]
    )
    assert missing.exit_code == 2
    assert "nope.yaml" in missing.stderr and "Traceback" not in missing.output

    template = CliRunner().invoke(
        cli,
        ["export", "prometheus-rules", "--config", str(config_path), "--runbook-url", "{team}"],
    )
    assert template.exit_code == 2
    assert "--runbook-url" in template.stderr and "Traceback" not in template.output

    unwritable = CliRunner().invoke(
        cli, ["export", "grafana-dashboard", "--out", str(tmp_path / "no" / "such" / "d.json")]
    )
    assert unwritable.exit_code == 2
    assert "cannot write" in unwritable.stderr and "Traceback" not in unwritable.output


@pytest.mark.parametrize("command", ["prometheus-rules", "grafana-dashboard"])
def test_help_shows_an_example(command: str) -> None:
    result = CliRunner().invoke(cli, ["export", command, "--help"])
    assert result.exit_code == 0
    assert f"Example:\n    tripwire export {command}" in result.output


# -- Grafana ----------------------------------------------------------------------------------

_UID = re.compile(r"^[A-Za-z0-9_-]{1,40}$")


def grafana_problems(dashboard: dict[str, Any]) -> list[str]:
    """What Grafana would refuse or mis-draw on import: the fields its dashboard model
    requires, panels that fit the 24-column grid without overlapping, queries with a refId and
    an expression, and every variable used defined."""
    problems = []
    for key, kind in (
        ("title", str),
        ("uid", str),
        ("schemaVersion", int),
        ("panels", list),
        ("templating", dict),
    ):
        if not isinstance(dashboard.get(key), kind):
            problems.append(f"{key} missing or not a {kind.__name__}")
    if problems:
        return problems
    if not _UID.match(dashboard["uid"]):
        problems.append(f"uid {dashboard['uid']!r} is not 1-40 letters, digits, - or _")
    if not dashboard["title"].strip():
        problems.append("empty title")
    variables = {v.get("name") for v in dashboard["templating"].get("list", [])}
    for variable in dashboard["templating"].get("list", []):
        if not variable.get("name") or not variable.get("type"):
            problems.append(f"variable without name or type: {variable}")
    inputs = {i["name"]: i for i in dashboard.get("__inputs", [])}
    if inputs.get("DS_PROMETHEUS", {}).get("pluginId") != "prometheus":
        problems.append("no Prometheus data source input")
    ids = [panel.get("id") for panel in dashboard["panels"]]
    if len(set(ids)) != len(ids) or not all(isinstance(i, int) for i in ids):
        problems.append(f"panel ids not unique integers: {ids}")
    cells: dict[tuple[int, int], int] = {}
    for panel in dashboard["panels"]:
        where = f"panel {panel.get('id')} ({panel.get('title')})"
        grid = panel.get("gridPos", {})
        if not all(isinstance(grid.get(k), int) for k in ("h", "w", "x", "y")):
            problems.append(f"{where}: gridPos needs integer h, w, x, y")
            continue
        if grid["x"] < 0 or grid["w"] < 1 or grid["x"] + grid["w"] > 24:
            problems.append(f"{where}: does not fit the 24 grid columns")
        for x in range(grid["x"], grid["x"] + grid["w"]):
            for y in range(grid["y"], grid["y"] + grid["h"]):
                if (x, y) in cells:
                    problems.append(f"{where}: overlaps panel {cells[x, y]}")
                cells[x, y] = panel["id"]
        if not panel.get("type") or not panel.get("title"):
            problems.append(f"{where}: needs a type and a title")
        if panel.get("type") == "row":
            continue
        targets = panel.get("targets") or []
        if not targets:
            problems.append(f"{where}: no targets")
        for target in targets:
            if not target.get("refId") or not str(target.get("expr", "")).strip():
                problems.append(f"{where}: a target without refId or expr")
        if len({t.get("refId") for t in targets}) != len(targets):
            problems.append(f"{where}: refIds repeat")
        if panel.get("datasource", {}).get("type") != "prometheus":
            problems.append(f"{where}: not on the Prometheus data source")
        used = re.findall(r"\$(\w+)", json.dumps([panel["title"], targets]))
        for name in used:
            if name not in variables and not name.startswith("__"):
                problems.append(f"{where}: uses undefined variable ${name}")
    return sorted(set(problems))


def test_the_dashboard_has_what_grafana_requires(tmp_path: Path) -> None:
    out = tmp_path / "dashboard.json"
    result = CliRunner().invoke(
        cli, ["export", "grafana-dashboard", "--out", str(out), "--uid", "ml-models"]
    )
    assert result.exit_code == 0, result.output
    dashboard = json.loads(out.read_text(encoding="utf-8"))
    assert grafana_problems(dashboard) == []
    assert dashboard["uid"] == "ml-models"
    variables = {v["name"]: v for v in dashboard["templating"]["list"]}
    assert "tripwire_" in variables["model"]["definition"]
    rows = [p["title"] for p in dashboard["panels"] if p["type"] == "row"]
    assert any(title.startswith(layer) for layer in ("Inputs",) for title in rows)
    for layer in ("Predictions", "Performance", "Cost", "Pipeline"):
        assert any(title.startswith(layer) for title in rows), rows
    # Every model panel follows the model variable.
    for panel in dashboard["panels"]:
        if panel["type"] != "row" and not panel["title"].startswith(("Events", "Labels")):
            exprs = " ".join(t["expr"] for t in panel["targets"])
            assert 'model="$model"' in exprs or "model" not in exprs, panel["title"]


def test_the_checker_finds_what_grafana_would_refuse() -> None:
    broken: dict[str, Any] = {
        "title": "x",
        "uid": "has spaces",
        "schemaVersion": 39,
        "templating": {"list": []},
        "panels": [
            {"id": 1, "type": "stat", "title": "a", "gridPos": {"h": 2, "w": 30, "x": 0, "y": 0}},
            {
                "id": 1,
                "type": "timeseries",
                "title": "b",
                "gridPos": {"h": 2, "w": 4, "x": 0, "y": 1},
                "datasource": {"type": "prometheus"},
                "targets": [{"refId": "A", "expr": 'up{job="$job"}'}],
            },
        ],
    }
    problems = " | ".join(grafana_problems(broken))
    for expected in ("uid", "Prometheus data source input", "ids", "24 grid", "no targets"):
        assert expected in problems
    assert "overlaps" in problems and "$job" in problems
