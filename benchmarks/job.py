"""Monitoring-job benchmark: ``tripwire run --since/--until`` over millions of stored events.

Usage::

    python benchmarks/job.py                          # 10,000,000 events over 30 daily windows
    python benchmarks/job.py --events 1000000 --days 10 --json
    python benchmarks/job.py --db /var/tmp/job.duckdb # keep the loaded store; later runs reuse it
    python benchmarks/job.py --store both             # DuckDB, then PostgreSQL
    python benchmarks/job.py --read period            # one read of the whole period

What it does:

* generates ``--events`` events of the demo's fraud model (``tripwire.demo.scenario``: its
  config, its reference and its month with five known incidents), spread evenly over ``--days``
  daily windows, with numpy; the labels of every day but the last ``label_lag`` days (7) have
  arrived, as they would have when the job runs at the end of the period;
* loads them, one day at a time, into each store ``--store`` names: DuckDB builds the day's rows
  of the ``events`` and ``labels`` tables from the Arrow table (``to_json`` writes the feature
  and segment JSON as the collector's encoder does; a test checks that the rows read back as the
  collector's would), then one ``INSERT ... SELECT`` puts them in a DuckDB file, or ``COPY``
  (CSV) in a fresh schema of a PostgreSQL database (a throwaway cluster started here, or
  ``--postgres``). Loading is not what is measured: the collector and consumer benchmarks
  measure ingestion;
* fits the monitor on the scenario's reference (not timed), then times what ``tripwire run
  --since --until`` does with the stored events, in its steps:

  - ``read``: ``store.events()`` (and ``first_event()``), the events with their labels as Arrow,
    a window at a time as ``stored_windows`` reads them (``--read period``: in one read);
  - ``parse``: ``to_monitor_table``, the stored JSON features and segments back into columns;
  - ``check``: ``check_windows``, profiling and checking every window and storing its profile
    and metric rows;
  - ``alerts``: ``derive_incidents`` over the stored history and ``save_incidents``
    (nothing is delivered: the alert outbox is not part of this benchmark).

Reported: seconds and CPU time of each step and in all, events/s, the peak RSS (Linux
``VmHWM``, reset through ``/proc/self/clear_refs`` when the job starts; for each step too with
``--read period``), the largest read, the memory DuckDB holds, the size of the stored events,
the windows and incidents found, the machine and the load average (wall times on a shared
machine are not the software's alone).
"""

from __future__ import annotations

import argparse
import datetime as dt
import gc
import json
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack, contextmanager
from datetime import UTC, datetime, timedelta
from importlib.metadata import version
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pa_csv

from tripwire.config import ModelConfig, parse_config
from tripwire.demo import scenario
from tripwire.events import metadata_columns
from tripwire.job import check_windows, derive_incidents, incidents_table
from tripwire.monitor import Monitor
from tripwire.store import DuckDBStore, Store
from tripwire.store.events import stored_windows, to_monitor_table

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
from _services import postgres_schema, postgres_server, postgres_version  # noqa: E402

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


def day_rows(
    config: ModelConfig, day: pa.Table, labelled: bool, now: datetime
) -> tuple[pa.Table, pa.Table | None]:
    """One day of logged rows as rows of the store's ``events`` table, and of ``labels`` when
    the day's labels have arrived: what the collector would store for their events, built by
    DuckDB (in memory) from the Arrow table."""
    columns = config.columns
    assert columns.id and columns.timestamp and columns.label
    day = day.set_column(
        day.column_names.index(columns.timestamp),
        columns.timestamp,
        pc.cast(day[columns.timestamp], pa.timestamp("us")),  # naive UTC, as stored
    )
    metadata = metadata_columns(config, day.column_names)  # the proxies' columns
    optional = {
        "latency_ms": columns.latency_ms,
        "status": columns.status,
        "cost": columns.cost,
    }
    selected = ", ".join(
        [
            "$model AS model",
            f"{_quoted(columns.id)}::VARCHAR AS event_id",
            "NULL::VARCHAR AS model_version",
            "'production' AS role",
            f"{_quoted(columns.timestamp)} AS ts",
            f"{_json_of(list(columns.features))} AS features",
            f"{_quoted(columns.prediction)}::DOUBLE AS prediction",
            *(
                f"{_quoted(name) if name else 'NULL'}::{kind} AS {role}"
                for (role, name), kind in zip(
                    optional.items(), ("DOUBLE", "VARCHAR", "DOUBLE"), strict=True
                )
            ),
            f"{_json_of(columns.segments)} AS segments",
            f"{_json_of(metadata) if metadata else repr('{}')} AS metadata",
            "$now AS received_at",
        ]
    )
    params = {"model": config.name, "now": now}
    with duckdb.connect() as db:
        db.register("logged_day", day)
        events = db.sql(f"SELECT {selected} FROM logged_day", params=params).to_arrow_table()
        labels = None
        if labelled:
            labels = db.sql(
                f"SELECT $model AS model, {_quoted(columns.id)}::VARCHAR AS event_id, "
                f"{_quoted(columns.label)}::DOUBLE AS label, "
                f"{_quoted(columns.timestamp)} + $lag AS labelled_at, $now AS received_at "
                "FROM logged_day",
                params={**params, "lag": config.label_lag},
            ).to_arrow_table()
    return events, labels


