"""Which incidents to announce, as :class:`AlertMessage`: the bridge from history to people."""

from __future__ import annotations

from datetime import datetime, timedelta

from tripwire.alerts.engine import Incident, _direction
from tripwire.alerts.message import AlertMessage
from tripwire.config import ModelConfig, Runbook


def message(config: ModelConfig, incident: Incident, window: timedelta, event: str) -> AlertMessage:
    rule = next(r for r in config.alerts if r.name == incident.rule)
    runbook = rule.resolve_runbook() or Runbook(
        what_it_means="", what_to_check="", who_owns_the_fix=""
    )
    return AlertMessage(
        event=event,  # type: ignore[arg-type]
        dedup_key=incident.dedup_key,
        model=incident.model,
        rule=incident.rule,
        severity=rule.severity,
        metric=incident.metric,
        feature=incident.feature or None,
        segment=incident.segment,
        value=incident.value,
        threshold=incident.threshold,
        direction=_direction(rule),  # type: ignore[arg-type]
        evidence_start=incident.evidence_start,
        evidence_end=incident.last_breach_at + window,
        opened_at=incident.opened_at,
        resolved_at=incident.resolved_at if event == "resolved" else None,
        runbook=runbook,
        owner=rule.owner,
        route=incident.route,
    )


def announcements(
    config: ModelConfig,
    incidents: list[Incident],
    latest: datetime,
    window: timedelta,
    fired: set[str],
) -> list[AlertMessage]:
    """Messages owed now: ``firing`` for every incident open in the latest window, and
    ``resolved`` for an announced incident once it has stayed clean through its cooldown.

    Incidents that opened and resolved before anyone could be told (a backfill of old history)
    are not announced; a resolution is held back for the cooldown so that a flapping series
    re-breaching inside it stays one incident and pages once. The outbox drops repeats, so
    announcing the same incident on every run is harmless.
    """
    cooldowns = {r.name: 2 * r.resolve_after for r in config.alerts}
    out = []
    for incident in incidents:
        if incident.is_open:
            out.append(message(config, incident, window, "firing"))
        elif incident.dedup_key in fired:
            assert incident.resolved_at is not None
            if latest >= incident.resolved_at + window * cooldowns[incident.rule]:
                out.append(message(config, incident, window, "resolved"))
    return out
