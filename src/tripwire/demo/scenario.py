"""A fraud model's month in production, with five known incidents, generated in memory.

The reference is the validation period; then ``days`` daily windows follow. What happens, by day
(1-based), is fixed so that the demo and the tests can check that tripwire flags each incident
and nothing else:

(a) days 5-6: a pipeline breakage nulls 40 % of ``merchant_risk`` (a top feature);
(b) from day 12: a population shift moves ``distance_km`` (customers further from merchants);
(c) from day 18: the model slowly decays for new users (fraud stops following its score);
    labels arrive ``LABEL_LAG_DAYS`` later, so realized performance sees it from day 25;
(d) from day 25: a serving regression slows 15 % of requests threefold, lifting p95 latency;
(e) day 8: a benign one-day spike in ``session_jitter``, a noisy feature of low importance.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from tripwire.alerts.starter import starter_rules

START = dt.date(2026, 10, 1)
LABEL_LAG_DAYS = 7
NULL_SPIKE_DAYS = (5, 6)
SHIFT_FROM_DAY = 12
DECAY_FROM_DAY = 18
LATENCY_FROM_DAY = 25
NOISE_SPIKE_DAY = 8

IMPORTANCE = {
    "amount": 0.31,
    "merchant_risk": 0.24,
    "distance_km": 0.15,
    "account_age_days": 0.11,
    "tx_count_24h": 0.08,
    "country": 0.05,
    "device_type": 0.03,
    "hour": 0.02,
    "session_jitter": 0.01,
}

_SETTINGS = f"""\
# The demo's fraud model. Edit and re-run with: tripwire check --config tripwire.yaml ...
name: fraud-detector
task: binary
columns:
  timestamp: ts
  id: event_id
  features:
    amount: numeric
    merchant_risk: numeric
    distance_km: numeric
    account_age_days: numeric
    tx_count_24h: numeric
    country: categorical
    device_type: categorical
    hour: numeric
    session_jitter: numeric
  prediction: score
  label: is_fraud
  segments: [user_type]
  latency_ms: latency_ms
  cost: cost_usd
  status: status
decision_threshold: 0.3
label_lag: {LABEL_LAG_DAYS}d
window: 1d
importance:
{chr(10).join(f"  {k}: {v}" for k, v in IMPORTANCE.items())}
reference: reference.parquet
business_value:
  annual_usd: 200000
owners:
  - name: fraud-ds
    role: data science
    contact: "#fraud-ml"
routes:
  oncall: [{{type: console}}]
  fraud-ds: [{{type: console}}]
  weekly-digest: [{{type: console}}]
severity_routes: {{page: oncall, ticket: fraud-ds, digest: weekly-digest}}
"""


# The starter rule set `tripwire init` writes, with the demo's owners filled in.
CONFIG_YAML = _SETTINGS + starter_rules("binary").replace('"TODO: ', '"')


@dataclass(frozen=True)
class Scenario:
    """The generated data: the reference and one table per day (labels included)."""

    reference: pa.Table
    days: list[tuple[dt.date, pa.Table]]


def _sigmoid(z: np.ndarray) -> np.ndarray:
    return np.asarray(1.0 / (1.0 + np.exp(-z)), dtype=np.float64)


def _traffic(rng: np.random.Generator, n: int, day: int, date: dt.date, first_id: int) -> pa.Table:
    """One day of traffic; ``day`` 0 is the reference period."""
    new_user = rng.random(n) < 0.3
    amount = rng.lognormal(3.6, 0.9, n)
    merchant_risk = rng.beta(2, 6, n)
    distance = rng.gamma(2.0, 12.0, n)
    if day >= SHIFT_FROM_DAY:
        distance = distance * 1.45 + 6.0
    age = np.where(new_user, rng.integers(0, 30, n), rng.integers(30, 3000, n)).astype(float)
    tx_count = rng.poisson(np.where(new_user, 1.5, 3.0))
    country = rng.choice(
        ["US", "GB", "DE", "FR", "BR", "IN"], n, p=[0.5, 0.15, 0.12, 0.1, 0.08, 0.05]
    )
    device = rng.choice(["mobile", "desktop", "tablet"], n, p=[0.6, 0.32, 0.08])
    hour = rng.integers(0, 24, n).astype(float)
    jitter = rng.normal(50, 8, n)
    if day == NOISE_SPIKE_DAY:
        jitter = jitter + rng.normal(35, 10, n)

    # The model's belief, and the world's truth that agrees with it until the decay begins.
    logit = (
        -3.1
        + 0.9 * (np.log(amount) - 3.6)
        + 5.0 * (merchant_risk - 0.25)
        + 0.8 * new_user
        + 0.25 * (tx_count - 2)
    )
    score = _sigmoid(logit + rng.normal(0, 0.35, n))
    truth = _sigmoid(logit)
    if day >= DECAY_FROM_DAY:
        drift = min(1.0, (day - DECAY_FROM_DAY + 1) / 6)
        shuffled = rng.permutation(truth[new_user])
        truth[new_user] = (1 - drift) * truth[new_user] + drift * shuffled
    is_fraud = (rng.random(n) < truth).astype(np.int64)

    if day in NULL_SPIKE_DAYS:
        merchant_risk[rng.random(n) < 0.4] = np.nan

    latency = rng.gamma(4.0, 30.0, n)
    if day >= LATENCY_FROM_DAY:
        slow = rng.random(n) < 0.15
        latency[slow] *= 3.0
    status = np.where(rng.random(n) < 0.004, "error", "ok")
    seconds = np.sort(rng.integers(0, 86_400, n)).astype("timedelta64[s]")
    ids = np.char.add("evt-", np.char.zfill(np.arange(first_id, first_id + n).astype(str), 8))
    return pa.table(
        {
            "event_id": ids,
            "ts": pa.array(np.datetime64(date, "s") + seconds, pa.timestamp("s", tz="UTC")),
            "amount": amount,
            "merchant_risk": pa.array(merchant_risk, from_pandas=True),
            "distance_km": distance,
            "account_age_days": age,
            "tx_count_24h": tx_count,
            "country": country,
            "device_type": device,
            "hour": hour,
            "session_jitter": jitter,
            "user_type": np.where(new_user, "new", "returning"),
            "score": score,
            "is_fraud": is_fraud,
            "latency_ms": latency,
            "cost_usd": rng.gamma(2.0, 0.0004, n),
            "status": status,
        }
    )


def generate(
    days: int = 30,
    rows_per_day: int = 8000,
    reference_rows: int = 40000,
    seed: int = 7,
    start: dt.date = START,
) -> Scenario:
    """Build the scenario deterministically from ``seed``; day 1 is ``start``."""
    rng = np.random.default_rng(seed)
    reference = _traffic(rng, reference_rows, 0, start - dt.timedelta(days=14), 0)
    out = []
    next_id = reference_rows
    for day in range(1, days + 1):
        date = start + dt.timedelta(days=day - 1)
        out.append((date, _traffic(rng, rows_per_day, day, date, next_id)))
        next_id += rows_per_day
    return Scenario(reference, out)


def without_labels(table: pa.Table, label: str = "is_fraud") -> pa.Table:
    """The table as it looks before its labels have arrived."""
    index = table.column_names.index(label)
    return table.set_column(index, label, pa.nulls(table.num_rows, pa.int64()))
