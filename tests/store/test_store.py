"""Every store, DuckDB file and PostgreSQL database alike (see tests/conftest.py): migrations,
idempotent windows, history queries, stored profiles that merge like the raw data,
calibrations, incidents, the prediction log, persistence, and one table layout for all."""

from __future__ import annotations

import json
import math
import socket
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import fields, is_dataclass
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pyarrow as pa
import pytest

from tripwire.config import parse_config
from tripwire.errors import TripwireError
from tripwire.events import Event, Label, Rejected
from tripwire.layers.rows import MetricRow
from tripwire.monitor import Monitor
from tripwire.profile import serialize
from tripwire.profile.window import merge_windows
from tripwire.store import DuckDBStore, DuplicateEventsError
from tripwire.store.common import CALIBRATIONS, CONSUMERS, EVENTS, HISTORY, INCIDENTS, QUARANTINED
from tripwire.store.common import TABLES as LAYOUT
from tripwire.store.schema import MIGRATIONS

Store = Any  # DuckDBStore or PostgresStore: the same methods, whichever the test was given
Opener = Callable[[], Store]

DAY = timedelta(days=1)
WEEK = timedelta(days=7)
T0 = datetime(2024, 5, 1)
TABLES = {
    "windows",
    "metrics",
    "metric_revisions",
    "incidents",
    "calibrations",
    "abnormal_windows",
    "outbox",
}
HISTORY_COLUMNS = [
    "window_start",
    "segment",
    "feature",
    "layer",
    "metric",
    "value",
    "status",
    "threshold",
    "reference",
    "n",
    "importance",
    "ci_low",
    "ci_high",
    "coverage",
]


@pytest.fixture
def path(tmp_path: Path) -> Path:
    """Where the DuckDB-only tests keep their file."""
    return tmp_path / "tripwire.duckdb"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def rows(psi: float = 0.3, auc: float | None = 0.81) -> list[MetricRow]:
    """A small window's metric rows: inputs per feature and segment, an output metric, a gap."""
    return [
        MetricRow(
            layer="inputs",
            metric="psi",
            feature="amount",
            value=psi,
            status="alert",
            threshold=0.25,
            n=1000,
            importance=0.7,
        ),
        MetricRow(
            layer="inputs",
            metric="psi",
            feature="amount",
            segment="country=us",
            value=0.05,
            status="ok",
            threshold=0.25,
            n=400,
            importance=0.7,
        ),
        MetricRow(
            layer="inputs",
            metric="null_share",
            feature="amount",
            value=0.02,
            status="ok",
            reference=0.01,
            n=1000,
        ),
        MetricRow(
            layer="performance",
            metric="auc",
            value=auc,
            status="no_data" if auc is None else "ok",
            reason="no labels yet" if auc is None else None,
            reference=0.85,
            n=300,
            bound=0.01,
        ),
        MetricRow(
            layer="predictions",
            metric="mean_pred",
            value=float("nan"),
            status="error",
            reason="no predictions",
        ),
    ]


def write(store: Store, start: datetime, length: timedelta = DAY, **kwargs: Any) -> None:
    store.write_window(
        "fraud", start, length, rows(**kwargs), profile=f"profile {start}".encode(), n_rows=1000
    )


def tables(store: Store) -> set[str]:
    found = store.connection.execute("SELECT table_name FROM information_schema.tables").fetchall()
    return {name for (name,) in found}


def versions(store: Store) -> list[int]:
    found = store.connection.execute(
        "SELECT version FROM schema_version ORDER BY version"
    ).fetchall()
    return [version for (version,) in found]


# --- migrations ------------------------------------------------------------------------------


def test_migrations_create_the_tables_and_record_the_version(open_store, backend, tmp_path):
    with open_store() as store:
        assert tables(store) >= TABLES
        assert versions(store) == list(range(1, len(MIGRATIONS) + 1))
    if backend == "duckdb":
        assert (tmp_path / "tripwire.duckdb").exists()


def test_reopening_does_not_run_the_migrations_again(open_store):
    with open_store() as store:
        write(store, T0)
    # Running migration 1 again would fail (CREATE TABLE of existing tables) or wipe data.
    with open_store() as store:
        assert versions(store) == list(range(1, len(MIGRATIONS) + 1))
        assert store.window_starts("fraud", DAY) == [T0]


def test_a_store_newer_than_the_code_is_refused_naming_the_file(path):
    with DuckDBStore(path):
        pass
    with duckdb.connect(str(path)) as db:
        db.execute("INSERT INTO schema_version VALUES (?)", [len(MIGRATIONS) + 1])
    with pytest.raises(TripwireError, match="newer") as error:
        DuckDBStore(path)
    assert str(path) in str(error.value)


def test_an_outbox_made_before_its_migration_is_kept_with_its_rows(path):
    """The outbox created its own table before migration 3 did: such a store upgrades."""
    with duckdb.connect(str(path)) as db:
        db.execute("CREATE TABLE schema_version (version INTEGER NOT NULL)")
        for version, migration in enumerate(MIGRATIONS[:2], start=1):
            db.execute(migration)
            db.execute("INSERT INTO schema_version VALUES (?)", [version])
        db.execute(MIGRATIONS[2])  # the same statements the outbox ran itself
        db.execute(
            "INSERT INTO outbox (created_at, route, channel_index, channel_type, dedup_key, "
            "event, payload, next_attempt_at) VALUES (?, 'oncall', 0, 'console', 'k', "
            "'firing', '{}', ?)",
            [T0, T0],
        )
    with DuckDBStore(path) as store:
        assert versions(store) == list(range(1, len(MIGRATIONS) + 1))
        assert store.sql("SELECT id, dedup_key FROM outbox") == [(1, "k")]


def test_an_unreadable_file_is_a_tripwire_error_naming_it(tmp_path):
    bad = tmp_path / "not-a-database.duckdb"
    bad.write_bytes(b"this is not a duckdb file" * 100)
    with pytest.raises(TripwireError) as error:
        DuckDBStore(bad)
    assert str(bad) in str(error.value)


def test_in_memory_store():
    with DuckDBStore(":memory:") as store:
        write(store, T0)
        assert store.history("fraud", DAY).num_rows == len(rows())


