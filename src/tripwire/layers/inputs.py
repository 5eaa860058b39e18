"""The inputs layer: per-feature drift and data quality against the reference window."""

from __future__ import annotations

from tripwire.layers.rows import MetricRow
from tripwire.layers.thresholds import judge
from tripwire.profile.categorical import CategoricalBins, CategoricalWindow
from tripwire.profile.distances import (
    ks_from_profiles,
    wasserstein_from_profiles,
)
from tripwire.profile.numeric import NumericBins, NumericWindow
from tripwire.profile.window import Bins, SegmentWindow
from tripwire.stats import chi2_contingency, js_distance, psi_from_counts

NUMERIC_METRICS = (
    "psi",
    "ks",
    "js",
    "wasserstein",
    "wasserstein_norm",
    "null_share",
    "out_of_range_share",
)
CATEGORICAL_METRICS = ("psi", "js", "chi2_pvalue", "null_share", "unseen_share")


def _values(
    bins: NumericBins | CategoricalBins,
    ref: NumericWindow | CategoricalWindow,
    cur: NumericWindow | CategoricalWindow,
) -> dict[str, tuple[float, float | None, str | None]]:
    """metric -> (value, certified bound, reason when there is no value)."""
    out: dict[str, tuple[float, float | None, str | None]] = {
        "null_share": (
            cur.n_null / cur.n_rows if cur.n_rows else float("nan"),
            None,
            None if cur.n_rows else "no rows in this window",
        ),
    }
    if cur.n == 0 or ref.n == 0:
        reason = (
            "no non-null values in this window"
            if cur.n == 0
            else ("no non-null values in the reference")
        )
        names = NUMERIC_METRICS if isinstance(cur, NumericWindow) else CATEGORICAL_METRICS
        out.update({m: (float("nan"), None, reason) for m in names if m != "null_share"})
        return out
    if isinstance(cur, NumericWindow):
        assert isinstance(bins, NumericBins) and isinstance(ref, NumericWindow)
        ref_counts, cur_counts = ref.psi_counts, cur.psi_counts
        ks = ks_from_profiles(ref, cur)
        w = wasserstein_from_profiles(bins, ref, cur)
        std = ref.moments.std
        finite_reason = None if cur.moments.n else "no finite values in this window"
        out["ks"] = (ks.value, ks.bound, None)
        out["wasserstein"] = (w.value, w.bound, finite_reason)
        if std > 0:
            out["wasserstein_norm"] = (w.value / std, w.bound / std, finite_reason)
        else:
            out["wasserstein_norm"] = (float("nan"), None, "the reference is constant")
        outside = cur.cell_counts[0] + cur.cell_counts[-1] if bins.grid.size else cur.n
        out["out_of_range_share"] = (outside / cur.n, None, None)
    else:
        assert isinstance(ref, CategoricalWindow)
        ref_counts, cur_counts = ref.counts, cur.counts
        out["chi2_pvalue"] = (chi2_contingency(ref_counts, cur_counts).pvalue, None, None)
        if cur.n_unseen >= 0:
            examples = ", ".join(f"{v!r} ({c})" for v, c in cur.unseen_examples)
            out["unseen_share"] = (
                cur.n_unseen / cur.n,
                None,
                f"unseen: {examples}" if examples else None,
            )
        else:
            out["unseen_share"] = (
                float("nan"),
                None,
                "the reference has too many categories to tell unseen ones",
            )
    out["psi"] = (psi_from_counts(ref_counts, cur_counts), None, None)
    out["js"] = (js_distance(ref_counts, cur_counts), None, None)
    return out


def input_rows(
    bins: Bins,
    reference: SegmentWindow,
    current: SegmentWindow,
    segment: str,
    importance: dict[str, float],
) -> list[MetricRow]:
    """Rows for every feature, ranked by importance x PSI (most important drift first)."""
    per_feature: list[tuple[tuple[float, float], list[MetricRow]]] = []
    for name, feature_bins in bins.features.items():
        weight = importance.get(name)
        rows: list[MetricRow] = []
        note = current.notes.get(name)
        cur = current.features.get(name)
        ref = reference.features.get(name)
        rows.append(
            MetricRow(
                layer="inputs",
                metric="schema",
                feature=name,
                segment=segment,
                value=1.0 if note else 0.0,
                status=("alert" if cur is None else "watch") if note else "ok",
                reason=note,
                n=current.n_rows,
                importance=weight,
            )
        )
        if cur is None or ref is None:
            per_feature.append(((float("inf"), float("inf")), rows))
            continue
        values = _values(feature_bins, ref, cur)
        ref_null_share = ref.n_null / ref.n_rows if ref.n_rows else 0.0
        for metric, (value, bound, reason) in values.items():
            status, threshold = judge(metric, value, ref_null_share)
            if reason and value != value:
                status = "no_data"
            rows.append(
                MetricRow(
                    layer="inputs",
                    metric=metric,
                    feature=name,
                    segment=segment,
                    value=value,
                    status=status,
                    threshold=threshold,
                    reason=reason,
                    n=cur.n_rows,
                    importance=weight,
                    bound=bound,
                    reference=ref_null_share if metric == "null_share" else None,
                )
            )
        psi = values["psi"][0]
        drift = psi if psi == psi else 0.0
        per_feature.append((((1.0 if weight is None else weight) * drift, drift), rows))
    for name, note in current.notes.items():
        if name not in bins.features:
            per_feature.append(
                (
                    (0.0, 0.0),
                    [
                        MetricRow(
                            layer="inputs",
                            metric="schema",
                            feature=name,
                            segment=segment,
                            value=1.0,
                            status="watch",
                            reason=note,
                            n=current.n_rows,
                        )
                    ],
                )
            )
    # importance x drift first; drift alone breaks ties (e.g. features of importance 0).
    per_feature.sort(key=lambda item: (-item[0][0], -item[0][1]))
    return [row for _, rows in per_feature for row in rows]
