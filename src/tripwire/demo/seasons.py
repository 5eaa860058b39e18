"""Months of a fraud model in production, with known incidents and known benign changes.

A longer companion to :mod:`tripwire.demo.scenario`, built to measure alert quality: does every
real incident raise the incident it should, within its layer's expected latency, and does
nothing else page? Traffic has a weekly season (weekends carry 60 % of a weekday's volume, come
later in the day, more often from mobiles and with bigger baskets; on weekend days ``hour``
drifts past PSI 0.25 against the reference); the reference is the 14 days before day 1 from
the same generator, so two full weeks of that season are in it.

Twelve features, with an importance mapping whose top quartile is ``amount``,
``merchant_risk`` and ``distance_km`` and whose bottom quartile is ``channel``,
``session_jitter`` and ``ua_entropy``. Days are 1-based; with ``days`` = D the events start near
these fractions of D (each shifted by -1, 0 or +1 day by the seed), apart in time so that every
incident and every benign change can be told apart:

incidents (each with its rule, severity and expected latency in days)
  * 0.20 D, 2 days: a pipeline breakage nulls 40 % of ``merchant_risk`` (top quartile):
    ``null_share_top_features``, page, 1 day;
  * 0.32 D, 4 days: an upstream scaling bug lifts every score's log-odds by 1.2 (a monotone
    change: ranking, hence AUC, is untouched): ``prediction_rate_shift``, a ticket, 1 day;
  * 0.45 D, 7 days: a population shift moves ``distance_km`` (top quartile):
    ``psi_top_feature_drift``, page, 3 days (the rule needs three breaching days running);
    the score leans on distance a little, so the mean score moves too (a ticket may follow);
  * 0.64 D, 5 days: a serving regression slows 20 % of requests threefold:
    ``latency_p95``, page, 1 day;

benign changes (nothing should page; the drift digest may list them)
  * all along: the weekly season above, in traffic volume and three features;
  * 0.10 D, 1 day: a spike in ``session_jitter``, a noisy bottom-quartile feature;
  * 0.80 D to the end: a persistent shift in ``ua_entropy``, a bottom-quartile feature.

Everything is deterministic from ``seed``. :func:`replay` runs a generated scenario through the
production path (``Monitor.fit``, ``check_windows`` into a store, ``derive_incidents``).

>>> months = generate_months(days=60, rows_per_day=200, seed=1)
>>> len(months.days), months.reference.num_rows > 14 * 100
(60, True)
>>> [e.name for e in months.incidents]
['null_spike', 'prediction_shift', 'population_shift', 'latency_regression']
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa

from tripwire.alerts.engine import Incident
from tripwire.alerts.starter import starter_rules
from tripwire.config import parse_config
from tripwire.importance import top_quartile
from tripwire.job import check_windows, derive_incidents
from tripwire.monitor import Monitor
from tripwire.store.duckdb_store import DuckDBStore

START = dt.date(2027, 1, 4)  # a Monday
REFERENCE_DAYS = 14  # two full weeks, so the weekly season is in the reference
MIN_DAYS = 60
DAY = dt.timedelta(days=1)
WEEKEND_VOLUME = 0.6
NULL_SHARE = 0.005  # the base null share of merchant_risk

IMPORTANCE = {
    "amount": 0.26,
    "merchant_risk": 0.20,
    "distance_km": 0.15,
    "account_age_days": 0.09,
    "tx_count_24h": 0.07,
    "country": 0.06,
    "device_type": 0.05,
    "hour": 0.04,
    "basket_items": 0.03,
    "channel": 0.02,
    "session_jitter": 0.01,
    "ua_entropy": 0.005,
}
FEATURES = {
    "amount": "numeric",
    "merchant_risk": "numeric",
    "distance_km": "numeric",
    "account_age_days": "numeric",
    "tx_count_24h": "numeric",
    "country": "categorical",
    "device_type": "categorical",
    "hour": "numeric",
    "basket_items": "numeric",
    "channel": "categorical",
    "session_jitter": "numeric",
    "ua_entropy": "numeric",
}
TOP_QUARTILE = top_quartile(IMPORTANCE)
BOTTOM_QUARTILE = [
    f for f, v in IMPORTANCE.items() if v <= np.percentile(list(IMPORTANCE.values()), 25)
]

CONFIG_YAML = (
    "# A fraud model over months, with the starter rule set (tripwire init) unchanged.\n"
    "name: fraud-seasons\n"
    "task: binary\n"
    "columns:\n"
    "  timestamp: ts\n"
    "  id: event_id\n"
    "  features:\n"
    + "".join(f"    {name}: {kind}\n" for name, kind in FEATURES.items())
    + "  prediction: score\n"
    "  label: is_fraud\n"
    "  segments: [user_type]\n"
    "  latency_ms: latency_ms\n"
    "window: 1d\n"
    "importance:\n"
    + "".join(f"  {name}: {value}\n" for name, value in IMPORTANCE.items())
    + starter_rules("binary")
)


@dataclass(frozen=True)
class Event:
    """A known change: an incident (with the rule that should catch it) or a benign one.

    ``start`` and ``end`` are the first and last affected days (inclusive). ``latency_days``:
    the incident's window must open at most this many days after the change began, counting
    the first day as one (a window is judged when it closes, so ``opened_at`` < start +
    latency).
    """

    name: str
    kind: str  # "incident" or "benign"
    layer: str
    start: dt.date
    end: dt.date
    features: tuple[str, ...] = ()
    rule: str | None = None
    severity: str | None = None
    latency_days: int | None = None

    def active(self, day: dt.date) -> bool:
        return self.start <= day <= self.end


@dataclass(frozen=True)
class Months:
    """The generated data: the reference, one table per day, and what happened when."""

    reference: pa.Table
    days: list[tuple[dt.date, pa.Table]]
    events: list[Event] = field(default_factory=list)
    config_yaml: str = CONFIG_YAML

    @property
    def incidents(self) -> list[Event]:
        return [e for e in self.events if e.kind == "incident"]

    @property
    def benign(self) -> list[Event]:
        return [e for e in self.events if e.kind == "benign"]

    def data(self) -> pa.Table:
        """Every day, concatenated (what a batch job would read)."""
        return pa.concat_tables([table for _, table in self.days])


def schedule(days: int, seed: int) -> list[Event]:
    """The events of a ``days``-long scenario; starts move by up to a day with the seed."""
    if days < MIN_DAYS:
        raise ValueError(f"the events need at least {MIN_DAYS} days to stay apart, got {days}")
    jitter = np.random.default_rng([seed, 1]).integers(-1, 2, size=6)

    def day(fraction: float, i: int) -> dt.date:
        return START + (round(fraction * days) + int(jitter[i]) - 1) * DAY

    def span(fraction: float, i: int, length: int) -> tuple[dt.date, dt.date]:
        first = day(fraction, i)
        return first, first + (length - 1) * DAY

    last = START + (days - 1) * DAY
    return [
        Event("null_spike", "incident", "inputs", *span(0.20, 1, 2), ("merchant_risk",),
              "null_share_top_features", "page", 1),
        Event("prediction_shift", "incident", "predictions", *span(0.32, 2, 4), (),
              "prediction_rate_shift", "ticket", 1),
        Event("population_shift", "incident", "inputs", *span(0.45, 3, 7), ("distance_km",),
              "psi_top_feature_drift", "page", 3),
        Event("latency_regression", "incident", "cost", *span(0.64, 4, 5), (),
              "latency_p95", "page", 1),
        Event("weekly_season", "benign", "inputs", START, last,
              ("hour", "device_type", "basket_items")),
        Event("noise_spike", "benign", "inputs", *span(0.10, 0, 1), ("session_jitter",)),
        Event("persistent_drift", "benign", "inputs", day(0.80, 5), last, ("ua_entropy",)),
    ]  # fmt: skip


def _sigmoid(z: np.ndarray) -> np.ndarray:
    return np.asarray(1.0 / (1.0 + np.exp(-z)), dtype=np.float64)


def _traffic(
    rng: np.random.Generator, n: int, date: dt.date, first_id: int, events: list[Event]
) -> pa.Table:
    """One day of traffic; events active on ``date`` apply (none in the reference)."""
    on = {e.name for e in events if e.active(date) and e.name != "weekly_season"}
    weekend = date.weekday() >= 5
    new_user = rng.random(n) < 0.3
    amount = rng.lognormal(3.6, 0.9, n)
    merchant_risk = rng.beta(2, 6, n)
    distance = rng.gamma(2.0, 12.0, n)
    if "population_shift" in on:
        distance = distance * 1.45 + 6.0
    age = np.where(new_user, rng.integers(0, 30, n), rng.integers(30, 3000, n)).astype(float)
    tx_count = rng.poisson(np.where(new_user, 1.5, 3.0)).astype(float)
    country = rng.choice(
        ["US", "GB", "DE", "FR", "BR", "IN"], n, p=[0.5, 0.15, 0.12, 0.1, 0.08, 0.05]
    )
    mobile = 0.75 if weekend else 0.55
    device = rng.choice(["mobile", "desktop", "tablet"], n, p=[mobile, 0.92 - mobile, 0.08])
    # Weekday traffic peaks around lunch, weekend traffic in the evening.
    hour = np.mod(np.round(rng.normal(16.5 if weekend else 13.0, 4.0, n)), 24)
    basket = rng.poisson(3.2 if weekend else 2.4, n).astype(float)
    channel = rng.choice(["app", "web", "partner"], n, p=[0.55, 0.4, 0.05])
    jitter = rng.normal(50, 8, n)
    if "noise_spike" in on:
        jitter = jitter + rng.normal(35, 10, n)
    ua = rng.normal(4.0, 0.5, n)
    if "persistent_drift" in on:
        ua = ua + 0.45

    # The model's belief, and the world's truth that agrees with it throughout.
    logit = (
        -1.9
        + 0.9 * (np.log(amount) - 3.6)
        + 6.0 * (merchant_risk - 0.25)
        + 0.02 * (distance - 24.0)
        + 0.9 * new_user
        + 0.3 * (tx_count - 2)
    )
    noisy = logit + rng.normal(0, 0.35, n)
    if "prediction_shift" in on:
        noisy = noisy + 1.2  # an upstream scaling bug: monotone, so ranking is untouched
    score = _sigmoid(noisy)
    is_fraud = (rng.random(n) < _sigmoid(logit)).astype(np.int64)

    nulls = rng.random(n) < (0.4 if "null_spike" in on else NULL_SHARE)
    merchant_risk[nulls] = np.nan

    latency = rng.gamma(4.0, 30.0, n)
    if "latency_regression" in on:
        latency[rng.random(n) < 0.2] *= 3.0
    seconds = np.sort(rng.integers(0, 86_400, n)).astype("timedelta64[s]")
    ids = np.char.add("evt-", np.char.zfill(np.arange(first_id, first_id + n).astype(str), 9))
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
            "basket_items": basket,
            "channel": channel,
            "session_jitter": jitter,
            "ua_entropy": ua,
            "user_type": np.where(new_user, "new", "returning"),
            "score": score,
            "is_fraud": is_fraud,
            "latency_ms": latency,
        }
    )


def _volume(rng: np.random.Generator, date: dt.date, rows_per_day: int) -> int:
    """A day's rows: the weekly season, plus a few percent of day-to-day noise."""
    base = rows_per_day * (WEEKEND_VOLUME if date.weekday() >= 5 else 1.0)
    return max(1, round(base * rng.uniform(0.95, 1.05)))


