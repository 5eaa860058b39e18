"""Performance with few labels: coverage and n on every row, verdicts withheld until the labels
suffice, confidence intervals, and small segments that cannot page on noise."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from tripwire.config import parse_config
from tripwire.layers.rows import MetricRow
from tripwire.monitor import Monitor
from tripwire.report.model import Report

Z = 1.959963984540054

CONFIG = """
name: gated
task: binary
columns:
  features: {x: numeric}
  prediction: score
  label: label
  segments: [user]
performance: {min_labels: 200, min_coverage: 0.3}
segments: {min_rows: 100}
"""


def _frame(rng: np.random.Generator, n: int, new_share: float = 0.3) -> pd.DataFrame:
    """Calibrated scores: each label is 1 with the probability its score says."""
    score = rng.beta(1.0, 4.0, n)
    return pd.DataFrame(
        {
            "x": rng.normal(0, 1, n),
            "user": np.where(rng.random(n) < new_share, "new", "returning"),
            "score": score,
            "label": (rng.random(n) < score).astype(float),
        }
    )


@pytest.fixture(scope="module")
def monitor() -> Monitor:
    return Monitor(parse_config(CONFIG)).fit(_frame(np.random.default_rng(0), 40_000))


def _performance(report: Report, segment: str = "all") -> dict[str, MetricRow]:
    return {r.metric: r for r in report.select(layer="performance", segment=segment)}


def _with_labels(frame: pd.DataFrame, labelled: int) -> pd.DataFrame:
    out = frame.copy()
    out.loc[labelled:, "label"] = np.nan
    return out


@pytest.mark.parametrize(
    ("labelled", "withheld"),
    [
        (150, True),  # 15 %, and under 200 labels
        (250, True),  # 250 labels, but only 25 % of the window
        (400, False),  # 400 labels, 40 %
    ],
)
def test_verdict_waits_for_count_and_coverage(monitor, labelled: int, withheld: bool) -> None:
    window = _with_labels(_frame(np.random.default_rng(1), 1000), labelled)
    rows = _performance(monitor.check(window))
    coverage = rows.pop("label_coverage")
    assert coverage.value == coverage.coverage == pytest.approx(labelled / 1000)
    assert coverage.n == 1000 and coverage.status == "info"
    # Estimated performance needs no labels: every row of the window, a verdict at once; its
    # error against the realized value comes once the labels suffice.
    estimated = {m: rows.pop(m) for m in list(rows) if m.startswith("estimated_")}
    errors = {m: rows.pop(m) for m in list(rows) if m.startswith("estimation_error_")}
    assert set(estimated) == {
        f"estimated_{m}" for m in ("auc", "precision", "recall", "f1", "accuracy")
    }
    assert all(r.n == 1000 and r.status in ("ok", "watch", "alert") for r in estimated.values())
    assert set(errors) == (
        set() if withheld else {m.replace("estimated_", "estimation_error_") for m in estimated}
    )
    assert set(rows) == {"auc", "precision", "recall", "f1", "accuracy", "log_loss", "brier", "ece"}
    for row in rows.values():
        assert row.n == labelled
        assert row.coverage == pytest.approx(labelled / 1000)
        assert row.value is not None  # shown either way
        if withheld:
            assert row.status == "insufficient_labels"
            assert row.reason == (
                f"{labelled} of 1000 rows labelled ({labelled / 10:.1f} %); a verdict needs "
                "200 labelled rows and 30 % coverage"
            )
        else:
            assert row.status in ("ok", "watch", "alert")


def test_withheld_performance_is_the_layer_status(monitor):
    report = monitor.check(_with_labels(_frame(np.random.default_rng(2), 1000), 100))
    # Realized rows alone (estimated ones, which need no labels, give a verdict: see below).
    realized = [r for r in report.rows if not r.metric.startswith("estimated_")]
    assert report.model_copy(update={"rows": realized}).status("performance") == (
        "insufficient_labels"
    )
    assert not [r for r in report.flagged() if r.status == "insufficient_labels"]


def test_estimated_performance_gives_the_layer_a_verdict_while_labels_are_few(monitor):
    report = monitor.check(_with_labels(_frame(np.random.default_rng(2), 1000), 100))
    rows = report.select(layer="performance")
    assert {r.status for r in rows if r.metric in ("auc", "f1")} == {"insufficient_labels"}
    assert report.status("performance") in ("ok", "watch", "alert")


def test_min_labels_per_segment(monitor):
    # 1,000 rows, all labelled: "new" has ~300 rows and labels, above min_rows (100) but
    # over the 200-label minimum; shrink it to ~150 rows and its performance is withheld.
    rng = np.random.default_rng(3)
    ok = _performance(monitor.check(_frame(rng, 1000)), "user=new")
    assert ok["auc"].status in ("ok", "watch", "alert")
    small = _performance(monitor.check(_frame(rng, 1000, new_share=0.15)), "user=new")
    assert small["auc"].status == "insufficient_labels" and small["auc"].n < 200


def test_a_segment_below_min_rows_has_no_verdict_and_says_why():
    config = parse_config(CONFIG.replace("segments: {min_rows: 100}", "segments: {min_rows: 400}"))
    monitor = Monitor(config).fit(_frame(np.random.default_rng(4), 5000))
    report = monitor.check(_frame(np.random.default_rng(5), 1000))  # ~300 new users
    rows = report.select(segment="user=new")
    assert [r.metric for r in rows] == ["rows"]
    assert rows[0].status == "no_data" and "needs 400" in (rows[0].reason or "")


def _wilson(x: int, n: int) -> tuple[float, float]:
    p = x / n
    center = (p + Z * Z / (2 * n)) / (1 + Z * Z / n)
    half = Z / (1 + Z * Z / n) * math.sqrt(p * (1 - p) / n + Z * Z / (4 * n * n))
    return center - half, center + half


def test_rates_carry_wilson_intervals_of_their_counts(monitor):
    window = _frame(np.random.default_rng(6), 3000)
    rows = _performance(monitor.check(window))
    y, predicted = window["label"].to_numpy() == 1, window["score"].to_numpy() >= 0.5
    tp, fp = int((y & predicted).sum()), int((~y & predicted).sum())
    fn, tn = int((y & ~predicted).sum()), int((~y & ~predicted).sum())
    for metric, (x, n) in {
        "precision": (tp, tp + fp),
        "recall": (tp, tp + fn),
        "accuracy": (tp + tn, tp + fp + fn + tn),
    }.items():
        assert (rows[metric].ci_low, rows[metric].ci_high) == pytest.approx(_wilson(x, n))
    j_low, j_high = _wilson(tp, tp + fp + fn)
    assert rows["f1"].ci_low == pytest.approx(2 * j_low / (1 + j_low))
    assert rows["f1"].ci_high == pytest.approx(2 * j_high / (1 + j_high))
    # Log loss and Brier: the normal interval of a mean, from the rows themselves.
    p, yy = window["score"].to_numpy(), window["label"].to_numpy()
    brier = (p - yy) ** 2
    half = Z * brier.std(ddof=1) / math.sqrt(brier.size)
    assert (rows["brier"].ci_low, rows["brier"].ci_high) == pytest.approx(
        (brier.mean() - half, brier.mean() + half), rel=1e-9
    )
    auc = rows["auc"]
    assert auc.ci_low < auc.value < auc.ci_high
    assert rows["ece"].ci_low is None  # no analytic interval for ECE


def test_regression_rows_carry_mae_and_rmse_intervals():
    config = parse_config(
        "name: r\ntask: regression\ncolumns: {features: {x: numeric}, prediction: p, label: y}\n"
    )
    rng = np.random.default_rng(7)

    def frame(n: int) -> pd.DataFrame:
        p = rng.normal(10, 2, n)
        return pd.DataFrame({"x": rng.normal(size=n), "p": p, "y": p + rng.normal(0, 1, n)})

    monitor = Monitor(config).fit(frame(5000))
    window = frame(2000)
    rows = _performance(monitor.check(window))
    error = (window["p"] - window["y"]).to_numpy()
    for metric, values in (("mae", np.abs(error)), ("rmse", error**2)):
        half = Z * values.std(ddof=1) / math.sqrt(values.size)
        low, high = values.mean() - half, values.mean() + half
        if metric == "rmse":
            low, high = math.sqrt(low), math.sqrt(high)
        assert (rows[metric].ci_low, rows[metric].ci_high) == pytest.approx((low, high), rel=1e-9)


def test_a_small_segment_cannot_page_on_noise(monitor):
    """Simulation with a known truth: every window comes from the reference's distribution, so
    every segment alert is a false one. On value alone, a segment of ~250 labelled rows trips
    the AUC / rate thresholds often; with intervals, almost never."""
    rng = np.random.default_rng(8)
    gated = ungated = judged = 0
    for _ in range(60):
        rows = _performance(monitor.check(_frame(rng, 800)), "user=new")
        for metric in ("auc", "precision", "recall", "f1", "accuracy"):
            row = rows[metric]
            if row.status == "insufficient_labels" or row.value is None:
                continue
            judged += 1
            gated += row.status == "alert"
            alert_level = row.threshold
            assert alert_level is not None and row.reference is not None
            ungated += row.value < alert_level
    assert judged >= 200
    assert ungated / judged > 0.05  # what value-only verdicts would page on
    assert gated / judged < 0.01


def test_a_real_segment_decay_still_alerts(monitor):
    rng = np.random.default_rng(9)
    window = _frame(rng, 3000)
    new = window["user"] == "new"
    # The model stops working for new users: their labels no longer follow the score.
    window.loc[new, "label"] = (rng.random(int(new.sum())) < 0.2).astype(float)
    rows = _performance(monitor.check(window), "user=new")
    assert rows["auc"].status == "alert"
    assert rows["auc"].ci_high < rows["auc"].threshold
