"""A fraud model's month in production, with five known incidents, generated in memory.

The reference is the validation period; then ``days`` daily windows follow. What happens, by day
(1-based), is fixed so that the demo and the tests can check that tripwire flags each incident
and nothing else:

(a) days 5-6: a pipeline breakage nulls 40 % of ``merchant_risk`` (a top feature);
(b) from day 12: a population shift moves ``distance_km`` (customers further from merchants);
(c) from day 18: new users come more and more (three in four from day 21) from a new region,
    whose transactions the model cannot tell apart: their amount and merchant risk trade off
    so that their scores pile up in the uncertain band just under the decision threshold 0.3,
    where fraud runs at that rate whatever the score. The whole population's inputs barely
    drift (PSI about 0.1; the new users' own do) and its AUC holds, but the new users' decays.
    Estimated performance (CBPE, from the scores alone) and the share of transactions sent to
    manual review (a proxy, from the ``decision`` serving logs) see it within days; realized
    performance once labels land, ``LABEL_LAG_DAYS`` later, a little worse than estimated;
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
DECISION_THRESHOLD = 0.3
# Incident (c): the new region's share of new users rises over REGION_RAMP_DAYS to REGION_SHARE;
# the model scores its transactions near REGION_SCORE.
REGION_SHARE = 0.75
REGION_RAMP_DAYS = 4
REGION_SCORE = 0.28
# Serving's decision from the score: manual review from the decision threshold, block from here.
BLOCK_FROM = 0.7

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
decision_threshold: {DECISION_THRESHOLD}
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
# A proxy: what serving decided, logged beside each prediction (event metadata `decision`).
proxies:
  - name: manual_review_share
    column: decision
    equals: review
    direction: above
routes:
  oncall: [{{type: console}}]
  fraud-ds: [{{type: console}}]
  weekly-digest: [{{type: console}}]
severity_routes: {{page: oncall, ticket: fraud-ds, digest: weekly-digest}}
"""


# Labels lag a week: two rules watch performance before they land, on every tracked segment.
_EARLY_RULES = """\
  # Performance before labels land: estimated from the scores, and a proxy.
  - name: segment_estimated_performance   # CBPE: no labels needed
    metric: estimated_auc
    segment: each
    baseline: reference
    threshold: 0.05
    window: 2d
    severity: ticket
    runbook:
      what_it_means: >-
        AUC estimated from the scores alone (no labels) fell by more than 0.05 against the
        reference, overall or in a tracked segment, for two windows: the scores moved to where
        the model is unsure.
      what_to_check: >-
        Which segment moved and where its scores now sit; input drift in that segment. The
        estimate assumes no concept drift: realized performance confirms it once labels land
        (segment_performance).
      who_owns_the_fix: fraud-ds
  - name: manual_review_jump   # a proxy: what serving decided
    metric: proxy_manual_review_share
    segment: each
    baseline: reference
    threshold: 0.1
    window: 2d
    severity: ticket
    runbook:
      what_it_means: >-
        Ten points more of the transactions go to manual review than in the reference, overall
        or in a tracked segment, for two windows: more scores sit in the uncertain band.
      what_to_check: >-
        Which segment; its scores and estimated performance; the review team's queue.
      who_owns_the_fix: fraud-ds
"""

# The starter rule set `tripwire init` writes, with the demo's owners filled in, and the early
# performance rules.
CONFIG_YAML = _SETTINGS + starter_rules("binary").replace('"TODO: ', '"') + _EARLY_RULES


@dataclass(frozen=True)
class Scenario:
    """The generated data: the reference and one table per day (labels included)."""

    reference: pa.Table
    days: list[tuple[dt.date, pa.Table]]


def _sigmoid(z: np.ndarray) -> np.ndarray:
    return np.asarray(1.0 / (1.0 + np.exp(-z)), dtype=np.float64)


def _logit(
    amount: np.ndarray, merchant_risk: np.ndarray, new_user: np.ndarray, tx_count: np.ndarray
) -> np.ndarray:
    """The model's log-odds of fraud."""
    return np.asarray(
        -3.1
        + 0.9 * (np.log(amount) - 3.6)
        + 5.0 * (merchant_risk - 0.25)
        + 0.8 * new_user
        + 0.25 * (tx_count - 2),
        dtype=np.float64,
    )


def _region_inputs(rng: np.random.Generator, tx_count: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Amounts and merchant risks of new users from the new region: larger amounts at safer
    merchants and smaller ones at riskier merchants, so that the model's log-odds sit near
    REGION_SCORE's whatever the mix. Each input moves a little; together they pile up."""
    k = tx_count.size
    target = rng.normal(np.log(REGION_SCORE / (1 - REGION_SCORE)), 0.15, k)
    # What amount and merchant risk must add to the rest of the log-odds (see _logit).
    needed = target - (-3.1 + 0.8 + 0.25 * (tx_count - 2))
    share = rng.uniform(0.2, 0.8, k)  # of it carried by merchant risk
    return np.exp(3.6 + (1 - share) * needed / 0.9), 0.25 + share * needed / 5.0


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

    if day >= DECAY_FROM_DAY:
        ramp = min(1.0, (day - DECAY_FROM_DAY + 1) / REGION_RAMP_DAYS)
        region = new_user & (rng.random(n) < REGION_SHARE * ramp)
        amount[region], merchant_risk[region] = _region_inputs(rng, tx_count[region])

    # The model's belief, and the world's truth that agrees with it. In the new region the
    # scores vary only by what the model's other inputs add (the noise below), which says
    # nothing about fraud there: the scores' distribution shifts (CBPE sees it) and, within
    # the region, the chance of fraud given the score no longer rises with it.
    logit = _logit(amount, merchant_risk, new_user, tx_count)
    score = _sigmoid(logit + rng.normal(0, 0.35, n))
    truth = _sigmoid(logit)
    is_fraud = (rng.random(n) < truth).astype(np.int64)
    decision = np.where(
        score >= BLOCK_FROM, "block", np.where(score >= DECISION_THRESHOLD, "review", "approve")
    )

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
            "decision": decision,
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
