"""Profiles of a model's outputs: predictions, realized performance and serving cost.

Each holds sums and counts only, so that a window's metrics are exact functions of it (ROC AUC
excepted, see :func:`auc_from_profile`) and windows merge by addition.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any, Self

import numpy as np

from tripwire.profile.moments import Moments
from tripwire.profile.numeric import Floats, Ints, NumericBins, NumericWindow
from tripwire.profile.quantile_sketch import QuantileSketch

ECE_BINS = 10


class Additive:
    """Windows that merge field by field: numbers and arrays add, nested windows merge."""

    def __add__(self, other: Self) -> Self:
        merged: dict[str, Any] = {
            f.name: getattr(self, f.name) + getattr(other, f.name)
            for f in fields(self)  # type: ignore[arg-type]
        }
        return type(self)(**merged)


def binary_entropy_bits(p: Floats) -> Floats:
    """Per-row entropy of a Bernoulli(p) prediction in bits; 0 for p in {0, 1}."""
    q = np.clip(p, 0.0, 1.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        h = -(q * np.log2(q) + (1 - q) * np.log2(1 - q))
    return np.nan_to_num(h, nan=0.0)


@dataclass(frozen=True)
class PredictionWindow(Additive):
    """The score distribution on its bins, plus what mean_pred, positive_rate, entropy need."""

    scores: NumericWindow
    n_positive: int
    entropy_sum: float

    @classmethod
    def of(cls, scores: Floats, bins: NumericBins, threshold: float, binary: bool) -> Self:
        present = scores[~np.isnan(scores)]
        if not binary:
            return cls(NumericWindow.of(scores, bins), 0, 0.0)
        return cls(
            NumericWindow.of(scores, bins),
            int(np.count_nonzero(present >= threshold)),
            float(binary_entropy_bits(present).sum()),
        )


@dataclass(frozen=True)
class BinaryPerformance(Additive):
    """Realized performance of a binary classifier on the labelled rows of a window.

    ``positives`` and ``negatives`` are the class-conditional score distributions on the
    prediction's fine grid (for ROC AUC); the rest are exact sums.
    """

    n_rows: int
    positives: NumericWindow
    negatives: NumericWindow
    confusion: Ints  # tp, fp, fn, tn at the decision threshold
    log_loss_sum: float
    brier_sum: float
    ece_count: Ints
    ece_prob_sum: Floats
    ece_label_sum: Floats
    # Sums of squares of the per-row log loss and Brier score, for their confidence intervals;
    # NaN (unknown) in profiles stored before they were kept, which NaN-poisons a merge.
    log_loss_sq_sum: float = float("nan")
    brier_sq_sum: float = float("nan")

    @classmethod
    def of(cls, y: Floats, p: Floats, bins: NumericBins, threshold: float) -> Self:
        """``y`` in {0, 1} and scores ``p`` for the labelled rows (no NaN)."""
        positive = y == 1
        predicted = p >= threshold
        confusion = np.array(
            [
                np.count_nonzero(positive & predicted),
                np.count_nonzero(~positive & predicted),
                np.count_nonzero(positive & ~predicted),
                np.count_nonzero(~positive & ~predicted),
            ],
            dtype=np.int64,
        )
        eps = np.finfo(np.float64).eps
        clipped = np.clip(p, eps, 1 - eps)
        log_loss = -np.where(positive, np.log(clipped), np.log1p(-clipped))
        brier = np.square(p - y)
        # The same bin membership as tripwire.stats.ece, so the two agree exactly.
        slot = np.searchsorted(np.linspace(0.0, 1.0, ECE_BINS + 1)[1:-1], p, side="right")
        return cls(
            n_rows=int(y.size),
            positives=NumericWindow.of(p[positive], bins),
            negatives=NumericWindow.of(p[~positive], bins),
            confusion=confusion,
            log_loss_sum=float(log_loss.sum()),
            brier_sum=float(brier.sum()),
            ece_count=np.bincount(slot, minlength=ECE_BINS).astype(np.int64),
            ece_prob_sum=np.bincount(slot, weights=p, minlength=ECE_BINS).astype(np.float64),
            ece_label_sum=np.bincount(slot, weights=y, minlength=ECE_BINS).astype(np.float64),
            log_loss_sq_sum=float(np.square(log_loss).sum()),
            brier_sq_sum=float(np.square(brier).sum()),
        )

    def metrics(self) -> dict[str, float]:
        tp, fp, fn, tn = (int(v) for v in self.confusion)
        n = self.n_rows
        precision = _ratio(tp, tp + fp)
        recall = _ratio(tp, tp + fn)
        f1 = _ratio(2 * tp, 2 * tp + fp + fn)
        ece = float(np.abs(self.ece_label_sum - self.ece_prob_sum).sum() / n) if n else float("nan")
        return {
            "auc": auc_from_profile(self.positives, self.negatives)[0],
            "precision": precision,
            "recall": recall,
            "f1": f1,
            "accuracy": _ratio(tp + tn, n),
            "log_loss": _ratio(self.log_loss_sum, n),
            "brier": _ratio(self.brier_sum, n),
            "ece": ece,
        }


def _ratio(num: float, den: float) -> float:
    return num / den if den else float("nan")


def auc_from_profile(positives: NumericWindow, negatives: NumericWindow) -> tuple[float, float]:
    """ROC AUC from class-conditional counts on the score grid, and its error bound.

    AUC = P(s+ > s-) + P(s+ = s-) / 2. Pairs in different grid slots are ordered exactly; pairs
    on the same grid point are true ties; pairs inside the same open cell count as ties, which
    errs by at most half their share: ``bound = sum(pos_i * neg_i) / (2 P N)`` over open cells.
    """
    P, N = positives.n, negatives.n
    if P == 0 or N == 0:
        return float("nan"), float("nan")

    def slots(w: NumericWindow) -> Floats:
        # Interleave open cells and grid points in value order: c0, p0, c1, p1, ..., cG.
        out = np.empty(w.cell_counts.size + w.point_counts.size)
        out[0::2] = w.cell_counts
        out[1::2] = w.point_counts
        return out

    pos, neg = slots(positives), slots(negatives)
    neg_below = np.cumsum(neg) - neg
    auc = float((pos * (neg_below + neg / 2)).sum() / (P * N))
    bound = float((pos[0::2] * neg[0::2]).sum() / (2 * P * N))
    return auc, bound


@dataclass(frozen=True)
class RegressionPerformance(Additive):
    """Realized performance of a regression model: exact sums of errors and label moments."""

    n_rows: int
    abs_error_sum: float
    squared_error_sum: float
    labels: Moments
    # Sum of the fourth powers of the errors, for RMSE's confidence interval (NaN: unknown).
    squared_error_sq_sum: float = float("nan")

    @classmethod
    def of(cls, y: Floats, prediction: Floats) -> Self:
        error = prediction - y
        squared = np.square(error)
        return cls(
            int(y.size),
            float(np.abs(error).sum()),
            float(squared.sum()),
            Moments.of(y),
            float(np.square(squared).sum()),
        )

    def metrics(self) -> dict[str, float]:
        n = self.n_rows
        r2 = 1 - self.squared_error_sum / self.labels.m2 if self.labels.m2 > 0 else float("nan")
        return {
            "mae": _ratio(self.abs_error_sum, n),
            "rmse": float(np.sqrt(self.squared_error_sum / n)) if n else float("nan"),
            "r2": r2 if n else float("nan"),
        }


@dataclass(frozen=True)
class CostWindow(Additive):
    """Serving health: latency sketch, request errors and cost, for the columns that exist."""

    latency: QuantileSketch | None
    n_status: int
    n_error: int
    n_cost: int
    cost_sum: float

    def __add__(self, other: CostWindow) -> CostWindow:
        if self.latency is None or other.latency is None:
            latency = self.latency or other.latency
        else:
            latency = self.latency + other.latency
        return CostWindow(
            latency,
            self.n_status + other.n_status,
            self.n_error + other.n_error,
            self.n_cost + other.n_cost,
            self.cost_sum + other.cost_sum,
        )
