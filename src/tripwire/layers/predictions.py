"""The predictions layer: the output distribution and its confidence, against the reference."""

from __future__ import annotations

from tripwire.layers._rows import compare
from tripwire.layers.rows import MetricRow
from tripwire.profile.outputs import PredictionWindow
from tripwire.profile.window import SegmentWindow
from tripwire.stats import psi_from_counts


def _summary(window: PredictionWindow, binary: bool) -> dict[str, float]:
    n = window.scores.n
    out = {"mean_pred": window.scores.moments.mean if window.scores.moments.n else float("nan")}
    if binary:
        out["positive_rate"] = window.n_positive / n if n else float("nan")
        out["entropy"] = window.entropy_sum / n if n else float("nan")
    return out


def prediction_rows(
    reference: SegmentWindow, current: SegmentWindow, segment: str, binary: bool
) -> list[MetricRow]:
    """``score_psi``, ``mean_pred`` and, for classifiers, ``positive_rate`` and ``entropy``
    (mean per-prediction entropy in bits: low when the model is confident)."""
    if reference.prediction is None or current.prediction is None:
        return []
    ref, cur = reference.prediction, current.prediction
    values = {"score_psi": psi_from_counts(ref.scores.psi_counts, cur.scores.psi_counts)}
    values.update(_summary(cur, binary))
    return compare("predictions", values, _summary(ref, binary), segment, cur.scores.n)
