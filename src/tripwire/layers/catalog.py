"""Every canonical metric: its layer, whether it is per feature, and which way is bad.

Alert rules refer to these names; ``tripwire rules check`` rejects any other.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from tripwire.layers.rows import Layer

Bad = Literal["above", "below", "both"]


@dataclass(frozen=True)
class MetricInfo:
    layer: Layer
    per_feature: bool
    bad: Bad  # the direction in which the metric gets worse


def _all(layer: Layer, per_feature: bool, bad: Bad, *names: str) -> dict[str, MetricInfo]:
    return {name: MetricInfo(layer, per_feature, bad) for name in names}


CATALOG: dict[str, MetricInfo] = {
    **_all(
        "inputs",
        True,
        "above",
        "psi",
        "ks",
        "js",
        "wasserstein",
        "wasserstein_norm",
        "null_share",
        "out_of_range_share",
        "unseen_share",
        "schema",
    ),
    **_all("inputs", True, "below", "chi2_pvalue"),
    **_all("predictions", False, "above", "score_psi"),
    **_all("predictions", False, "both", "mean_pred", "positive_rate", "entropy"),
    **_all(
        "performance",
        False,
        "below",
        "auc",
        "precision",
        "recall",
        "f1",
        "accuracy",
        "r2",
        "label_coverage",
    ),
    **_all(
        "performance",
        False,
        "above",
        "log_loss",
        "brier",
        "ece",
        "mae",
        "rmse",
        "label_lag_p50_hours",
        "label_lag_p90_hours",
    ),
    **_all("cost", False, "above", "p50_ms", "p95_ms", "p99_ms", "error_rate", "cost_per_1k"),
}
