"""Estimated performance through the Monitor, in simulated worlds where the truth is known.

Each world draws a feature, a true ``P(y | x)`` and labels from it; the model's scores are
over-confident, so the monitor's fit chooses an isotonic calibrator. The realized metrics are
scikit-learn's on the drawn labels, which the estimate never sees: estimated rows must land
within their standard errors of them, follow a covariate shift that changes performance, and
fail visibly (the estimation error row says so) under concept drift, which no estimate
without labels can see.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd
import pytest
from sklearn import metrics

from tripwire.config import parse_config
from tripwire.estimation import CBPE, DLE, Estimate
from tripwire.monitor import Monitor
from tripwire.profile.window import ALL
from tripwire.report.model import Report

METRICS = ("auc", "precision", "recall", "f1", "accuracy")
CONFIG = """
name: world
task: binary
columns:
  features: {x: numeric}
  prediction: score
  label: y
  segments: [user]
label_lag: 30d
"""


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def draw(
    rng: np.random.Generator, n: int, mean: float = 0.0, sd: float = 1.5, slope: float = 2.0
) -> pd.DataFrame:
    """An over-confident model (temperature 0.4) of ``P(y | x) = sigmoid(slope x - 0.5)``; a
    slope other than 2 is concept drift: the scores stay, the outcomes change."""
    x = rng.normal(mean, sd, n)
    y = (rng.random(n) < _sigmoid(slope * x - 0.5)).astype(float)
    user = np.where(x + rng.normal(0, 1, n) > 1, "new", "returning")
    return pd.DataFrame({"x": x, "user": user, "score": _sigmoid((2.0 * x - 0.5) / 0.4), "y": y})


def realized(frame: pd.DataFrame) -> dict[str, float]:
    y, scores = frame["y"].to_numpy(), frame["score"].to_numpy()
    pred = (scores >= 0.5).astype(int)
    return {
        "auc": metrics.roc_auc_score(y, scores),
        "precision": metrics.precision_score(y, pred),
        "recall": metrics.recall_score(y, pred),
        "f1": metrics.f1_score(y, pred),
        "accuracy": metrics.accuracy_score(y, pred),
    }


@pytest.fixture(scope="module")
def monitor() -> Monitor:
    return Monitor(parse_config(CONFIG)).fit(draw(np.random.default_rng(0), 100_000))


def estimate_of(report: Report, segment: str = "all") -> Estimate:
    """The estimate as the rows carry it: value, and the standard error from the interval
    (clipped at 0 and 1, so only the side away from the clip is used)."""
    values, errors = {}, {}
    z = 1.959963984540054
    for metric in METRICS:
        row = report.select(metric=f"estimated_{metric}", segment=segment)[0]
        assert row.value is not None and row.ci_low is not None and row.ci_high is not None
        values[metric] = row.value
        errors[metric] = max(row.value - row.ci_low, row.ci_high - row.value) / z
    return Estimate(report.n_rows, values, errors)


def test_windows_land_within_standard_errors(monitor, window_errors: Callable[[], Any]):
    rng = np.random.default_rng(1)
    assert monitor.bins_.estimation is not None
    assert monitor.bins_.estimation.calibrations[0].calibrated  # over-confident: calibrated
    errors = window_errors()
    for _ in range(120):
        window = draw(rng, 2000)
        errors.add(estimate_of(monitor.check(window.drop(columns=["y"]))), realized(window))
    errors.check()


@pytest.mark.parametrize(
    ("mean", "sd"),
    [(0.25, 0.35), (-1.2, 0.6), (1.5, 0.5)],
    ids=["near the boundary", "mostly negative", "mostly positive"],
)
def test_estimate_follows_covariate_shift(
    monitor, mean: float, sd: float, follows_shift: Callable[..., None]
):
    rng = np.random.default_rng(2)
    before, after = draw(rng, 20_000), draw(rng, 20_000, mean, sd)
    follows_shift(
        estimate_of(monitor.check(before.drop(columns=["y"]))),
        estimate_of(monitor.check(after.drop(columns=["y"]))),
        realized(before),
        realized(after),
    )


def test_the_monitor_estimates_what_cbpe_does_overall_and_per_segment(monitor):
    rng = np.random.default_rng(3)
    reference = draw(np.random.default_rng(0), 100_000)
    cbpe = CBPE().fit(reference["score"], reference["y"])
    window = draw(rng, 30_000, 0.5, 1.0)
    report = monitor.check(window)
    for segment, rows in (("all", window), ("user=new", window[window["user"] == "new"])):
        direct = cbpe.estimate(rows["score"])
        ours = estimate_of(report, segment)
        bound = report.select(metric="estimated_auc", segment=segment)[0].bound or 0.0
        for metric in METRICS:
            allowed = bound + 1e-12 if metric == "auc" else 1e-9
            assert abs(ours[metric] - direct[metric]) <= allowed, (segment, metric)


def test_merged_windows_estimate_as_the_whole(monitor):
    rng = np.random.default_rng(4)
    days = [draw(rng, 3000, 0.2 * i) for i in range(4)]
    profiles = [monitor.profile(day) for day in days]
    merged = profiles[0]
    for other in profiles[1:]:
        merged = {k: merged[k] + other[k] for k in merged}
    whole = monitor.profile(pd.concat(days, ignore_index=True))
    for segment in whole:
        a, _ = merged[segment].estimated.estimate()
        b, _ = whole[segment].estimated.estimate()
        for metric in METRICS:
            assert a[metric] == pytest.approx(b[metric], rel=1e-10)
            assert a.standard_errors[metric] == pytest.approx(b.standard_errors[metric], rel=1e-8)


def test_labels_late_estimated_rows_judge_the_window_realized_ones_wait(monitor):
    rng = np.random.default_rng(5)
    window = draw(rng, 5000, 0.25, 0.35)  # a shift that costs AUC
    window.loc[100:, "y"] = np.nan  # 2 % labelled so far
    report = monitor.check(window)
    assert report.select(metric="auc")[0].status == "insufficient_labels"
    estimated = report.select(metric="estimated_auc")[0]
    assert estimated.status == "alert" and estimated.value < estimated.reference - 0.05
    assert not report.select(metric="estimation_error_auc")  # no realized verdict to compare


def test_concept_drift_shows_as_an_estimation_error_once_labels_land(monitor):
    rng = np.random.default_rng(6)
    window = draw(rng, 20_000, slope=0.7)  # same scores, outcomes far less predictable
    report = monitor.check(window)
    estimated, actual = report.value("estimated_auc"), report.value("auc")
    assert estimated is not None and actual is not None
    assert estimated > actual + 0.1  # the estimate cannot see it ...
    error = report.select(metric="estimation_error_auc")[0]
    assert error.value == pytest.approx(estimated - actual)
    assert "assumption of the estimate failed" in (error.reason or "")  # ... but says so
    calm = monitor.check(draw(rng, 20_000))
    assert "failed" not in (calm.select(metric="estimation_error_auc")[0].reason or "")


REGRESSION = """
name: loss
task: regression
columns: {features: {x: numeric, noise: numeric}, prediction: prediction, label: y}
"""


def _regression(rng: np.random.Generator, n: int, mean: float) -> pd.DataFrame:
    x = rng.normal(mean, 1.0, n)
    y = x + rng.normal(size=n) * (0.2 + np.abs(x))  # errors grow away from 0
    return pd.DataFrame({"x": x, "noise": rng.normal(size=n), "prediction": x, "y": y})


def test_regression_estimate_follows_shift_into_noisier_inputs(follows_shift):
    rng = np.random.default_rng(7)
    reference = _regression(rng, 50_000, 0.0)
    monitor = Monitor(parse_config(REGRESSION)).fit(reference)
    before, after = _regression(rng, 20_000, 0.0), _regression(rng, 20_000, 1.5)

    def estimate(frame: pd.DataFrame) -> Estimate:
        found, _ = monitor.profile(frame.drop(columns=["y"]))[ALL].estimated.estimate()
        return found

    def truth(frame: pd.DataFrame) -> dict[str, float]:
        error = frame["prediction"] - frame["y"]
        return {"mae": float(np.abs(error).mean()), "rmse": float(np.sqrt(np.square(error).mean()))}

    follows_shift(estimate(before), estimate(after), truth(before), truth(after), slack=0.03)
    dle = DLE().fit(reference[["x", "noise"]], reference["prediction"], reference["y"])
    direct = dle.estimate(after[["x", "noise"]], after["prediction"])
    report = monitor.check(after)
    assert report.value("estimated_mae") == pytest.approx(direct["mae"], rel=1e-9)
    assert report.value("estimated_rmse") == pytest.approx(direct["rmse"], rel=1e-9)
    assert report.select(metric="estimated_mae")[0].status == "alert"  # MAE up by far > 25 %
