"""When an incident was raised, beside its evidence: the job stores the moment it first derived
each incident (its clock's now, simulated here as in the demo) and keeps it on later runs; the
API, the dashboard's lists and its incident page show it and sort by it. Every store, DuckDB
file and PostgreSQL database alike (tests/conftest.py).

A small shop model lives through six days, each checked at its end without labels, with the
labels of two days before arriving then: its AUC collapses from day 3 (seen when day 3's labels
land, at the end of day 5) and its latency spikes on day 4 (seen at the end of day 4). The
latency incident's evidence is the later, yet the AUC one was raised later.
"""

from __future__ import annotations

import io
import re
from collections.abc import Callable
from contextlib import redirect_stderr
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pyarrow as pa
import pytest
from fastapi.testclient import TestClient

from tripwire.config import ModelConfig, parse_config
from tripwire.job import run
from tripwire.monitor import Monitor
from tripwire.server import create_app
from tripwire.server.dashboard.html import incident_href
from tripwire.store import DuckDBStore
from tripwire.store import postgres_store as pg
from tripwire.store.schema import MIGRATIONS

Opener = Callable[..., Any]

DAY = timedelta(days=1)
T0 = datetime(2026, 3, 1)
DAYS = 6
LAG = 2  # days before a day's labels arrive
CHECKED = timedelta(minutes=10)  # after a day's end, the job's clock when it checks
READ = "read-token"
CONFIG = """
name: shop
task: binary
columns:
  timestamp: ts
  id: event_id
  features: {price: numeric}
  prediction: score
  label: bought
  latency_ms: latency_ms
window: 1d
label_lag: 2d
importance: {price: 1.0}
performance: {min_labels: 50}
alerts:
  - name: auc_drop
    metric: auc
    baseline: reference
    threshold: 0.05
    severity: ticket
    runbook: "Realized AUC fell."
  - name: slow
    metric: p95_ms
    threshold: 500
    severity: page
    runbook: "Requests got slow."
"""


def _traffic(rng: np.random.Generator, day: int, n: int = 800) -> pa.Table:
    """A day's predictions with their labels; day -1 is the reference."""
    price = rng.normal(50.0, 10.0, n)
    score = 1 / (1 + np.exp(-0.15 * (price - 50.0)))
    bought = np.where(day >= 3, rng.random(n) < 0.4, rng.random(n) < score)
    latency = rng.gamma(4.0, 25.0, n) * (6.0 if day == 4 else 1.0)
    start = T0 + day * DAY
    return pa.table(
        {
            "event_id": [f"{day}-{i}" for i in range(n)],
            "ts": pa.array(
                [start + timedelta(seconds=int(s)) for s in rng.integers(0, 86_400, n)],
                pa.timestamp("us"),
            ),
            "price": price,
            "score": score,
            "bought": bought.astype(np.int64),
            "latency_ms": latency,
        }
    )


def _unlabelled(table: pa.Table) -> pa.Table:
    index = table.column_names.index("bought")
    return table.set_column(index, "bought", pa.nulls(table.num_rows, pa.int64()))


def checked_at(day: int) -> datetime:
    """The job's clock when it checks the window of ``day``, just after it closes."""
    return T0 + (day + 1) * DAY + CHECKED


@pytest.fixture(scope="module")
def config() -> ModelConfig:
    return parse_config(CONFIG)


@pytest.fixture(scope="module")
def lived(config: ModelConfig) -> tuple[Monitor, list[pa.Table]]:
    rng = np.random.default_rng(5)
    monitor = Monitor(config).fit(_traffic(rng, -1, 3000))
    return monitor, [_traffic(rng, day) for day in range(DAYS)]


def live(monitor: Monitor, store: Any, days: list[pa.Table], until: int = DAYS) -> None:
    """Days 0 to ``until`` - 1 as production sees them: each checked at its end without its
    labels, and the day whose labels land then checked again with them."""
    with redirect_stderr(io.StringIO()):  # the console channel
        for day in range(until):
            run(monitor, store, _unlabelled(days[day]), DAY, now=checked_at(day))
            if day >= LAG:
                run(monitor, store, days[day - LAG], DAY, now=checked_at(day))


def _by_rule(store: Any) -> dict[str, dict[str, Any]]:
    return {row["rule"]: row for row in store.incidents("shop").to_pylist()}


