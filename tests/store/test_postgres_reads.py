"""The PostgreSQL store's reads that return tables: outside a transaction they come as Arrow
from ADBC's driver (binary COPY), inside one as rows through psycopg (its connection alone sees
what the transaction wrote). Both give the same tables, value for value, whatever the text,
numbers and timestamps hold."""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pytest

from tripwire.events import Event, Label, Rejected
from tripwire.layers.rows import MetricRow
from tripwire.store.common import EVENTS, HISTORY, QUARANTINED

T0 = datetime(2024, 5, 1)
DAY = timedelta(days=1)

# Text that CSV, COPY's text format or a careless parser would get wrong.
AWKWARD = [
    'a "quoted", comma',
    "line one\nline two\r\nthree\r",
    "tab\there, back\\slash, \\N, \\x41",
    "",  # empty, not null
    "NULL",
    "NaN",
    "ünïcödé — 数据 🚨 \u2028 \u0001",
    "'single'; -- not a comment",
    " leading and trailing spaces ",
]
BIG = "x" * 20_000_000  # one value larger than the driver's batches (16 MB by default)


@pytest.fixture
def postgres(postgres_server: Any) -> Iterator[Any]:
    from tripwire.store import PostgresStore

    with PostgresStore(postgres_server.new_dsn()) as store:
        yield store


def through_psycopg(store: Any, read: Callable[[], pa.Table]) -> pa.Table:
    """What ``read`` gives through psycopg's rows, as every read did before ADBC."""
    with store.transaction():
        return read()


def cells(table: pa.Table) -> list[list[Any]]:
    """The table's values column by column, NaN made comparable (NaN != NaN)."""
    return [
        ["NaN" if isinstance(v, float) and math.isnan(v) else v for v in column.to_pylist()]
        for column in table.columns
    ]


def assert_same(got: pa.Table, expected: pa.Table, schema: pa.Schema) -> None:
    assert got.schema.equals(schema, check_metadata=True)
    assert expected.schema.equals(schema, check_metadata=True)
    assert cells(got) == cells(expected)


def bare(event_id: str, timestamp: datetime) -> Event:
    return Event(event_id=event_id, model="fraud", timestamp=timestamp, features={}, prediction=0.5)


def awkward_events() -> list[Event]:
    events = []
    for i, text in enumerate(AWKWARD):
        events.append(
            Event(
                event_id=f"{i} {text}" if text else f"{i}",
                model="fraud",
                timestamp=T0 + timedelta(minutes=i, microseconds=i),
                features={"text": text, "amount": 1.5 * i, "none": None, text: i},
                prediction=0.1 * i,
                latency_ms=[None, math.inf, -math.inf, 0.0, 1e-300, 1.7976931348623157e308][i % 6],
                status=text,  # "" and "NULL" stay text, not null
                cost=None if i % 2 else 0.1 + 0.2,
                segments={"country": text} if text else {},
                metadata={"nested": {"list": [1, None, "a\nb"], "text": text}},
            )
        )
    events += [
        Event(
            event_id="nan",
            model="fraud",
            timestamp=datetime(2024, 5, 1, 14, 30, tzinfo=timezone(timedelta(hours=5))),
            features={"amount": math.nan},  # stored as JSON null
            prediction=math.nan,
            latency_ms=math.nan,
            cost=math.nan,
        ),
        Event(
            event_id="big",
            model="fraud",
            timestamp=T0 + timedelta(hours=12),
            features={"blob": BIG, **{f"f{k}": k * 0.5 for k in range(5_000)}},
            prediction=1.0,
        ),
        bare("early", datetime(1900, 1, 1)),
        bare("late", datetime(2200, 12, 31, 23, 59, 59, 999999)),
    ]
    return events


def test_events_with_awkward_values_read_back_exactly(postgres: Any) -> None:
    events = awkward_events()
    assert postgres.write_events(events) == len(events)
    postgres.write_labels(
        [
            Label(event_id="3", model="fraud", label=1.0),  # the empty text's
            Label(event_id="nan", model="fraud", label=math.nan, labelled_at=T0 + DAY),
            Label(event_id="big", model="fraud", label=-0.0, labelled_at=datetime(1970, 1, 1)),
        ]
    )

    got = postgres.events("fraud")
    assert postgres._reader is not None  # read through ADBC
    # Each column in one chunk of its own, as before: keeping one keeps no other.
    assert all(column.num_chunks == 1 for column in got.columns)
    assert_same(got, through_psycopg(postgres, lambda: postgres.events("fraud")), EVENTS)

    # And the values are the ones written, not only the same both ways.
    by_id = {row["event_id"]: row for row in got.to_pylist()}
    assert list(by_id) == [
        "early",
        *(f"{i} {t}" if t else f"{i}" for i, t in enumerate(AWKWARD)),
        "nan",
        "big",
        "late",
    ]
    for i, text in enumerate(AWKWARD):
        row = by_id[f"{i} {text}" if text else f"{i}"]
        assert row["status"] == text
        assert row["ts"] == T0 + timedelta(minutes=i, microseconds=i)
        assert json.loads(row["features"]) == {
            "text": text,
            "amount": 1.5 * i,
            "none": None,
            text: i,
        }
        assert json.loads(row["metadata"])["nested"]["list"] == [1, None, "a\nb"]
        assert row["cost"] == (None if i % 2 else 0.1 + 0.2)  # every bit of 0.30000000000000004
    assert [by_id[f"{i} {t}"]["latency_ms"] for i, t in enumerate(AWKWARD[:3])] == [
        None,
        math.inf,
        -math.inf,
    ]
    assert [r["label"] for r in got.to_pylist()[1:10]] == [None] * 3 + [1.0] + [None] * 5
    nan = by_id["nan"]
    assert nan["ts"] == datetime(2024, 5, 1, 9, 30)  # naive UTC
    assert all(math.isnan(nan[c]) for c in ("prediction", "latency_ms", "cost", "label"))
    assert json.loads(nan["features"]) == {"amount": None}
    assert nan["labelled_at"] == T0 + DAY
    big = by_id["big"]
    assert len(big["features"]) > len(BIG)
    assert json.loads(big["features"])["blob"] == BIG
    assert math.copysign(1.0, big["label"]) == -1.0  # -0.0 stays negative
    assert big["labelled_at"] == datetime(1970, 1, 1)
    assert by_id["early"]["ts"] == datetime(1900, 1, 1)
    assert by_id["late"]["ts"] == datetime(2200, 12, 31, 23, 59, 59, 999999)
    assert by_id["late"]["label"] is None and by_id["late"]["labelled_at"] is None

    # A window's read, and one with nothing in it.
    window = postgres.events("fraud", T0, T0 + DAY)
    assert window["event_id"].to_pylist() == list(by_id)[1:-1]
    empty = postgres.events("fraud", T0 - DAY, T0)
    assert empty.num_rows == 0 and empty.schema.equals(EVENTS, check_metadata=True)
    assert_same(
        empty, through_psycopg(postgres, lambda: postgres.events("fraud", T0 - DAY, T0)), EVENTS
    )


