"""Tests for the typed ``tripwire.yaml`` and its error messages."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from tripwire.config import (
    AlertRule,
    ConfigError,
    ModelConfig,
    Runbook,
    TopK,
    load_config,
    parse_config,
)
from tripwire.durations import format_duration, parse_duration

# Line numbers in the error tests below count from this text's first line.
BASE = """\
name: fraud
task: binary
columns:
  timestamp: ts
  features:
    amount: numeric
    country: categorical
  prediction: score
  label: is_fraud
"""

FULL = """\
name: fraud-detector
task: binary
columns:
  timestamp: event_time
  id: request_id
  features:
    amount: numeric
    country: categorical
    account_age_days: numeric
  prediction: score
  label: is_fraud
  segments: [country]
  latency_ms: latency
  cost: cost_usd
  status: http_status
  ok_status: [ok, 200]
decision_threshold: 0.7
label_lag: 14d
window: 1h
importance:
  amount: 0.4
  country: 0.1
reference: data/reference.parquet
business_value:
  annual_usd: 2500000
  value_column: amount
owners:
  - name: Ada
    role: model owner
    contact: ada@example.com
  - name: Fraud platform
alerts:
  - name: drift_top3
    metric: psi
    feature_set: {top_k: 3}
    segment: [country=DE]
    threshold: calibrated
    direction: above
    window: 2d
    severity: digest
    runbook:
      what_it_means: Inputs drifted.
      what_to_check: Upstream pipeline.
      who_owns_the_fix: Data engineering.
    owner: Ada
    route: "#fraud-alerts"
  - name: recall_drop
    metric: recall
    threshold: 0.6
    direction: below
    runbook: Recall fell below target.
routes:
  "#fraud-alerts":
    - {type: slack, webhook_url_env: FRAUD_SLACK_URL}
  oncall:
    - {type: pagerduty, routing_key_env: PD_ROUTING_KEY}
    - {type: email, to: [oncall@example.com], smtp_host: 127.0.0.1, smtp_port: 2525}
severity_routes: {page: oncall, ticket: "#fraud-alerts", digest: "#fraud-alerts"}
"""

# The design document's seed rules, verbatim, with the runbooks every rule now needs.
SEED_ALERTS = """\
importance: {amount: 0.4, country: 0.1}
alerts:
  - name: psi_top_feature_drift
    metric: psi
    feature_set: top_quartile_shap
    threshold: 0.25
    window: 3d
    severity: page
    runbook: A top-quartile feature drifted for three days.
  - name: prediction_rate_shift
    metric: mean_pred
    baseline: 7d_trailing
    threshold_z: 3.0
    severity: ticket
    runbook: The mean prediction left its trailing band.
  - name: latency_p95
    metric: p95_ms
    threshold: 350
    severity: page
    runbook: Serving got slow.
