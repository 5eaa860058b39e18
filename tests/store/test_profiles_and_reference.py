"""Window profiles stored uncompressed (migration 6) with the rows a store had before, each
model's fitted reference kept beside its windows (migration 7), and history read for a few
features only: every store, DuckDB file and PostgreSQL database alike."""

from __future__ import annotations

import os
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import pytest

from tripwire.layers.rows import MetricRow
from tripwire.store import DuckDBStore
from tripwire.store import postgres_store as pg
from tripwire.store.common import state_digest
from tripwire.store.schema import MIGRATIONS

Store = Any  # DuckDBStore or PostgresStore
Opener = Callable[[], Store]

DAY = timedelta(days=1)
T0 = datetime(2024, 5, 1)
# Profiles are compressed archives: bytes a compressor cannot shrink, as these.
PROFILES = [os.urandom(300_000) for _ in range(3)]


def _row(feature: str, metric: str = "psi") -> MetricRow:
    return MetricRow(layer="inputs", metric=metric, feature=feature, value=0.1, status="ok", n=10)


def _versions(store: Store) -> list[int]:
    rows = store.connection.execute("SELECT version FROM schema_version ORDER BY version")
    return [version for (version,) in rows.fetchall()]


def test_upgrading_keeps_the_windows_and_stores_profiles_uncompressed(tmp_path: Path) -> None:
    path = tmp_path / "old.duckdb"
    with duckdb.connect(str(path)) as db:  # a store as tripwire left it at version 5
        db.execute("CREATE TABLE schema_version (version INTEGER NOT NULL)")
        for version, migration in enumerate(MIGRATIONS[:5], start=1):
            db.execute(migration)
            db.execute("INSERT INTO schema_version VALUES (?)", [version])
        for day, profile in enumerate(PROFILES):
            db.execute(
                "INSERT INTO windows VALUES ('fraud', 'production', ?, 86400, 10, ?, ?)",
                [T0 + day * DAY, profile, T0],
            )
        db.execute("CHECKPOINT")
    with DuckDBStore(path) as store:
        assert _versions(store) == list(range(1, len(MIGRATIONS) + 1))
        stored = store.profiles("fraud", DAY, T0, T0 + 3 * DAY)
        assert stored == [(T0 + day * DAY, p) for day, p in enumerate(PROFILES)]
        store.write_window("fraud", T0 + 3 * DAY, DAY, [_row("amount")], PROFILES[0], 10)
        store.connection.execute("CHECKPOINT")
        compression = store.sql(
            "SELECT DISTINCT compression FROM pragma_storage_info('windows') "
            "WHERE column_name = 'profile' AND segment_type = 'BLOB'"
        )
        assert compression == [("Uncompressed",)]
        # The key still holds: a window is one row.
        with pytest.raises(duckdb.ConstraintException):
            store.sql(
                "INSERT INTO windows VALUES ('fraud', 'production', ?, 86400, 1, 'x', ?)",
                [T0, T0],
            )


def test_upgrading_a_postgres_store_keeps_its_windows(postgres_server: Any) -> None:
    import psycopg

    from tripwire.store import PostgresStore

    dsn = postgres_server.new_dsn()
    with psycopg.connect(dsn, autocommit=True) as db:
        db.execute("CREATE TABLE schema_version (version INTEGER NOT NULL)")
        for version, migration in enumerate(pg.MIGRATIONS[:5], start=1):
            db.execute(migration.encode())
            db.execute("INSERT INTO schema_version VALUES (%s)", [version])
        db.execute(
            "INSERT INTO windows VALUES ('fraud', 'production', %s, 86400, 10, %s, %s)",
            [T0, PROFILES[0], T0],
        )
    with PostgresStore(dsn) as store:
        assert _versions(store) == list(range(1, len(MIGRATIONS) + 1))
        assert store.profiles("fraud", DAY, T0, T0 + DAY) == [(T0, PROFILES[0])]
        storage = store.sql(
            "SELECT attname, attstorage FROM pg_attribute WHERE attrelid = 'windows'::regclass "
            "AND attname = 'profile'"
        )
        assert storage == [("profile", "e")]  # external: out of line, not compressed again


def test_the_reference_is_kept_once_per_model_and_namespace(open_store: Opener) -> None:
    with open_store() as store:
        assert store.reference("fraud") is None
        assert store.reference_digest("fraud") is None
        assert store.save_reference("fraud", PROFILES[0]) is True
        assert store.save_reference("fraud", PROFILES[0]) is False  # the same: left alone
        assert store.reference("fraud") == PROFILES[0]
        assert store.reference_digest("fraud") == state_digest(PROFILES[0])
        assert store.save_reference("fraud", PROFILES[1]) is True  # refitted: replaced
        assert store.save_reference("fraud", PROFILES[2], namespace="replay") is True
        assert store.save_reference("other", PROFILES[2]) is True
    with open_store() as store:  # kept across reopening
        assert store.reference("fraud") == PROFILES[1]
        assert store.reference("fraud", namespace="replay") == PROFILES[2]
        assert store.reference("other") == PROFILES[2]
        assert store.reference("nobody") is None


def test_history_of_a_few_features(open_store: Opener) -> None:
    rows = [_row("amount"), _row("amount", "ks"), _row("country"), _row("age")]
    rows.append(MetricRow(layer="predictions", metric="mean_pred", value=0.2, status="ok", n=10))
    with open_store() as store:
        for day in range(3):
            store.write_window("fraud", T0 + day * DAY, DAY, rows, b"p", 10)
        amount = store.history("fraud", DAY, features=["amount"])
        assert set(amount["feature"].to_pylist()) == {"amount"}
        assert amount.num_rows == 2 * 3
        two = store.history("fraud", DAY, ["psi"], T0 + DAY, features=["amount", "age"])
        pairs = zip(two["window_start"].to_pylist(), two["feature"].to_pylist(), strict=True)
        assert sorted(pairs) == [
            (T0 + day * DAY, feature) for day in (1, 2) for feature in ("age", "amount")
        ]
        outputs = store.history("fraud", DAY, features=[""])
        assert outputs["metric"].to_pylist() == ["mean_pred"] * 3
        assert store.history("fraud", DAY, features=[]).num_rows == 0
        assert store.history("fraud", DAY).num_rows == len(rows) * 3
