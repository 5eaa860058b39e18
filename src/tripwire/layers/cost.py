"""The cost and latency layer: serving percentiles, error rate and cost per 1,000 predictions."""

from __future__ import annotations

from tripwire.layers._rows import compare
from tripwire.layers.rows import MetricRow
from tripwire.profile.outputs import CostWindow
from tripwire.profile.window import SegmentWindow


def _summary(window: CostWindow) -> dict[str, float]:
    out: dict[str, float] = {}
    if window.latency is not None:
        for q, name in ((0.5, "p50_ms"), (0.95, "p95_ms"), (0.99, "p99_ms")):
            out[name] = window.latency.quantile(q)
    if window.n_status:
        out["error_rate"] = window.n_error / window.n_status
    if window.n_cost:
        out["cost_per_1k"] = 1000 * window.cost_sum / window.n_cost
    return out


def cost_rows(reference: SegmentWindow, current: SegmentWindow, segment: str) -> list[MetricRow]:
    """Latency percentiles come from a sketch with 0.5 % relative error (see quantile_sketch)."""
    if current.cost is None:
        return []
    ref = _summary(reference.cost) if reference.cost else {}
    return compare("cost", _summary(current.cost), ref, segment, current.n_rows)
