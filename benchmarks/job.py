"""Monitoring-job benchmark: ``tripwire run --since/--until`` over millions of stored events.

Usage::

    python benchmarks/job.py                          # 10,000,000 events over 30 daily windows
    python benchmarks/job.py --events 1000000 --days 10 --json
    python benchmarks/job.py --db /var/tmp/job.duckdb # keep the loaded store; later runs reuse it

What it does:

* generates ``--events`` events of the demo's fraud model (``tripwire.demo.scenario``: its
  config, its reference and its month with five known incidents), spread evenly over ``--days``
  daily windows, with numpy; the labels of every day but the last ``label_lag`` days (7) have
  arrived, as they would have when the job runs at the end of the period;
* loads them into a fresh DuckDB store, one day at a time, straight into the ``events`` and
  ``labels`` tables with one ``INSERT ... SELECT`` each from an Arrow table; DuckDB writes the
  feature and segment JSON (``to_json``, the same text the collector's encoder writes; a test
  checks that the rows read back as the collector's would). Loading is not what is measured:
  the collector and consumer benchmarks measure ingestion;
* fits the monitor on the scenario's reference (not timed), then times what ``tripwire run
  --since --until`` does with the stored events, in its steps:

  - ``read``: ``store.events(model, since, until)``, the events with their labels as Arrow;
  - ``parse``: ``to_monitor_table``, the stored JSON features and segments back into columns;
  - ``check``: ``check_windows``, profiling and checking every window and storing its profile
    and metric rows;
  - ``alerts``: ``derive_incidents`` over the stored history and ``save_incidents``
    (nothing is delivered: the alert outbox is not part of this benchmark).

Reported: seconds and CPU time of each step and in all, events/s, the peak RSS of each step
(Linux ``VmHWM``, reset through ``/proc/self/clear_refs`` before it) and the RSS before the
job, the size of the store file, the windows and incidents found, the machine and the load
average (wall times on a shared machine are not the software's alone).
"""

from __future__ import annotations

import argparse
import datetime as dt
import gc
import json
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from tripwire.config import ModelConfig, parse_config
from tripwire.demo import scenario
from tripwire.job import check_windows, derive_incidents, incidents_table
from tripwire.monitor import Monitor
from tripwire.store import DuckDBStore
from tripwire.store.events import to_monitor_table

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:  # loaded by path (the tests do) rather than run as a script
    sys.path.insert(0, str(HERE))
from _measure import (  # noqa: E402
    load_average,
    machine,
    machine_lines,
    proc_status_mb,
    reset_peak_rss,
)

MB = 1024 * 1024
CONFIG = parse_config(scenario.CONFIG_YAML)
DAY = timedelta(days=1)


# --------------------------------------------------------------------------- data


