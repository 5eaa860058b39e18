"""The monitoring job's windowing and merged windows, on a real DuckDB store."""

from __future__ import annotations

import datetime as dt

import pyarrow as pa
import pytest

from tripwire.config import parse_config
from tripwire.demo import scenario
from tripwire.errors import TripwireError
from tripwire.job import check_windows, merged_report, window_starts
from tripwire.monitor import Monitor
from tripwire.store import DuckDBStore

DAY = dt.timedelta(days=1)


def test_window_starts_floor_timestamps_to_the_window() -> None:
    ts = pa.chunked_array(
        [
            pa.array(
                [
                    dt.datetime(2026, 1, 1, 23, 59),
                    dt.datetime(2026, 1, 2, 0, 0),
                    dt.datetime(2026, 1, 2, 5, 30),
                ],
                pa.timestamp("us"),
            )
        ]
    )
    starts = window_starts(ts, dt.timedelta(hours=6)).astype("datetime64[us]").tolist()
    assert starts == [dt.datetime(2026, 1, 1, 18), dt.datetime(2026, 1, 2), dt.datetime(2026, 1, 2)]
    with pytest.raises(TripwireError, match="no timestamp"):
        window_starts(pa.chunked_array([pa.array([None], pa.timestamp("us"))]), DAY)


def test_a_merged_week_equals_checking_the_week_at_once() -> None:
    data = scenario.generate(days=7, rows_per_day=1500, reference_rows=8000)
    monitor = Monitor(parse_config(scenario.CONFIG_YAML)).fit(data.reference)
    week = pa.concat_tables([table for _, table in data.days])
    with DuckDBStore(":memory:") as store:
        checked = check_windows(monitor, store, week, DAY)
        assert [start.date() for start, _ in checked] == [date for date, _ in data.days]
        end = dt.datetime.combine(data.days[-1][0], dt.time()) + DAY
        merged = merged_report(monitor, store, DAY, end, 7 * DAY)
    direct = monitor.check(week)
    key = [(r.layer, r.metric, r.feature, r.segment) for r in direct.rows]
    assert [(r.layer, r.metric, r.feature, r.segment) for r in merged.rows] == key
    for a, b in zip(merged.rows, direct.rows, strict=True):
        assert (a.value is None) == (b.value is None)
        if a.value is not None and b.value is not None:
            assert a.value == pytest.approx(b.value, rel=1e-9, abs=1e-12), (a.metric, a.feature)


def test_a_table_without_the_timestamp_column_is_refused() -> None:
    data = scenario.generate(days=1, rows_per_day=500, reference_rows=3000)
    monitor = Monitor(parse_config(scenario.CONFIG_YAML)).fit(data.reference)
    with DuckDBStore(":memory:") as store, pytest.raises(TripwireError, match="timestamp"):
        check_windows(monitor, store, data.days[0][1].drop(["ts"]), DAY)


def _stored_log(days: int) -> tuple[Monitor, DuckDBStore, scenario.Scenario]:
    from tripwire.events import table_to_events, validate_events

    data = scenario.generate(days=days, rows_per_day=1200, reference_rows=6000)
    config = parse_config(scenario.CONFIG_YAML)
    store = DuckDBStore(":memory:")
    for _, table in data.days:
        events, rejected = validate_events(config, table_to_events(config, table))
        assert not rejected
        store.write_events(events)
    return Monitor(config).fit(data.reference), store, data


def test_replay_writes_its_own_namespace_and_leaves_production_alone() -> None:
    from tripwire.job import replay

    monitor, store, data = _stored_log(6)
    with store:
        check_windows(monitor, store, data.days[0][1], DAY)  # one production window
        before = store.history(monitor.config.name, DAY).num_rows
        windows, incidents = replay(monitor, store, None, None, DAY)
        assert len(windows) == 6
        assert store.history(monitor.config.name, DAY).num_rows == before
        assert len(store.window_starts(monitor.config.name, DAY, "replay")) == 6
        # The null spike of days 5-6 pages in the replay, and only there.
        assert any(i.rule == "null_share_top_features" for i in incidents)
        assert store.incidents(monitor.config.name).num_rows == 0
        assert store.incidents(monitor.config.name, "replay").num_rows == len(incidents)


def test_retention_expires_raw_events_but_keeps_windows() -> None:
    monitor, store, data = _stored_log(3)
    with store:
        check_windows(monitor, store, pa.concat_tables([t for _, t in data.days]), DAY)
        cutoff = dt.datetime.combine(data.days[1][0], dt.time())
        first_day = data.days[0][1].num_rows
        assert store.expire_events(monitor.config.name, cutoff) == first_day
        remaining = store.events(monitor.config.name)
        assert remaining.num_rows == data.days[1][1].num_rows + data.days[2][1].num_rows
        assert len(store.window_starts(monitor.config.name, DAY)) == 3