def test_both_dialects_have_the_same_migrations():
    postgres_store = pytest.importorskip("tripwire.store.postgres_store")
    assert len(postgres_store.MIGRATIONS) == len(MIGRATIONS)


def test_a_postgres_store_newer_than_the_code_is_refused_naming_the_database(postgres_server):
    from tripwire.store import PostgresStore

    dsn = postgres_server.new_dsn()
    with PostgresStore(dsn) as store:
        store.connection.execute("INSERT INTO schema_version VALUES (%s)", [len(MIGRATIONS) + 1])
    with pytest.raises(TripwireError, match="newer") as error:
        PostgresStore(dsn)
    assert "dbname=tripwire" in str(error.value)


def test_an_unreachable_server_is_a_tripwire_error_without_the_password(postgres_server):
    from tripwire.store import PostgresStore

    # Nothing listens on this port once the probe socket is closed.
    dsn = f"host=127.0.0.1 port={free_port()} user=postgres password=s3cret connect_timeout=5"
    with pytest.raises(TripwireError, match="cannot open the store") as error:
        PostgresStore(dsn)
    assert "127.0.0.1" in str(error.value)
    assert "s3cret" not in str(error.value)


def test_postgres_stores_opening_a_new_database_at_once_migrate_it_once(postgres_server):
    """Several processes may start against one new database; the migrations run once."""
    from tripwire.store import PostgresStore

    dsn = postgres_server.new_dsn()
    with ThreadPoolExecutor(4) as pool:
        opened = list(pool.map(lambda _: PostgresStore(dsn), range(4)))
    try:
        for store in opened:
            assert versions(store) == list(range(1, len(MIGRATIONS) + 1))
    finally:
        for store in opened:
            store.close()


def test_every_store_has_the_shared_table_layout(store, backend):
    """Each dialect's migrations add up to the one layout the Arrow tables are built from."""
    names = {
        "duckdb": {
            pa.string(): {"VARCHAR", "JSON"},
            pa.timestamp("us"): {"TIMESTAMP"},
            pa.int64(): {"BIGINT"},
            pa.int32(): {"INTEGER"},
            pa.float64(): {"DOUBLE"},
            pa.binary(): {"BLOB"},
        },
        "postgres": {
            pa.string(): {"text"},
            pa.timestamp("us"): {"timestamp without time zone"},
            pa.int64(): {"bigint"},
            pa.int32(): {"integer"},
            pa.float64(): {"double precision"},
            pa.binary(): {"bytea"},
        },
    }[backend]
    for table, schema in LAYOUT.items():
        found = store.connection.execute(
            "SELECT column_name, data_type, is_nullable FROM information_schema.columns "
            f"WHERE table_schema = current_schema() AND table_name = '{table}' "
            "ORDER BY ordinal_position"
        ).fetchall()
        assert [name for name, _, _ in found] == schema.names, table
        for (name, kind, nullable), field in zip(found, schema, strict=True):
            assert kind in names[field.type], (table, name, kind)
            assert (nullable == "YES") == field.nullable, (table, name)


# --- windows and metric history --------------------------------------------------------------


def test_write_window_then_history_returns_the_rows(open_store):
    with open_store() as store:
        write(store, T0)
        got = store.history("fraud", DAY)
    assert got.column_names == HISTORY_COLUMNS
    assert got.schema.field("window_start").type == pa.timestamp("us")
    assert got.schema.field("value").type == pa.float64()
    assert got.schema.field("n").type == pa.int64()
    # Oldest first, then by segment, feature and metric (intervals: see test_revisions.py).
    assert got.drop_columns(["ci_low", "ci_high", "coverage"]).to_pylist() == [
        {
            "window_start": T0,
            "segment": "all",
            "feature": "",
            "layer": "performance",
            "metric": "auc",
            "value": 0.81,
            "status": "ok",
            "threshold": None,
            "reference": 0.85,
            "n": 300,
            "importance": None,
        },
        {
            "window_start": T0,
            "segment": "all",
            "feature": "",
            "layer": "predictions",
            "metric": "mean_pred",
            "value": None,  # NaN is stored as missing
            "status": "error",
            "threshold": None,
            "reference": None,
            "n": 0,
            "importance": None,
        },
        {
            "window_start": T0,
            "segment": "all",
            "feature": "amount",
            "layer": "inputs",
            "metric": "null_share",
            "value": 0.02,
            "status": "ok",
            "threshold": None,
            "reference": 0.01,
            "n": 1000,
            "importance": None,
        },
        {
            "window_start": T0,
            "segment": "all",
            "feature": "amount",
            "layer": "inputs",
            "metric": "psi",
            "value": 0.3,
            "status": "alert",
            "threshold": 0.25,
            "reference": None,
            "n": 1000,
            "importance": 0.7,
        },
        {
            "window_start": T0,
            "segment": "country=us",
            "feature": "amount",
            "layer": "inputs",
            "metric": "psi",
            "value": 0.05,
            "status": "ok",
            "threshold": 0.25,
            "reference": None,
            "n": 400,
            "importance": 0.7,
        },
    ]


def test_bound_and_reason_are_stored_too(open_store):
    with open_store() as store:
        write(store, T0)
        got = store.connection.execute(
            "SELECT metric, bound, reason FROM metrics ORDER BY metric"
        ).fetchall()
    assert got == [
        ("auc", 0.01, None),
        ("mean_pred", None, "no predictions"),
        ("null_share", None, None),
        ("psi", None, None),
        ("psi", None, None),
    ]


