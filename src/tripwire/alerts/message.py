"""What a channel delivers: one incident event, with everything an on-call person needs."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict

from tripwire.config import Runbook, Severity


class AlertMessage(BaseModel):
    """An incident opened (``firing``) or resolved (``resolved``).

    ``dedup_key`` is stable for the incident's lifetime (model, rule, feature, segment and the
    window it opened in), so PagerDuty and Alertmanager can match a resolve to its trigger and a
    redelivered message is recognised as the same event.
    """

    model_config = ConfigDict(frozen=True)

    event: Literal["firing", "resolved"]
    dedup_key: str
    model: str
    rule: str
    severity: Severity
    metric: str
    feature: str | None
    segment: str
    value: float | None  # the latest value in the evidence window
    threshold: float | None
    direction: Literal["above", "below", "both"]
    evidence_start: datetime  # first window of the breach streak
    evidence_end: datetime  # end of the latest window seen
    opened_at: datetime
    resolved_at: datetime | None = None
    # When tripwire first raised the incident: the job's clock as it found it, which a late
    # job run or a backfill puts well after the evidence.
    raised_at: datetime | None = None
    # When the next evaluation is due. Receivers that expire alerts unless refreshed
    # (Alertmanager) keep a firing alert active until then.
    expires_at: datetime | None = None
    runbook: Runbook
    owner: str | None = None
    route: str

    @property
    def summary(self) -> str:
        """One line: ``[page] fraud: psi on amount (all) = 0.31, above 0.25``."""
        where = f" on {self.feature}" if self.feature else ""
        value = "—" if self.value is None else f"{self.value:.4g}"
        limit = "" if self.threshold is None else f", {self.direction} {self.threshold:.4g}"
        state = "RESOLVED " if self.event == "resolved" else ""
        return (
            f"{state}[{self.severity}] {self.model}: {self.metric}{where} ({self.segment}) = "
            f"{value}{limit}"
        )
