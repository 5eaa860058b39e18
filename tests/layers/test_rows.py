"""Rows that Monitor.check produces: canonical metric names, default verdicts and ranking."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy.optimize import brentq

from tripwire.config import parse_config
from tripwire.layers.inputs import CATEGORICAL_METRICS, NUMERIC_METRICS
from tripwire.layers.thresholds import judge
from tripwire.monitor import Monitor

BINARY = """
name: rows
task: binary
columns:
  features: {x: numeric, c: categorical}
  prediction: score
  label: label
  latency_ms: latency
  cost: cost
  status: status
"""

REGRESSION = BINARY.replace("task: binary", "task: regression")

NUMERIC = {
    "schema",
    "psi",
    "ks",
    "js",
    "wasserstein",
    "wasserstein_norm",
    "null_share",
    "out_of_range_share",
}
CATEGORICAL = {"schema", "psi", "js", "null_share", "chi2_pvalue", "unseen_share"}


def _frame(rng: np.random.Generator, n: int, regression: bool = False) -> pd.DataFrame:
    score = rng.normal(10, 2, n) if regression else rng.random(n)
    label = score + rng.normal(0, 1, n) if regression else (rng.random(n) < score).astype(float)
    return pd.DataFrame(
        {
            "x": rng.normal(0, 1, n),
            "c": rng.choice(["a", "b", "c"], n),
            "score": score,
            "label": label,
            "latency": rng.gamma(2.0, 30.0, n),
            "cost": rng.gamma(2.0, 0.001, n),
            "status": rng.choice(["ok", "500"], n, p=[0.98, 0.02]),
        }
    )


def _metrics(report, layer: str, feature: str | None = None) -> list[str]:
    return [r.metric for r in report.select(layer=layer) if r.feature == feature]


def test_binary_metric_names_per_layer():
    rng = np.random.default_rng(0)
    report = Monitor(parse_config(BINARY)).fit(_frame(rng, 3000)).check(_frame(rng, 1000))
    assert set(_metrics(report, "inputs", "x")) == NUMERIC
    assert set(_metrics(report, "inputs", "c")) == CATEGORICAL
    assert set(NUMERIC_METRICS) | {"schema"} == NUMERIC
    assert set(CATEGORICAL_METRICS) | {"schema"} == CATEGORICAL
    assert len(_metrics(report, "inputs", "x")) == len(NUMERIC)  # one row per metric
    assert _metrics(report, "predictions") == ["score_psi", "mean_pred", "positive_rate", "entropy"]
    assert _metrics(report, "performance") == [
        "label_coverage",
        "auc",
        "precision",
        "recall",
        "f1",
        "accuracy",
        "log_loss",
        "brier",
        "ece",
        *(f"estimated_{m}" for m in ("auc", "precision", "recall", "f1", "accuracy")),
        *(f"estimation_error_{m}" for m in ("auc", "precision", "recall", "f1", "accuracy")),
    ]
    assert _metrics(report, "cost") == ["p50_ms", "p95_ms", "p99_ms", "error_rate", "cost_per_1k"]
    assert {r.segment for r in report.rows} == {"all"}
    assert all(r.status != "no_data" for r in report.rows), [
        (r.metric, r.reason) for r in report.rows if r.status == "no_data"
    ]


def test_regression_metric_names_per_layer():
    rng = np.random.default_rng(1)
    monitor = Monitor(parse_config(REGRESSION)).fit(_frame(rng, 3000, regression=True))
    report = monitor.check(_frame(rng, 1000, regression=True))
    assert _metrics(report, "predictions") == ["score_psi", "mean_pred"]
    assert _metrics(report, "performance") == [
        "label_coverage",
        "mae",
        "rmse",
        "r2",
        "estimated_mae",
        "estimated_rmse",
        "estimation_error_mae",
        "estimation_error_rmse",
    ]
    assert set(_metrics(report, "inputs", "x")) == NUMERIC


def test_row_values_match_independent_references():
    from scipy import stats
    from sklearn import metrics as skm

    rng = np.random.default_rng(2)
    ref, cur = _frame(rng, 4000), _frame(rng, 2000)
    cur["x"] += 0.4
    report = Monitor(parse_config(BINARY)).fit(ref).check(cur)
    ks = report.select(metric="ks", feature="x")[0]
    exact = stats.ks_2samp(ref["x"], cur["x"]).statistic
    assert ks.value <= exact + 1e-12 <= ks.value + ks.bound + 2e-12
    w = report.select(metric="wasserstein", feature="x")[0]
    assert abs(w.value - stats.wasserstein_distance(ref["x"], cur["x"])) <= w.bound + 1e-9
    assert report.value("wasserstein_norm", feature="x") == pytest.approx(
        w.value / np.std(ref["x"]), rel=1e-9
    )
    assert report.value("auc") == pytest.approx(
        skm.roc_auc_score(cur["label"], cur["score"]), abs=report.select(metric="auc")[0].bound
    )
    assert report.value("mean_pred") == pytest.approx(cur["score"].mean(), rel=1e-12)
    assert report.value("positive_rate") == pytest.approx((cur["score"] >= 0.5).mean(), rel=1e-12)
    assert report.value("error_rate") == pytest.approx((cur["status"] != "ok").mean(), rel=1e-12)
    assert report.value("cost_per_1k") == pytest.approx(1000 * cur["cost"].mean(), rel=1e-12)
    p95 = np.quantile(cur["latency"], 0.95, method="lower")
    assert abs(report.value("p95_ms") - p95) <= 0.005 * p95 * (1 + 1e-9)
    assert report.value("label_coverage") == 1.0


# ------------------------------------------------------------------ default PSI verdicts


def _psi_of_shares(a: np.ndarray) -> float:
    e = np.full(10, 0.1)
    a = np.maximum(a, 1e-6)
    return float(np.sum((a - e) * np.log(a / e)))


def _current_with_psi(target: float, n: int = 100_000) -> tuple[np.ndarray, float]:
    """Integers 0..9 whose shares give PSI close to ``target`` against ten equal buckets,
    and the exact PSI of those counts by hand."""

    def shares(d: float) -> np.ndarray:
        return np.array([0.1 + d] + [0.1 - d / 9] * 9)

    d = brentq(lambda d: _psi_of_shares(shares(d)) - target, 0.0, 0.8)
    counts = np.round(shares(d) * n).astype(int)
    return np.repeat(np.arange(10.0), counts), _psi_of_shares(counts / counts.sum())


@pytest.mark.parametrize(("target", "status"), [(0.05, "ok"), (0.15, "watch"), (0.3, "alert")])
def test_psi_default_verdicts(target, status):
    config = parse_config(
        "{name: p, task: regression, columns: {features: {x: numeric}, prediction: score}}"
    )
    reference = pd.DataFrame({"x": np.repeat(np.arange(10.0), 1000), "score": 1.0})
    values, psi = _current_with_psi(target)
    assert psi == pytest.approx(target, abs=1e-3)
    report = Monitor(config).fit(reference).check(pd.DataFrame({"x": values, "score": 1.0}))
    row = report.select(metric="psi", feature="x")[0]
    assert row.value == pytest.approx(psi, abs=1e-12)
    assert row.status == status
    assert row.threshold == 0.25
    assert judge("psi", target) == (status, 0.25)


def test_judge_defaults():
    assert judge("psi", 0.05) == ("ok", 0.25)
    assert judge("psi", 0.15) == ("watch", 0.25)
    assert judge("psi", 0.3) == ("alert", 0.25)
    assert judge("psi", float("nan")) == ("no_data", None)
    assert judge("wasserstein", 3.0) == ("info", None)
    assert judge("auc", 0.80, reference=0.90)[0] == "alert"
    assert judge("auc", 0.95, reference=0.90)[0] == "ok"
    assert judge("mean_pred", 0.4, reference=1.0)[0] == "alert"  # both directions
    assert judge("mean_pred", 1.3, reference=1.0)[0] == "watch"
    assert judge("p95_ms", 120.0, reference=100.0)[0] == "ok"
    assert judge("p95_ms", 200.0)[0] == "info"  # relative rule without a reference


# ------------------------------------------------------------------ ranking


RANKED = """
name: ranked
task: regression
columns:
  features: {quiet: numeric, minor: numeric, major: numeric, label_ish: categorical}
  prediction: score