"""


def error_of(text: str) -> str:
    with pytest.raises(ConfigError) as info:
        parse_config(text, source="tripwire.yaml")
    return str(info.value)


def test_full_config_loads_every_field() -> None:
    config = parse_config(FULL)
    cols = config.columns
    assert (cols.timestamp, cols.id, cols.prediction, cols.label) == (
        "event_time",
        "request_id",
        "score",
        "is_fraud",
    )
    assert cols.features == {
        "amount": "numeric",
        "country": "categorical",
        "account_age_days": "numeric",
    }
    assert cols.segments == ["country"]
    assert (cols.latency_ms, cols.cost, cols.status) == ("latency", "cost_usd", "http_status")
    assert cols.ok_status == ["ok", "200"]
    assert config.decision_threshold == 0.7
    assert config.label_lag == timedelta(days=14)
    assert config.window == timedelta(hours=1)
    assert config.importance == {"amount": 0.4, "country": 0.1}
    assert config.reference == "data/reference.parquet"
    assert config.business_value is not None
    assert config.business_value.annual_usd == 2_500_000
    assert config.business_value.value_column == "amount"
    assert [o.name for o in config.owners] == ["Ada", "Fraud platform"]
    assert config.owners[0].contact == "ada@example.com"
    assert config.owners[1].role is None

    drift, recall = config.alerts
    assert drift.feature_set == TopK(top_k=3)
    assert drift.segment == ["country=DE"]
    assert drift.threshold == "calibrated"
    assert drift.window == timedelta(days=2)
    assert drift.severity == "digest"
    assert isinstance(drift.runbook, Runbook)
    assert drift.runbook.who_owns_the_fix == "Data engineering."
    assert (drift.owner, drift.route) == ("Ada", "#fraud-alerts")
    assert recall.feature_set == "all"
    assert recall.direction == "below"
    assert recall.resolve_runbook() == Runbook(
        what_it_means="Recall fell below target.", what_to_check="", who_owns_the_fix=""
    )


def test_defaults() -> None:
    config = parse_config(BASE)
    assert config.decision_threshold == 0.5
    assert config.label_lag == timedelta(0)
    assert config.window == timedelta(days=1)
    assert config.columns.ok_status == ["ok", "success", "200"]
    assert config.alerts == [] and config.owners == [] and config.columns.segments == []
    assert config.importance is None and config.reference is None


def test_seed_alert_rules_load_verbatim() -> None:
    config = parse_config(BASE + SEED_ALERTS)
    drift, rate, latency = config.alerts
    assert drift == AlertRule(
        name="psi_top_feature_drift",
        metric="psi",
        feature_set="top_quartile_shap",
        threshold=0.25,
        window=timedelta(days=3),
        severity="page",
        runbook="A top-quartile feature drifted for three days.",
    )
    assert (rate.metric, rate.baseline, rate.threshold_z, rate.severity) == (
        "mean_pred",
        "7d_trailing",
        3.0,
        "ticket",
    )
    assert rate.threshold is None
    assert (latency.metric, latency.threshold, latency.severity) == ("p95_ms", 350.0, "page")
    # Unset direction means "the way the metric gets worse" (above, for p95_ms).
    assert latency.feature_set == "all" and latency.direction is None


def test_to_yaml_round_trips_without_nones() -> None:
    config = parse_config(FULL)
    text = config.to_yaml()
    assert "null" not in text
    assert "label_lag: 2w" in text and "window: 2d" in text
    assert parse_config(text) == config


def test_importance_mapping_fills_missing_features_with_zero() -> None:
    config = parse_config(FULL)
    assert config.resolve_importance() == {
        "amount": 0.4,
        "country": 0.1,
        "account_age_days": 0.0,
    }


def test_importance_csv_relative_to_config(tmp_path: Path) -> None:
    (tmp_path / "shap.csv").write_text("feature,importance\namount,0.5\ncountry, 0.25\n")
    path = tmp_path / "tripwire.yaml"
    path.write_text(BASE + "importance: shap.csv\n")
    config = load_config(path)
    assert config.resolve_importance() == {"amount": 0.5, "country": 0.25}


@pytest.mark.parametrize(
    ("csv_text", "expected"),
    [
        ("name,value\namount,1\n", "shap.csv:1: expected a header with columns feature,importance"),
        ("feature,importance\namount,1\ncountry,lots\n", "shap.csv:3: importance of 'country'"),
        ("feature,importance\namount,-1\n", "shap.csv:2: importance of 'amount'"),
        ("feature,importance\namount,1\namount,2\n", "shap.csv:3: feature 'amount' listed twice"),
        ("feature,importance\nincome,1\n", "features not in columns.features: 'income'"),
    ],
)
def test_importance_csv_errors(tmp_path: Path, csv_text: str, expected: str) -> None:
    (tmp_path / "shap.csv").write_text(csv_text)
    (tmp_path / "tripwire.yaml").write_text(BASE + "importance: shap.csv\n")
    config = load_config(tmp_path / "tripwire.yaml")
    with pytest.raises(ConfigError, match=expected):
        config.resolve_importance()


def test_importance_csv_missing_file(tmp_path: Path) -> None:
    (tmp_path / "tripwire.yaml").write_text(BASE + "importance: nowhere.csv\n")
    config = load_config(tmp_path / "tripwire.yaml")
    with pytest.raises(ConfigError, match=r"nowhere\.csv: cannot read importance file"):
        config.resolve_importance()


def test_relative_paths_resolve_against_config_directory(tmp_path: Path) -> None:
    (tmp_path / "models").mkdir()
    path = tmp_path / "models" / "tripwire.yaml"
    path.write_text(BASE + "reference: data/ref.parquet\n")
    config = load_config(path)
    assert config.source == path.absolute()
    assert config.reference is not None
    assert config.resolve_path(config.reference) == tmp_path / "models" / "data" / "ref.parquet"
    assert config.resolve_path("/abs/ref.parquet") == Path("/abs/ref.parquet")
    assert parse_config(BASE).resolve_path("ref.parquet") == Path("ref.parquet")


def test_wrong_feature_type_names_file_line_and_field() -> None:
    message = error_of(BASE.replace("amount: numeric", "amount: number"))
    assert message == (
        "tripwire.yaml:6: columns.features.amount: "
        "expected one of 'numeric', 'categorical', got 'number'"
    )


def test_missing_required_field_points_at_parent() -> None:
    message = error_of(BASE.replace("  prediction: score\n", ""))
    assert message == "tripwire.yaml:3: columns.prediction: required field missing"


def test_missing_top_level_field() -> None:
    assert error_of(BASE.replace("task: binary\n", "")) == (
        "tripwire.yaml:1: task: required field missing"
    )


def test_unknown_key_is_reported_with_suggestion() -> None:
    message = error_of(BASE.replace("  label:", "  lable:"))
    assert message == "tripwire.yaml:9: columns.lable: unknown field 'lable'; did you mean 'label'?"


def test_unknown_key_in_alert_rule() -> None:
    message = error_of(BASE + SEED_ALERTS.replace("severity: ticket", "severty: ticket"))
    assert message.startswith("tripwire.yaml:23: alerts[1].severty: unknown field 'severty'")


def test_bad_duration() -> None:
    message = error_of(BASE + "window: 3 days\n")
    assert message.startswith("tripwire.yaml:10: window: invalid duration '3 days': expected")


def test_bad_duration_inside_alert() -> None:
    message = error_of(BASE + SEED_ALERTS.replace("window: 3d", "window: 3x"))
    assert message.startswith("tripwire.yaml:16: alerts[0].window: invalid duration '3x'")


def test_role_clash_names_column_and_line() -> None:
    message = error_of(BASE.replace("label: is_fraud", "label: amount"))
    assert message == (
        "tripwire.yaml:9: columns.label: column 'amount' is both a feature and the label column"
    )


def test_role_clash_between_two_roles() -> None:
    message = error_of(BASE.replace("timestamp: ts", "timestamp: score"))
    assert message == (
        "tripwire.yaml:8: columns.prediction: "
        "column 'score' is both the timestamp and the prediction column"
    )


def test_yaml_syntax_error_has_line() -> None:
    message = error_of(BASE + "alerts:\n  - name: x\n   metric: y\n")
    assert message.startswith("tripwire.yaml:12: invalid YAML:")


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"nope\.yaml: cannot read config file"):
        load_config(tmp_path / "nope.yaml")


@pytest.mark.parametrize("text", ["", "- a\n- b\n", "just text\n"])
def test_top_level_must_be_mapping(text: str) -> None:
    assert "expected a mapping" in error_of(text)


@pytest.mark.parametrize("task", ["llm"])
def test_planned_tasks_are_not_supported_yet(task: str) -> None:
    message = error_of(BASE.replace("task: binary", f"task: {task}"))
    assert message.startswith(f"tripwire.yaml:2: task: '{task}' is not supported yet")


def test_all_errors_listed_one_per_line() -> None:
    text = BASE.replace("amount: numeric", "amount: number") + "window: soon\nseverity: page\n"
    lines = error_of(text).splitlines()
    assert [line.split(": ")[0] for line in lines] == [
        "tripwire.yaml:6",
        "tripwire.yaml:10",
        "tripwire.yaml:11",
    ]


def test_union_errors_are_merged_and_deep_errors_win() -> None:
    rule = "alerts:\n  - name: x\n    metric: y\n    feature_set: {top_k: 0}\n    threshold: hi\n"
    lines = error_of(BASE + rule).splitlines()
    assert lines == [
        "tripwire.yaml:13: alerts[0].feature_set.top_k: expected a number > 0, got 0",
        "tripwire.yaml:14: alerts[0].threshold: expected a number, or 'calibrated', got 'hi'",
    ]


@pytest.mark.parametrize(
    ("extra", "expected"),
    [
        ("importance: {income: 1}\n", "tripwire.yaml:10: importance.income: 'income' is not in"),
        ("decision_threshold: 1.5\n", "tripwire.yaml:10: decision_threshold: expected a prob"),
        ("window: 1d\nwindow: 2d\n", "tripwire.yaml:11: key 'window' appears twice"),
        (
            "alerts:\n  - {name: a, metric: psi, threshold: 0.2, runbook: r}\n"
            "  - {name: a, metric: ks, threshold: 0.1, runbook: r}\n",
            "tripwire.yaml:12: alerts[1].name: duplicate alert name 'a'",
        ),
    ],
)
def test_cross_field_checks(extra: str, expected: str) -> None:
    assert error_of(BASE + extra).startswith(expected)


def test_model_config_is_usable_from_python() -> None:
    config = ModelConfig.model_validate(
        {
            "name": "m",
            "task": "regression",
            "columns": {"features": {"x": "numeric"}, "prediction": "p"},
            "window": timedelta(hours=6),
        }
    )
    assert config.window == timedelta(hours=6)
    assert config.source is None


@pytest.mark.parametrize(
    ("text", "td", "canonical"),
    [
        ("30s", timedelta(seconds=30), "30s"),
        ("15m", timedelta(minutes=15), "15m"),
        ("1h", timedelta(hours=1), "1h"),
        ("1d", timedelta(days=1), "1d"),
        ("7d", timedelta(days=7), "1w"),
        ("2w", timedelta(weeks=2), "2w"),
        ("0d", timedelta(0), "0d"),
        ("36h", timedelta(hours=36), "36h"),
    ],
)
def test_durations_round_trip(text: str, td: timedelta, canonical: str) -> None:
    assert parse_duration(text) == td
    assert format_duration(td) == canonical
    assert parse_duration(canonical) == td


@pytest.mark.parametrize("text", ["", "3", "1.5h", "-1d", "3 days", "1y"])
def test_bad_durations(text: str) -> None:
    with pytest.raises(ValueError, match=f"invalid duration '{text}'"):
        parse_duration(text)