def test_writing_a_window_again_replaces_its_rows(open_store):
    with open_store() as store:
        write(store, T0, psi=0.3)
        write(store, T0 + DAY, psi=0.4)
        store.write_window("fraud", T0, DAY, rows(psi=0.9)[:1], profile=b"second", n_rows=5)
        got = store.history("fraud", DAY)
        starts = store.window_starts("fraud", DAY)
        profiles = store.profiles("fraud", DAY, T0, T0 + 2 * DAY)
        n_rows = store.connection.execute(
            "SELECT window_start, n_rows FROM windows ORDER BY window_start"
        ).fetchall()
    first = got.filter(pa.compute.equal(got["window_start"], pa.scalar(T0, pa.timestamp("us"))))
    assert first.select(["metric", "feature", "value"]).to_pylist() == [
        {"metric": "psi", "feature": "amount", "value": 0.9}
    ]
    # The other window is untouched.
    assert got.num_rows == 1 + len(rows())
    assert starts == [T0, T0 + DAY]
    assert profiles == [(T0, b"second"), (T0 + DAY, f"profile {T0 + DAY}".encode())]
    assert n_rows == [(T0, 5), (T0 + DAY, 1000)]


def test_writing_the_same_window_twice_is_idempotent(open_store):
    with open_store() as store:
        write(store, T0)
        once = store.history("fraud", DAY)
        write(store, T0)
        assert store.history("fraud", DAY).equals(once)
        assert store.window_starts("fraud", DAY) == [T0]


def test_a_window_without_rows_is_still_a_window(open_store):
    with open_store() as store:
        write(store, T0)
        store.write_window("fraud", T0, DAY, [], profile=b"empty", n_rows=0)
        assert store.window_starts("fraud", DAY) == [T0]
        assert store.history("fraud", DAY).num_rows == 0
        assert store.profiles("fraud", DAY, T0, T0 + DAY) == [(T0, b"empty")]


def test_history_filters_by_metric_time_length_model_and_namespace(open_store):
    with open_store() as store:
        for day in range(5):
            write(store, T0 + day * DAY, psi=0.1 * day)
        write(store, T0, WEEK, psi=0.77)
        store.write_window("other", T0, DAY, rows(psi=0.55), profile=b"x", n_rows=1)
        store.write_window("fraud", T0, DAY, rows(psi=0.66), b"x", 1, namespace="shadow")

        psi = store.history("fraud", DAY, metrics=["psi"])
        assert set(psi["metric"].to_pylist()) == {"psi"}
        assert psi.num_rows == 2 * 5
        both = store.history("fraud", DAY, metrics=["psi", "auc"])
        assert set(both["metric"].to_pylist()) == {"psi", "auc"}
        assert store.history("fraud", DAY, metrics=["ks"]).num_rows == 0

        # [since, until): the window starting at `until` is left out.
        ranged = store.history("fraud", DAY, metrics=["psi"], since=T0 + DAY, until=T0 + 3 * DAY)
        assert sorted(set(ranged["window_start"].to_pylist())) == [T0 + DAY, T0 + 2 * DAY]
        assert store.history("fraud", DAY, since=T0 + 4 * DAY).num_rows == len(rows())
        assert store.history("fraud", DAY, until=T0 + DAY).num_rows == len(rows())

        weekly = store.history("fraud", WEEK, metrics=["psi"])
        assert weekly.filter(pa.compute.equal(weekly["segment"], "all"))["value"].to_pylist() == [
            0.77
        ]
        assert store.window_starts("fraud", WEEK) == [T0]

        other = store.history("other", DAY, metrics=["psi"], until=T0 + DAY)
        assert 0.55 in other["value"].to_pylist()
        shadow = store.history("fraud", DAY, metrics=["psi"], namespace="shadow")
        assert 0.66 in shadow["value"].to_pylist()
        production = store.history("fraud", DAY, metrics=["psi"])
        assert not {0.55, 0.66, 0.77} & set(production["value"].to_pylist())

        starts = store.history("fraud", DAY)["window_start"].to_pylist()
        assert starts == sorted(starts)


def test_aware_window_starts_are_stored_as_naive_utc(open_store):
    plus_two = timezone(timedelta(hours=2))
    with open_store() as store:
        write(store, datetime(2024, 5, 1, 2, 0, tzinfo=plus_two))  # 00:00 UTC
        assert store.window_starts("fraud", DAY) == [T0]
        since = datetime(2024, 5, 1, tzinfo=UTC)
        assert store.history("fraud", DAY, since=since).num_rows == len(rows())
        assert store.history("fraud", DAY, until=since).num_rows == 0


# --- stored profiles --------------------------------------------------------------------------

MONITOR_CONFIG = parse_config(
    """
name: toy
task: binary
columns:
  features: {x: numeric, country: categorical}
  prediction: score
  label: y
  segments: [country]
"""
)


def _data(rng: np.random.Generator, n: int, shift: float = 0.0) -> pa.Table:
    score = rng.random(n)
    x = rng.normal(shift, 1.0, n)
    x[rng.random(n) < 0.02] = np.nan
    return pa.table(
        {
            "x": x,
            "country": rng.choice(["us", "de", "fr"], n, p=[0.5, 0.3, 0.2]),
            "score": score,
            "y": (rng.random(n) < score).astype(np.float64),
        }
    )


def assert_same(a: Any, b: Any, where: str = "profile") -> None:
    """Profiles equal field by field: integers exactly, floats to rtol 1e-12."""
    assert type(a) is type(b), where
    if is_dataclass(a):
        for f in fields(a):
            assert_same(getattr(a, f.name), getattr(b, f.name), f"{where}.{f.name}")
    elif isinstance(a, np.ndarray):
        assert a.shape == b.shape, where
        if a.dtype.kind in "iub" or a.dtype.kind not in "fc":
            np.testing.assert_array_equal(a, b, err_msg=where)
        else:
            np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-12, err_msg=where)
    elif isinstance(a, dict):
        assert a.keys() == b.keys(), where
        for key in a:
            assert_same(a[key], b[key], f"{where}[{key!r}]")
    elif isinstance(a, list | tuple):
        assert len(a) == len(b), where
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            assert_same(x, y, f"{where}[{i}]")
    elif isinstance(a, float):
        assert (math.isnan(a) and math.isnan(b)) or math.isclose(
            a, b, rel_tol=1e-12, abs_tol=1e-12
        ), f"{where}: {a} != {b}"
    else:
        assert a == b, where


