"""What the demo found: for each of the scenario's injected incidents, the day tripwire opened
an incident for it, with its severity, route and evidence.

The new users' decay (c) is seen three ways, each on its own day: by the share of transactions
sent to manual review (a proxy) and by estimated performance, both the day the scores move,
and by realized performance once labels land, a label lag later. Its finding lists the three
as signals, and is first flagged on the earliest.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass

from tripwire.alerts.engine import Incident
from tripwire.demo.run import DemoDay

NEW_USERS = "user_type=new"


@dataclass(frozen=True)
class Signal:
    """One rule's view of an incident: the day it first opened an incident, and its evidence."""

    name: str
    first_flagged: dt.date | None
    evidence: str


@dataclass(frozen=True)
class Finding:
    incident: str
    first_flagged: dt.date | None
    evidence: str
    signals: tuple[Signal, ...] = ()  # for an incident seen by several rules


Pick = Callable[[DemoDay], list[Incident]]


def _opened(rule: str, **where: str) -> Pick:
    def pick(day: DemoDay) -> list[Incident]:
        return [
            i
            for i in day.opened
            if i.rule == rule and all(getattr(i, k) == v for k, v in where.items())
        ]

    return pick


def _first(days: list[DemoDay], pick: Pick) -> tuple[dt.date, str] | None:
    """The first day ``pick`` finds an opened incident, and that incident's evidence."""
    hit = next(((d, i) for d in days for i in pick(d)), None)
    if hit is None:
        return None
    day, incident = hit
    value = "—" if incident.value is None else f"{incident.value:.3g}"
    where = f" on {incident.feature}" if incident.feature else ""
    segment = f" in {incident.segment}" if incident.segment != "all" else ""
    return day.date, (
        f"{incident.severity} → {incident.route}: {incident.metric}{where}{segment} = "
        f"{value}, evidence from {incident.evidence_start:%Y-%m-%d}"
    )


# The rules that see the new users' decay: (signal, rule), early ones first.
DECAY_SIGNALS = (
    ("proxy", "manual_review_jump"),
    ("estimated", "segment_estimated_performance"),
    ("realized", "segment_performance"),
)
EARLY = ("proxy", "estimated")


def _decay(days: list[DemoDay]) -> Finding:
    name = "(c) decay for new users (estimated and proxy first, realized once labels land)"
    signals = []
    for signal, rule in DECAY_SIGNALS:
        found = _first(days, _opened(rule, segment=NEW_USERS))
        signals.append(Signal(signal, *(found or (None, "not flagged"))))
    early = [s for s in signals if s.name in EARLY and s.first_flagged is not None]
    realized = signals[-1]
    if not early and realized.first_flagged is None:
        return Finding(name, None, "not flagged", tuple(signals))
    first = min(early, key=lambda s: s.first_flagged or dt.date.max, default=realized)
    summary = ", ".join(
        f"{s.name} on {s.first_flagged:%Y-%m-%d}" if s.first_flagged else f"{s.name} not flagged"
        for s in signals
    )
    return Finding(name, first.first_flagged, summary, tuple(signals))


def findings(days: list[DemoDay]) -> list[Finding]:
    """For each injected incident, the day tripwire opened an incident for it, and where."""
    checks: list[tuple[str, Pick]] = [
        (
            "(a) pipeline breakage, nulls in merchant_risk",
            _opened("null_share_top_features", feature="merchant_risk"),
        ),
        (
            "(b) population shift in distance_km (3 days' persistence)",
            _opened("psi_top_feature_drift", feature="distance_km"),
        ),
        ("(d) p95 latency regression", _opened("latency_p95")),
        (
            "(e) benign spike in session_jitter (low importance: digest, not page)",
            _opened("drift_digest", feature="session_jitter"),
        ),
    ]
    out = []
    for name, pick in checks:
        found = _first(days, pick)
        out.append(Finding(name, *(found or (None, "not flagged"))))
    out.insert(2, _decay(days))
    return out