def generate(n_events: int, days: int, seed: int) -> scenario.Scenario:
    """The demo's reference and ``days`` days of traffic, ``n_events`` in all."""
    per_day = -(-n_events // days)
    data = scenario.generate(days=days, rows_per_day=per_day, seed=seed)
    surplus = per_day * days - n_events  # the last day is shorter when days do not divide
    if surplus:
        date, last = data.days[-1]
        data.days[-1] = (date, last.slice(0, per_day - surplus))
    return data


def _quoted(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _json_of(names: Sequence[str]) -> str:
    """SQL for a JSON object of these columns, as the collector stores ``features``."""
    if not names:
        return "'{}'"
    fields = ", ".join(f"{_quoted(n)} := {_quoted(n)}" for n in names)
    return f"to_json(struct_pack({fields}))::VARCHAR"


def load_day(store: DuckDBStore, config: ModelConfig, day: pa.Table, labelled: bool) -> None:
    """One day of logged rows into the store's ``events`` table (and ``labels``, when the
    day's labels have arrived), as the collector would store their events."""
    columns = config.columns
    assert columns.id and columns.timestamp and columns.label
    day = day.set_column(
        day.column_names.index(columns.timestamp),
        columns.timestamp,
        pc.cast(day[columns.timestamp], pa.timestamp("us")),  # naive UTC, as stored
    )
    optional = {
        "latency_ms": columns.latency_ms,
        "status": columns.status,
        "cost": columns.cost,
    }
    selected = ", ".join(
        [
            "$model AS model",
            f"{_quoted(columns.id)}::VARCHAR AS event_id",
            "NULL AS model_version",
            "'production' AS role",
            f"{_quoted(columns.timestamp)} AS ts",
            f"{_json_of(list(columns.features))} AS features",
            f"{_quoted(columns.prediction)}::DOUBLE AS prediction",
            *(f"{_quoted(n) if n else 'NULL'} AS {role}" for role, n in optional.items()),
            f"{_json_of(columns.segments)} AS segments",
            "'{}' AS metadata",
            "$now AS received_at",
        ]
    )
    now = datetime.now(UTC).replace(tzinfo=None)
    db = store.connection
    db.register("logged_day", day)
    try:
        with store.transaction():
            db.execute(
                f"INSERT INTO events SELECT {selected} FROM logged_day",
                {"model": config.name, "now": now},
            )
            if labelled:
                lag = config.label_lag or timedelta(0)
                db.execute(
                    f"INSERT INTO labels SELECT $model, {_quoted(columns.id)}::VARCHAR, "
                    f"{_quoted(columns.label)}::DOUBLE, {_quoted(columns.timestamp)} + $lag, "
                    f"$now FROM logged_day",
                    {"model": config.name, "lag": lag, "now": now},
                )
    finally:
        db.unregister("logged_day")


def load(path: Path, n_events: int, days: int, seed: int) -> tuple[pa.Table, float, int]:
    """Generate and load the events (when ``path`` holds none yet); the reference, the
    seconds loading took and how many days have labels."""
    data = generate(n_events, days, seed)
    lag_days = (CONFIG.label_lag or timedelta(0)) // DAY
    labelled_days = max(0, days - lag_days)
    start = time.perf_counter()
    with DuckDBStore(path) as store:
        ((stored,),) = store.connection.execute("SELECT count(*) FROM events").fetchall()
        if stored == 0:
            for i, (_, day) in enumerate(data.days):
                load_day(store, CONFIG, day, labelled=i < labelled_days)
        elif stored != n_events:
            raise SystemExit(f"{path} holds {stored:,} events, not {n_events:,}: use another")
    return data.reference, time.perf_counter() - start, labelled_days


# --------------------------------------------------------------------------- measuring


class Steps:
    """Times steps one after another: wall and CPU seconds, and the peak RSS during each."""

    def __init__(self) -> None:
        self.figures: dict[str, dict[str, float | None]] = {}

    def run(self, name: str, step: Callable[[], Any]) -> Any:
        reset = reset_peak_rss()
        wall, cpu = time.perf_counter(), time.process_time()
        result = step()
        self.figures[name] = {
            "seconds": time.perf_counter() - wall,
            "cpu_seconds": time.process_time() - cpu,
            "peak_rss_mb": proc_status_mb("VmHWM") if reset else None,
        }
        return result


# --------------------------------------------------------------------------- the job


def run(n_events: int, days: int, seed: int, db: Path | None) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        path = db or Path(tmp) / "store.duckdb"
        reference, load_s, labelled_days = load(path, n_events, days, seed)
        monitor = Monitor(CONFIG).fit(reference)
        del reference
        store_mb = path.stat().st_size / MB
        first = datetime.combine(scenario.START, dt.time(), UTC)
        since, until = first, first + days * DAY
        with DuckDBStore(path) as store:
            # Earlier runs' windows and incidents (with --db) go, so every run does the same.
            for table in ("windows", "metrics", "incidents"):
                store.connection.execute(f"DELETE FROM {table}")
            gc.collect()
            pa.default_memory_pool().release_unused()
            # Generating and loading peaked at this; each step resets the high-water mark.
            peak_loading = proc_status_mb("VmHWM")
            rss_before = proc_status_mb("VmRSS")
            steps = Steps()
            load_before = load_average()
            stored = steps.run("read", lambda: store.events(CONFIG.name, since, until))
            data = steps.run("parse", lambda: to_monitor_table(CONFIG, stored))
            checked = steps.run("check", lambda: check_windows(monitor, store, data, CONFIG.window))

            def alerts() -> list[Any]:
                incidents, _ = derive_incidents(monitor, store, CONFIG.window)
                store.save_incidents(CONFIG.name, incidents_table(incidents))
                return incidents

            incidents = steps.run("alerts", alerts)
            load_after = load_average()
            read_rows, stored_mb = stored.num_rows, stored.nbytes / MB
            labelled = data[CONFIG.columns.label].length() - data[CONFIG.columns.label].null_count
    figures = steps.figures
    total = sum(f["seconds"] or 0.0 for f in figures.values())
    total_cpu = sum(f["cpu_seconds"] or 0.0 for f in figures.values())
    peaks = [f["peak_rss_mb"] for f in figures.values() if f["peak_rss_mb"] is not None]
    return {
        "events": n_events,
        "days": days,
        "seed": seed,
        "read_rows": read_rows,
        "labelled_rows": labelled,
        "labelled_days": labelled_days,
        "load_seconds": load_s,
        "store_mb": store_mb,
        "stored_arrow_mb": stored_mb,
        "steps": figures,
        "seconds": total,
        "cpu_seconds": total_cpu,
        "events_per_s": read_rows / total,
        "rss_before_mb": rss_before,
        "peak_rss_mb": max(peaks) if peaks else None,
        "peak_rss_loading_mb": peak_loading,
        "windows": len(checked),
        "incidents": sorted(f"{i.rule} ({i.severity})" for i in incidents),
        "machine": machine(["duckdb", "pyarrow", "numpy"]),
        "load_average": {"before": load_before, "after": load_after},
    }


# --------------------------------------------------------------------------- output


def _mb(value: float | None) -> str:
    return "n/a" if value is None else f"{value:,.0f} MB"


STEP_NOTES = {
    "read": "store.events(): events + labels as Arrow",
    "parse": "to_monitor_table(): JSON features and segments to columns",
    "check": "check_windows(): profile, check, store every window",
    "alerts": "derive_incidents() + save_incidents()",
}


def format_report(r: dict[str, Any]) -> str:
    lines = [
        f"tripwire job benchmark: {r['events']:,} stored events of the demo's fraud model over "
        f"{r['days']} daily windows ({r['labelled_rows']:,} labelled, {r['labelled_days']} days), "
        "DuckDB store",
        "",
        f"loaded in           {r['load_seconds']:.1f} s (not timed: INSERT ... SELECT from Arrow,"
        f" JSON by DuckDB); store file {r['store_mb']:,.0f} MB",
        f"RSS before the job  {_mb(r['rss_before_mb'])}",
        "",
        f"{'step':<9}{'wall s':>9}{'CPU s':>9}{'peak RSS':>12}  what",
    ]
    for name, f in r["steps"].items():
        lines.append(
            f"{name:<9}{f['seconds']:>9.2f}{f['cpu_seconds']:>9.2f}{_mb(f['peak_rss_mb']):>12}"
            f"  {STEP_NOTES[name]}"
        )
    lines += [
        f"{'total':<9}{r['seconds']:>9.2f}{r['cpu_seconds']:>9.2f}{_mb(r['peak_rss_mb']):>12}",
        "",
        f"throughput          {r['events_per_s']:,.0f} events/s ({r['read_rows']:,} events read)",
        f"stored events read  {r['stored_arrow_mb']:,.0f} MB as Arrow",
        f"peak RSS, loading   {_mb(r['peak_rss_loading_mb'])} (generating and loading, before "
        "the job)",
        f"result              {r['windows']} windows checked, {len(r['incidents'])} incidents: "
        + ", ".join(r["incidents"]),
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
        "--db", type=Path, help="a DuckDB file to load once and reuse (default: a temporary one)"
    )
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    args = parser.parse_args(argv)
    if args.events < args.days or args.days < 1:
        parser.error("--days must be >= 1 and --events >= --days")
    result = run(args.events, args.days, args.seed, args.db)
    print(json.dumps(result, indent=2) if args.json else format_report(result))
    return 0 if result["read_rows"] == args.events and result["windows"] == args.days else 1


if __name__ == "__main__":
    sys.exit(main())
