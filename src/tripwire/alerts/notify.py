"""Which incidents to announce, as :class:`AlertMessage`: the bridge from history to people."""

from __future__ import annotations

from datetime import datetime, timedelta

from tripwire.alerts.channels import DeliveryError, send
from tripwire.alerts.engine import Incident, direction_of
from tripwire.alerts.message import AlertMessage
from tripwire.config import ModelConfig, Runbook


def message(
    config: ModelConfig,
    incident: Incident,
    window: timedelta,
    event: str,
    expires_at: datetime | None = None,
) -> AlertMessage:
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
        direction=direction_of(rule),  # type: ignore[arg-type]
        evidence_start=incident.evidence_start,
        evidence_end=incident.last_breach_at + window,
        opened_at=incident.opened_at,
        resolved_at=incident.resolved_at if event == "resolved" else None,
        raised_at=incident.detected_at,
        expires_at=expires_at,
        runbook=runbook,
        owner=rule.owner,
        route=incident.route,
    )


def expiry(latest: datetime, window: timedelta) -> datetime:
    """When a firing alert stops being current unless re-posted: the end of the window after
    the next one, so one late or failed job run does not resolve it."""
    return latest + 3 * window


def refresh_expiring(
    config: ModelConfig, incidents: list[Incident], latest: datetime, window: timedelta
) -> list[str]:
    """Re-post open incidents to channels that expire alerts (Alertmanager), outside the
    outbox: re-posting the same alert is what Alertmanager expects. Returns the failures."""
    failures = []
    for incident in incidents:
        channels = [c for c in config.routes[incident.route] if c.type == "alertmanager"]
        if not incident.is_open or not channels:
            continue
        firing = message(config, incident, window, "firing", expiry(latest, window))
        for channel in channels:
            try:
                send(channel, firing)
            except DeliveryError as exc:
                failures.append(str(exc))
    return failures


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
    expires = expiry(latest, window)
    out = []
    for incident in incidents:
        if incident.is_open:
            out.append(message(config, incident, window, "firing", expires))
        elif incident.dedup_key in fired:
            assert incident.resolved_at is not None
            if latest >= incident.resolved_at + window * cooldowns[incident.rule]:
                out.append(message(config, incident, window, "resolved"))
    return out
