"""A multiclass model end to end: config, check (CLI and Python), rows against scikit-learn,
the report, and alert rules on its predicted classes and estimated accuracy.

The world: three classes whose true probabilities are a softmax of two features; the model's
probabilities are over-confident (logits / 0.6) and its predicted class is their argmax. The
current window's inputs shift, which changes both the class mix and the accuracy.
"""

from __future__ import annotations

import datetime as dt
import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from click.testing import CliRunner
from sklearn import metrics

from tripwire.alerts.gate import decide
from tripwire.cli import cli
from tripwire.config import ConfigError, parse_config
from tripwire.job import run
from tripwire.monitor import Monitor
from tripwire.store import DuckDBStore

CLASSES = np.array(["cat", "dog", "bird"])
DAY = dt.timedelta(days=1)
WEIGHTS = np.array([[1.0, -0.5, 0.2], [0.3, 0.8, -1.0]])
CONFIG = """
name: pets
task: multiclass
columns:
  timestamp: ts
  features: {x1: numeric, x2: numeric}
  prediction: predicted
  label: label
  probabilities: {cat: p_cat, dog: p_dog, bird: p_bird}
label_lag: 14d
importance: {x1: 0.6, x2: 0.4}
"""
RULES = """
alerts:
  - name: class_mix
    metric: class_psi
    threshold: 0.25
    window: 2d
    severity: ticket
    runbook: {what_it_means: the predicted classes moved, what_to_check: inputs,
              who_owns_the_fix: DS}
  - name: estimated_accuracy_moved
    metric: estimated_accuracy
    baseline: reference
    threshold: 0.03
    direction: both
    window: 2d
    severity: page
    runbook: {what_it_means: accuracy estimated without labels moved,
              what_to_check: the class mix, who_owns_the_fix: DS}
"""


def _softmax(logits: np.ndarray) -> np.ndarray:
    e = np.exp(logits - logits.max(axis=1, keepdims=True))
    out: np.ndarray = e / e.sum(axis=1, keepdims=True)
    return out


def frame(rng: np.random.Generator, n: int, shift: float = 0.0) -> pd.DataFrame:
    x = rng.normal(shift, 1.0, (n, 2))
    truth, p = _softmax(x @ WEIGHTS), _softmax(x @ WEIGHTS / 0.6)
    y = np.minimum((rng.random(n)[:, None] > truth.cumsum(axis=1)).sum(axis=1), 2)
    return pd.DataFrame(
        {
            "x1": x[:, 0],
            "x2": x[:, 1],
            "p_cat": p[:, 0],
            "p_dog": p[:, 1],
            "p_bird": p[:, 2],
            "predicted": CLASSES[p.argmax(axis=1)],
            "label": CLASSES[y],
        }
    )


@pytest.fixture(scope="module")
def reference() -> pd.DataFrame:
    return frame(np.random.default_rng(0), 30_000)


@pytest.fixture(scope="module")
def monitor(reference: pd.DataFrame) -> Monitor:
    return Monitor(parse_config(CONFIG)).fit(reference)


def test_the_config_names_a_probability_column_per_class() -> None:
    config = parse_config(CONFIG)
    assert config.columns.probabilities == {"cat": "p_cat", "dog": "p_dog", "bird": "p_bird"}
    numbered = CONFIG.replace("{cat: p_cat, dog: p_dog, bird: p_bird}", "{0: a, 1: b, 2.0: c}")
    assert list(parse_config(numbered).columns.probabilities or {}) == ["0", "1", "2"]
    with pytest.raises(ConfigError, match=r"multiclass needs columns\.probabilities"):
        parse_config(
            CONFIG.replace("  probabilities: {cat: p_cat, dog: p_dog, bird: p_bird}\n", "")
        )
    with pytest.raises(ConfigError, match=r"columns\.probabilities is for task: multiclass"):
        parse_config(CONFIG.replace("task: multiclass", "task: binary"))
    with pytest.raises(ConfigError, match="both a feature and a probability"):
        parse_config(CONFIG.replace("p_bird}", "x1}"))


