"""The performance layer: realized metrics on the labelled rows of a window."""

from __future__ import annotations

from tripwire.layers._rows import compare
from tripwire.layers.rows import MetricRow
from tripwire.profile.outputs import BinaryPerformance, auc_from_profile
from tripwire.profile.window import SegmentWindow


def performance_rows(
    reference: SegmentWindow, current: SegmentWindow, segment: str, min_labels: int
) -> list[MetricRow]:
    """Metrics against the reference's own performance, plus ``label_coverage`` and, where
    label times are known, the label lag (median and 90th percentile, in hours).

    Below ``min_labels`` labelled rows the values are shown without a verdict.
    """
    if current.performance is None:
        return []
    cur = current.performance
    coverage = current.n_labelled / current.n_rows if current.n_rows else float("nan")
    rows = compare("performance", {"label_coverage": coverage}, {}, segment, current.n_rows)
    lag = current.label_lag
    if lag is not None and lag.n:
        hours = {f"label_lag_p{q}_hours": lag.quantile(q / 100) / 3600 for q in (50, 90)}
        rows += compare("performance", hours, {}, segment, lag.n)
    withheld = None
    if current.n_labelled < min_labels:
        withheld = f"{current.n_labelled} labelled rows, a verdict needs {min_labels}"
    bounds = {}
    if isinstance(cur, BinaryPerformance):
        bounds["auc"] = auc_from_profile(cur.positives, cur.negatives)[1]
    reference_values = reference.performance.metrics() if reference.performance else {}
    rows += compare(
        "performance",
        cur.metrics(),
        reference_values,
        segment,
        current.n_labelled,
        bounds=bounds,
        withheld=withheld,
    )
    return rows
