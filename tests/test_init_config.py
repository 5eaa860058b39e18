"""Tests for ``tripwire init``'s config inference."""

from __future__ import annotations

from datetime import datetime

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest

from tripwire.config import parse_config
from tripwire.init_config import infer_config
from tripwire.layers.catalog import CATALOG
from tripwire.monitor import Monitor


def all_roles_table(rows: int = 30) -> pa.Table:
    return pa.table(
        {
            "created": pa.array(
                [datetime(2024, 1, 1, 0, i) for i in range(rows)], pa.timestamp("us")
            ),
            "request_id": [f"r{i}" for i in range(rows)],
            "amount": [float(i) * 1.5 for i in range(rows)],
            "n_items": [i % 4 for i in range(rows)],
            "account_age_days": list(range(rows)),
            "country": pa.array(["FR", "DE", "US"] * (rows // 3)).dictionary_encode(),
            "channel": ["web", "app"] * (rows // 2),
            "is_new": [i % 2 == 0 for i in range(rows)],
            "proba": [i / rows for i in range(rows)],
            "is_fraud_label": [i % 2 for i in range(rows)],
            "label": [i % 2 for i in range(rows)],
            "latency_ms": [10.0 + i for i in range(rows)],
            "cost_usd": [0.001] * rows,
            "status": ["ok"] * (rows - 1) + ["error"],
            "embedding": [[0.1, 0.2]] * rows,
        }
    )


def test_infers_every_role() -> None:
    text = infer_config(all_roles_table(), name="fraud", reference_path="ref.parquet")
    config = parse_config(text)
    cols = config.columns
    assert cols.timestamp == "created"  # by arrow type, not name
    assert cols.id == "request_id"
    assert cols.prediction == "proba"
    assert cols.label == "label"
    assert (cols.latency_ms, cols.cost, cols.status) == ("latency_ms", "cost_usd", "status")
    assert cols.features == {
        "amount": "numeric",
        "n_items": "categorical",  # few integer levels
        "account_age_days": "numeric",  # 30 integer levels
        "country": "categorical",
        "channel": "categorical",
        "is_new": "categorical",
        "is_fraud_label": "categorical",
    }
    assert config.task == "binary"
    assert config.name == "fraud"
    assert config.reference == "ref.parquet"
    assert "embedding" in text.split("name: fraud")[0]  # reported as left out


def test_header_explains_what_to_check() -> None:
    text = infer_config(all_roles_table(), name="fraud", reference_path="ref.parquet")
    assert text.startswith("# tripwire.yaml for fraud")
    assert "read it before trusting" in text
    assert "prediction 'proba' (name)" in text


def test_round_trip_through_parse_config() -> None:
    text = infer_config(all_roles_table(), name="fraud", reference_path="data/ref.parquet")
    config = parse_config(text)
    assert parse_config(config.to_yaml()) == config


def test_starter_rules_cover_every_layer_and_have_runbooks() -> None:
    config = parse_config(infer_config(all_roles_table(), name="fraud", reference_path="r.pq"))
    names = {rule.name for rule in config.alerts}
    # The seed's three rules, then what they miss.
    assert {"psi_top_feature_drift", "prediction_rate_shift", "latency_p95"} <= names
    assert {"null_share_top_features", "out_of_range_inputs", "segment_performance"} <= names
    assert "drift_digest" in names
    layers = {CATALOG[rule.metric].layer for rule in config.alerts}
    assert layers == {"inputs", "predictions", "performance", "cost"}
    assert all(rule.resolve_runbook() is not None for rule in config.alerts)
    assert {rule.severity for rule in config.alerts} == {"page", "ticket", "digest"}


def test_regression_and_name_based_roles() -> None:
    table = pa.table(
        {
            "ts": [1, 2, 3, 4],
            "id": [1, 2, 3, 4],
            "sqft": [50.0, 80.0, 120.0, 65.0],
            "y_pred": [210.0, 300.5, 450.0, 250.0],
            "target": [200.0, 310.0, 430.0, 260.0],
        }
    )
    config = parse_config(infer_config(table, "prices", "ref.csv"))
    assert (config.columns.timestamp, config.columns.id) == ("ts", "id")
    assert (config.columns.prediction, config.columns.label) == ("y_pred", "target")
    assert config.columns.features == {"sqft": "numeric"}
    assert config.task == "regression"


def test_unique_string_column_becomes_id() -> None:
    table = pa.table({"tx": ["a", "b", "c"], "x": [1.0, 2.0, 3.0], "score": [0.2, 0.4, 0.9]})
    config = parse_config(infer_config(table, "m", "ref.parquet"))
    assert config.columns.id == "tx"
    assert config.task == "binary"  # no label, score within [0, 1]


def test_binary_from_unit_scores_and_all_zero_labels() -> None:
    table = pa.table({"x": [1.0, 2.0], "score": [0.1, 0.3], "y": [0, 0]})
    assert parse_config(infer_config(table, "m", "r.parquet")).task == "binary"


def test_error_when_no_prediction_column() -> None:
    table = pa.table({"amount": [1.0], "label": [0]})
    with pytest.raises(ValueError, match="amount, label") as info:
        infer_config(table, "m", "ref.parquet")
    assert "score" in str(info.value) and "prediction" in str(info.value)


def test_error_when_no_feature_column() -> None:
    table = pa.table({"score": [0.5], "label": [1]})
    with pytest.raises(ValueError, match="no feature columns"):
        infer_config(table, "m", "ref.parquet")


def test_commented_performance_segments_and_proxies_load_once_uncommented() -> None:
    text = infer_config(all_roles_table(), name="fraud", reference_path="ref.parquet")
    lines = text.splitlines()
    start = lines.index("# performance: {min_labels: 100, min_coverage: 0.3}")
    end = lines.index("# owners:")
    block = "\n".join(line.removeprefix("# ") for line in lines[start:end])
    config = parse_config(text + "\n" + block + "\n")
    assert config.segments.columns == ["country"] and config.segments.value == "amount"
    assert [p.metric for p in config.proxies] == [
        "proxy_blocked_share",
        "proxy_review_share",
        "proxy_engaged_7d",
    ]


def pets_table(rows: int = 60, seed: int = 0) -> pa.Table:
    """A multiclass model's log: a probability column per class, the predicted class (the
    most probable) and the true one."""
    rng = np.random.default_rng(seed)
    p = rng.dirichlet([1.0, 1.0, 1.0], rows)
    classes = np.array(["cat", "dog", "bird"])
    return pa.table(
        {
            "ts": pa.array([datetime(2024, 1, 1, 0, i % 60) for i in range(rows)]),
            "weight": rng.normal(5.0, 1.0, rows),
            "p_cat": p[:, 0],
            "p_dog": p[:, 1],
            "p_bird": p[:, 2],
            "predicted": classes[p.argmax(axis=1)],
            "label": classes[rng.integers(0, 3, rows)],
        }
    )


def test_multiclass_from_a_probability_column_per_class() -> None:
    table = pets_table()
    text = infer_config(table, "pets", "ref.parquet")
    config = parse_config(text)
    assert config.task == "multiclass"
    cols = config.columns
    assert cols.probabilities == {"cat": "p_cat", "dog": "p_dog", "bird": "p_bird"}
    assert (cols.prediction, cols.label, cols.timestamp) == ("predicted", "label", "ts")
    assert cols.features == {"weight": "numeric"}
    assert "\ndecision_threshold:" not in text  # binary only
    assert "task multiclass (one probability column for each of 3 classes)" in text
    assert "probabilities p_cat, p_dog, p_bird (named for their classes; each row sums" in text
    assert "metric: accuracy" in text  # the multiclass starter rules
    # The config it writes checks the file it came from.
    report = Monitor(config).fit(table).check(table)
    assert report.value("accuracy") is not None and report.value("class_psi") == 0.0


def test_multiclass_classes_by_number_and_the_prediction_by_agreement() -> None:
    rng = np.random.default_rng(1)
    p = rng.dirichlet([1.0] * 4, 40)
    table = pa.table(
        {
            **{f"{k}_proba": p[:, k] for k in range(4)},
            "x": rng.normal(size=40),
            "top": p.argmax(axis=1),  # named for nothing: it agrees with the probabilities
        }
    )
    config = parse_config(infer_config(table, "m", "ref.parquet"))
    assert config.task == "multiclass" and config.columns.prediction == "top"
    assert config.columns.probabilities == {str(k): f"{k}_proba" for k in range(4)}
    assert config.columns.features == {"x": "numeric"}


def test_one_vs_rest_scores_are_multiclass_when_the_label_has_their_classes() -> None:
    table = pets_table()
    # Scores that do not sum to 1 (one-vs-rest), and a predicted class by name.
    scores = {c: pc.multiply(table.column(c), 0.5) for c in ("p_cat", "p_dog", "p_bird")}
    for name, column in scores.items():
        table = table.set_column(table.schema.get_field_index(name), name, column)
    config = parse_config(infer_config(table, "pets", "ref.parquet"))
    assert config.task == "multiclass"
    assert "the classes of label 'label'" in infer_config(table, "pets", "ref.parquet")
    # Without a label of several classes nothing says they are class probabilities.
    table = table.drop_columns(["label", "predicted"])
    table = table.append_column("score", pa.array([0.5] * table.num_rows))
    config = parse_config(infer_config(table, "pets", "ref.parquet"))
    assert config.task == "binary" and "p_cat" in config.columns.features


def test_multiclass_errors_say_what_is_missing() -> None:
    table = pets_table().drop_columns(["predicted"])
    with pytest.raises(ValueError, match="no column holds only their classes"):
        infer_config(table.append_column("score", pa.array([0.5] * table.num_rows)), "m", "r")
    table = pets_table().drop_columns(["p_cat", "p_dog", "p_bird"])
    with pytest.raises(ValueError, match="label 'label' has 3 classes, so the model is multi"):
        infer_config(table.append_column("score", pa.array([0.5] * table.num_rows)), "m", "r")
