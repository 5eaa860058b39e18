"""Run the demo scenario day by day, as production would see it, and summarize what was found."""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pyarrow.parquet as pq

from tripwire.config import parse_config
from tripwire.demo import scenario
from tripwire.layers.rows import MetricRow
from tripwire.monitor import Monitor
from tripwire.report.model import Report


@dataclass(frozen=True)
class DemoDay:
    """One day: its own check (no labels yet), and the check of the day whose labels landed."""

    date: dt.date
    report: Report
    labelled: Report | None

    @property
    def timeline_report(self) -> Report:
        """Today's inputs, predictions and cost, with the performance the new labels revealed."""
        rows = [r for r in self.report.rows if r.layer != "performance"]
        window = str(self.date)
        if self.labelled is not None:
            rows += self.labelled.select(layer="performance", segment=None)
            window += f" (performance: labels of {self.labelled.window})"
        return self.report.model_copy(update={"rows": rows, "window": window})


def top_quartile(importance: dict[str, float]) -> set[str]:
    """The features in the top quartile of importance: the ones allowed to page."""
    ranked = sorted(importance, key=lambda k: -importance[k])
    return set(ranked[: math.ceil(len(ranked) / 4)])


def write_files(out: Path, data: scenario.Scenario) -> None:
    """The scenario as files, so the user can replay any day with ``tripwire check``."""
    (out / "days").mkdir(parents=True, exist_ok=True)
    (out / "tripwire.yaml").write_text(scenario.CONFIG_YAML, encoding="utf-8")
    pq.write_table(data.reference, out / "reference.parquet")
    for date, table in data.days:
        pq.write_table(table, out / "days" / f"{date}.parquet")


def run(out: Path, step: Callable[[str], None] = lambda _: None) -> list[DemoDay]:
    """Generate the scenario, write it under ``out``, and check every day."""
    data = scenario.generate()
    write_files(out, data)
    step("fit")
    monitor = Monitor(parse_config(scenario.CONFIG_YAML, "demo tripwire.yaml")).fit(data.reference)
    lag = scenario.LABEL_LAG_DAYS
    days = []
    for index, (date, table) in enumerate(data.days):
        report = monitor.check(scenario.without_labels(table), window=str(date))
        labelled = None
        if index >= lag:
            labelled_date, labelled_table = data.days[index - lag]
            labelled = monitor.check(labelled_table, window=str(labelled_date))
        days.append(DemoDay(date, report, labelled))
        step(str(date))
    return days


@dataclass(frozen=True)
class Finding:
    incident: str
    first_flagged: dt.date | None
    evidence: str


def _first(days: list[DemoDay], pick: Callable[[DemoDay], list[MetricRow]]) -> Finding | None:
    for day in days:
        rows = pick(day)
        if rows:
            row = rows[0]
            value = "—" if row.value is None else f"{row.value:.3g}"
            where = f"{row.feature} " if row.feature else ""
            segment = f" in {row.segment}" if row.segment != "all" else ""
            return Finding("", day.date, f"{row.metric} {where}{value}{segment}")
    return None


def findings(days: list[DemoDay]) -> list[Finding]:
    """For each injected incident, the first day tripwire flagged it at ``alert``."""

    def alert(report: Report | None, **where: str | None) -> list[MetricRow]:
        if report is None:
            return []
        return [r for r in report.select(**where) if r.status == "alert"]  # type: ignore[arg-type]

    checks: list[tuple[str, Callable[[DemoDay], list[MetricRow]]]] = [
        (
            "(a) pipeline breakage, nulls in merchant_risk",
            lambda d: alert(d.report, metric="null_share", feature="merchant_risk"),
        ),
        (
            "(b) population shift in distance_km",
            lambda d: alert(d.report, metric="psi", feature="distance_km"),
        ),
        (
            "(c) decay for new users (realized, after the label lag)",
            lambda d: alert(d.labelled, metric="auc", segment="user_type=new"),
        ),
        ("(d) p95 latency regression", lambda d: alert(d.report, metric="p95_ms")),
        (
            "(e) benign spike in session_jitter (low importance: digest, not page)",
            lambda d: alert(d.report, metric="psi", feature="session_jitter"),
        ),
    ]
    out = []
    for name, pick in checks:
        found = _first(days, pick)
        out.append(
            Finding(name, found.first_flagged, found.evidence)
            if found
            else Finding(name, None, "not flagged")
        )
    return out
