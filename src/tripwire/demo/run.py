"""Run the demo scenario day by day through the pipeline, as production would see it, and
summarize what was found.

Each simulated day the serving process logs its predictions with :class:`tripwire.Logger` to
the collector, which stores them in the DuckDB file; the labels of the predictions made a lag
earlier arrive through ``POST /v1/labels``. Then the scheduler's clock moves past midnight and
its grace period: it checks the day's window (no labels yet) and rechecks the window whose
labels landed, each time running the monitoring job, which evaluates the alert rules over the
stored history and delivers the alerts through the outbox. The timeline is read back from the
store: the day's report, the recheck's performance, and the incidents opened and resolved.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from tripwire.alerts.digest import Digest, build_digest
from tripwire.alerts.engine import Incident
from tripwire.config import parse_config
from tripwire.demo import scenario
from tripwire.demo.pipeline import Throughput, pipeline
from tripwire.demo.serving import serving_process
from tripwire.demo.stored import stored_incidents, stored_report
from tripwire.layers.catalog import ESTIMATED_PREFIX, is_proxy
from tripwire.layers.rows import MetricRow
from tripwire.monitor import Monitor
from tripwire.report.model import Report
from tripwire.scheduler import JobRecord
from tripwire.store import DuckDBStore, Store

DAY = dt.timedelta(days=1)
ALERTS = "alerts.txt"  # where the console channel's alerts go
WEEK = 7 * DAY


@dataclass(frozen=True)
class DemoDay:
    """One day: its own check (no labels yet), the re-check of the day whose labels landed,
    and the incidents that opened or resolved."""

    date: dt.date
    report: Report
    labelled: Report | None
    opened: list[Incident]
    resolved: list[Incident]

    @property
    def performance(self) -> list[MetricRow]:
        """What the day tells about performance: today's estimated performance and proxies,
        which need no labels, and the realized performance of the window whose labels landed."""
        rows = [r for r in self.report.select(layer="performance", segment=None) if _early(r)]
        if self.labelled is not None:
            labelled = self.labelled.select(layer="performance", segment=None)
            rows += [r for r in labelled if not _early(r)]
        return rows

    @property
    def timeline_report(self) -> Report:
        """Today's inputs, predictions and cost, and :attr:`performance`."""
        rows = [r for r in self.report.rows if r.layer != "performance"] + self.performance
        window = str(self.date)
        if self.labelled is not None:
            window += f" (realized performance: labels of {self.labelled.window})"
        return self.report.model_copy(update={"rows": rows, "window": window})


def _early(row: MetricRow) -> bool:
    """Whether ``row`` is one of the performance rows a window has before its labels land."""
    return row.metric.startswith(ESTIMATED_PREFIX) or is_proxy(row.metric)


@dataclass(frozen=True)
class DemoRun:
    monitor: Monitor
    days: list[DemoDay]
    incidents: list[Incident]
    digests: list[Digest]  # one per full week, sent on the week's last day
    throughput: Throughput  # what went through the pipeline
    history: pa.Table  # every stored metric row at the end, as Store.history gives them
    windows: list[dt.datetime]  # the stored windows' starts (naive UTC)


def write_files(out: Path, data: scenario.Scenario) -> None:
    """The scenario as files, so the user can replay any day with ``tripwire check``."""
    (out / "days").mkdir(parents=True, exist_ok=True)
    (out / "tripwire.yaml").write_text(scenario.CONFIG_YAML, encoding="utf-8")
    pq.write_table(data.reference, out / "reference.parquet")
    for date, table in data.days:
        pq.write_table(table, _day_file(out, date))


def _day_file(out: Path, date: dt.date) -> Path:
    return out / "days" / f"{date}.parquet"


def _midnight(date: dt.date) -> dt.datetime:
    return dt.datetime.combine(date, dt.time(), dt.UTC)


def run(out: Path, step: Callable[[str], None] = lambda _: None) -> DemoRun:
    """Generate the scenario, write it under ``out``, and live through it day by day."""
    out.mkdir(parents=True, exist_ok=True)
    # Started first, so that its imports overlap the scenario's generation.
    with serving_process(out / "tripwire.yaml") as serving:
        data = scenario.generate()
        write_files(out, data)
        step("fit")
        config = parse_config(scenario.CONFIG_YAML, "demo tripwire.yaml")
        monitor = Monitor(config).fit(data.reference)
        lag = scenario.LABEL_LAG_DAYS
        traffic = [_day_file(out, date) for date, _ in data.days]
        store_path = out / "tripwire.duckdb"
        # A fresh store each run, without the write-ahead log an interrupted run may have left.
        for stale in (store_path, store_path.with_name(store_path.name + ".wal")):
            stale.unlink(missing_ok=True)
        days: list[DemoDay] = []
        known: dict[str, Incident] = {}
        with (
            DuckDBStore(store_path) as store,
            (out / ALERTS).open("w", encoding="utf-8") as alerts,
            pipeline(monitor, store, _midnight(data.days[0][0]), serving, alerts) as loop,
        ):
            serving.serve(traffic[0])
            for index, (date, _) in enumerate(data.days):
                labelled = data.days[index - lag][1] if index >= lag else None
                following = traffic[index + 1] if index + 1 < len(traffic) else None
                records = loop.live(_midnight(date), labelled, following)
                with loop.scheduler.lock:
                    day, incidents = _read_day(monitor, store, date, records, known)
                known = {i.dedup_key: i for i in incidents}
                days.append(day)
                step(str(date))
            with loop.scheduler.lock:
                history = store.history(config.name, DAY)
                windows = store.window_starts(config.name, DAY)
            throughput = loop.throughput
    first = _midnight(data.days[0][0]).replace(tzinfo=None)
    digests = [
        build_digest(config, history, monitor.importance_, incidents, start, start + WEEK)
        for start in (first + k * WEEK for k in range(len(days) // 7))
    ]
    return DemoRun(monitor, days, incidents, digests, throughput, history, windows)


def _read_day(
    monitor: Monitor,
    store: Store,
    date: dt.date,
    records: list[JobRecord],
    known: dict[str, Incident],
) -> tuple[DemoDay, list[Incident]]:
    """The day as the store holds it after the scheduler's pass: its window's report, the
    report of the window rechecked with the labels that landed, and the incidents that opened
    or resolved since ``known``."""
    report = stored_report(monitor, store, _midnight(date))
    rechecked = [r.window_start for r in records if r.outcome == "rechecked"]
    labelled = stored_report(monitor, store, max(rechecked)) if rechecked else None
    incidents = stored_incidents(store, monitor.config.name)
    opened = [i for i in incidents if i.dedup_key not in known]
    resolved = [
        i
        for i in incidents
        if not i.is_open and i.dedup_key in known and known[i.dedup_key].is_open
    ]
    return DemoDay(date, report, labelled, opened, resolved), incidents
