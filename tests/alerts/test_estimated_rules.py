"""Rules on estimated performance, through the job and the gate, with labels 30 days late.

A binary model's inputs shift over a week so that its AUC falls; no label has arrived yet.
The estimated AUC must page (a rule on ``estimated_auc`` against the reference), the score's
PSI must show the drift, and the gate must retrain on the two together — realized performance
never came into it. Without the drift rule the estimate alone only earns ``investigate``.
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from tripwire.alerts.gate import decide
from tripwire.config import parse_config
from tripwire.job import run
from tripwire.monitor import Monitor
from tripwire.store import DuckDBStore

DAY = dt.timedelta(days=1)
START = dt.datetime(2026, 3, 1)
CONFIG = """
name: lagging
task: binary
columns:
  timestamp: ts
  features: {x: numeric}
  prediction: score
  label: y
label_lag: 30d
importance: {x: 1.0}
alerts:
  - name: estimated_auc_drop
    metric: estimated_auc
    baseline: reference
    threshold: 0.05
    window: 2d
    severity: page
    runbook: {what_it_means: AUC estimated without labels fell, what_to_check: inputs,
              who_owns_the_fix: DS}
  - name: score_drift
    metric: score_psi
    threshold: 0.25
    window: 2d
    severity: ticket
    runbook: {what_it_means: scores moved, what_to_check: inputs, who_owns_the_fix: DS}
"""


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def _day(rng: np.random.Generator, day: int, n: int, sd: float) -> pd.DataFrame:
    x = rng.normal(0.25, sd, n)
    ts = START + day * DAY + dt.timedelta(seconds=1) * rng.integers(0, 86_400, n)
    return pd.DataFrame({"ts": ts, "x": x, "score": _sigmoid((2 * x - 0.5) / 0.4), "y": np.nan})


@pytest.fixture(scope="module")
def incidents() -> tuple[list, Monitor]:
    rng = np.random.default_rng(0)
    x = rng.normal(0.0, 1.5, 60_000)
    reference = pd.DataFrame(
        {
            "x": x,
            "score": _sigmoid((2 * x - 0.5) / 0.4),
            "y": (rng.random(60_000) < _sigmoid(2 * x - 0.5)).astype(float),
        }
    )
    monitor = Monitor(parse_config(CONFIG)).fit(reference)
    # Three normal days, then four on which the inputs crowd near the decision boundary.
    days = [_day(rng, d, 4000, 1.5 if d < 3 else 0.35) for d in range(7)]
    table = pa.Table.from_pandas(pd.concat(days, ignore_index=True), preserve_index=False)
    with DuckDBStore(":memory:") as store:
        result = run(monitor, store, table, DAY, deliver=False)
        history = store.history("lagging", DAY)
    assert len(result.windows) == 7
    metrics = set(history["metric"].to_pylist())
    assert {"estimated_auc", "auc", "label_coverage"} <= metrics
    return result.incidents, monitor


def test_the_estimated_auc_rule_fires_on_the_shift(incidents):
    found, _ = incidents
    by_rule = {i.rule: i for i in found}
    estimated = by_rule["estimated_auc_drop"]
    assert estimated.is_open and estimated.metric == "estimated_auc"
    assert estimated.evidence_start == START + 3 * DAY  # the first shifted day
    assert estimated.value is not None and estimated.threshold is not None
    assert estimated.value < estimated.threshold
    assert by_rule["score_drift"].is_open


def test_with_late_labels_the_gate_retrains_on_drift_and_the_estimate(incidents):
    found, monitor = incidents
    result = decide(monitor.config, found, monitor.importance_)
    assert result.decision == "retrain"
    assert any(r.startswith("estimated performance: estimated_auc_drop") for r in result.reasons)
    assert "a proxy or estimated performance" in result.reasons[-1]
    without_drift = [i for i in found if i.rule != "score_drift"]
    assert decide(monitor.config, without_drift, monitor.importance_).decision == "investigate"