def test_stored_profiles_merge_like_the_concatenated_data(open_store):
    rng = np.random.default_rng(7)
    monitor = Monitor(MONITOR_CONFIG).fit(_data(rng, 3000))
    chunks = [_data(rng, n, shift) for n, shift in ((700, 0.0), (1100, 0.3), (500, 0.8))]
    blobs = []
    with open_store() as store:
        for day, chunk in enumerate(chunks):
            profile = monitor.profile(chunk)
            blob = serialize.to_bytes(profile)
            blobs.append(blob)
            report = monitor.evaluate(profile)
            store.write_window("toy", T0 + day * DAY, DAY, report.rows, blob, chunk.num_rows)
    with open_store() as store:
        stored = store.profiles("toy", DAY, T0, T0 + 3 * DAY)
        assert store.profiles("toy", DAY, T0 + DAY, T0 + 2 * DAY) == [(T0 + DAY, blobs[1])]
        assert store.profiles("toy", WEEK, T0, T0 + 3 * DAY) == []
    assert stored == [(T0 + day * DAY, blob) for day, blob in enumerate(blobs)]
    merged = merge_windows([serialize.from_bytes(blob) for _, blob in stored])
    whole = monitor.profile(pa.concat_tables(chunks))
    assert set(merged) == set(whole) == {"all", "country=us", "country=de", "country=fr"}
    assert merged["all"].n_rows == sum(c.num_rows for c in chunks)
    assert_same(merged, whole)
    # And so the metrics of the merged window are those of the concatenation.
    from_store = {(r.metric, r.feature, r.segment): r.value for r in monitor.evaluate(merged).rows}
    direct = {(r.metric, r.feature, r.segment): r.value for r in monitor.evaluate(whole).rows}
    assert from_store.keys() == direct.keys()
    for key, value in direct.items():
        if value is None:
            assert from_store[key] is None, key
        else:
            assert from_store[key] == pytest.approx(value, rel=1e-9, abs=1e-12), key


# --- calibrations and abnormal windows -------------------------------------------------------


def test_calibrations_round_trip_and_replace(open_store):
    used = [T0, T0 + DAY, T0 + 2 * DAY]
    with open_store() as store:
        store.save_calibration("fraud", "psi", "amount", "all", 0.31, 0.99, 0.2, used)
        store.save_calibration("fraud", "auc", "", "country=us", 0.7, 0.01, 0.6, used[:1])
        store.save_calibration("fraud", "psi", "amount", "all", 0.35, 0.995, 0.2, used[1:])
        store.save_calibration("other", "psi", "amount", "all", 9.0, 0.5, 0.1, used)
    with open_store() as store:
        table = store.calibrations("fraud")
        assert store.calibrations("nobody").num_rows == 0
    got = table.to_pylist()
    assert [(c["metric"], c["feature"], c["segment"]) for c in got] == [
        ("auc", "", "country=us"),
        ("psi", "amount", "all"),
    ]
    auc, psi = got
    assert (psi["threshold"], psi["quantile"], psi["floor"]) == (0.35, 0.995, 0.2)
    assert [datetime.fromisoformat(w) for w in json.loads(psi["windows_used"])] == used[1:]
    assert (auc["threshold"], auc["quantile"], auc["floor"]) == (0.7, 0.01, 0.6)
    assert json.loads(auc["windows_used"]) == [T0.isoformat()]
    assert all(c["model"] == "fraud" and isinstance(c["computed_at"], datetime) for c in got)


def test_abnormal_windows_round_trip(open_store):
    plus_two = timezone(timedelta(hours=2))
    with open_store() as store:
        store.mark_abnormal("fraud", T0, "outage")
        store.mark_abnormal("fraud", T0, "outage, upstream")  # marking again replaces
        store.mark_abnormal("fraud", datetime(2024, 5, 3, 2, tzinfo=plus_two), "holiday")
        store.mark_abnormal("other", T0 + DAY, "test")
    with open_store() as store:
        assert store.abnormal_windows("fraud") == {T0, T0 + 2 * DAY}
        assert store.abnormal_windows("other") == {T0 + DAY}
        assert store.abnormal_windows("nobody") == set()
        reasons = store.connection.execute(
            "SELECT reason FROM abnormal_windows WHERE model = 'fraud' ORDER BY window_start"
        ).fetchall()
    assert reasons == [("outage, upstream",), ("holiday",)]


# --- incidents --------------------------------------------------------------------------------


def incident(model: str, rule: str, day: int, namespace: str = "production") -> dict[str, Any]:
    start = T0 + day * DAY
    return {
        "dedup_key": f"{model}/{rule}/amount/all/{start:%Y-%m-%dT%H:%M}",
        "model": model,
        "namespace": namespace,
        "rule": rule,
        "metric": "psi",
        "feature": "amount",
        "segment": "all",
        "severity": "page",
        "route": "console",
        "evidence_start": start,
        "opened_at": start + 2 * DAY,
        "last_breach_at": start + 3 * DAY,
        "resolved_at": None if day % 2 else start + 5 * DAY,
        "value": 0.3 + day / 100,
        "threshold": 0.25,
        "reopened": day % 3,
        "updated_at": T0 + 30 * DAY,
        # Raised after its evidence (labels landing late), or not recorded (before migration 9).
        "detected_at": None if day == 9 else start + 9 * DAY + timedelta(minutes=10),
    }


def test_save_incidents_replaces_the_models_incidents(open_store):
    first = [incident("fraud", "drift", 0), incident("fraud", "drift", 1)]
    with open_store() as store:
        store.save_incidents("fraud", pa.Table.from_pylist(first))
        store.save_incidents("other", pa.Table.from_pylist([incident("other", "drift", 0)]))
        assert store.incidents("fraud").to_pylist() == first

        second = [incident("fraud", "drift", 1), incident("fraud", "auc", 4)]
        store.save_incidents("fraud", pa.Table.from_pylist(second))
        assert store.incidents("fraud").to_pylist() == second  # ordered by opened_at, rule
        assert store.incidents("other").num_rows == 1

        # Another namespace is separate.
        store.save_incidents(
            "fraud", pa.Table.from_pylist([incident("fraud", "shadow", 9, "shadow")]), "shadow"
        )
        assert store.incidents("fraud").to_pylist() == second
        assert [i["rule"] for i in store.incidents("fraud", "shadow").to_pylist()] == ["shadow"]

    with open_store() as store:
        assert store.incidents("fraud").to_pylist() == second
        # No incidents any more: an empty table clears them.
        store.save_incidents("fraud", pa.table({}))
        assert store.incidents("fraud").num_rows == 0
        assert store.incidents("other").num_rows == 1