def test_the_job_stores_when_it_first_found_each_incident(
    open_store: Opener, lived: tuple[Monitor, list[pa.Table]]
) -> None:
    monitor, days = lived
    with open_store() as store:
        live(monitor, store, days, until=5)
        slow = _by_rule(store)["slow"]
        assert slow["evidence_start"] == T0 + 4 * DAY
        assert slow["detected_at"] == checked_at(4)
        assert "auc_drop" not in _by_rule(store)  # day 3's labels are still to come

        live(monitor, store, days)  # all six days again: the same incidents, found before
        found = _by_rule(store)
        assert found["slow"]["detected_at"] == checked_at(4)
        auc = found["auc_drop"]
        # Raised when day 3's labels landed, at the end of day 5, after the latency's.
        assert auc["evidence_start"] == T0 + 3 * DAY
        assert auc["detected_at"] == checked_at(5)
        assert auc["evidence_start"] < slow["evidence_start"]
        assert auc["detected_at"] > slow["detected_at"]


def test_without_a_clock_the_job_stamps_the_wall_clocks_time(
    open_store: Opener, lived: tuple[Monitor, list[pa.Table]]
) -> None:
    monitor, days = lived
    with open_store() as store, redirect_stderr(io.StringIO()):
        before = datetime.now(UTC).replace(tzinfo=None)  # the store's naive UTC
        run(monitor, store, pa.concat_tables(days[:5]), DAY)
        after = datetime.now(UTC).replace(tzinfo=None)
        slow = _by_rule(store)["slow"]
    assert before <= slow["detected_at"] <= after


def test_the_api_and_the_dashboard_show_when_each_was_raised_newest_first(
    open_store: Opener, lived: tuple[Monitor, list[pa.Table]], config: ModelConfig
) -> None:
    monitor, days = lived
    with open_store() as store:
        live(monitor, store, days)
        client = TestClient(create_app({config.name: config}, store, "ingest", READ))
        headers = {"Authorization": f"Bearer {READ}"}

        listed = client.get("/v1/incidents", headers=headers).json()["items"]
        assert [i["rule"] for i in listed] == ["auc_drop", "slow"]  # by when raised
        assert listed[0]["detected_at"].startswith(f"{checked_at(5):%Y-%m-%dT%H:%M}")
        assert listed[0]["evidence_start"].startswith(f"{T0 + 3 * DAY:%Y-%m-%d}")
        mine = client.get("/v1/models/shop/incidents", headers=headers).json()["items"]
        assert [i["rule"] for i in mine] == ["auc_drop", "slow"]
        schema = client.get("/openapi.json").json()["components"]["schemas"]["IncidentBrief"]
        assert "labels landed" in schema["properties"]["detected_at"]["description"]

        client.get(f"/dashboard?token={READ}")  # signs in: a cookie
        overview = client.get("/dashboard").text
        table = overview[overview.index("<h2>Open incidents</h2>") :]
        assert _column(table, "raised") == [
            f"{checked_at(5):%Y-%m-%d %H:%M}",
            f"{checked_at(4):%Y-%m-%d %H:%M}",
        ]
        assert _column(table, "evidence from") == [
            f"{T0 + 3 * DAY:%Y-%m-%d}",
            f"{T0 + 4 * DAY:%Y-%m-%d}",
        ]

        model = client.get("/dashboard/models/shop").text
        table = model[model.index('id="incidents"') :]
        assert _column(table, "rule") == ["auc_drop", "slow"]
        assert _column(table, "raised") == [
            f"{checked_at(5):%Y-%m-%d %H:%M}",
            f"{checked_at(4):%Y-%m-%d %H:%M}",
        ]
        assert _column(table, "evidence window")[0].startswith(f"{T0 + 3 * DAY:%Y-%m-%d} to ")
        assert "opened" not in _headers(table)

        auc = next(i for i in mine if i["rule"] == "auc_drop")
        page = client.get(incident_href("shop", auc["dedup_key"])).text
        facts = dict(re.findall(r"<dt>([^<]*)</dt><dd>(.*?)</dd>", page))
        assert _text(facts["raised"]) == f"{checked_at(5):%Y-%m-%d %H:%M}"
        assert facts["evidence window"].startswith(f"{T0 + 3 * DAY:%Y-%m-%d} to ")


