"""Building rows for the output layers, where each metric compares with one reference value."""

from __future__ import annotations

from tripwire.layers.intervals import past_threshold
from tripwire.layers.rows import Layer, MetricRow, Status
from tripwire.layers.thresholds import Threshold, judge
from tripwire.stats.intervals import Interval


def compare(
    layer: Layer,
    current: dict[str, float],
    reference: dict[str, float],
    segment: str,
    n: int,
    *,
    bounds: dict[str, float] | None = None,
    withheld: str | None = None,
    withheld_status: Status = "no_data",
    intervals: dict[str, Interval] | None = None,
    thresholds: dict[str, Threshold] | None = None,
    coverage: float | None = None,
) -> list[MetricRow]:
    """One row per metric, judged against the reference's value of the same metric.

    With ``withheld`` (e.g. too few labelled rows) values are shown but no verdict is given:
    the status is ``withheld_status`` and ``withheld`` the reason. With ``intervals``, a metric
    whose interval reaches back over its alert level is at ``watch``, not ``alert``.
    ``thresholds`` replace the defaults for the metrics they name (e.g. proxies).
    """
    rows = []
    for metric, value in current.items():
        ref = reference.get(metric)
        rule = (thresholds or {}).get(metric)
        status, threshold = (
            rule.verdict(value, ref) if rule and value == value else judge(metric, value, ref)
        )
        interval = (intervals or {}).get(metric)
        reason = None
        if withheld and status != "info":
            status, reason = withheld_status, withheld
        elif value != value:
            reason = "not defined for this window"
        elif (
            status == "alert"
            and threshold is not None
            and interval is not None
            and not past_threshold(value, threshold, interval)
        ):
            status = "watch"
            reason = (
                f"past the alert level {threshold:.4g}, but its interval "
                f"[{interval[0]:.4g}, {interval[1]:.4g}] reaches back over it"
            )
        rows.append(
            MetricRow(
                layer=layer,
                metric=metric,
                segment=segment,
                value=value,
                status=status,
                threshold=threshold,
                reason=reason,
                n=n,
                bound=(bounds or {}).get(metric),
                reference=ref,
                ci_low=interval[0] if interval else None,
                ci_high=interval[1] if interval else None,
                coverage=coverage,
            )
        )
    return rows