def test_columns_may_come_in_any_order(open_store):
    row = incident("fraud", "drift", 0)
    shuffled = pa.Table.from_pylist([dict(reversed(list(row.items())))])
    with open_store() as store:
        store.save_incidents("fraud", shuffled)
        assert store.incidents("fraud").to_pylist() == [row]


# --- the prediction log -----------------------------------------------------------------------


def event(event_id: str, minute: int, **fields: Any) -> Event:
    return Event.model_validate(
        {
            "event_id": event_id,
            "model": "fraud",
            "timestamp": T0 + timedelta(minutes=minute),
            "features": {"amount": 10.0 * minute, "country": "us"},
            "prediction": minute / 100,
            "segments": {"country": "us"},
            **fields,
        }
    )


def test_inserting_new_events_stores_all_or_raises_and_stores_none(store):
    store.insert_events([event("a", 1), event("b", 2)])
    store.insert_events([])
    # An id stored already, or one repeated in the batch: nothing of the batch is stored,
    # and inside a transaction the store is left for the caller to roll back.
    for batch in ([event("c", 3), event("a", 1)], [event("d", 4), event("d", 4)]):
        with pytest.raises(DuplicateEventsError), store.transaction():
            store.insert_events(batch)
    assert store.events("fraud")["event_id"].to_pylist() == ["a", "b"]
    # The store goes on: what the batch held that was new is stored by write_events.
    assert store.write_events([event("c", 3), event("a", 1)]) == 1
    got = store.events("fraud")
    assert got["event_id"].to_pylist() == ["a", "b", "c"]
    assert json.loads(got["features"][2].as_py()) == {"amount": 30.0, "country": "us"}


def test_events_are_stored_once_and_read_back_oldest_first(store):
    first = [event("a", 2), event("b", 1), event("s", 0, role="shadow")]
    assert store.write_events(first) == 3
    assert store.write_events(first[:2]) == 0  # redelivered
    # A duplicate inside one batch counts once too.
    assert store.write_events([event("c", 3), event("c", 3), event("a", 2)]) == 1
    assert store.write_events([]) == 0

    got = store.events("fraud")
    assert got.schema == EVENTS
    assert got["event_id"].to_pylist() == ["b", "a", "c"]
    assert got["ts"].to_pylist() == [T0 + timedelta(minutes=m) for m in (1, 2, 3)]
    assert got["prediction"].to_pylist() == [0.01, 0.02, 0.03]
    assert got["label"].to_pylist() == [None, None, None]
    assert json.loads(got["features"][0].as_py()) == {"amount": 10.0, "country": "us"}
    assert json.loads(got["segments"][0].as_py()) == {"country": "us"}
    assert store.events("fraud", role="shadow")["event_id"].to_pylist() == ["s"]
    assert store.events("other").num_rows == 0


def test_events_logged_in_the_same_second_come_back_in_id_order(store):
    # Order-sensitive sketches see a window's events in one order on every read and recheck.
    ids = ["m-2", "Z-9", "a-1", "m-10", "b", "Ä"]  # byte order: Z-9, a-1, b, m-10, m-2, Ä
    store.write_events([event(i, 1) for i in ids[:3]])
    store.write_events([event(i, 1) for i in ids[3:]] + [event("early", 0)])
    got = store.events("fraud")["event_id"].to_pylist()
    assert got == ["early", *sorted(ids, key=lambda i: i.encode())]


def test_events_in_a_time_range_and_aware_timestamps_as_utc(store):
    plus_two = timezone(timedelta(hours=2))
    store.write_events(
        [event(str(m), m) for m in range(5)]
        + [event("aware", 0, timestamp=datetime(2024, 5, 1, 2, 10, tzinfo=plus_two))]
    )
    ranged = store.events("fraud", since=T0 + timedelta(minutes=1), until=T0 + timedelta(minutes=3))
    assert ranged["event_id"].to_pylist() == ["1", "2"]
    late = store.events("fraud", since=datetime(2024, 5, 1, 0, 4, tzinfo=UTC))
    assert late["event_id"].to_pylist() == ["4", "aware"]
    assert late["ts"].to_pylist() == [T0 + timedelta(minutes=4), T0 + timedelta(minutes=10)]


def test_a_nan_feature_is_stored_as_null(store):
    # NaN means null in tripwire; as JSON null no column type can refuse it or lose the event.
    assert store.write_events([event("n", 1, features={"amount": float("nan")})]) == 1
    (features,) = store.events("fraud")["features"].to_pylist()
    assert json.loads(features)["amount"] is None


def test_labels_join_their_events_and_a_later_label_replaces_the_earlier(store):
    store.write_events([event("a", 1), event("b", 2), event("c", 3)])
    assert store.write_labels([Label(event_id="a", model="fraud", label=1.0)]) == 1
    later = [
        Label(event_id="a", model="fraud", label=0.0, labelled_at=T0 + DAY),
        Label(event_id="c", model="fraud", label=1.0),
        Label(event_id="elsewhere", model="other", label=1.0),
    ]
    assert store.write_labels(later) == 3
    assert store.write_labels([]) == 0
    assert store.events("fraud")["label"].to_pylist() == [0.0, None, 1.0]
    stored = store.connection.execute(
        "SELECT event_id, label, labelled_at FROM labels WHERE model = 'fraud' ORDER BY event_id"
    ).fetchall()
    assert stored == [("a", 0.0, T0 + DAY), ("c", 1.0, None)]


def test_the_last_of_several_labels_for_one_event_in_a_batch_wins(store):
    store.write_events([event("a", 1)])
    store.write_labels(
        [
            Label(event_id="a", model="fraud", label=1.0),
            Label(event_id="a", model="fraud", label=0.0),
        ]
    )
    assert store.events("fraud")["label"].to_pylist() == [0.0]


