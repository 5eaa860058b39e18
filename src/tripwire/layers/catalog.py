"""Every canonical metric: its layer, whether it is per feature, and which way is bad.

Alert rules refer to these names; ``tripwire rules check`` rejects any other. Proxy metrics
(``proxies:`` in the config) are named ``proxy_<name>``: the catalog knows every such name as
a metric of the performance layer that may move either way, and the config checks that the
name is one it declares.

Estimated performance (without labels, see :mod:`tripwire.layers.estimated`) is named
``estimated_<metric>`` after the realized metric it estimates, which is what the retraining
gate and the dashboard look for. A multiclass model's ``auc``, ``precision``, ``recall`` and
``f1`` are macro averages over its classes (AUC one-vs-rest), and its ``class_psi`` is the PSI of
its predicted class's distribution.
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


PROXY_PREFIX = "proxy_"
ESTIMATED_PREFIX = "estimated_"
# The realized metrics that have an estimated counterpart, by task.
ESTIMATED_CLASSIFICATION = ("auc", "precision", "recall", "f1", "accuracy")
ESTIMATED_REGRESSION = ("mae", "rmse")
PROXY = MetricInfo("performance", False, "both")


class Catalog(dict[str, MetricInfo]):
    """The canonical metrics, plus any ``proxy_<name>`` (see the module's docstring)."""

    def __missing__(self, metric: str) -> MetricInfo:
        if is_proxy(metric):
            return PROXY
        raise KeyError(metric)

    def __contains__(self, metric: object) -> bool:
        return super().__contains__(metric) or (isinstance(metric, str) and is_proxy(metric))


def is_proxy(metric: str) -> bool:
    """Whether ``metric`` names a proxy metric.

    >>> is_proxy("proxy_blocked_share"), is_proxy("auc")
    (True, False)
    """
    return metric.startswith(PROXY_PREFIX) and len(metric) > len(PROXY_PREFIX)


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
    **_all("predictions", False, "above", "score_psi", "class_psi"),
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
    **_all(
        "performance",
        False,
        "below",
        *(ESTIMATED_PREFIX + m for m in ESTIMATED_CLASSIFICATION),
    ),
    **_all("performance", False, "above", *(ESTIMATED_PREFIX + m for m in ESTIMATED_REGRESSION)),
    **_all("cost", False, "above", "p50_ms", "p95_ms", "p99_ms", "error_rate", "cost_per_1k"),
}
# Every proxy_<name> resolves too (see the module's docstring).
CATALOG = Catalog(CATALOG)