def _insert(store: Store, table: str, rows: pa.Table) -> None:
    """Rows (every column, in table order) into ``table``: an Arrow scan into DuckDB, COPY
    (CSV) into PostgreSQL."""
    names = ", ".join(rows.column_names)
    if isinstance(store, DuckDBStore):
        store.connection.register("new_rows", rows)
        try:
            store.connection.execute(f"INSERT INTO {table} ({names}) SELECT {names} FROM new_rows")
        finally:
            store.connection.unregister("new_rows")
        return
    text = pa.BufferOutputStream()
    pa_csv.write_csv(rows, text, pa_csv.WriteOptions(include_header=False))
    connection: Any = store.connection
    statement = f"COPY {table} ({names}) FROM STDIN (FORMAT csv)"
    with connection.cursor() as cursor, cursor.copy(statement) as copy:
        copy.write(text.getvalue())


def load_day(
    store: Store,
    config: ModelConfig,
    day: pa.Table,
    labelled: bool,
    received: datetime | None = None,
) -> None:
    """One day of logged rows into the store, as the collector would store their events;
    stamped received at ``received`` (naive UTC; default: now)."""
    events, labels = day_rows(
        config, day, labelled, received or datetime.now(UTC).replace(tzinfo=None)
    )
    with store.transaction():
        _insert(store, "events", events)
        if labels is not None:
            _insert(store, "labels", labels)


def stored_events(store: Store) -> int:
    connection: Any = store.connection
    ((count,),) = connection.execute("SELECT count(*) FROM events").fetchall()
    return int(count)


def load(
    store: Store,
    data: scenario.Scenario,
    n_events: int,
    labelled_days: int,
    received: datetime | None = None,
) -> float:
    """Load the generated days, unless the store holds them already (``--db``); seconds."""
    start = time.perf_counter()
    stored = stored_events(store)
    if stored == 0:
        for i, (_, day) in enumerate(data.days):
            load_day(store, CONFIG, day, labelled=i < labelled_days, received=received)
    elif stored != n_events:
        raise SystemExit(f"{store.where} holds {stored:,} events, not {n_events:,}: use another")
    return time.perf_counter() - start


@contextmanager
def open_store(kind: str, path: Path, postgres: str | None) -> Iterator[Store]:
    """The DuckDB file at ``path``, or a fresh schema in the PostgreSQL database."""
    if kind == "duckdb":
        with DuckDBStore(path) as duck:
            yield duck
        return
    from tripwire.store import PostgresStore

    assert postgres is not None
    with postgres_schema(postgres) as dsn, PostgresStore(dsn) as pg:
        yield pg


def describe(store: Store, postgres_given: bool) -> tuple[str, float]:
    """The store in words, and the size of what it holds in MB."""
    if isinstance(store, DuckDBStore):
        store.connection.execute("CHECKPOINT")  # the rows still in the write-ahead log too
        return f"DuckDB {version('duckdb')}, one file", Path(store.path).stat().st_size / MB
    connection: Any = store.connection
    ((size,),) = connection.execute(
        "SELECT pg_total_relation_size('events') + pg_total_relation_size('labels')"
    ).fetchall()
    where = "--postgres" if postgres_given else "throwaway cluster, loopback, fsync on"
    drivers = f"psycopg {version('psycopg')}, ADBC {version('adbc-driver-postgresql')} (reads)"
    return f"PostgreSQL {postgres_version(store)} ({where}), {drivers}", size / MB


# --------------------------------------------------------------------------- measuring


class Steps:
    """Adds up the wall and CPU seconds of each named step; with ``reset_each``, also the peak
    RSS during each (the kernel's high-water mark, reset before every step)."""

    def __init__(self, reset_each: bool) -> None:
        self.reset_each = reset_each
        self.figures: dict[str, dict[str, float | None]] = {}

    def run(self, name: str, step: Callable[[], Any]) -> Any:
        reset = self.reset_each and reset_peak_rss()
        wall, cpu = time.perf_counter(), time.process_time()
        result = step()
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
        figures = self.figures.setdefault(
            name, {"seconds": 0.0, "cpu_seconds": 0.0, "peak_rss_mb": None}
        )
        figures["seconds"] = (figures["seconds"] or 0.0) + wall
        figures["cpu_seconds"] = (figures["cpu_seconds"] or 0.0) + cpu
        if reset:
            figures["peak_rss_mb"] = max(
                figures["peak_rss_mb"] or 0.0, proc_status_mb("VmHWM") or 0.0
            )
        return result


