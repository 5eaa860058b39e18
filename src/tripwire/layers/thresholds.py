"""Default verdicts for each canonical metric, until an alert rule says otherwise.

PSI follows the industry rule of thumb (DESIGN.md): below 0.1 stable, 0.1 to 0.25 watch, above
0.25 investigate. The others are set to agree with it on a mean shift of about 0.3 and 0.5
reference standard deviations (KS 0.1/0.2, JS 0.13/0.2, normed Wasserstein 0.3/0.5), or are
changes relative to the reference window (shares, rates, percentiles, performance).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from tripwire.layers.rows import Status

Basis = Literal["absolute", "delta", "ratio"]
Direction = Literal["above", "below", "both"]


@dataclass(frozen=True)
class Threshold:
    """``watch`` and ``alert`` levels on the value itself (absolute), on its difference from
    the reference value (delta) or on its relative change from the reference value (ratio)."""

    watch: float
    alert: float
    basis: Basis = "absolute"
    direction: Direction = "above"

    def verdict(self, value: float, reference: float | None = None) -> tuple[Status, float | None]:
        """The status of ``value`` and the value at which it would alert."""
        if self.basis != "absolute" and (reference is None or reference != reference):
            return "info", None
        base = 0.0 if self.basis == "absolute" else reference or 0.0

        def level(x: float, sign: int) -> float:
            return base + sign * (x * abs(base) if self.basis == "ratio" else x)

        signs = {"above": (1,), "below": (-1,), "both": (1, -1)}[self.direction]
        status: Status = "ok"
        for sign in signs:
            if sign * (value - level(self.alert, sign)) > 0:
                return "alert", level(self.alert, sign)
            if sign * (value - level(self.watch, sign)) > 0:
                status = "watch"
        return status, level(self.alert, signs[0])


DEFAULTS: dict[str, Threshold] = {
    "psi": Threshold(0.1, 0.25),
    "ks": Threshold(0.1, 0.2),
    "js": Threshold(0.13, 0.2),
    "wasserstein_norm": Threshold(0.3, 0.5),
    "null_share": Threshold(0.02, 0.05, "delta"),
    "out_of_range_share": Threshold(0.01, 0.05),
    "unseen_share": Threshold(0.01, 0.05),
    "score_psi": Threshold(0.1, 0.25),
    "mean_pred": Threshold(0.2, 0.5, "ratio", "both"),
    "positive_rate": Threshold(0.2, 0.5, "ratio", "both"),
    "auc": Threshold(0.02, 0.05, "delta", "below"),
    "precision": Threshold(0.05, 0.1, "delta", "below"),
    "recall": Threshold(0.05, 0.1, "delta", "below"),
    "f1": Threshold(0.05, 0.1, "delta", "below"),
    "accuracy": Threshold(0.02, 0.05, "delta", "below"),
    "log_loss": Threshold(0.1, 0.25, "ratio"),
    "brier": Threshold(0.1, 0.25, "ratio"),
    "ece": Threshold(0.02, 0.05, "delta"),
    "r2": Threshold(0.05, 0.1, "delta", "below"),
    "mae": Threshold(0.1, 0.25, "ratio"),
    "rmse": Threshold(0.1, 0.25, "ratio"),
    "p50_ms": Threshold(0.2, 0.5, "ratio"),
    "p95_ms": Threshold(0.2, 0.5, "ratio"),
    "p99_ms": Threshold(0.2, 0.5, "ratio"),
    "error_rate": Threshold(0.01, 0.05, "delta"),
    "cost_per_1k": Threshold(0.2, 0.5, "ratio"),
}


def judge(metric: str, value: float, reference: float | None = None) -> tuple[Status, float | None]:
    """Status and alert level of a metric value under the defaults; ``info`` when there are none.

    >>> judge("psi", 0.3)
    ('alert', 0.25)
    >>> judge("null_share", 0.03, reference=0.0)
    ('watch', 0.05)
    """
    if value != value:  # NaN
        return "no_data", None
    rule = DEFAULTS.get(metric)
    return ("info", None) if rule is None else rule.verdict(value, reference)