def test_first_event_is_the_earliest_production_event_of_the_model(store):
    assert store.first_event("fraud") is None
    plus_two = timezone(timedelta(hours=2))
    store.write_events(
        [
            event("late", 30),
            event("shadow", 0, role="shadow"),  # earlier, but not production
            event("other", 0, model="churn"),
            event("aware", 0, timestamp=datetime(2024, 5, 1, 2, 5, tzinfo=plus_two)),
            event("early", 7),
        ]
    )
    assert store.first_event("fraud") == T0 + timedelta(minutes=5)  # naive UTC
    assert store.first_event("churn") == T0
    assert store.first_event("nobody") is None
    # From a moment on: the first at or after it.
    assert store.first_event("fraud", T0 + timedelta(minutes=7)) == T0 + timedelta(minutes=7)
    assert store.first_event("fraud", datetime(2024, 5, 1, 2, 8, tzinfo=plus_two)) == (
        T0 + timedelta(minutes=30)
    )
    assert store.first_event("fraud", T0 + timedelta(minutes=31)) is None


def test_relabelled_windows_are_those_with_labels_received_after_they_were_checked(store):
    def label(event_id: str, model: str = "fraud") -> Label:
        return Label(event_id=event_id, model=model, label=1.0)

    # Events in four daily windows, with shadow and another model's events beside them.
    store.write_events(
        [event(f"d{day}", day * 24 * 60 + 5) for day in range(4)]
        + [event("s0", 6, role="shadow"), event("c0", 5, model="churn")]
    )
    store.write_labels([label("d1")])  # before day 1 is checked: already in its rows
    for day in range(3):
        write(store, T0 + day * DAY)
    store.write_window("churn", T0, DAY, rows(), b"p", 1)
    store.write_window("fraud", T0, WEEK, rows(), b"p", 1)
    store.write_window("fraud", T0 + 3 * DAY, DAY, rows(), b"p", 1, namespace="replay")
    assert store.relabelled_windows("fraud", DAY) == []

    # Labels after the check: day 0 by its production event, not by its shadow one or by
    # another model's; day 2; not day 3, which only a replay has checked.
    store.write_labels([label("d0"), label("s0"), label("d2"), label("c0", "churn")])
    store.write_labels([label("d3"), label("d1", "nobody")])
    assert store.relabelled_windows("fraud", DAY) == [T0, T0 + 2 * DAY]
    assert store.relabelled_windows("fraud", WEEK) == [T0]  # the week holds them all
    assert store.relabelled_windows("churn", DAY) == [T0]
    assert store.relabelled_windows("fraud", timedelta(hours=1)) == []

    write(store, T0)  # checked again: caught up
    assert store.relabelled_windows("fraud", DAY) == [T0 + 2 * DAY]


def test_sql_takes_question_mark_placeholders_in_either_dialect(store, backend):
    assert store.dialect == backend
    assert store.sql("SELECT ? || '%', ? + 1", ["a", 41]) == [("a%", 42)]
    store.sql("CREATE TABLE scratch (id INTEGER, name TEXT)")
    assert store.sql("INSERT INTO scratch VALUES (?, ?) RETURNING id", [1, "x"]) == [(1,)]
    assert store.sql("SELECT name FROM scratch WHERE id = ?", [1]) == [("x",)]
    assert store.sql("SELECT name FROM scratch WHERE id = ?", [2]) == []


def test_an_empty_quarantine_batch_is_a_no_op(store):
    store.quarantine("fraud", "POST /events", [])
    assert store.quarantined("fraud").num_rows == 0


def test_quarantine_keeps_the_reason_and_the_payload_in_order(store):
    rejected = [
        Rejected(index=3, reason="event_id: too short", payload='{"event_id": ""}'),
        Rejected(index=7, reason="prediction: not a number", payload='{"prediction": "high"}'),
    ]
    store.quarantine("fraud", "POST /events", rejected)
    store.quarantine("fraud", "file.jsonl", rejected[:1])
    store.quarantine("other", "POST /events", rejected)
    got = store.quarantined("fraud")
    assert got.schema == QUARANTINED
    assert got["source"].to_pylist() == ["POST /events[3]", "POST /events[7]", "file.jsonl[3]"]
    assert got["reason"].to_pylist() == [r.reason for r in (*rejected, rejected[0])]
    assert "high" in got["payload"][1].as_py()
    assert all(isinstance(t, datetime) for t in got["received_at"].to_pylist())
    assert store.quarantined("nobody").num_rows == 0


# --- one shape for every store ----------------------------------------------------------------


def fill(store: Store) -> None:
    """The same writes, to compare what two stores give back."""
    for day in range(3):
        write(store, T0 + day * DAY, psi=0.1 * day, auc=None if day == 1 else 0.8)
    store.write_window("fraud", T0, WEEK, rows(), b"week", 7, namespace="shadow")
    store.write_events([event(str(m), m) for m in range(4)] + [event("x", 9, cost=2.5)])
    store.write_labels([Label(event_id="1", model="fraud", label=1.0, labelled_at=T0 + WEEK)])
    store.quarantine("fraud", "src", [Rejected(index=0, reason="bad", payload="{}")])
    store.save_calibration("fraud", "psi", "amount", "all", 0.3, 0.99, 0.2, [T0, T0 + DAY])
    store.save_calibration("fraud", "auc", "", "country=us", 0.7, 0.01, 0.6, [T0])
    store.save_incidents(
        "fraud", pa.Table.from_pylist([incident("fraud", "drift", d) for d in range(3)])
    )


def reads(store: Store) -> dict[str, pa.Table]:
    """Everything the store returns as a table, less the columns stamped with the clock."""
    return {
        "history": store.history("fraud", DAY),
        "shadow": store.history("fraud", WEEK, namespace="shadow"),
        "events": store.events("fraud"),
        "quarantined": store.quarantined("fraud").drop_columns(["received_at"]),
        "calibrations": store.calibrations("fraud").drop_columns(["computed_at"]),
        "incidents": store.incidents("fraud"),
    }


