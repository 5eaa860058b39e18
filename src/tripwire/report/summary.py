"""Short text for flagged rows: what a timeline cell or a terminal line shows."""

from __future__ import annotations

from collections.abc import Iterable

from tripwire.layers.rows import SEVERITY, MetricRow

# When one feature breaks several metrics, the most telling one names the problem.
PRIORITY = ("schema", "null_share", "unseen_share", "psi", "score_psi", "auc", "p95_ms")


def _rank(row: MetricRow) -> tuple[int, int]:
    metric = PRIORITY.index(row.metric) if row.metric in PRIORITY else len(PRIORITY)
    return SEVERITY[row.status], metric


def headline(row: MetricRow) -> str:
    """``"null_share merchant_risk 0.405"``, with the segment when it is not "all"."""
    parts = [row.metric]
    if row.feature:
        parts.append(row.feature)
    if row.segment != "all":
        parts.append(f"[{row.segment}]")
    value = "—" if row.value is None else f"{row.value:.3g}"
    text = " ".join([*parts, value])
    return f"{text} ({row.reason})" if row.status == "error" and row.reason else text


def worst_per_subject(rows: Iterable[MetricRow]) -> list[MetricRow]:
    """The single most severe flagged row per (feature, segment), worst first.

    Input order is kept among equals, so the inputs layer's importance ranking survives.
    """
    best: dict[tuple[str | None, str], MetricRow] = {}
    for row in rows:
        if row.status not in ("alert", "watch", "error"):
            continue
        key = (row.feature, row.segment)
        if key not in best or _rank(row) < _rank(best[key]):
            best[key] = row
    return sorted(best.values(), key=lambda r: SEVERITY[r.status])
