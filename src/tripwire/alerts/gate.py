"""The retraining gate: retrain on a combined signal, never on drift alone.

Retraining on drift alone burns money; on performance alone it chases label noise when labels
are late. The gate looks at the incidents open now:

========================  ======================  ==========================================
drift on important         performance drop        decision
features or predictions
========================  ======================  ==========================================
yes                        yes                     ``retrain``
no                         yes                     ``retrain`` if labels are timely (lag < 7
                                                   days), else ``investigate``
yes                        no                      ``investigate``
no                         no                      ``hold``
========================  ======================  ==========================================

Exit codes let a pipeline act on it: hold 0, investigate 10, retrain 20.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from typing import Literal

from tripwire.alerts.engine import Incident
from tripwire.config import ModelConfig
from tripwire.importance import top_quartile
from tripwire.layers.catalog import CATALOG

Decision = Literal["hold", "investigate", "retrain"]
EXIT_CODES: dict[Decision, int] = {"hold": 0, "investigate": 10, "retrain": 20}
TIMELY_LABELS = timedelta(days=7)


@dataclass(frozen=True)
class GateResult:
    decision: Decision
    reasons: list[str]
    drift: list[Incident] = field(default_factory=list)
    performance: list[Incident] = field(default_factory=list)

    @property
    def exit_code(self) -> int:
        return EXIT_CODES[self.decision]


def decide(
    config: ModelConfig, incidents: list[Incident], importance: dict[str, float]
) -> GateResult:
    """The decision from the open incidents, with the evidence behind it."""
    important = set(top_quartile(importance)) if importance else set(config.columns.features)
    open_now = [i for i in incidents if i.is_open]
    drift = [
        i
        for i in open_now
        if CATALOG[i.metric].layer == "predictions"
        or (CATALOG[i.metric].layer == "inputs" and i.feature in important)
    ]
    performance = [i for i in open_now if CATALOG[i.metric].layer == "performance"]
    late = config.label_lag >= TIMELY_LABELS
    reasons = [
        *(f"drift: {_describe(i)}" for i in drift),
        *(f"performance: {_describe(i)}" for i in performance),
    ]
    decision: Decision
    if drift and performance:
        decision = "retrain"
        reasons.append("drift on important inputs or predictions AND a measured performance drop")
    elif performance and not late:
        decision = "retrain"
        reasons.append(f"performance dropped and labels are timely (lag {config.label_lag})")
    elif performance:
        decision = "investigate"
        reasons.append(
            f"labels lag {config.label_lag}: performance alone is not enough without drift"
        )
    elif drift:
        decision = "investigate"
        reasons.append("drift alone never justifies retraining; no performance drop is measured")
    else:
        decision = "hold"
        reasons.append("no open drift or performance incident")
    return GateResult(decision, reasons, drift, performance)


def _describe(incident: Incident) -> str:
    where = f" on {incident.feature}" if incident.feature else ""
    value = "—" if incident.value is None else f"{incident.value:.4g}"
    return (
        f"{incident.rule}: {incident.metric}{where} [{incident.segment}] = {value} since "
        f"{incident.evidence_start:%Y-%m-%d}"
    )