@pytest.mark.parametrize("filled", [True, False], ids=["filled", "empty"])
def test_every_table_a_store_returns_has_the_shared_schema(store, filled):
    if filled:
        fill(store)
    assert store.history("fraud", DAY).schema == HISTORY
    assert store.events("fraud").schema == EVENTS
    assert store.quarantined("fraud").schema == QUARANTINED
    assert store.calibrations("fraud").schema == CALIBRATIONS
    assert store.incidents("fraud").schema == INCIDENTS
    assert store.history("fraud", DAY).num_rows == (3 * len(rows()) if filled else 0)


def test_duckdb_and_postgres_give_back_the_same_tables(path, postgres_server):
    from tripwire.store import PostgresStore

    with DuckDBStore(path) as duck, PostgresStore(postgres_server.new_dsn()) as pg:
        fill(duck)
        fill(pg)
        expected, got = reads(duck), reads(pg)
        for name, table in expected.items():
            assert got[name].equals(table), name
        assert pg.window_starts("fraud", DAY) == duck.window_starts("fraud", DAY)
        assert pg.profiles("fraud", DAY, T0, T0 + WEEK) == duck.profiles(
            "fraud", DAY, T0, T0 + WEEK
        )
        assert pg.abnormal_windows("fraud") == duck.abnormal_windows("fraud")


# --- persistence ------------------------------------------------------------------------------


def test_everything_persists_after_close_and_reopen(open_store):
    store = open_store()
    write(store, T0)
    write(store, T0 + DAY, psi=0.5)
    store.mark_abnormal("fraud", T0, "outage")
    store.save_calibration("fraud", "psi", "amount", "all", 0.3, 0.99, 0.2, [T0])
    store.save_incidents("fraud", pa.Table.from_pylist([incident("fraud", "drift", 0)]))
    before = (
        store.history("fraud", DAY),
        store.window_starts("fraud", DAY),
        store.profiles("fraud", DAY, T0, T0 + 2 * DAY),
        store.calibrations("fraud"),
        store.incidents("fraud"),
    )
    store.close()

    reopened = open_store()
    try:
        after = (
            reopened.history("fraud", DAY),
            reopened.window_starts("fraud", DAY),
            reopened.profiles("fraud", DAY, T0, T0 + 2 * DAY),
            reopened.calibrations("fraud"),
            reopened.incidents("fraud"),
        )
        assert reopened.abnormal_windows("fraud") == {T0}
    finally:
        reopened.close()
    assert after[0].equals(before[0])
    assert after[1:3] == before[1:3]
    assert after[3].equals(before[3]) and after[4].equals(before[4])
    assert after[0].num_rows == 2 * len(rows())


def test_the_same_incident_key_may_exist_in_two_namespaces(open_store: Opener) -> None:
    row = {
        "dedup_key": "m/r/x/all/2024-05-01T00:00",
        "model": "m",
        "rule": "r",
        "metric": "psi",
        "feature": "x",
        "segment": "all",
        "severity": "page",
        "route": "console",
        "evidence_start": datetime(2024, 5, 1),
        "opened_at": datetime(2024, 5, 3),
        "last_breach_at": datetime(2024, 5, 3),
        "resolved_at": None,
        "value": 0.3,
        "threshold": 0.25,
        "reopened": 0,
        "updated_at": datetime(2024, 5, 3),
    }
    with open_store() as store:
        for namespace in ("production", "replay"):
            store.save_incidents(
                "m", pa.Table.from_pylist([row | {"namespace": namespace}]), namespace
            )
        assert store.incidents("m").num_rows == 1
        assert store.incidents("m", "replay").num_rows == 1


def test_a_transaction_commits_everything_inside_it_together(store):
    with store.transaction():
        store.write_events([event("a", 1)])
        with store.transaction():  # nested uses join the outer one
            store.write_events([event("b", 2)])
        store.quarantine("fraud", "test", [Rejected(index=0, reason="bad", payload="{}")])
    assert store.events("fraud")["event_id"].to_pylist() == ["a", "b"]
    assert store.quarantined("fraud").num_rows == 1


def test_an_error_inside_a_transaction_keeps_nothing_of_it(store):
    store.write_events([event("kept", 0)])
    with pytest.raises(RuntimeError, match="boom"), store.transaction():
        store.write_events([event("a", 1)])
        with store.transaction():
            store.write_events([event("b", 2)])
        store.quarantine("fraud", "test", [Rejected(index=0, reason="bad", payload="{}")])
        raise RuntimeError("boom")
    assert store.events("fraud")["event_id"].to_pylist() == ["kept"]
    assert store.quarantined("fraud").num_rows == 0
    # The store is usable afterwards, in and out of transactions.
    with store.transaction():
        store.write_events([event("c", 3)])
    assert store.events("fraud")["event_id"].to_pylist() == ["kept", "c"]


def test_open_store_picks_the_database_from_the_target(tmp_path, postgres_server):
    from tripwire.store import PostgresStore, open_store

    with open_store(str(tmp_path / "x.duckdb")) as duck:
        assert isinstance(duck, DuckDBStore)
    with open_store(postgres_server.new_uri()) as pg:
        assert isinstance(pg, PostgresStore)
        assert pg.dialect == "postgres"


def test_expiring_events_deletes_old_events_and_their_labels_only(store):
    store.write_events([event("old", 1), event("new", 30), event("churn", 1, model="churn")])
    store.write_labels(
        [
            Label(event_id="old", model="fraud", label=1),
            Label(event_id="new", model="fraud", label=0),
        ]
    )
    assert store.expire_events("fraud", T0 + timedelta(minutes=10)) == 1
    assert store.events("churn").num_rows == 1  # another model's events are not touched
    got = store.events("fraud")
    assert got["event_id"].to_pylist() == ["new"]
    assert got["label"].to_pylist() == [0]
    assert store.expire_events("fraud", T0 + timedelta(minutes=10)) == 0


