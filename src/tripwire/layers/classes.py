"""A multiclass model's predicted classes, in the predictions layer.

``class_psi`` is the PSI of the predicted class's distribution against the reference's (the
classes are its buckets, plus one for predictions that are none of them), judged as PSI is;
``entropy`` the mean entropy of the class probabilities in bits (up to log2 of the number of
classes; low when the model is confident); ``class_share`` one ``info`` row per class, with the
class as its ``feature``, and one for ``(none of the classes)`` when such predictions occur.
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

NONE_OF_THEM = "(none of the classes)"


def _entropy(window: ClassWindow) -> float:
    return window.entropy_sum / window.n_entropy if window.n_entropy else float("nan")


def class_rows(
    bins: Bins, reference: SegmentWindow, current: SegmentWindow, segment: str
) -> list[MetricRow]:
    """``class_psi``, ``entropy`` and the ``class_share`` rows of a multiclass window."""
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
    names = [*bins.classes.classes, NONE_OF_THEM]
    for name, share, ref_share, count in zip(
        names, cur.shares(), ref.shares(), cur.counts, strict=True
    ):
        if name == NONE_OF_THEM and not count:
            continue
        rows.append(
            MetricRow(
                layer="predictions",
                metric="class_share",
                feature=name,
                segment=segment,
                value=share,
                status="info" if share == share else "no_data",
                n=cur.n,
                reference=ref_share,
            )
        )
    return rows