class TimedReads:
    """The store, for ``stored_windows``: its event reads are timed as the step "read"."""

    def __init__(self, store: Store, steps: Steps) -> None:
        self.store, self.steps = store, steps
        self.largest_mb = 0.0  # the largest read, as Arrow

    def first_event(self, model: str, since: datetime | None = None) -> datetime | None:
        return self.steps.run("read", lambda: self.store.first_event(model, since))

    def events(self, model: str, since: datetime | None, until: datetime | None) -> pa.Table:
        table: pa.Table = self.steps.run("read", lambda: self.store.events(model, since, until))
        self.largest_mb = max(self.largest_mb, table.nbytes / MB)
        return table


# --------------------------------------------------------------------------- the job


def _period(store: Store, monitor: Monitor, since: datetime, until: datetime, steps: Steps) -> Any:
    """As before ``stored_windows``: the whole period in one read, then parsed and checked."""
    stored = steps.run("read", lambda: store.events(CONFIG.name, since, until))
    data = steps.run("parse", lambda: to_monitor_table(CONFIG, stored))
    checked = steps.run("check", lambda: check_windows(monitor, store, data, CONFIG.window))
    return checked, [data], stored.nbytes / MB


def _windows(store: Store, monitor: Monitor, since: datetime, until: datetime, steps: Steps) -> Any:
    """What ``tripwire run`` does: a window at a time (``stored_windows``), each checked as it
    is read. Reading and parsing interleave: parse is the windows' time less the reads'."""
    reads = TimedReads(store, steps)
    windows = stored_windows(reads, CONFIG, since, until, CONFIG.window)
    checked, labels = [], []
    while (data := steps.run("next", lambda: next(windows, None))) is not None:
        labels.append(data.select([CONFIG.columns.label or ""]))
        checked += steps.run(
            "check", lambda d=data: check_windows(monitor, store, d, CONFIG.window)
        )
    read, both = steps.figures["read"], steps.figures.pop("next")
    steps.figures = {
        "read": read,
        "parse": {k: (both[k] or 0.0) - (read[k] or 0.0) for k in ("seconds", "cpu_seconds")}
        | {"peak_rss_mb": None},
        "check": steps.figures["check"],
    }
    return checked, labels, reads.largest_mb


def time_job(store: Store, monitor: Monitor, days: int, mode: str) -> dict[str, Any]:
    """What ``tripwire run --since --until`` does over the stored period, step by step."""
    first = datetime.combine(scenario.START, dt.time(), UTC)
    since, until = first, first + days * DAY
    connection: Any = store.connection
    # Earlier runs' windows and incidents (with --db) go, so every run does the same.
    for table in ("windows", "metrics", "incidents"):
        connection.execute(f"DELETE FROM {table}")
    gc.collect()
    pa.default_memory_pool().release_unused()
    rss_before = proc_status_mb("VmRSS")
    steps = Steps(reset_each=mode == "period")
    load_before = load_average()
    reset = reset_peak_rss()
    read = _period if mode == "period" else _windows
    checked, tables, read_mb = read(store, monitor, since, until, steps)
    peak_checking = proc_status_mb("VmHWM") if reset else None
    cache_mb = None
    if isinstance(store, DuckDBStore):  # DuckDB's buffer manager lives in this process
        ((cached,),) = connection.execute(
            "SELECT sum(memory_usage_bytes) FROM duckdb_memory()"
        ).fetchall()
        cache_mb = cached / MB

    def alerts() -> list[Any]:
        incidents, _ = derive_incidents(monitor, store, CONFIG.window)
        store.save_incidents(CONFIG.name, incidents_table(incidents))
        return incidents

    steps.reset_each = True
    incidents = steps.run("alerts", alerts)
    load_after = load_average()
    figures = steps.figures
    total = sum(f["seconds"] or 0.0 for f in figures.values())
    peaks = [f["peak_rss_mb"] for f in figures.values() if f["peak_rss_mb"] is not None]
    label = pa.concat_tables(tables)[CONFIG.columns.label or ""]
    return {
        "read_mode": mode,
        "read_rows": len(label),
        "labelled_rows": len(label) - label.null_count,
        "largest_read_mb": read_mb,
        "steps": figures,
        "seconds": total,
        "cpu_seconds": sum(f["cpu_seconds"] or 0.0 for f in figures.values()),
        "events_per_s": len(label) / total,
        "rss_before_mb": rss_before,
        "peak_rss_mb": max([*peaks, peak_checking or 0.0]) if reset else None,
        "duckdb_memory_mb": cache_mb,
        "windows": len(checked),
        "incidents": sorted(f"{i.rule} ({i.severity})" for i in incidents),
        "load_average": {"before": load_before, "after": load_after},
    }


