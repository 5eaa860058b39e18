"""Replay stored history through changed rules, with the production code path, sending nothing."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

import pyarrow as pa

from tripwire.alerts.engine import Incident, evaluate
from tripwire.config import ModelConfig


def _key(incident: Incident) -> tuple[str, str, str, datetime]:
    return (incident.rule, incident.feature, incident.segment, incident.evidence_start)


@dataclass(frozen=True)
class Backtest:
    """Incidents under the current and the proposed rules over the same windows, and the diff."""

    windows: list[datetime]
    current: list[Incident]
    proposed: list[Incident]

    @property
    def added(self) -> list[Incident]:
        """Incidents the proposed rules raise that the current ones do not."""
        before = {_key(i) for i in self.current}
        return [i for i in self.proposed if _key(i) not in before]

    @property
    def removed(self) -> list[Incident]:
        """Incidents the current rules raise that the proposed ones would not."""
        after = {_key(i) for i in self.proposed}
        return [i for i in self.current if _key(i) not in after]

    def per_rule(self) -> dict[str, int]:
        """Incidents per proposed rule (rules that raise none included)."""
        counts = {i.rule: 0 for i in self.proposed}
        for incident in self.proposed:
            counts[incident.rule] += 1
        return counts


def backtest(
    current: ModelConfig,
    proposed: ModelConfig,
    history: pa.Table,
    windows: list[datetime],
    window: timedelta,
    importance: dict[str, float],
    calibrated: dict[tuple[str, str, str], float],
) -> Backtest:
    """Evaluate both rule sets over ``windows`` exactly as the monitoring job would."""
    return Backtest(
        windows=windows,
        current=evaluate(current, history, windows, window, importance, calibrated),
        proposed=evaluate(proposed, history, windows, window, importance, calibrated),
    )
