"""The performance layer: realized metrics on the labelled rows of a window."""

from __future__ import annotations

from tripwire.config import PerformanceSettings
from tripwire.layers._rows import compare
from tripwire.layers.intervals import performance_intervals
from tripwire.layers.rows import MetricRow
from tripwire.profile.multiclass import MulticlassPerformance
from tripwire.profile.outputs import BinaryPerformance, auc_from_profile
from tripwire.profile.window import SegmentWindow
from tripwire.stats.intervals import z_for


def withheld_for_labels(n_labelled: int, n_rows: int, settings: PerformanceSettings) -> str | None:
    """Why a window's performance gets no verdict yet, or None when its labels suffice.

    >>> withheld_for_labels(150, 1000, PerformanceSettings(min_labels=100, min_coverage=0.3))
    '150 of 1000 rows labelled (15.0 %); a verdict needs 100 labelled rows and 30 % coverage'
    """
    coverage = n_labelled / n_rows if n_rows else 0.0
    if n_labelled >= settings.min_labels and coverage >= settings.min_coverage:
        return None
    return (
        f"{n_labelled} of {n_rows} rows labelled ({100 * coverage:.1f} %); a verdict needs "
        f"{settings.min_labels} labelled rows and {100 * settings.min_coverage:g} % coverage"
    )


def performance_rows(
    reference: SegmentWindow,
    current: SegmentWindow,
    segment: str,
    settings: PerformanceSettings,
) -> list[MetricRow]:
    """Metrics against the reference's own performance, plus ``label_coverage`` and, where
    label times are known, the label lag (median and 90th percentile, in hours).

    Every row carries the window's label coverage; ``n`` is the labelled rows behind it. Below
    ``settings.min_labels`` labelled rows or ``settings.min_coverage`` of the window labelled,
    the values are shown with status ``insufficient_labels``. Metrics with an analytic
    interval (see :mod:`tripwire.layers.intervals`) carry it and alert only when all of it is
    past the alert level.
    """
    if current.performance is None:
        return []
    cur = current.performance
    coverage = current.n_labelled / current.n_rows if current.n_rows else float("nan")
    rows = compare(
        "performance",
        {"label_coverage": coverage},
        {},
        segment,
        current.n_rows,
        coverage=coverage,
    )
    lag = current.label_lag
    if lag is not None and lag.n:
        hours = {f"label_lag_p{q}_hours": lag.quantile(q / 100) / 3600 for q in (50, 90)}
        rows += compare("performance", hours, {}, segment, lag.n, coverage=coverage)
    bounds = {}
    if isinstance(cur, BinaryPerformance):
        bounds["auc"] = auc_from_profile(cur.positives, cur.negatives)[1]
    elif isinstance(cur, MulticlassPerformance):
        bounds["auc"] = cur.auc_bound()
    reference_values = reference.performance.metrics() if reference.performance else {}
    rows += compare(
        "performance",
        cur.metrics(),
        reference_values,
        segment,
        current.n_labelled,
        bounds=bounds,
        withheld=withheld_for_labels(current.n_labelled, current.n_rows, settings),
        withheld_status="insufficient_labels",
        intervals=performance_intervals(cur, z_for(settings.confidence)),
        coverage=coverage,
    )
    return rows