def run(
    n_events: int,
    days: int,
    seed: int,
    kinds: Sequence[str],
    db: Path | None = None,
    postgres: str | None = None,
    mode: str = "window",
) -> list[dict[str, Any]]:
    """Generate, load every store in ``kinds``, then time the job on each in turn."""
    data = generate(n_events, days, seed)
    labelled_days = max(0, days - CONFIG.label_lag // DAY)
    monitor = Monitor(CONFIG).fit(data.reference)
    with tempfile.TemporaryDirectory() as tmp, ExitStack() as services:
        server = None
        if "postgres" in kinds:
            server = services.enter_context(postgres_server(postgres))
        stores = {
            kind: services.enter_context(open_store(kind, db or Path(tmp) / "store.duckdb", server))
            for kind in kinds
        }
        loaded = {
            kind: load(store, data, n_events, labelled_days) for kind, store in stores.items()
        }
        del data  # the job reads the stores, and its memory is measured without the source
        # Generating and loading peaked at this; each timed step resets the high-water mark.
        peak_loading = proc_status_mb("VmHWM")
        results = []
        for kind, store in stores.items():
            name, size_mb = describe(store, postgres is not None)
            results.append(
                {
                    "store_kind": kind,
                    "store": name,
                    "events": n_events,
                    "days": days,
                    "seed": seed,
                    "labelled_days": labelled_days,
                    "load_seconds": loaded[kind],
                    "store_mb": size_mb,
                    "peak_rss_loading_mb": peak_loading,
                    **time_job(store, monitor, days, mode),
                    "machine": machine(["duckdb", "pyarrow", "numpy"]),
                }
            )
    return results


# --------------------------------------------------------------------------- output


def _mb(value: float | None) -> str:
    return "n/a" if value is None else f"{value:,.0f} MB"


STORES = ("duckdb", "postgres")
STORE_NAMES = {"duckdb": "DuckDB", "postgres": "PostgreSQL"}
LOADED_BY = {"duckdb": "INSERT ... SELECT from Arrow", "postgres": "COPY ... (FORMAT csv)"}
READ_MODES = {
    "window": "read a window at a time (stored_windows, as tripwire run does)",
    "period": "the whole period in one read (--read period)",
}
STEP_NOTES = {
    "read": "store.events() (+ first_event()): events + labels as Arrow",
    "parse": "to_monitor_table(): JSON features and segments to columns",
    "check": "check_windows(): profile, check, store every window",
    "alerts": "derive_incidents() + save_incidents()",
}


def format_report(r: dict[str, Any]) -> str:
    lines = [
        f"tripwire job benchmark: {r['events']:,} stored events of the demo's fraud model over "
        f"{r['days']} daily windows ({r['labelled_rows']:,} labelled, {r['labelled_days']} days), "
        f"{STORE_NAMES[r['store_kind']]} store, {READ_MODES[r['read_mode']]}",
        "",
        f"store               {r['store']}, {r['store_mb']:,.0f} MB (events and labels)",
        f"loaded in           {r['load_seconds']:.1f} s (not timed; rows built by DuckDB, then "
        f"{LOADED_BY[r['store_kind']]})",
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
        f"{'total':<9}{r['seconds']:>9.2f}{r['cpu_seconds']:>9.2f}{_mb(r['peak_rss_mb']):>12}"
        "  peak RSS: the kernel's high-water mark, reset at the start",
        "",
        f"throughput          {r['events_per_s']:,.0f} events/s ({r['read_rows']:,} events read)",
        f"largest read        {r['largest_read_mb']:,.0f} MB of stored events as Arrow",
        *(
            [
                f"DuckDB memory       {_mb(r['duckdb_memory_mb'])} held by DuckDB after checking "
                "(duckdb_memory(): mostly cached blocks of the store, up to its memory_limit)"
            ]
            if r["duckdb_memory_mb"] is not None
            else []
        ),
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
        "--store",
        choices=[*STORES, "both"],
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
    parser.add_argument(
        "--read",
        choices=list(READ_MODES),
        default="window",
        help="window: as tripwire run reads (default); period: one read of the whole period",
    )
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    args = parser.parse_args(argv)
    if args.events < args.days or args.days < 1:
        parser.error("--days must be >= 1 and --events >= --days")
    kinds = STORES if args.store == "both" else (args.store,)
    results = run(args.events, args.days, args.seed, kinds, args.db, args.postgres, args.read)
    if args.json:
        print(json.dumps(results[0] if len(results) == 1 else results, indent=2))
    else:
        print("\n\n".join(format_report(r) for r in results))
    ok = all(r["read_rows"] == args.events and r["windows"] == args.days for r in results)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
