"""How a window's performance rows moved as labels arrived: every store keeps the versions a
rewrite replaced, and intervals and label coverage on every metric row."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

from tripwire.config import parse_config
from tripwire.job import check_windows
from tripwire.layers.rows import MetricRow
from tripwire.monitor import Monitor
from tripwire.store.common import REVISIONS

Store = Any
DAY = timedelta(days=1)
T0 = datetime(2024, 5, 1)


def performance(auc: float | None, n: int, coverage: float, status: str = "ok") -> MetricRow:
    return MetricRow(
        layer="performance",
        metric="auc",
        value=auc,
        status=status,  # type: ignore[arg-type]
        n=n,
        coverage=coverage,
        ci_low=None if auc is None else auc - 0.05,
        ci_high=None if auc is None else auc + 0.05,
    )


def drift(psi: float) -> MetricRow:
    return MetricRow(layer="inputs", metric="psi", feature="x", value=psi, status="ok", n=1000)


def write(store: Store, start: datetime, *rows: MetricRow) -> None:
    store.write_window("fraud", start, DAY, list(rows), profile=b"p", n_rows=1000)


def moves(store: Store, start: datetime = T0) -> list[tuple[float | None, str, int, float | None]]:
    table = store.revisions("fraud", start, DAY)
    assert table.schema == REVISIONS
    rows = table.to_pylist()
    times = [r["computed_at"] for r in rows]
    assert times == sorted(times)
    return [(r["value"], r["status"], r["n"], r["coverage"]) for r in rows]


def test_intervals_and_coverage_are_stored_and_read_back(open_store: Callable[[], Store]):
    with open_store() as store:
        write(store, T0, performance(0.8, 400, 0.4))
        (row,) = store.history("fraud", DAY).to_pylist()
    assert (row["ci_low"], row["ci_high"], row["coverage"]) == (0.8 - 0.05, 0.8 + 0.05, 0.4)


def test_a_window_rewritten_as_labels_arrive_keeps_how_its_value_moved(open_store):
    with open_store() as store:
        write(store, T0, performance(0.91, 40, 0.04, "insufficient_labels"), drift(0.1))
        write(store, T0 + DAY, performance(0.70, 900, 0.9))  # another window: not mixed in
        write(store, T0, performance(0.84, 350, 0.35), drift(0.1))
        write(store, T0, performance(0.84, 350, 0.35), drift(0.2))  # inputs only: no revision
        write(store, T0, performance(0.80, 800, 0.8), drift(0.2))
        assert moves(store) == [
            (0.91, "insufficient_labels", 40, 0.04),
            (0.84, "ok", 350, 0.35),
            (0.80, "ok", 800, 0.8),  # the current rows
        ]
        assert moves(store, T0 + DAY) == [(0.70, "ok", 900, 0.9)]
        # The history holds the current rows only.
        current = store.history("fraud", DAY, ["auc"]).to_pylist()
        assert [(r["window_start"], r["value"]) for r in current] == [(T0, 0.8), (T0 + DAY, 0.7)]


def test_rewriting_with_the_same_rows_keeps_no_revision(open_store):
    with open_store() as store:
        write(store, T0, performance(None, 0, 0.0, "insufficient_labels"))
        write(store, T0, performance(None, 0, 0.0, "insufficient_labels"))
        write(store, T0, performance(None, 0, 0.0, "insufficient_labels"))
        assert moves(store) == [(None, "insufficient_labels", 0, 0.0)]


def test_a_window_without_performance_rows_has_no_revisions(open_store):
    with open_store() as store:
        write(store, T0, drift(0.1))
        write(store, T0, drift(0.3))
        assert moves(store) == []
        assert store.revisions("fraud", T0 + DAY, DAY).num_rows == 0


def test_rechecking_a_window_as_its_labels_land(open_store):
    """The monitoring job checks a day with few labels, then again once they have landed: the
    stored history moves from insufficient_labels to a verdict, and the revisions show it."""
    config = parse_config(
        "name: fraud\ntask: binary\n"
        "columns: {timestamp: ts, features: {x: numeric}, prediction: score, label: y}\n"
    )
    rng = np.random.default_rng(0)

    def day(n: int) -> pd.DataFrame:
        score = rng.random(n)
        return pd.DataFrame(
            {
                "ts": T0 + pd.to_timedelta(rng.integers(0, 86_400, n), unit="s"),
                "x": rng.normal(size=n),
                "score": score,
                "y": (rng.random(n) < score).astype(float),
            }
        )

    monitor = Monitor(config).fit(day(5000))
    window = day(2000)
    early = window.copy()
    early.loc[150:, "y"] = np.nan  # 150 labels so far: 7.5 %
    with open_store() as store:
        check_windows(monitor, store, pa.Table.from_pandas(early), DAY)
        check_windows(monitor, store, pa.Table.from_pandas(window), DAY)
        revisions = store.revisions("fraud", T0, DAY).to_pylist()
    auc = [(r["status"], r["n"], r["coverage"]) for r in revisions if r["metric"] == "auc"]
    assert auc[0] == ("insufficient_labels", 150, 0.075)
    assert auc[1][1:] == (2000, 1.0) and auc[1][0] in ("ok", "watch", "alert")