importance: {quiet: 0.3, minor: 0.05, major: 0.6, label_ish: 0.05}
"""


def _ranking_data(rng: np.random.Generator, n: int, shift: float) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "quiet": rng.normal(0, 1, n),
            "minor": rng.normal(shift, 1, n),
            "major": rng.normal(shift, 1, n),
            "label_ish": rng.choice(["a", "b"], n),
            "score": rng.random(n),
        }
    )


def test_inputs_ranked_by_importance_times_psi():
    rng = np.random.default_rng(3)
    monitor = Monitor(parse_config(RANKED)).fit(_ranking_data(rng, 5000, 0.0))
    report = monitor.check(_ranking_data(rng, 3000, 1.0))
    order = report.features()
    assert order[0] == "major"
    assert order.index("minor") > order.index("major")
    importance = {"quiet": 0.3, "minor": 0.05, "major": 0.6, "label_ish": 0.05}
    keys = []
    for feature in order:
        rows = report.select(layer="inputs", feature=feature)
        assert {r.importance for r in rows} == {importance[feature]}
        keys.append(importance[feature] * report.value("psi", feature=feature))
    assert keys == sorted(keys, reverse=True)
    # A feature's rows stay together, schema row first.
    features = [r.feature for r in report.select(layer="inputs")]
    assert features == [f for f in order for _ in range(features.count(f))]


def test_without_importance_inputs_ranked_by_psi():
    rng = np.random.default_rng(4)
    config = parse_config(RANKED.split("importance:")[0])
    monitor = Monitor(config).fit(_ranking_data(rng, 5000, 0.0))
    current = _ranking_data(rng, 3000, 0.0)
    current["minor"] += 2.0
    current["major"] += 0.5
    report = monitor.check(current)
    assert report.features()[:2] == ["minor", "major"]
    psis = [report.value("psi", feature=f) for f in report.features()]
    assert psis == sorted(psis, reverse=True)
