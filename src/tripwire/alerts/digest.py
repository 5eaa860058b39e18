"""The weekly digest: what moved on the features no pager watches, by how much, since when."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from html import escape

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from tripwire.alerts.engine import Incident, paging_features
from tripwire.config import ModelConfig
from tripwire.layers.catalog import CATALOG
from tripwire.report.summary import PRIORITY


@dataclass(frozen=True)
class DigestItem:
    feature: str
    segment: str
    metric: str
    first_flagged: datetime
    windows_flagged: int
    peak: float
    latest: float


@dataclass(frozen=True)
class Digest:
    model: str
    since: datetime
    until: datetime
    items: list[DigestItem]
    incidents: list[Incident]  # digest-severity incidents active in the period

    @property
    def subject(self) -> str:
        return (
            f"tripwire digest for {self.model}, {self.since:%Y-%m-%d} to "
            f"{self.until - timedelta(days=1):%Y-%m-%d}: "
            f"{len(self.items)} movements, {len(self.incidents)} digest incidents"
        )


def build_digest(
    config: ModelConfig,
    history: pa.Table,
    importance: dict[str, float],
    incidents: list[Incident],
    since: datetime,
    until: datetime,
) -> Digest:
    """Per-feature metrics at watch or alert in ``[since, until)`` outside the paging set."""
    paging = paging_features(config, importance)
    drift_metrics = [m for m, info in CATALOG.items() if info.per_feature and m != "schema"]
    rows = history.filter(
        pc.and_(
            pc.and_(
                pc.greater_equal(history["window_start"], pa.scalar(since, pa.timestamp("us"))),
                pc.less(history["window_start"], pa.scalar(until, pa.timestamp("us"))),
            ),
            pc.is_in(history["metric"], pa.array(drift_metrics)),
        )
    ).to_pylist()
    groups: dict[tuple[str, str], list[dict[str, object]]] = {}
    for row in rows:
        if row["feature"] and row["feature"] not in paging:
            groups.setdefault((str(row["feature"]), str(row["segment"])), []).append(row)
    items = []
    for (feature, segment), group in groups.items():
        flagged_metrics = {str(r["metric"]) for r in group if r["status"] in ("watch", "alert")}
        if not flagged_metrics:
            continue
        # One line per feature and segment, named by its most telling metric.
        metric = min(flagged_metrics, key=_priority)
        series = [r for r in group if r["metric"] == metric]
        flagged = [r for r in series if r["status"] in ("watch", "alert")]
        values = np.array([np.nan if r["value"] is None else r["value"] for r in flagged])
        latest = series[-1]["value"]
        items.append(
            DigestItem(
                feature=feature,
                segment=segment,
                metric=metric,
                first_flagged=flagged[0]["window_start"],  # type: ignore[arg-type]
                windows_flagged=len(flagged),
                peak=float(np.nanmax(values)),
                latest=float("nan") if latest is None else float(latest),  # type: ignore[arg-type]
            )
        )
    items.sort(key=lambda i: (-i.windows_flagged, -i.peak))
    active = [
        i
        for i in incidents
        if i.severity == "digest"
        and i.evidence_start < until
        and (i.resolved_at is None or i.resolved_at >= since)
    ]
    return Digest(config.name, since, until, items, active)


def _priority(metric: str) -> int:
    return PRIORITY.index(metric) if metric in PRIORITY else len(PRIORITY)


def to_markdown(digest: Digest) -> str:
    lines = [f"# {digest.subject}", ""]
    if not digest.items and not digest.incidents:
        lines.append("Nothing moved outside the paging set.")
    if digest.items:
        lines += [
            "| feature | segment | metric | flagged windows | since | peak | latest |",
            "|---|---|---|---|---|---|---|",
        ]
        lines += [
            f"| {i.feature} | {i.segment} | {i.metric} | {i.windows_flagged} | "
            f"{i.first_flagged:%Y-%m-%d} | {i.peak:.3g} | {i.latest:.3g} |"
            for i in digest.items
        ]
    if digest.incidents:
        lines += ["", "## Digest incidents", ""]
        lines += [
            f"- {i.rule}: {i.metric} {i.feature} [{i.segment}] since "
            f"{i.evidence_start:%Y-%m-%d}"
            + ("" if i.is_open else f", resolved {i.resolved_at:%Y-%m-%d}")
            for i in digest.incidents
        ]
    return "\n".join(lines) + "\n"


def to_html(digest: Digest) -> str:
    rows = "".join(
        f"<tr><td>{escape(i.feature)}</td><td>{escape(i.segment)}</td><td>{escape(i.metric)}</td>"
        f"<td>{i.windows_flagged}</td><td>{i.first_flagged:%Y-%m-%d}</td><td>{i.peak:.3g}</td>"
        f"<td>{i.latest:.3g}</td></tr>"
        for i in digest.items
    )
    incidents = "".join(
        f"<li>{escape(i.rule)}: {escape(i.metric)} {escape(i.feature)} [{escape(i.segment)}] "
        f"since {i.evidence_start:%Y-%m-%d}</li>"
        for i in digest.incidents
    )
    return (
        f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{escape(digest.subject)}"
        "</title></head><body style='font-family:sans-serif'>"
        f"<h1>{escape(digest.subject)}</h1>"
        "<table border='1' cellpadding='4' style='border-collapse:collapse'><tr><th>feature</th>"
        "<th>segment</th><th>metric</th><th>flagged windows</th><th>since</th><th>peak</th>"
        f"<th>latest</th></tr>{rows}</table>"
        + (f"<h2>Digest incidents</h2><ul>{incidents}</ul>" if incidents else "")
        + "</body></html>"
    )