def generate_months(
    days: int = 90,
    rows_per_day: int = 3000,
    seed: int = 0,
    incidents: bool = True,
    benign: bool = True,
) -> Months:
    """Build the scenario deterministically from ``seed``.

    ``incidents=False`` or ``benign=False`` leave those events out of the data (and of
    ``events``); the weekly season, being how traffic looks, stays either way.
    """
    events = [
        e
        for e in schedule(days, seed)
        if e.name == "weekly_season"
        or (e.kind == "incident" and incidents)
        or (e.kind == "benign" and benign)
    ]
    rng = np.random.default_rng(seed)
    parts = []
    next_id = 0
    for offset in range(-REFERENCE_DAYS, 0):
        date = START + offset * DAY
        n = _volume(rng, date, rows_per_day)
        parts.append(_traffic(rng, n, date, next_id, []))
        next_id += n
    reference = pa.concat_tables(parts)
    out = []
    for index in range(days):
        date = START + index * DAY
        n = _volume(rng, date, rows_per_day)
        out.append((date, _traffic(rng, n, date, next_id, events)))
        next_id += n
    return Months(reference, out, events)


@dataclass
class Replay:
    """What the production path made of a scenario."""

    monitor: Monitor
    store: DuckDBStore
    incidents: list[Incident]
    windows: list[dt.datetime]


