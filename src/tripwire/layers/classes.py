"""A multiclass model's predicted classes, in the predictions layer.

``class_psi`` is the PSI of the predicted class's distribution against the reference's (the
classes are its buckets, plus one for predictions that are none of them), judged as PSI is;
``entropy`` the mean entropy of the class probabilities in bits (up to log2 of the number of
classes; low when the model is confident); ``class_share_<class>`` the share of predictions of
each class (``info``, with the reference's share), and ``unknown_class_share`` the share of
predictions that are none of the classes, when there are any. The class is in the metric's name,
not in the row's ``feature`` (a per-feature field of the inputs layer), so each share is a
series of its own in the store and in Prometheus.
``score_psi`` and ``mean_pred`` (:mod:`tripwire.layers.predictions`) are those of the top class
probability: the model's confidence.
"""

from __future__ import annotations

from tripwire.layers._rows import compare
from tripwire.layers.rows import MetricRow
from tripwire.layers.thresholds import DEFAULTS
from tripwire.profile.multiclass import ClassWindow
from tripwire.profile.window import Bins, SegmentWindow
from tripwire.stats import psi_from_counts

SHARE_PREFIX = "class_share_"
UNKNOWN_SHARE = "unknown_class_share"


def _entropy(window: ClassWindow) -> float:
    return window.entropy_sum / window.n_entropy if window.n_entropy else float("nan")


def class_rows(
    bins: Bins, reference: SegmentWindow, current: SegmentWindow, segment: str
) -> list[MetricRow]:
    """``class_psi``, ``entropy`` and the class shares of a multiclass window."""
    if bins.classes is None or reference.classes is None or current.classes is None:
        return []
    ref, cur = reference.classes, current.classes
    rows = compare(
        "predictions",
        {"class_psi": psi_from_counts(ref.counts, cur.counts), "entropy": _entropy(cur)},
        {"entropy": _entropy(ref)},
        segment,
        cur.n,
        thresholds={"class_psi": DEFAULTS["psi"]},
    )
    names = [*(SHARE_PREFIX + name for name in bins.classes.classes), UNKNOWN_SHARE]
    for name, share, ref_share, count in zip(
        names, cur.shares(), ref.shares(), cur.counts, strict=True
    ):
        if name == UNKNOWN_SHARE and not count:
            continue
        rows.append(
            MetricRow(
                layer="predictions",
                metric=name,
                segment=segment,
                value=share,
                status="info" if share == share else "no_data",
                n=cur.n,
                reference=ref_share,
            )
        )
    return rows
