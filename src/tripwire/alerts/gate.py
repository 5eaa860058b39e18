"""The retraining gate: retrain on a combined signal, never on drift alone.

Retraining on drift alone burns money; on performance alone it chases label noise when labels
are late. The gate looks at the incidents open now and sorts them into

* **drift**: inputs (important features) or predictions;
* **a measurable drop**: realized performance (once labels arrive), a proxy metric
  (``proxy_<name>``: blocked share, review rate, short-horizon engagement; hours, not weeks)
  or estimated performance (``estimated_<metric>``, without labels);
* label-pipeline evidence (``label_coverage``, label lag), which is listed but is no drop.

========================  ==========================  ======================================
drift on important         measurable drop             decision
features or predictions
========================  ==========================  ======================================
yes                        realized, proxy, estimated  ``retrain``
no                         realized                    ``retrain`` if labels are timely (lag
                                                       < 7 days), else ``investigate``
no                         proxy or estimated only     ``investigate``
yes                        none                        ``investigate``
no                         none                        ``hold``
========================  ==========================  ======================================

With labels 7 days late or more, drift is the leading indicator and realized performance the
lagging confirmation: a drop on a proxy or on estimated performance is what can confirm drift
in time, and realized performance alone never retrains.

Exit codes let a pipeline act on it: hold 0, investigate 10, retrain 20.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from typing import Literal

from tripwire.alerts.engine import Incident
from tripwire.config import ModelConfig
from tripwire.importance import top_quartile
from tripwire.layers.catalog import CATALOG, ESTIMATED_PREFIX, is_proxy

Decision = Literal["hold", "investigate", "retrain"]
Kind = Literal["drift", "realized", "proxy", "estimated", "labels"]
EXIT_CODES: dict[Decision, int] = {"hold": 0, "investigate": 10, "retrain": 20}
TIMELY_LABELS = timedelta(days=7)
LABEL_PIPELINE = ("label_coverage", "label_lag_p50_hours", "label_lag_p90_hours")


@dataclass(frozen=True)
class GateResult:
    decision: Decision
    reasons: list[str]
    drift: list[Incident] = field(default_factory=list)
    # Every measurable drop: realized performance, proxies and estimated performance.
    performance: list[Incident] = field(default_factory=list)

    @property
    def exit_code(self) -> int:
        return EXIT_CODES[self.decision]


def kind_of(incident: Incident, important: set[str]) -> Kind | None:
    """What an incident tells the gate; None for what it does not weigh (cost, unimportant
    features)."""
    metric = incident.metric
    if is_proxy(metric):
        return "proxy"
    if metric.startswith(ESTIMATED_PREFIX):
        return "estimated"
    if metric in LABEL_PIPELINE:
        return "labels"
    layer = CATALOG[metric].layer if metric in CATALOG else None
    if layer == "predictions" or (layer == "inputs" and incident.feature in important):
        return "drift"
    return "realized" if layer == "performance" else None


def decide(
    config: ModelConfig, incidents: list[Incident], importance: dict[str, float]
) -> GateResult:
    """The decision from the open incidents, with the evidence behind it."""
    important = set(top_quartile(importance)) if importance else set(config.columns.features)
    by_kind: dict[Kind, list[Incident]] = {}
    for incident in incidents:
        kind = kind_of(incident, important)
        if incident.is_open and kind is not None:
            by_kind.setdefault(kind, []).append(incident)
    drift = by_kind.get("drift", [])
    realized = by_kind.get("realized", [])
    early = [*by_kind.get("proxy", []), *by_kind.get("estimated", [])]
    late = config.label_lag >= TIMELY_LABELS
    titles = {"realized": "performance", "estimated": "estimated performance"}
    reasons = [
        f"{titles.get(kind, kind)}: {_describe(i)}"
        for kind in ("drift", "realized", "proxy", "estimated", "labels")
        for i in by_kind.get(kind, [])
    ]
    decision: Decision
    if drift and (realized or early):
        decision = "retrain"
        what = "realized performance" if realized else "a proxy or estimated performance"
        reasons.append(f"drift on important inputs or predictions AND a drop on {what}")
    elif realized and not late:
        decision = "retrain"
        reasons.append(f"performance dropped and labels are timely (lag {config.label_lag})")
    elif realized:
        decision = "investigate"
        reasons.append(
            f"labels lag {config.label_lag}: performance alone is not enough without drift"
        )
    elif early:
        decision = "investigate"
        reasons.append(
            "a proxy or estimated performance dropped without drift on important inputs or "
            "predictions; not enough to retrain"
        )
    elif drift:
        decision = "investigate"
        reasons.append(
            "drift alone never justifies retraining; no drop on realized performance, a proxy "
            "or estimated performance"
        )
    else:
        decision = "hold"
        reasons.append("no open drift or performance incident")
    return GateResult(decision, reasons, drift, [*realized, *early])


def _describe(incident: Incident) -> str:
    where = f" on {incident.feature}" if incident.feature else ""
    value = "—" if incident.value is None else f"{incident.value:.4g}"
    return (
        f"{incident.rule}: {incident.metric}{where} [{incident.segment}] = {value} since "
        f"{incident.evidence_start:%Y-%m-%d}"
    )