def test_realized_rows_against_scikit_learn(monitor: Monitor) -> None:
    window = frame(np.random.default_rng(1), 8000, shift=0.5)
    report = monitor.check(window)
    y, pred = window["label"], window["predicted"]
    assert report.value("accuracy") == pytest.approx(metrics.accuracy_score(y, pred), abs=1e-12)
    for name, scorer in (
        ("precision", metrics.precision_score),
        ("recall", metrics.recall_score),
        ("f1", metrics.f1_score),
    ):
        assert report.value(name) == pytest.approx(scorer(y, pred, average="macro"), abs=1e-12)
    # scikit-learn orders the probability columns by sorted class name.
    ordered = window[[f"p_{c}" for c in sorted(CLASSES)]].to_numpy()
    auc = metrics.roc_auc_score(y, ordered, multi_class="ovr", average="macro")
    row = report.select(metric="auc")[0]
    assert row.value is not None and row.bound is not None
    assert abs(row.value - auc) <= row.bound + 1e-12
    assert row.ci_low < row.value < row.ci_high  # type: ignore[operator]
    accuracy = report.select(metric="accuracy")[0]
    assert accuracy.n == 8000 and accuracy.ci_low is not None


def test_prediction_rows_class_shares_and_psi(monitor: Monitor, reference: pd.DataFrame) -> None:
    window = frame(np.random.default_rng(2), 8000, shift=0.8)
    window.loc[:9, "predicted"] = "fish"  # none of the classes
    report = monitor.check(window)
    shares = {r.metric: r for r in report.select(layer="predictions") if "class_share" in r.metric}
    assert set(shares) == {f"class_share_{c}" for c in CLASSES} | {"unknown_class_share"}
    assert shares["unknown_class_share"].value == pytest.approx(10 / 8000)
    current = window["predicted"].value_counts(normalize=True)
    before = reference["predicted"].value_counts(normalize=True)
    for name in CLASSES:
        assert shares[f"class_share_{name}"].value == pytest.approx(current[name], abs=1e-12)
        assert shares[f"class_share_{name}"].reference == pytest.approx(before[name], abs=1e-12)
    # DESIGN.md's PSI, written out, over the classes plus "none of them" (shares floored 1e-6).
    a = np.maximum([*(current.get(c, 0.0) for c in CLASSES), current["fish"]], 1e-6)
    e = np.maximum([*(before.get(c, 0.0) for c in CLASSES), 0.0], 1e-6)
    psi = float(np.sum((a - e) * np.log(a / e)))
    row = report.select(metric="class_psi")[0]
    assert row.value == pytest.approx(psi, rel=1e-9) and row.status == "alert"
    entropy = report.select(metric="entropy")[0]
    p = window[["p_cat", "p_dog", "p_bird"]].to_numpy()
    assert entropy.value == pytest.approx(float(np.mean(-(p * np.log2(p)).sum(axis=1))))
    top = report.select(metric="mean_pred")[0]
    assert top.value == pytest.approx(float(p.max(axis=1).mean()))


def test_estimated_rows_follow_the_shift(monitor: Monitor) -> None:
    rng = np.random.default_rng(3)
    before, after = frame(rng, 20_000), frame(rng, 20_000, shift=1.0)
    for window in (before, after):
        report = monitor.check(window.drop(columns=["label"]))
        assert report.value("accuracy") is None  # no labels yet
        for name, scorer in (("accuracy", metrics.accuracy_score), ("f1", metrics.f1_score)):
            row = report.select(metric=f"estimated_{name}")[0]
            kwargs = {"average": "macro"} if name == "f1" else {}
            truth = scorer(window["label"], window["predicted"], **kwargs)
            assert row.ci_low is not None and row.ci_high is not None
            half = (row.ci_high - row.ci_low) / 2
            assert abs(row.value - truth) < 2.5 * half + 0.01, (name, row.value, truth)


def test_check_through_the_cli_writes_rows_and_a_report(
    reference: pd.DataFrame, tmp_path: Path
) -> None:
    config = tmp_path / "tripwire.yaml"
    config.write_text(CONFIG, encoding="utf-8")
    reference.to_parquet(tmp_path / "reference.parquet")
    frame(np.random.default_rng(4), 5000, shift=0.8).to_parquet(tmp_path / "today.parquet")
    args = ["check", "--config", str(config), "--reference", str(tmp_path / "reference.parquet")]
    args += ["--current", str(tmp_path / "today.parquet"), "--html", str(tmp_path / "r.html")]
    result = CliRunner().invoke(cli, [*args, "--json"])
    assert result.exit_code == 0, result.output
    rows = json.loads(result.stdout)["rows"]
    names = {(r["layer"], r["metric"]) for r in rows}
    assert {("predictions", "class_psi"), ("predictions", "class_share_bird")} <= names
    assert {("performance", m) for m in ("auc", "f1", "estimated_auc", "estimated_f1")} <= names
    assert {("performance", "estimation_error_accuracy")} <= names
    html = (tmp_path / "r.html").read_text(encoding="utf-8")
    assert "Estimated without labels" in html and "No concept drift" in html
    assert ">class_share_bird</th>" in html
    assert "leading indicator" in html  # labels 14 days late
    terminal = CliRunner().invoke(cli, args)
    assert terminal.exit_code == 0 and "leading indicator" in terminal.stdout


