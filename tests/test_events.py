"""The prediction log: validation, quarantine, idempotent writes, delayed labels, and windows
read back from the store checking exactly like the original rows."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pytest

from tripwire.config import parse_config
from tripwire.demo import scenario
from tripwire.events import (
    Event,
    table_to_events,
    validate_event_columns,
    validate_events,
    validate_labels,
)
from tripwire.monitor import Monitor
from tripwire.store import DuckDBStore, events
from tripwire.store.common import EventRows, event_rows, event_table
from tripwire.store.events import stored_windows, to_monitor_table

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


# --------------------------------------------------------------------------- JSON columns


def _stored(features: list[str | None], segments: list[str | None] | None = None) -> pa.Table:
    """Stored events with these JSON texts, as ``store.events`` returns them."""
    n = len(features)
    return pa.table(
        {
            "event_id": [f"e{i}" for i in range(n)],
            "ts": pa.array([dt.datetime(2026, 10, 1)] * n, pa.timestamp("us")),
            "prediction": [0.5] * n,
            "latency_ms": pa.nulls(n, pa.float64()),
            "status": pa.nulls(n, pa.string()),
            "cost": pa.nulls(n, pa.float64()),
            "features": pa.array(features, pa.string()),
            "segments": pa.array(segments or ["{}"] * n, pa.string()),
            "metadata": pa.array(["{}"] * n, pa.string()),
            "label": pa.nulls(n, pa.float64()),
            "labelled_at": pa.nulls(n, pa.timestamp("us")),
        }
    )


def test_features_parsed_block_by_block_read_as_one_read_would(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    texts = [
        '{"amount": 1, "country": "DE", "extra": null}',
        '{"amount": 2, "country": null, "extra": null}',
        None,  # no object at all: every key null
        '{"amount": 2.5, "country": "FR", "extra": "x"}',
        '{"amount": 3, "country": "US"}',  # "extra" missing
        '{"amount": null, "country": "GB", "extra": "y"}',
        '{"amount": 4, "country": "DE", "extra": "z", "late": true}',  # a key seen only here
    ]
    # Sliced, so that the column starts at an offset into its buffers.
    stored = _stored(["{}", *texts]).slice(1)
    whole = to_monitor_table(CONFIG, stored)
    # Blocks of 2 rows: "amount" is int64 in some blocks and double in another, "extra" and
    # "late" are all null or missing in some; the result must not depend on the blocks, nor
    # on how the column is chunked.
    monkeypatch.setattr(events, "BLOCK_ROWS", 2)
    column = stored["features"].chunk(0)
    chunked = pa.chunked_array([column.slice(0, 3), column.slice(3)])
    blocks = to_monitor_table(CONFIG, stored.set_column(6, "features", chunked))
    assert blocks.equals(whole)
    assert whole["amount"].type == pa.float64()
    assert whole["amount"].to_pylist() == [1.0, 2.0, None, 2.5, 3.0, None, 4.0]
    assert whole["country"].to_pylist() == ["DE", None, None, "FR", "US", "GB", "DE"]
    assert whole["extra"].to_pylist() == [None, None, None, "x", None, "y", "z"]
    assert whole["late"].to_pylist() == [None] * 6 + [True]


def test_a_key_whose_values_change_type_is_read_as_text_across_blocks(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(events, "BLOCK_ROWS", 2)
    texts = ['{"amount": 1.5}', '{"amount": 2}', '{"amount": "n/a"}', '{"amount": null}']
    table = to_monitor_table(CONFIG, _stored(texts, ['{"user_type": "new"}', "{}", None, "{}"]))
    assert table["amount"].to_pylist() == ["1.5", "2", "n/a", None]
    assert table["user_type"].to_pylist() == ["new", None, None, None]


def test_no_stored_events_give_no_feature_columns() -> None:
    table = to_monitor_table(CONFIG, _stored([]))
    assert table.num_rows == 0 and "amount" not in table.column_names


# --------------------------------------------------------------------------- window by window


def _store_days(store: DuckDBStore, start: dt.date, first_id: int) -> None:
    """Three days of the demo's traffic from ``start``, labelled, into the store."""
    data = scenario.generate(days=3, rows_per_day=200, reference_rows=first_id, start=start)
    for _, day in data.days:
        accepted, _ = validate_events(CONFIG, table_to_events(CONFIG, day))
        store.write_events(accepted)
        labels, _ = validate_labels(
            CONFIG,
            [
                {"event_id": e.event_id, "model": CONFIG.name, "label": y}
                for e, y in zip(accepted, day["is_fraud"].to_pylist(), strict=True)
            ],
        )
        store.write_labels(labels[:50])


