"""What the demo found: for each of the scenario's injected incidents, the day tripwire opened
an incident for it, with its severity, route and evidence."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass

from tripwire.alerts.engine import Incident
from tripwire.demo.run import DemoDay


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
