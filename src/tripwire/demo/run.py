"""Run the demo scenario day by day, as production would see it, and summarize what was found.

Each day the monitoring job checks the new window (its labels have not arrived yet), re-checks
the window whose labels landed today, and evaluates the alert rules over the stored history:
the timeline shows the incidents opened and resolved that day and the route each went to.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pyarrow.parquet as pq

from tripwire.alerts.digest import Digest, build_digest
from tripwire.alerts.engine import Incident
from tripwire.config import parse_config
from tripwire.demo import scenario
from tripwire.job import check_windows, derive_incidents
from tripwire.monitor import Monitor
from tripwire.report.model import Report
from tripwire.store import DuckDBStore

DAY = dt.timedelta(days=1)
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
    def timeline_report(self) -> Report:
        """Today's inputs, predictions and cost, with the performance the new labels revealed."""
        rows = [r for r in self.report.rows if r.layer != "performance"]
        window = str(self.date)
        if self.labelled is not None:
            rows += self.labelled.select(layer="performance", segment=None)
            window += f" (performance: labels of {self.labelled.window})"
        return self.report.model_copy(update={"rows": rows, "window": window})


@dataclass(frozen=True)
class DemoRun:
    monitor: Monitor
    days: list[DemoDay]
    incidents: list[Incident]
    digests: list[Digest]  # one per full week, sent on the week's last day


def write_files(out: Path, data: scenario.Scenario) -> None:
    """The scenario as files, so the user can replay any day with ``tripwire check``."""
    (out / "days").mkdir(parents=True, exist_ok=True)
    (out / "tripwire.yaml").write_text(scenario.CONFIG_YAML, encoding="utf-8")
    pq.write_table(data.reference, out / "reference.parquet")
    for date, table in data.days:
        pq.write_table(table, out / "days" / f"{date}.parquet")


def run(out: Path, step: Callable[[str], None] = lambda _: None) -> DemoRun:
    """Generate the scenario, write it under ``out``, and live through it day by day."""
    data = scenario.generate()
    write_files(out, data)
    step("fit")
    monitor = Monitor(parse_config(scenario.CONFIG_YAML, "demo tripwire.yaml")).fit(data.reference)
    lag = scenario.LABEL_LAG_DAYS
    store_path = out / "tripwire.duckdb"
    store_path.unlink(missing_ok=True)
    days = []
    known: dict[str, Incident] = {}
    with DuckDBStore(store_path) as store:
        for index, (date, table) in enumerate(data.days):
            [(_, report)] = check_windows(monitor, store, scenario.without_labels(table), DAY)
            labelled = None
            if index >= lag:
                [(_, labelled)] = check_windows(monitor, store, data.days[index - lag][1], DAY)
            incidents, _ = derive_incidents(monitor, store, DAY)
            opened = [i for i in incidents if i.dedup_key not in known]
            resolved = [
                i
                for i in incidents
                if not i.is_open and i.dedup_key in known and known[i.dedup_key].is_open
            ]
            known = {i.dedup_key: i for i in incidents}
            days.append(DemoDay(date, report, labelled, opened, resolved))
            step(str(date))
        history = store.history(monitor.config.name, DAY)
    first = dt.datetime.combine(data.days[0][0], dt.time())
    digests = [
        build_digest(monitor.config, history, monitor.importance_, incidents, start, start + WEEK)
        for start in (first + k * WEEK for k in range(len(days) // 7))
    ]
    return DemoRun(monitor, days, incidents, digests)


@dataclass(frozen=True)
class Finding:
    incident: str
    first_flagged: dt.date | None
    evidence: str


def findings(days: list[DemoDay]) -> list[Finding]:
    """For each injected incident, the day tripwire opened an incident for it, and where."""

    def opened(rule: str, **where: str) -> Callable[[DemoDay], list[Incident]]:
        def pick(day: DemoDay) -> list[Incident]:
            return [
                i
                for i in day.opened
                if i.rule == rule and all(getattr(i, k) == v for k, v in where.items())
            ]

        return pick

    checks: list[tuple[str, Callable[[DemoDay], list[Incident]]]] = [
        (
            "(a) pipeline breakage, nulls in merchant_risk",
            opened("null_share_top_features", feature="merchant_risk"),
        ),
        (
            "(b) population shift in distance_km (3 days' persistence)",
            opened("psi_top_feature_drift", feature="distance_km"),
        ),
        (
            "(c) decay for new users (realized, after the label lag)",
            opened("segment_performance", segment="user_type=new"),
        ),
        ("(d) p95 latency regression", opened("latency_p95")),
        (
            "(e) benign spike in session_jitter (low importance: digest, not page)",
            opened("drift_digest", feature="session_jitter"),
        ),
    ]
    out = []
    for name, pick in checks:
        hit = next(((d, i) for d in days for i in pick(d)), None)
        if hit is None:
            out.append(Finding(name, None, "not flagged"))
            continue
        day, incident = hit
        value = "—" if incident.value is None else f"{incident.value:.3g}"
        where = f" on {incident.feature}" if incident.feature else ""
        segment = f" in {incident.segment}" if incident.segment != "all" else ""
        out.append(
            Finding(
                name,
                day.date,
                f"{incident.severity} → {incident.route}: {incident.metric}{where}{segment} = "
                f"{value}, evidence from {incident.evidence_start:%Y-%m-%d}",
            )
        )
    return out