def test_late_windows_are_those_with_events_received_after_they_were_checked(store):
    store.write_events([event(f"d{day}", day * 24 * 60 + 5) for day in range(3)])
    for day in range(2):
        write(store, T0 + day * DAY)
    assert store.late_windows("fraud", DAY) == []
    # After the checks: a late production event for day 1, a shadow one for day 0, and
    # day 2's window, which nothing has checked yet.
    store.write_events(
        [event("late1", 24 * 60 + 9), event("s0", 7, role="shadow"), event("d2b", 2 * 24 * 60 + 9)]
    )
    store.write_events([event("d1", 24 * 60 + 5)])  # a redelivery changes nothing
    assert store.late_windows("fraud", DAY) == [T0 + DAY]
    assert store.late_windows("fraud", WEEK) == []  # no week was checked
    write(store, T0 + DAY)
    assert store.late_windows("fraud", DAY) == []


def test_late_windows_include_those_passed_over_empty_whose_events_came_later(store):
    # Days 0, 2 and 4 were checked; days 1 and 3 had no events then, so they have no rows.
    store.write_events([event(f"d{day}", day * 24 * 60 + 5) for day in (0, 2, 4)])
    for day in (0, 2, 4):
        write(store, T0 + day * DAY)
    store.write_window("fraud", T0 + DAY, DAY, rows(), b"p", 1, namespace="replay")
    assert store.late_windows("fraud", DAY) == []
    # Then: day 1's events (one in its last minute), the day before day 0's, a shadow event on
    # day 3 and day 5's, which comes after every checked window (the next one due, not late).
    store.write_events(
        [
            event("late1", 24 * 60 + 9),
            event("late1b", 2 * 24 * 60 - 1),
            event("early", -24 * 60 + 5),
            event("s3", 3 * 24 * 60 + 5, role="shadow"),
            event("d5", 5 * 24 * 60 + 5),
        ]
    )
    assert store.late_windows("fraud", DAY) == [T0 - DAY, T0 + DAY]
    assert store.late_windows("fraud", WEEK) == []  # no week was checked
    write(store, T0 + DAY)
    write(store, T0 - DAY)
    assert store.late_windows("fraud", DAY) == []


def test_windows_to_check_again_since_a_moment_are_found_by_the_rows_received_from_then(store):
    """What the scheduler's looks after its first read: not the whole log."""
    checked = (0, 1, 2, 3, 6)
    store.write_events([event(f"d{day}", day * 24 * 60 + 5) for day in checked])
    for day in checked:
        write(store, T0 + day * DAY)
    # After the checks: a late event for day 0, a label for day 1, day 4's events (it was
    # passed over empty)...
    store.write_events([event("late0", 9), event("d4", 4 * 24 * 60 + 5)])
    store.write_labels([Label(event_id="d1", model="fraud", label=1.0)])
    moment = datetime.now(UTC)  # aware: converted to the store's naive UTC
    # ...then a late event for day 2, a label for day 3, day 5's events.
    store.write_events([event("late2", 2 * 24 * 60 + 9), event("d5", 5 * 24 * 60 + 5)])
    store.write_labels([Label(event_id="d3", model="fraud", label=0.0)])

    assert store.late_windows("fraud", DAY) == [T0 + d * DAY for d in (0, 2, 4, 5)]
    assert store.late_windows("fraud", DAY, since=moment) == [T0 + 2 * DAY, T0 + 5 * DAY]
    assert store.relabelled_windows("fraud", DAY) == [T0 + DAY, T0 + 3 * DAY]
    assert store.relabelled_windows("fraud", DAY, since=moment) == [T0 + 3 * DAY]
    # A row received since then still counts only if it came after its window's check.
    write(store, T0 + 2 * DAY)
    write(store, T0 + 3 * DAY)
    assert store.late_windows("fraud", DAY, since=moment) == [T0 + 5 * DAY]
    assert store.relabelled_windows("fraud", DAY, since=moment) == []
    assert store.late_windows("fraud", DAY, since=datetime.now(UTC)) == []


def test_an_item_quarantined_again_from_the_same_stream_position_is_kept_once(store):
    def bad(index: int, origin: str | None) -> Rejected:
        return Rejected(index=index, reason="not JSON", payload="{", origin=origin)

    first = [bad(0, "redis events 1-0"), bad(1, "redis events 1-1"), bad(2, None)]
    store.quarantine("fraud", "redis events", first)
    # A consumer killed after the commit, before its ack, reads the batch again.
    store.quarantine("fraud", "redis events", [*first, bad(3, "redis events 1-2")])
    got = store.quarantined("fraud")["source"].to_pylist()
    assert got == [
        "redis events 1-0",
        "redis events 1-1",
        "redis events[2]",
        "redis events[2]",  # no origin: the same index of another batch is another item
        "redis events 1-2",
    ]
    store.quarantine("churn", "redis events", first[:1])  # another model's is its own
    assert store.quarantined("churn").num_rows == 1


# --- queue consumers ---------------------------------------------------------------------------


def test_a_consumer_groups_report_replaces_its_lag_and_adds_its_stored_events(store):
    assert store.consumers().num_rows == 0
    assert store.consumers().schema == CONSUMERS
    store.record_consumer("kafka", "events", "tripwire", 120, 80)
    first = store.consumers().to_pylist()
    # Another member of the group reports: the group's lag as it sees it, its own new events.
    store.record_consumer("kafka", "events", "tripwire", 5, 195)
    store.record_consumer("redis", "events", "tripwire", None, 0)  # lag unknown
    store.record_consumer("kafka", "events", "audit", 300, 0)  # another group of the topic
    got = store.consumers()
    assert got.schema == CONSUMERS
    rows = [{k: v for k, v in row.items() if k != "updated_at"} for row in got.to_pylist()]
    assert rows == [
        {
            "source": "kafka",
            "stream": "events",
            "group_id": "audit",
            "lag": 300,
            "events_stored": 0,
        },
        {
            "source": "kafka",
            "stream": "events",
            "group_id": "tripwire",
            "lag": 5,
            "events_stored": 275,
        },
        {
            "source": "redis",
            "stream": "events",
            "group_id": "tripwire",
            "lag": None,
            "events_stored": 0,
        },
    ]
    assert got.to_pylist()[1]["updated_at"] >= first[0]["updated_at"]
    now = datetime.now(UTC).replace(tzinfo=None)
    assert now - timedelta(minutes=1) < first[0]["updated_at"] <= now