def test_metric_history_and_quarantine_with_awkward_values_read_back_exactly(
    postgres: Any,
) -> None:
    rows = [
        MetricRow(
            layer="inputs",
            metric="psi",
            feature=text,
            segment=f"country={text}",
            value=0.1 * i,
            status="ok",
            reason=text or None,
            n=2**62 + i,
            importance=None,
            coverage=1e-310,  # subnormal
        )
        for i, text in enumerate(AWKWARD)
    ]
    postgres.write_window("fraud", T0, DAY, rows, b"\x00profile\\x00", 3)
    # NaN and infinities cannot come through MetricRow (NaN is None there); stored anyway.
    postgres.sql(
        "INSERT INTO metrics VALUES ('fraud', 'production', ?, 86400, 'all', 'odd', 'outputs', "
        "'m', 'NaN', 'ok', 'Infinity', '-Infinity', 0, NULL, NULL, NULL, NULL, NULL, NULL)",
        [T0],
    )

    def history() -> pa.Table:
        return postgres.history("fraud", DAY, metrics=["psi", "m", 'no"such'])

    got = history()
    assert_same(got, through_psycopg(postgres, history), HISTORY)
    assert got.num_rows == len(AWKWARD) + 1
    odd = got.filter(pc.equal(got["feature"], "odd")).to_pylist()[0]
    assert math.isnan(odd["value"])
    assert (odd["threshold"], odd["reference"]) == (math.inf, -math.inf)
    psi = got.filter(pc.equal(got["metric"], "psi"))
    assert sorted(psi["feature"].to_pylist()) == sorted(AWKWARD)
    assert set(psi["n"].to_pylist()) == {2**62 + i for i in range(len(AWKWARD))}
    assert set(psi["coverage"].to_pylist()) == {1e-310}

    postgres.quarantine(
        "fraud",
        "http",
        [Rejected(index=i, reason=text, payload=text) for i, text in enumerate(AWKWARD)],
    )

    def quarantined() -> pa.Table:
        return postgres.quarantined("fraud")

    got = quarantined()
    assert_same(got, through_psycopg(postgres, quarantined), QUARANTINED)
    assert got["payload"].to_pylist() == AWKWARD
    assert got["reason"].to_pylist() == AWKWARD


def test_a_read_inside_a_transaction_sees_what_it_wrote(store: Any) -> None:
    """On both stores: PostgreSQL's reads inside a transaction stay on its connection."""
    with store.transaction():
        store.write_events([bare("a", T0)])
        assert store.events("fraud")["event_id"].to_pylist() == ["a"]
    assert store.events("fraud")["event_id"].to_pylist() == ["a"]


def test_a_read_after_a_commit_sees_it_and_close_closes_the_reader(postgres_server: Any) -> None:
    import psycopg

    from tripwire.store import PostgresStore

    store = PostgresStore(postgres_server.new_dsn())
    assert store.events("fraud").num_rows == 0  # opens the reader
    with store.transaction():
        store.write_events([bare("a", T0)])
    assert store.events("fraud")["event_id"].to_pylist() == ["a"]  # another connection's read
    store.close()
    assert store._reader is None
    with pytest.raises(psycopg.OperationalError, match="closed"):
        store.events("fraud")


def test_naive_and_aware_bounds_read_the_same_window(postgres: Any) -> None:
    postgres.write_events([bare(str(m), T0 + timedelta(minutes=m)) for m in range(0, 120, 10)])
    since = datetime(2024, 5, 1, 2, 30, tzinfo=timezone(timedelta(hours=2)))  # 00:30 UTC
    until = datetime(2024, 5, 1, 1, 0, tzinfo=UTC)
    aware = postgres.events("fraud", since, until)
    naive = postgres.events("fraud", T0 + timedelta(minutes=30), T0 + timedelta(hours=1))
    assert aware["event_id"].to_pylist() == naive["event_id"].to_pylist() == ["30", "40", "50"]
