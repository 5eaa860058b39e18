"""Building rows for the output layers, where each metric compares with one reference value."""

from __future__ import annotations

from tripwire.layers.rows import Layer, MetricRow
from tripwire.layers.thresholds import judge


def compare(
    layer: Layer,
    current: dict[str, float],
    reference: dict[str, float],
    segment: str,
    n: int,
    *,
    bounds: dict[str, float] | None = None,
    withheld: str | None = None,
) -> list[MetricRow]:
    """One row per metric, judged against the reference's value of the same metric.

    With ``withheld`` (e.g. too few labelled rows) values are shown but no verdict is given.
    """
    rows = []
    for metric, value in current.items():
        status, threshold = judge(metric, value, reference.get(metric))
        reason = None
        if value != value:
            reason = withheld or "not defined for this window"
        elif withheld and status != "info":
            status, reason = "no_data", withheld
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
                reference=reference.get(metric),
            )
        )
    return rows
