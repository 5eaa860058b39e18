"""Proxy metrics as rows of the performance layer, named ``proxy_<name>``.

A proxy (share of transactions blocked, share sent to manual review, a short-horizon engagement
rate) moves within hours where labels take weeks. Each is judged against the reference's value
of the same proxy — a change of 20 % of it is ``watch``, 50 % ``alert`` — in the proxy's
``direction``, and, like realized performance, alerts only when its confidence interval (Wilson
for a share, normal for a mean) is wholly past the alert level.
"""

from __future__ import annotations

from tripwire.config import ModelConfig, Proxy
from tripwire.layers._rows import compare
from tripwire.layers.rows import MetricRow
from tripwire.layers.thresholds import Threshold
from tripwire.profile.proxies import ProxyWindow
from tripwire.profile.window import SegmentWindow
from tripwire.stats.intervals import Interval, mean_interval, wilson


def proxy_threshold(proxy: Proxy) -> Threshold:
    return Threshold(0.2, 0.5, "ratio", proxy.direction)


def proxy_interval(proxy: Proxy, window: ProxyWindow, z: float) -> Interval:
    if proxy.mean:
        return mean_interval(window.total, window.total_sq, window.n, z)
    return wilson(window.total, window.n, z)


def proxy_rows(
    config: ModelConfig, reference: SegmentWindow, current: SegmentWindow, segment: str, z: float
) -> list[MetricRow]:
    """One row per declared proxy; ``no_data`` when the window lacks its column."""
    rows: list[MetricRow] = []
    for proxy in config.proxies:
        window = current.proxies.get(proxy.name)
        if window is None:
            rows.append(
                MetricRow(
                    layer="performance",
                    metric=proxy.metric,
                    segment=segment,
                    value=None,
                    status="no_data",
                    reason=f"column {proxy.column!r} is not in the data",
                )
            )
            continue
        ref = reference.proxies.get(proxy.name)
        rows += compare(
            "performance",
            {proxy.metric: window.value},
            {} if ref is None else {proxy.metric: ref.value},
            segment,
            window.n,
            intervals={proxy.metric: proxy_interval(proxy, window, z)},
            thresholds={proxy.metric: proxy_threshold(proxy)},
        )
    return rows
