"""Estimated performance as rows of the performance layer, and its error once labels land.

``estimated_<metric>`` (``estimated_auc``, ``estimated_f1``, ... for a classifier,
``estimated_mae`` and ``estimated_rmse`` for a regression model) is the estimate of the window's
realized ``<metric>`` made without its labels (see :mod:`tripwire.profile.estimated`). It is
judged like the realized metric (the same default levels, against the reference's estimated
value of it), on every window from the first hour on, and alerts only when its whole interval,
``value ± z * standard error``, is past the alert level. The standard error is the spread of
the realized metric around the estimate that the labels' randomness alone would give, if the
assumptions hold: no concept drift, calibration learnt on the reference, no shift into
regions the reference did not cover.

Once a window's labels suffice for a realized verdict, ``estimation_error_<metric>`` (status
``info``) is the estimate minus the realized value; an error beyond the estimate's interval
says so in its reason, since it means an assumption failed (most often concept drift).
"""

from __future__ import annotations

from tripwire.config import PerformanceSettings
from tripwire.estimation import Estimate
from tripwire.layers._rows import compare
from tripwire.layers.catalog import ESTIMATED_PREFIX
from tripwire.layers.performance import withheld_for_labels
from tripwire.layers.rows import MetricRow
from tripwire.layers.thresholds import DEFAULTS
from tripwire.profile.estimated import RegressionEstimate
from tripwire.profile.window import SegmentWindow
from tripwire.stats.intervals import Interval, z_for

ERROR_PREFIX = "estimation_error_"
# Above this share of the window's scores outside the reference's range, estimated rows say
# that the estimate extrapolates.
OUT_OF_RANGE_NOTE = 0.01

ASSUMPTIONS = (
    "No concept drift: the chance of each outcome given the model's score (or the loss given "
    "its inputs) is what it was on the reference; a change in which scores occur (covariate "
    "shift) is what the estimate follows.",
    "Calibration: the map from score to probability (or the loss model) learnt on the "
    "reference's labelled rows holds in production.",
    "No shift into unseen regions: scores outside the reference's range get the probability "
    "of its nearest end, so the estimate extrapolates there.",
)


def _intervals(estimate: Estimate, z: float, probabilities: bool) -> dict[str, Interval]:
    out = {}
    for metric, value in estimate.values.items():
        half = z * estimate.standard_errors[metric]
        low, high = max(value - half, 0.0), value + half
        out[ESTIMATED_PREFIX + metric] = (low, min(high, 1.0) if probabilities else high)
    return out


def out_of_range_share(window: SegmentWindow) -> float:
    """The share of the window's scores (a multiclass model's top class probability, a
    regression model's prediction) outside the reference's range (NaN without scores)."""
    if window.prediction is None or not window.prediction.scores.n:
        return float("nan")
    cells = window.prediction.scores.cell_counts
    return float(cells[0] + cells[-1]) / window.prediction.scores.n


def estimated_rows(
    reference: SegmentWindow, current: SegmentWindow, segment: str, settings: PerformanceSettings
) -> list[MetricRow]:
    """``estimated_<metric>`` rows of a window, and ``estimation_error_<metric>`` where its
    labels suffice for a realized verdict; none without an estimation (a reference without
    labels)."""
    if current.estimated is None:
        return []
    z = z_for(settings.confidence)
    estimate, bound = current.estimated.estimate()
    reference_values = {}
    if reference.estimated is not None:
        found, _ = reference.estimated.estimate()
        reference_values = {ESTIMATED_PREFIX + m: v for m, v in found.values.items()}
    names = {ESTIMATED_PREFIX + m: m for m in estimate.values}
    rows = compare(
        "performance",
        {ESTIMATED_PREFIX + m: v for m, v in estimate.values.items()},
        reference_values,
        segment,
        estimate.n_rows,
        bounds={ESTIMATED_PREFIX + "auc": bound} if bound == bound else None,
        intervals=_intervals(estimate, z, not isinstance(current.estimated, RegressionEstimate)),
        thresholds={metric: DEFAULTS[m] for metric, m in names.items() if m in DEFAULTS},
    )
    outside = out_of_range_share(current)
    if outside > OUT_OF_RANGE_NOTE:
        note = (
            f"{100 * outside:.1f} % of the window's scores lie outside the reference's range: "
            "the estimate extrapolates there"
        )
        rows = [r if r.reason else r.model_copy(update={"reason": note}) for r in rows]
    return rows + _error_rows(estimate, current, segment, settings, z)


def _error_rows(
    estimate: Estimate,
    current: SegmentWindow,
    segment: str,
    settings: PerformanceSettings,
    z: float,
) -> list[MetricRow]:
    if current.performance is None or withheld_for_labels(
        current.n_labelled, current.n_rows, settings
    ):
        return []
    realized = current.performance.metrics()
    coverage = current.n_labelled / current.n_rows if current.n_rows else None
    rows = []
    for metric, value in estimate.values.items():
        actual = realized.get(metric, float("nan"))
        if value != value or actual != actual:
            continue
        error = value - actual
        reason = f"estimated {value:.4g}, realized {actual:.4g}"
        if abs(error) > z * estimate.standard_errors[metric]:
            reason += (
                "; beyond the estimate's interval: an assumption of the estimate failed "
                "(concept drift, or calibration that no longer holds)"
            )
        rows.append(
            MetricRow(
                layer="performance",
                metric=ERROR_PREFIX + metric,
                segment=segment,
                value=error,
                status="info",
                reason=reason,
                n=current.n_labelled,
                coverage=coverage,
            )
        )
    return rows