def _headers(table: str) -> list[str]:
    head = table[table.index("<thead>") : table.index("</thead>")]
    return re.findall(r"<th>([^<]*)</th>", head)


def _column(table: str, name: str) -> list[str]:
    """The text of one column of the first table in ``table``."""
    index = _headers(table).index(name)
    body = table[table.index("<tbody>") : table.index("</tbody>")]
    rows = re.findall(r"<tr>(.*?)</tr>", body)
    cells = [re.findall(r"<td[^>]*>(.*?)</td>", row)[index] for row in rows]
    return [_text(cell) for cell in cells]


def _text(html: str) -> str:
    return re.sub(r"<[^>]+>", "", html)


def _old_incident() -> dict[str, Any]:
    return {
        "dedup_key": "shop/slow/-/all/2026-03-05T00:00",
        "model": "shop",
        "namespace": "production",
        "rule": "slow",
        "metric": "p95_ms",
        "feature": "",
        "segment": "all",
        "severity": "page",
        "route": "console",
        "evidence_start": T0 + 4 * DAY,
        "opened_at": T0 + 4 * DAY,
        "last_breach_at": T0 + 4 * DAY,
        "resolved_at": None,
        "value": 700.0,
        "threshold": 500.0,
        "reopened": 0,
        "updated_at": T0 + 5 * DAY,
    }


def _after_upgrade(store: Any, monitor: Monitor, days: list[pa.Table]) -> None:
    """An incident saved before migration 9 keeps no time of its own, though the job finds it
    again; one new to the store gets the job's clock."""
    [old] = store.incidents("shop").to_pylist()
    assert old["detected_at"] is None
    # The store's history checked again at once (the old store held no windows).
    with redirect_stderr(io.StringIO()):
        run(monitor, store, pa.concat_tables(days), DAY, now=checked_at(5))
    found = _by_rule(store)
    assert found["slow"]["dedup_key"] == old["dedup_key"]
    assert found["slow"]["detected_at"] is None
    assert found["auc_drop"]["detected_at"] == checked_at(5)
    config = monitor.config
    client = TestClient(create_app({config.name: config}, store, "ingest", READ))
    client.get(f"/dashboard?token={READ}")
    model = client.get("/dashboard/models/shop").text
    table = model[model.index('id="incidents"') :]
    # Sorted by when raised, the one not recorded by the window it opened in.
    assert _column(table, "rule") == ["auc_drop", "slow"]
    assert _column(table, "raised")[1] == "not recorded"


def test_a_duckdb_store_made_before_keeps_its_incidents_without_a_time(
    tmp_path: Path, lived: tuple[Monitor, list[pa.Table]]
) -> None:
    path = tmp_path / "old.duckdb"
    with duckdb.connect(str(path)) as db:  # a store as tripwire left it at version 8
        db.execute("CREATE TABLE schema_version (version INTEGER NOT NULL)")
        for version, migration in enumerate(MIGRATIONS[:8], start=1):
            db.execute(migration)
            db.execute("INSERT INTO schema_version VALUES (?)", [version])
        row = _old_incident()
        db.execute(
            f"INSERT INTO incidents ({', '.join(row)}) VALUES ({', '.join('?' * len(row))})",
            list(row.values()),
        )
    with DuckDBStore(path) as store:
        _after_upgrade(store, *lived)


def test_a_postgres_store_made_before_keeps_its_incidents_without_a_time(
    postgres_server: Any, lived: tuple[Monitor, list[pa.Table]]
) -> None:
    import psycopg

    from tripwire.store import PostgresStore

    dsn = postgres_server.new_dsn()
    with psycopg.connect(dsn, autocommit=True) as db:
        db.execute("CREATE TABLE schema_version (version INTEGER NOT NULL)")
        for version, migration in enumerate(pg.MIGRATIONS[:8], start=1):
            db.execute(migration.encode())
            db.execute("INSERT INTO schema_version VALUES (%s)", [version])
        row = _old_incident()
        db.execute(
            f"INSERT INTO incidents ({', '.join(row)}) VALUES ({', '.join(['%s'] * len(row))})",
            list(row.values()),
        )
    with PostgresStore(dsn) as store:
        _after_upgrade(store, *lived)