def test_rules_on_the_class_mix_and_estimated_accuracy_fire(reference: pd.DataFrame) -> None:
    config = parse_config(CONFIG + RULES)
    monitor = Monitor(config).fit(reference)
    rng = np.random.default_rng(5)
    days = []
    for day in range(6):
        window = frame(rng, 3000, shift=0.0 if day < 3 else 1.2).drop(columns=["label"])
        window["ts"] = dt.datetime(2026, 5, 1) + dt.timedelta(days=day, hours=12)
        days.append(window)
    table = pa.Table.from_pandas(pd.concat(days, ignore_index=True), preserve_index=False)
    with DuckDBStore(":memory:") as store:
        result = run(monitor, store, table, dt.timedelta(days=1), deliver=False)
    fired = {i.rule: i for i in result.incidents if i.is_open}
    assert set(fired) == {"class_mix", "estimated_accuracy_moved"}
    assert all(i.evidence_start == dt.datetime(2026, 5, 4) for i in fired.values())
    assert math.isfinite(fired["estimated_accuracy_moved"].value or math.nan)
    # Labels two weeks late: the class mix (prediction drift) and the estimate retrain.
    assert decide(config, result.incidents, monitor.importance_).decision == "retrain"


def test_stored_events_with_numbered_classes_and_probabilities_among_the_features() -> None:
    """Through the store: events carry the predicted class as a number and the probabilities
    among their features; labels arrive later as numbers."""
    from tripwire.events import Label, validate_events
    from tripwire.store.events import stored_windows

    numbered = CONFIG.replace(
        "{cat: p_cat, dog: p_dog, bird: p_bird}", "{0: p_cat, 1: p_dog, 2: p_bird}"
    )
    config = parse_config(numbered.replace("  timestamp: ts\n", "  timestamp: ts\n  id: id\n"))
    codes = {name: k for k, name in enumerate(CLASSES)}
    rng = np.random.default_rng(6)
    reference = frame(rng, 20_000).replace({"predicted": codes, "label": codes}).infer_objects()
    monitor = Monitor(config).fit(reference)
    window = (
        frame(rng, 3000, shift=0.5).replace({"predicted": codes, "label": codes}).infer_objects()
    )
    moment = dt.datetime(2026, 5, 1, 12)
    payloads = [
        {
            "event_id": f"e{i}",
            "model": "pets",
            "timestamp": moment,
            "features": {
                "x1": r.x1,
                "x2": r.x2,
                "p_cat": r.p_cat,
                "p_dog": r.p_dog,
                "p_bird": r.p_bird,
            },
            "prediction": float(r.predicted),
        }
        for i, r in enumerate(window.itertuples())
    ]
    events, rejected = validate_events(config, payloads)
    assert not rejected
    labels = [
        Label(event_id=f"e{i}", model="pets", label=float(y), labelled_at=moment + 3 * DAY)
        for i, y in enumerate(window["label"])
    ]
    with DuckDBStore(":memory:") as store:
        store.write_events(events)
        store.write_labels(labels)
        (table,) = stored_windows(store, config, None, None, DAY)
    report = monitor.check(table)
    assert not [r for r in report.rows if r.layer == "inputs" and r.reason]  # no schema notes
    y, pred = window["label"].astype(int), window["predicted"].astype(int)
    assert report.value("accuracy") == pytest.approx(metrics.accuracy_score(y, pred))
    assert report.value("f1") == pytest.approx(metrics.f1_score(y, pred, average="macro"))
    shares = {r.metric for r in report.select(layer="predictions") if "share" in r.metric}
    assert shares == {"class_share_0", "class_share_1", "class_share_2"}
    assert report.value("estimated_accuracy") is not None