def test_stored_windows_read_a_window_at_a_time_what_one_read_gives() -> None:
    day = dt.timedelta(days=1)
    with DuckDBStore(":memory:") as store:
        _store_days(store, dt.date(2020, 3, 1), first_id=10)  # in the past
        _store_days(store, dt.date(2999, 3, 1), first_id=100_000)  # beyond the present
        whole = to_monitor_table(CONFIG, store.events(CONFIG.name))
        everything = list(stored_windows(store, CONFIG, None, None, day))
        # A window at a time; the 979 years without events between them cost nothing.
        assert [t.num_rows for t in everything] == [200] * 6
        assert pa.concat_tables(everything).equals(whole)

        since, until = dt.datetime(2020, 3, 1, 12), dt.datetime(2020, 3, 3)
        period = list(stored_windows(store, CONFIG, since, until, day))
        expected = to_monitor_table(CONFIG, store.events(CONFIG.name, since, until))
        assert pa.concat_tables(period).equals(expected)
        first_day, second_day = (t["ts"] for t in period)  # from noon, then a whole day
        assert pc.min(first_day).as_py() >= since and pc.max(first_day).as_py() < dt.datetime(
            2020, 3, 2
        )
        assert pc.min(second_day).as_py() >= dt.datetime(2020, 3, 2)
        # Aware bounds are UTC; a period without events gives no table.
        aware = dt.datetime(2020, 3, 2, tzinfo=dt.UTC)
        assert sum(t.num_rows for t in stored_windows(store, CONFIG, aware, None, day)) == 1000
        assert list(stored_windows(store, CONFIG, dt.datetime(2021, 1, 1), until, day)) == []
    with DuckDBStore(":memory:") as empty:
        assert list(stored_windows(empty, CONFIG, None, None, day)) == []


def _variants(good: dict[str, Any]) -> list[Any]:
    """``good`` changed in the ways a client might send it, valid or not."""
    features = good["features"]
    return [
        good,
        {**good, "prediction": "0.25"},
        {**good, "prediction": 1},
        {**good, "prediction": True},
        {**good, "prediction": None},
        {**good, "prediction": "high"},
        {**good, "timestamp": "2026-10-01T12:00:00"},
        {**good, "timestamp": "2026-10-01T12:00:00+02:00"},
        {**good, "timestamp": "2026-10-01T12:00:00.123456-05:30"},
        {**good, "timestamp": "2026-10-01T12:00:00Z"},
        {**good, "timestamp": "2026-10-01"},
        {**good, "timestamp": 1_790_000_000},
        {**good, "timestamp": "yesterday"},
        {**good, "features": {**features, "amount": None, "country": True, "hour": 7}},
        {**good, "features": {**features, "amount": float("inf")}},
        {**good, "features": {**features, "unconfigured": "kept"}},
        {**good, "features": {**features, "amount": {"nested": 1}}},
        {**good, "features": {**features, "amount": [1, 2]}},
        {**good, "features": {k: v for k, v in features.items() if k != "amount"}},
        {**good, "features": "amount=1"},
        {**good, "model_version": "v2", "role": "shadow"},
        {**good, "role": "canary"},
        {**good, "latency_ms": "12.5", "cost": None, "status": None},
        {**good, "status": 3},
        {**good, "segments": {"country": "GB"}, "metadata": {"trace": [1, {"x": None}]}},
        {**good, "segments": {"country": 1}},
        {**good, "segments": None},
        {**good, "event_id": ""},
        {**good, "event_id": "x" * 200},
        {**good, "event_id": "x" * 201},
        {**good, "event_id": 123},
        {**good, "model": "other-model"},
        {**good, "unknown_field": 1},
        {k: v for k, v in good.items() if k != "prediction"},
        {k: v for k, v in good.items() if k not in ("segments", "latency_ms", "status", "cost")},
        "not an event",
        None,
    ]


def test_column_validation_accepts_and_stores_exactly_what_event_validation_does(
    day: pa.Table,
) -> None:
    (good,) = table_to_events(CONFIG, day.slice(0, 1))
    good["timestamp"] = good["timestamp"].isoformat()
    received = dt.datetime(2026, 11, 1)
    valid = []
    for n, item in enumerate(_variants(good)):
        columns = validate_event_columns(CONFIG, [item])
        accepted, rejected = validate_events(CONFIG, [item])
        assert (columns is None) == bool(rejected), (n, item, rejected)
        if columns is not None:
            # Stored alike, to the last column: timestamps in UTC, features as JSON.
            assert (
                event_table(event_rows(columns), received).to_pylist()
                == event_table(accepted, received).to_pylist()
            ), (n, item)
            valid.append(item)
    assert len(valid) >= 15
    # A batch validates whole only when every item does.
    columns = validate_event_columns(CONFIG, valid)
    assert columns is not None and len(columns["event_id"]) == len(valid)
    assert validate_event_columns(CONFIG, [*valid, {**good, "prediction": "high"}]) is None


def test_column_validation_knows_every_validator_of_event() -> None:
    # validate_event_columns applies Event's field types and constraints column by column; a
    # validator it does not know of would be skipped. (_utc is the store's conversion to UTC.)
    decorators = Event.__pydantic_decorators__
    assert set(decorators.field_validators) == {"_utc"}
    assert not decorators.model_validators and not decorators.root_validators


def test_event_rows_read_back_as_the_events_they_hold(day: pa.Table) -> None:
    accepted, _ = validate_events(CONFIG, table_to_events(CONFIG, day.slice(0, 5)))
    rows = EventRows.of(accepted)
    assert len(rows) == 5 and EventRows.of(rows) is rows
    assert rows[0] == accepted[0] and rows[-1] == accepted[-1]
    assert list(rows[1:4]) == accepted[1:4] and list(rows[::-2]) == accepted[::-2]
    with pytest.raises(IndexError):
        rows[5]
    both = EventRows.concat([rows[3:], accepted[:1]])
    assert list(both) == [*accepted[3:], accepted[0]]
    assert len(EventRows.concat([])) == 0 and len(EventRows.of([])) == 0
