"""The prediction log: validation, quarantine, idempotent writes, delayed labels, and windows
read back from the store checking exactly like the original rows."""

from __future__ import annotations

import datetime as dt

import pyarrow as pa
import pytest

from tripwire.config import parse_config
from tripwire.demo import scenario
from tripwire.events import table_to_events, validate_events, validate_labels
from tripwire.monitor import Monitor
from tripwire.store import DuckDBStore
from tripwire.store.events import to_monitor_table

CONFIG = parse_config(scenario.CONFIG_YAML)


@pytest.fixture(scope="module")
def day() -> pa.Table:
    return scenario.generate(days=1, rows_per_day=600, reference_rows=3000).days[0][1]


def test_malformed_events_are_quarantined_with_reasons_and_the_rest_kept(day: pa.Table) -> None:
    good = table_to_events(CONFIG, day.slice(0, 3))
    bad = [
        {**good[0], "event_id": ""},
        {**good[1], "prediction": "high"},
        {**good[2], "model": "other-model"},
        {**good[0], "features": {"amount": 1.0}},
        "not an event",
    ]
    accepted, rejected = validate_events(CONFIG, [*good, *bad])
    assert [e.event_id for e in accepted] == [e["event_id"] for e in good]
    assert [r.index for r in rejected] == [3, 4, 5, 6, 7]
    reasons = [r.reason for r in rejected]
    assert reasons[0].startswith("event_id:")
    assert reasons[1].startswith("prediction:")
    assert "expected 'fraud-detector'" in reasons[2]
    assert reasons[3].startswith("features: missing") and "merchant_risk" in reasons[3]
    with DuckDBStore(":memory:") as store:
        store.quarantine(CONFIG.name, "POST /events", rejected)
        kept = store.quarantined(CONFIG.name).to_pylist()
    assert [k["source"] for k in kept] == [f"POST /events[{i}]" for i in range(3, 8)]
    assert "high" in kept[1]["payload"]


def test_redelivered_events_are_stored_once(day: pa.Table) -> None:
    accepted, _ = validate_events(CONFIG, table_to_events(CONFIG, day))
    with DuckDBStore(":memory:") as store:
        assert store.write_events(accepted) == day.num_rows
        assert store.write_events(accepted[:10]) == 0
        assert store.events(CONFIG.name).num_rows == day.num_rows


def test_stored_window_checks_like_the_original_rows_and_labels_join_later(day: pa.Table) -> None:
    reference = scenario.generate(days=1, rows_per_day=600, reference_rows=3000).reference
    monitor = Monitor(CONFIG).fit(reference)
    accepted, _ = validate_events(CONFIG, table_to_events(CONFIG, day))
    labels, rejected = validate_labels(
        CONFIG,
        [
            {"event_id": e.event_id, "model": CONFIG.name, "label": y}
            for e, y in zip(accepted, day["is_fraud"].to_pylist(), strict=True)
        ],
    )
    assert not rejected
    with DuckDBStore(":memory:") as store:
        store.write_events(accepted)
        before = to_monitor_table(CONFIG, store.events(CONFIG.name))
        assert before["is_fraud"].null_count == day.num_rows  # no labels yet
        store.write_labels(labels)
        stored = to_monitor_table(CONFIG, store.events(CONFIG.name))
    original = monitor.check(day)
    replayed = monitor.check(stored)
    # Stored labels know when they arrived, so the stored window also has the label lag.
    lags = [r for r in replayed.rows if r.metric.startswith("label_lag")]
    assert {r.metric for r in lags} == {"label_lag_p50_hours", "label_lag_p90_hours"}
    replayed = replayed.model_copy(update={"rows": [r for r in replayed.rows if r not in lags]})
    assert [(r.metric, r.feature, r.segment) for r in replayed.rows] == [
        (r.metric, r.feature, r.segment) for r in original.rows
    ]
    for a, b in zip(replayed.rows, original.rows, strict=True):
        if a.value is None or b.value is None:
            assert a.value == b.value
        else:
            assert a.value == pytest.approx(b.value, rel=1e-9), (a.metric, a.feature)


def test_naive_timestamps_are_utc() -> None:
    event = {
        "event_id": "e1",
        "model": CONFIG.name,
        "timestamp": "2026-10-01T12:00:00",
        "features": dict.fromkeys(CONFIG.columns.features),
        "prediction": 0.2,
    }
    (accepted,), _ = validate_events(CONFIG, [event])
    assert accepted.timestamp == dt.datetime(2026, 10, 1, 12, tzinfo=dt.UTC)