def replay(months: Months, store: DuckDBStore | None = None) -> Replay:
    """Fit on the reference, check every day into ``store`` (default: in memory) and derive
    the incidents the config's rules imply, as ``tripwire run`` does."""
    monitor = Monitor(parse_config(months.config_yaml, "seasons tripwire.yaml"))
    monitor.fit(months.reference)
    store = store if store is not None else DuckDBStore(":memory:")
    check_windows(monitor, store, months.data(), DAY)
    incidents, windows = derive_incidents(monitor, store, DAY)
    return Replay(monitor, store, incidents, windows)


def day_of(moment: dt.datetime) -> dt.date:
    """The day a (naive UTC) window start belongs to."""
    return moment.date()


def _same_rule(event: Event, incident: Incident) -> bool:
    if event.rule is None or incident.rule != event.rule or incident.severity != event.severity:
        return False
    return not event.features or incident.feature in event.features


def catches(event: Event, incident: Incident) -> bool:
    """Whether ``incident`` is the one ``event`` should raise, opened within its latency."""
    if not _same_rule(event, incident):
        return False
    assert event.latency_days is not None
    opened = day_of(incident.opened_at)
    return event.start <= opened < event.start + event.latency_days * DAY


def absorbs(event: Event, incident: Incident) -> bool:
    """Whether ``event`` fell into an incident of its rule that was already open (or cooling
    down, so not yet announced as resolved: see :func:`tripwire.alerts.notify.announcements`)
    when it began, and kept it firing: the on-call holds that ticket already.

    A noisy series can do this: the starter ``prediction_rate_shift`` rule (z > 3 against the
    trailing seven days) breaches on about 3 % of clean days by chance.
    """
    if not _same_rule(event, incident):
        return False
    return day_of(incident.opened_at) < event.start <= day_of(incident.last_breach_at)


def explains(event: Event, incident: Incident) -> bool:
    """Whether ``incident`` belongs to incident ``event``: its rule and feature, its breaches
    all inside the event's days."""
    if event.kind != "incident" or incident.rule != event.rule:
        return False
    if event.features and incident.feature not in event.features:
        return False
    return event.active(day_of(incident.evidence_start)) and event.active(
        day_of(incident.last_breach_at)
    )
