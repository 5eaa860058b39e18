"""The retraining gate's decision table, on hand-built incidents."""

from __future__ import annotations

from datetime import datetime

import pytest

from tripwire.alerts.engine import Incident
from tripwire.alerts.gate import EXIT_CODES, decide
from tripwire.config import ModelConfig, parse_config

T = datetime(2026, 10, 1)


def config(label_lag: str) -> ModelConfig:
    return parse_config(
        "name: m\ntask: binary\n"
        "columns: {features: {amount: numeric, hour: numeric, country: categorical, "
        "device: categorical}, prediction: p, label: y}\n"
        f"label_lag: {label_lag}\n"
        "importance: {amount: 0.6, hour: 0.05, country: 0.3, device: 0.05}\n"
    )


def incident(metric: str, feature: str = "", resolved: bool = False) -> Incident:
    return Incident(
        dedup_key=f"m/r/{metric}/{feature}",
        model="m",
        rule="r",
        metric=metric,
        feature=feature,
        segment="all",
        severity="page",
        route="console",
        evidence_start=T,
        opened_at=T,
        last_breach_at=T,
        resolved_at=T if resolved else None,
        value=1.0,
        threshold=0.5,
        reopened=0,
    )


IMPORTANCE = {"amount": 0.6, "hour": 0.05, "country": 0.3, "device": 0.05}
DRIFT = incident("psi", "amount")
DROP = incident("auc")


@pytest.mark.parametrize(
    ("lag", "incidents", "expected"),
    [
        ("30d", [DRIFT, DROP], "retrain"),
        ("1d", [DRIFT, DROP], "retrain"),
        ("30d", [DROP], "investigate"),  # late labels: performance alone is not enough
        ("1d", [DROP], "retrain"),  # timely labels: a measured drop is enough
        ("7d", [DROP], "investigate"),  # 7 days counts as late
        ("30d", [DRIFT], "investigate"),  # drift alone never retrains
        ("1d", [DRIFT], "investigate"),
        ("30d", [], "hold"),
        ("30d", [incident("psi", "hour"), DROP], "investigate"),  # drift on an unimportant feature
        ("30d", [incident("score_psi"), DROP], "retrain"),  # prediction drift counts
        ("30d", [incident("psi", "amount", resolved=True), DROP], "investigate"),  # not open
        ("30d", [DRIFT, incident("p95_ms")], "investigate"),  # latency is not performance
    ],
)
def test_decision_table(lag: str, incidents: list[Incident], expected: str) -> None:
    result = decide(config(lag), incidents, IMPORTANCE)
    assert result.decision == expected
    assert result.exit_code == EXIT_CODES[expected]
    assert result.reasons


def test_exit_codes_are_distinct() -> None:
    assert sorted(EXIT_CODES.values()) == [0, 10, 20]


PROXY = incident("proxy_blocked_share")
ESTIMATED = incident("estimated_auc")


@pytest.mark.parametrize(
    ("lag", "incidents", "expected"),
    [
        # Late labels: a proxy or estimated drop is what confirms drift in time.
        ("30d", [DRIFT, PROXY], "retrain"),
        ("30d", [DRIFT, ESTIMATED], "retrain"),
        ("1d", [DRIFT, PROXY], "retrain"),
        # Without drift, a proxy or estimate alone never retrains, timely labels or not.
        ("30d", [PROXY], "investigate"),
        ("1d", [ESTIMATED], "investigate"),
        ("30d", [incident("psi", "hour"), PROXY], "investigate"),
        ("30d", [DRIFT, incident("proxy_blocked_share", resolved=True)], "investigate"),
        # Label coverage or lag is the label pipeline, not a drop in performance.
        ("1d", [incident("label_coverage")], "hold"),
        ("30d", [DRIFT, incident("label_lag_p90_hours")], "investigate"),
    ],
)
def test_proxies_and_estimates_in_the_gate(
    lag: str, incidents: list[Incident], expected: str
) -> None:
    result = decide(config(lag), incidents, IMPORTANCE)
    assert result.decision == expected


def test_gate_names_each_kind_of_evidence() -> None:
    result = decide(config("30d"), [DRIFT, PROXY, ESTIMATED, DROP], IMPORTANCE)
    kinds = [reason.split(":")[0] for reason in result.reasons[:-1]]
    assert kinds == ["drift", "performance", "proxy", "estimated performance"]
    assert result.performance == [DROP, PROXY, ESTIMATED] and result.drift == [DRIFT]
    assert "realized performance" in result.reasons[-1]
