"""Scheduler benchmark: what one pass of ``tripwire serve``'s scheduler costs on a big store.

Usage::

    python benchmarks/scheduler.py                         # 10,000,000 events over 30 days
    python benchmarks/scheduler.py --events 2000000 --store both
    python benchmarks/scheduler.py --db /var/tmp/job.duckdb  # a store benchmarks/job.py kept

Every ``--interval`` (30 s) the scheduler looks for windows to check again (labels or events
received after a window was checked, windows passed over empty whose events came later) and
for windows newly due. It looks with the store's lock held, the lock the collector writes
under, so whatever the look costs, ingestion waits for. This times that look, not the checks.

What it does:

* loads ``--events`` events of the demo's fraud model over ``--days`` daily windows, as
  ``benchmarks/job.py`` does (same generator, same loading; the labels of all but the last 7
  days have arrived), into each store ``--store`` names, stamped received a day ago (with
  ``--db``, whenever they were loaded);
* marks every day checked (a ``windows`` row, computed after every event and label was
  received) without running the job, so that nothing is due or stale;
* starts a scheduler with the clock just past the last window's grace, and times:

  - ``first pass``: its first ``run_due()`` (nothing to do), as after a server's start;
  - ``idle pass``: the following passes (``--passes`` of them, median), nothing arriving;
  - ``after a trickle``: ``relabelled()`` (the look a pass makes, no checks) after about
    1,000 labels spread over every day's events (late ones, and corrections of earlier ones:
    the ids they join by span the whole log, as random ids would) and 100 late events for the
    second day arrived; it must find every window;

  each as wall and CPU seconds of this process and, on PostgreSQL, CPU seconds of the server
  process serving the store's connection.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from contextlib import ExitStack
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from tripwire.demo import scenario
from tripwire.events import Label
from tripwire.monitor import Monitor
from tripwire.scheduler import DEFAULT_GRACE, Scheduler
from tripwire.store import Store

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:  # loaded by path (the tests do) rather than run as a script
    sys.path.insert(0, str(HERE))
from _measure import load_average, machine, machine_lines  # noqa: E402
from _services import backend_cpu_seconds, by_path, postgres_server  # noqa: E402

# What loads the store, shared with the job benchmark.
job = by_path(HERE / "job.py")
CONFIG, DAY = job.CONFIG, job.DAY

TRICKLE_LABELS = 1000
TRICKLE_EVENTS = 100


def _timed(store: Store, step: Callable[[], Any]) -> tuple[dict[str, float | None], Any]:
    """Wall and CPU seconds of ``step`` here, and of the PostgreSQL backend where there is one."""
    backend = backend_cpu_seconds(store) if store.dialect == "postgres" else None
    wall, cpu = time.perf_counter(), time.process_time()
    result = step()
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    server = None
    if backend is not None:
        after = backend_cpu_seconds(store)
        server = None if after is None else after - backend
    return {"seconds": wall, "cpu_seconds": cpu, "server_cpu_seconds": server}, result


def _median(runs: list[dict[str, float | None]]) -> dict[str, float | None]:
    return {
        key: None
        if any(r[key] is None for r in runs)
        else statistics.median(r[key] or 0.0 for r in runs)
        for key in runs[0]
    }


def mark_checked(store: Store, days: int) -> list[datetime]:
    """A ``windows`` row for every day, computed now: after every stored row was received."""
    connection: Any = store.connection
    for table in ("windows", "metrics", "metric_revisions", "incidents"):
        connection.execute(f"DELETE FROM {table}")
    first = datetime.combine(scenario.START, dt.time(), UTC)
    starts = [first + d * DAY for d in range(days)]
    for start in starts:
        store.write_window(CONFIG.name, start, DAY, [], b"", 1)
    return starts


def _trickled(data: scenario.Scenario) -> list[tuple[dt.date, pa.Table]]:
    """Each day's events that get a label in the trickle: evenly spaced through the day."""
    per_day = -(-TRICKLE_LABELS // len(data.days))
    picked = []
    for date, day in data.days:
        rows = np.unique(np.linspace(0, day.num_rows - 1, per_day).astype(np.int64))
        picked.append((date, day.take(pa.array(rows))))
    return picked


def trickle(store: Store, data: scenario.Scenario) -> list[datetime]:
    """About 1,000 labels spread over every day's events (late labels for some, corrections
    of earlier ones for others: the event ids they join by span the whole log, as random ids
    would) and 100 new events of the second day; the windows they fall in."""
    lag = CONFIG.label_lag
    store.write_labels(
        [
            Label(model=CONFIG.name, event_id=str(i), label=float(y), labelled_at=ts + lag)
            for _, day in _trickled(data)
            for i, y, ts in zip(
                day["event_id"].to_pylist(),
                day["is_fraud"].to_pylist(),
                day["ts"].to_pylist(),
                strict=True,
            )
        ]
    )
    late_date, late_day = data.days[1]
    late = late_day.slice(0, TRICKLE_EVENTS)
    renamed = pc.binary_join_element_wise("late-", late["event_id"], "")
    late = late.set_column(late.column_names.index("event_id"), "event_id", renamed)
    job.load_day(store, CONFIG, late, labelled=False)
    dates = {date for date, _ in _trickled(data)} | {late_date}
    return sorted(datetime.combine(d, dt.time(), UTC) for d in dates)


def untrickle(store: Store, data: scenario.Scenario, labelled_days: int) -> None:
    """Take the trickle out again, so that ``--db`` finds the store as loaded: the labels of
    days whose labels had not arrived, and the late events; the corrected labels are
    received a day ago again (a run soon after would find them among the recent rows)."""
    trickled = _trickled(data)
    ids = [i for _, day in trickled[labelled_days:] for i in day["event_id"].to_pylist()]
    corrected = [i for _, day in trickled[:labelled_days] for i in day["event_id"].to_pylist()]
    with store.transaction():
        if corrected:
            store.sql(
                f"UPDATE labels SET received_at = ? WHERE model = ? AND event_id IN "
                f"({', '.join('?' for _ in corrected)})",
                [datetime.now(UTC).replace(tzinfo=None) - DAY, CONFIG.name, *corrected],
            )
        if ids:
            store.sql(
                f"DELETE FROM labels WHERE model = ? AND event_id IN "
                f"({', '.join('?' for _ in ids)})",
                [CONFIG.name, *ids],
            )
        store.sql("DELETE FROM events WHERE model = ? AND event_id LIKE 'late-%'", [CONFIG.name])


def time_passes(
    store: Store, data: scenario.Scenario, monitor: Monitor, labelled_days: int, passes: int
) -> dict[str, Any]:
    days = len(data.days)
    mark_checked(store, days)
    first = datetime.combine(scenario.START, dt.time(), UTC)
    now = first + days * DAY + DEFAULT_GRACE
    scheduler = Scheduler({CONFIG.name: monitor}, store, threading.Lock(), lambda: now)
    load_before = load_average()
    first_pass, records = _timed(store, scheduler.run_due)
    assert records == [], records  # nothing due, nothing stale
    idle = []
    for _ in range(passes):
        figures, records = _timed(store, scheduler.run_due)
        assert records == [], records
        idle.append(figures)
    expected = trickle(store, data)
    after_trickle, found = _timed(store, scheduler.relabelled)
    untrickle(store, data, labelled_days)
    load_after = load_average()
    return {
        "steps": {
            "first pass": first_pass,
            "idle pass": _median(idle),
            "after a trickle": after_trickle,
        },
        "found": [start.isoformat() for _, start in found],
        "expected": [start.isoformat() for start in expected],
        "load_average": {"before": load_before, "after": load_after},
    }


def run(
    n_events: int,
    days: int,
    seed: int,
    kinds: Sequence[str],
    passes: int,
    db: Path | None = None,
    postgres: str | None = None,
) -> list[dict[str, Any]]:
    data = job.generate(n_events, days, seed)
    labelled_days = max(0, days - CONFIG.label_lag // DAY)
    monitor = Monitor(CONFIG).fit(data.reference)
    results = []
    with tempfile.TemporaryDirectory() as tmp, ExitStack() as services:
        server = services.enter_context(postgres_server(postgres)) if "postgres" in kinds else None
        for kind in kinds:
            with job.open_store(kind, db or Path(tmp) / "store.duckdb", server) as store:
                # Received a day ago: a server that has run a while looks at what came since
                # its last look (and a margin), not at the whole log, on its every pass.
                received = datetime.now(UTC).replace(tzinfo=None) - DAY
                loaded = job.load(store, data, n_events, labelled_days, received)
                name, size_mb = job.describe(store, postgres is not None)
                results.append(
                    {
                        "store_kind": kind,
                        "store": name,
                        "events": n_events,
                        "days": days,
                        "labelled_days": labelled_days,
                        "load_seconds": loaded,
                        "store_mb": size_mb,
                        "passes": passes,
                        **time_passes(store, data, monitor, labelled_days, passes),
                        "machine": machine(["duckdb", "pyarrow"]),
                    }
                )
    return results


STEP_NOTES = {
    "first pass": "run_due(), the first after a start: nothing due or stale",
    "idle pass": "run_due(), later passes (median): nothing arrived",
    "after a trickle": f"relabelled() after ~{TRICKLE_LABELS:,} labels and {TRICKLE_EVENTS} "
    "late events",
}


def _s(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.3f}"


def format_report(r: dict[str, Any]) -> str:
    lines = [
        f"tripwire scheduler benchmark: {r['events']:,} stored events of the demo's fraud model "
        f"over {r['days']} daily windows (labels for {r['labelled_days']} days), "
        f"{job.STORE_NAMES[r['store_kind']]} store, every window checked",
        "",
        f"store               {r['store']}, {r['store_mb']:,.0f} MB (events and labels)",
        f"loaded in           {r['load_seconds']:.1f} s (not timed)",
        "",
        f"{'step':<16}{'wall s':>9}{'CPU s':>9}{'server CPU s':>14}  what",
    ]
    for name, f in r["steps"].items():
        lines.append(
            f"{name:<16}{_s(f['seconds']):>9}{_s(f['cpu_seconds']):>9}"
            f"{_s(f['server_cpu_seconds']):>14}  {STEP_NOTES[name]}"
        )
    verdict = "as expected" if r["found"] == r["expected"] else f"expected {r['expected']}"
    lines += [
        "",
        f"found               {len(r['found'])} windows to check again ({verdict})",
        "",
        *machine_lines(r["machine"], r["load_average"]),
    ]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--events", type=int, default=10_000_000, help="events in the store")
    parser.add_argument("--days", type=int, default=30, help="daily windows they span")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument(
        "--store",
        choices=[*job.STORES, "both"],
        default="duckdb",
        help="the store the events are in (both: one run each)",
    )
    parser.add_argument(
        "--db", type=Path, help="a DuckDB file to load once and reuse (default: a temporary one)"
    )
    parser.add_argument(
        "--postgres",
        metavar="DSN",
        help="a PostgreSQL database to use, in a fresh schema (default: a throwaway cluster)",
    )
    parser.add_argument("--passes", type=int, default=5, help="idle passes timed after the first")
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    args = parser.parse_args(argv)
    if args.events < args.days or args.days < 2 or args.passes < 1:
        parser.error("--days must be >= 2, --events >= --days and --passes >= 1")
    kinds = job.STORES if args.store == "both" else (args.store,)
    results = run(args.events, args.days, args.seed, kinds, args.passes, args.db, args.postgres)
    if args.json:
        print(json.dumps(results[0] if len(results) == 1 else results, indent=2))
    else:
        print("\n\n".join(format_report(r) for r in results))
    return 0 if all(r["found"] == r["expected"] for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
