"""Estimated performance in a profile: what CBPE and DLE need of a window, as sums.

``Monitor.fit`` learns an :class:`Estimation` on a labelled reference (:func:`fit_estimation`):
for a classifier, whether its scores are calibrated probabilities and, where cross-validation
shows it helps, an isotonic calibrator (:class:`~tripwire.estimation.CBPE`,
:class:`~tripwire.estimation.MulticlassCBPE`); for a regression model, a model of its absolute
and squared error (:class:`~tripwire.estimation.DLE`). Each window then keeps, per segment, sums
over its rows of the calibrated probabilities ``p_i`` (or predicted losses) — never the rows:

* :class:`BinaryEstimate`: the expected confusion matrix (``E[TP] = sum p_i`` over the rows
  predicted positive, ``E[FP] = sum (1 - p_i)`` there, and so on), ``sum p_i (1 - p_i)`` on
  each side of the threshold for the standard errors, and a :class:`SoftHistogram`: ``sum p``
  and ``sum (1 - p)`` per slot of the score's reference grid, from which the expected ROC AUC
  comes exactly as the realized one comes from the positives' and negatives' counts;
* :class:`MulticlassEstimate`: the same per class, with the sums of
  :func:`~tripwire.estimation.multiclass.class_sums`;
* :class:`RegressionEstimate`: sums of the predicted losses.

All of them merge by addition, so a week's estimate is the merge of its days' and equals the
estimate of the week's rows (up to the AUC's within-slot ties, bounded by
:meth:`SoftHistogram.auc`).

Assumptions (none can be checked without labels; the report shows them): no concept drift
(``P(y | score)`` as on the reference), the calibration (or loss model) learnt on the reference
holds, and no shift into regions the reference did not cover.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Self

import numpy as np
import pyarrow as pa

from tripwire.config import ModelConfig
from tripwire.estimation import CBPE, DLE, Estimate, MulticlassCBPE
from tripwire.estimation.calibration import CalibrationCheck
from tripwire.estimation.cbpe import confusion_metrics
from tripwire.estimation.isotonic import IsotonicCalibrator
from tripwire.estimation.multiclass import class_sums, macro_metrics, renormalise
from tripwire.profile.multiclass import ClassBins, class_index, class_probabilities
from tripwire.profile.numeric import Floats, Ints
from tripwire.profile.outputs import Additive
from tripwire.tabular import numeric_values

BINARY_ESTIMATES = ("auc", "precision", "recall", "f1", "accuracy")
REGRESSION_ESTIMATES = ("mae", "rmse")


# -- what fit learns ----------------------------------------------------------------------


@dataclass(frozen=True)
class ScoreCalibration:
    """A score-to-probability map learnt on the reference: the scores themselves when they
    are calibrated, else the knots of an isotonic calibrator (interpolated linearly, constant
    beyond them), and the cross-validated reason for the choice."""

    knots_x: Floats
    knots_y: Floats
    calibrated: bool
    reason: str

    @classmethod
    def of(cls, check: CalibrationCheck, calibrator: IsotonicCalibrator | None) -> Self:
        if calibrator is None:
            return cls(np.empty(0), np.empty(0), False, check.reason)
        return cls(calibrator.knots_x_, calibrator.knots_y_, True, check.reason)

    def probabilities(self, scores: Floats) -> Floats:
        """``P(y = 1)`` per score (NaN stays NaN); uncalibrated scores are clipped to [0, 1]."""
        if self.calibrated:
            out: Floats = np.interp(scores, self.knots_x, self.knots_y)
            return out
        clipped: Floats = np.clip(scores, 0.0, 1.0)
        return clipped


@dataclass(frozen=True)
class LossModel:
    """A fitted :class:`~tripwire.estimation.DLE` (its attributes) and the numeric features it
    reads, in order; the prediction is its last input."""

    features: tuple[str, ...]
    center: Floats
    scale: Floats
    knots: Floats
    coef: Floats
    kappa: float

    @classmethod
    def of(cls, features: tuple[str, ...], model: DLE) -> Self:
        return cls(features, model.center_, model.scale_, model.knots_, model.coef_, model.kappa_)

    def losses(self, numeric: dict[str, Floats], predictions: Floats) -> Floats:
        """(2, n): each row's predicted absolute and squared error (NaN without a prediction);
        a missing or infinite feature counts as its reference mean."""
        model = DLE(knots=self.knots.shape[1])
        model.center_, model.scale_, model.knots_ = self.center, self.scale, self.knots
        model.coef_, model.kappa_ = self.coef, self.kappa
        n = predictions.size
        x = np.empty((n, len(self.features)))
        for j, name in enumerate(self.features):
            x[:, j] = numeric.get(name, np.full(n, np.nan))
        x[np.isinf(x)] = np.nan
        present = np.isfinite(predictions)
        out = np.full((2, n), np.nan)
        out[:, present] = model.predict_loss(x[present], predictions[present]).T
        return out


@dataclass(frozen=True)
class Estimation:
    """What :func:`fit_estimation` learnt: one :class:`ScoreCalibration` for a binary
    classifier, one per class (in column order) for a multiclass one, or a :class:`LossModel`
    for a regression model; ``n_reference`` labelled reference rows."""

    calibrations: tuple[ScoreCalibration, ...] = ()
    loss: LossModel | None = None
    n_reference: int = 0

    def reasons(self) -> list[str]:
        """One line per calibration decision (with its class for a multiclass model)."""
        if len(self.calibrations) == 1:
            return [self.calibrations[0].reason]
        return [f"class {k}: {c.reason}" for k, c in enumerate(self.calibrations)]

    def class_probabilities(self, xt: Floats) -> Floats:
        """(K, n) calibrated class probabilities, each row's renormalised to sum to 1 (a row
        whose calibrated probabilities are all 0 keeps its raw ones), as
        :meth:`~tripwire.estimation.MulticlassCBPE.probabilities`."""
        pt = np.array([c.probabilities(row) for c, row in zip(self.calibrations, xt, strict=True)])
        return renormalise(pt, xt)


def fit_estimation(
    config: ModelConfig, table: pa.Table, scores: Floats, classes: ClassBins | None
) -> Estimation | None:
    """Fit estimation on the reference's labelled rows; None without labels (or, for a
    classifier, without both outcomes among them).

    ``scores`` is the score column (binary) or the prediction (regression) as read.
    """
    columns = config.columns
    if columns.label is None or columns.label not in table.column_names:
        return None
    label = table.column(columns.label)
    if config.task == "multiclass":
        assert classes is not None
        xt = class_probabilities(config, table, required=True)
        index = class_index(label, classes.classes)
        keep = (index >= 0) & ~np.isnan(xt).any(axis=0)
        if len(np.unique(index[keep])) < 2:
            return None
        multiclass = MulticlassCBPE(classes=list(range(len(classes.classes))))
        multiclass.fit(xt[:, keep].T, index[keep])
        calibrations = zip(multiclass.calibration_, multiclass.calibrators_, strict=True)
        return Estimation(
            calibrations=tuple(ScoreCalibration.of(c, cal) for c, cal in calibrations),
            n_reference=multiclass.n_reference_,
        )
    y = numeric_values(label)[0]
    if config.task == "binary":
        keep = np.isfinite(scores) & ((y == 0) | (y == 1))
        if not (np.any(y[keep] == 1) and np.any(y[keep] == 0)):
            return None
        binary = CBPE(threshold=config.decision_threshold).fit(scores[keep], y[keep])
        return Estimation(
            calibrations=(ScoreCalibration.of(binary.calibration_, binary.calibrator_),),
            n_reference=binary.n_reference_,
        )
    names = tuple(n for n, kind in columns.features.items() if kind == "numeric")
    x = np.column_stack([numeric_values(table.column(n))[0] for n in names]) if names else None
    keep = np.isfinite(scores) & np.isfinite(y)
    if x is not None:
        x[np.isinf(x)] = np.nan
        x = x[keep]
    if np.count_nonzero(keep) < 2:
        return None
    loss = DLE().fit(x, scores[keep], y[keep])
    return Estimation(loss=LossModel.of(names, loss), n_reference=loss.n_reference_)


# -- what a window keeps ------------------------------------------------------------------


def grid_slots(values: Floats, grid: Floats) -> Ints:
    """Each value's slot among a grid's open cells and points, in value order as
    :func:`~tripwire.profile.outputs.auc_from_profile` interleaves them: ``2j + 1`` on grid
    point ``j``, ``2j`` in the open cell below it (``2G`` above the last point).

    >>> grid_slots(np.array([-1.0, 0.0, 0.5, 1.0, 3.0]), np.array([0.0, 1.0])).tolist()
    [0, 1, 2, 3, 4]
    """
    if grid.size == 0:
        return np.zeros(values.size, dtype=np.int64)
    j = np.searchsorted(grid, values, side="left")
    on_point = grid[np.minimum(j, grid.size - 1)] == values
    slots: Ints = 2 * j + on_point
    return slots


@dataclass(frozen=True)
class SoftHistogram(Additive):
    """Calibrated probability mass on the slots of a score's reference grid (see
    :func:`grid_slots`): per slot ``sum p``, ``sum (1 - p)``, and ``sum p^k (1 - p)`` for
    k = 1, 2, 3 (for the standard error)."""

    positive: Floats
    negative: Floats
    pq: Floats
    p2q: Floats
    p3q: Floats

    @classmethod
    def of(cls, scores: Floats, p: Floats, grid: Floats) -> Self:
        slot = grid_slots(scores, grid)
        size = 2 * grid.size + 1

        def total(weights: Floats) -> Floats:
            return np.bincount(slot, weights=weights, minlength=size).astype(np.float64)

        pq = p * (1.0 - p)
        p2q = pq * p
        return cls(total(p), total(1.0 - p), total(pq), total(p2q), total(p2q * p))

    @classmethod
    def of_sorted(cls, s: Floats, p: Floats, pq: Floats, grid: Floats) -> Self:
        """:meth:`of` for ascending scores ``s`` (no NaN), with ``pq = p (1 - p)`` given: each
        slot is a contiguous range of rows, found by binary search of the grid."""
        left = np.searchsorted(s, grid, side="left")
        right = np.searchsorted(s, grid, side="right")
        starts = np.empty(2 * grid.size + 1, dtype=np.int64)
        starts[0], starts[1::2], starts[2::2] = 0, left, right
        counts = np.diff(np.append(starts, s.size))
        nonempty = counts > 0
        first = starts[nonempty]  # the ranges partition the rows, so each runs to the next

        def total(values: Floats) -> Floats:
            out = np.zeros(starts.size)
            if first.size:
                out[nonempty] = np.add.reduceat(values, first)
            return out

        p2q = pq * p
        positive = total(p)
        return cls(positive, counts - positive, total(pq), total(p2q), total(p2q * p))

    def auc(self) -> tuple[float, float, float]:
        """Expected ROC AUC, its standard error and its bound, from the slots alone.

        As :func:`~tripwire.estimation.expected_roc_auc` with each slot a tie group:
        ``(sum_g P_g (Q_<g + Q_g / 2) - sum pq / 2) / (P Q - sum pq)``. Grid points are true
        ties of the scores; pairs of different scores inside one open cell count as ties, which
        errs by at most ``bound = sum_cells (P_g Q_g - pq_g) / (2 (P Q - sum pq))``. The
        standard error is the delta method's of :func:`~tripwire.estimation.expected_auc.
        expected_auc_sorted` with the same groups: row ``k`` in slot ``g`` has gradient
        ``(alpha_g + beta p_k) / D``, so the variance ``sum_k p_k q_k gradient_k^2`` needs only
        the slot sums of ``pq``, ``p^2 q`` and ``p^3 q``.
        """
        P, Q = float(self.positive.sum()), float(self.negative.sum())
        PQ = float(self.pq.sum())
        d = P * Q - PQ
        if d <= 0:
            nan = float("nan")
            return nan, nan, nan
        q_below = np.cumsum(self.negative) - self.negative
        p_above = P - np.cumsum(self.positive)
        auc = (float(self.positive @ (q_below + self.negative / 2)) - PQ / 2) / d
        cells = slice(0, None, 2)
        within = self.positive[cells] @ self.negative[cells] - self.pq[cells].sum()
        bound = float(within) / (2 * d)
        c = q_below - p_above + (self.negative - self.positive) / 2
        alpha = c - 0.5 - auc * (Q - P - 1.0)
        beta = 1.0 - 2.0 * auc
        variance = (
            alpha * alpha @ self.pq + 2 * beta * alpha @ self.p2q + beta * beta * self.p3q.sum()
        )
        return auc, float(np.sqrt(max(float(variance), 0.0))) / d, bound

    def count(self) -> Floats:
        """Rows per slot."""
        out: Floats = self.positive + self.negative
        return out


@dataclass(frozen=True)
class BinaryEstimate(Additive):
    """A binary classifier's estimated performance on a window, as sums.

    ``confusion`` holds the expected tp, fp, fn, tn at the decision threshold; ``variance``
    ``sum p (1 - p)`` over the rows predicted positive and over those predicted negative.
    """

    n_rows: int
    confusion: Floats
    variance: Floats
    scores: SoftHistogram

    @classmethod
    def of(
        cls, scores: Floats, calibration: ScoreCalibration, grid: Floats, threshold: float
    ) -> Self:
        """The window's scores (NaN is skipped), made probabilities by ``calibration``.

        The scores are sorted once. Calibration is non-decreasing, so the probabilities of the
        sorted scores are computed in order (a fast interpolation), the threshold and the grid
        are found by binary search, and every sum runs over a contiguous range of rows.
        """
        s = np.sort(scores)
        s = s[: s.size - int(np.count_nonzero(np.isnan(s)))]  # NaN sorts last
        p = calibration.probabilities(s)
        n = s.size
        cut = int(np.searchsorted(s, threshold, side="left"))  # rows [cut:] predicted positive
        pq = p * (1.0 - p)
        tp, fn = float(p[cut:].sum()), float(p[:cut].sum())
        confusion = np.array([tp, (n - cut) - tp, fn, cut - fn])
        variance = np.array([pq[cut:].sum(), pq[:cut].sum()])
        return cls(n, confusion, variance, SoftHistogram.of_sorted(s, p, pq, grid))

    def estimate(self) -> tuple[Estimate, float]:
        """Estimated AUC, precision, recall, F1 and accuracy with their standard errors
        (:class:`~tripwire.estimation.CBPE`'s, from the sums), and the AUC's bound."""
        tp, fp, fn, tn = (float(v) for v in self.confusion)
        values, variances = confusion_metrics(tp, fp, fn, tn, *map(float, self.variance))
        auc, auc_se, bound = self.scores.auc()
        values["auc"] = auc
        errors = {name: float(np.sqrt(v)) if v == v else v for name, v in variances.items()}
        errors["auc"] = auc_se
        estimate = Estimate(
            n_rows=self.n_rows,
            values={m: values[m] for m in BINARY_ESTIMATES},
            standard_errors={
                m: errors[m] if values[m] == values[m] else np.nan for m in BINARY_ESTIMATES
            },
            confusion=np.array([[tn, fp], [fn, tp]]),
        )
        return estimate, bound


@dataclass(frozen=True)
class MulticlassEstimate:
    """A multiclass classifier's estimated performance on a window, as sums: those of
    :func:`~tripwire.estimation.multiclass.class_sums` and, per class, a
    :class:`SoftHistogram` of its calibrated probability on its raw probability's grid."""

    n_rows: int
    confusion: Floats
    predicted: Floats
    q_sq: Floats
    q_p: Floats
    p_p: Floats
    scores: dict[str, SoftHistogram] = field(default_factory=dict)

    @classmethod
    def of(cls, xt: Floats, pt: Floats, predicted: Ints, bins: ClassBins) -> Self:
        """Rows with every probability and a predicted class: raw ``xt`` and calibrated ``pt``
        probabilities (K, n) and the predicted class index."""
        keep = (predicted >= 0) & ~np.isnan(xt).any(axis=0) & ~np.isnan(pt).any(axis=0)
        xt, pt, pred = xt[:, keep], pt[:, keep], predicted[keep]
        confusion, m, q_sq, q_p, p_p = class_sums(pt, pred)
        scores = {
            name: SoftHistogram.of(xt[c], pt[c], class_bins.grid)
            for c, (name, class_bins) in enumerate(
                zip(bins.classes, bins.probabilities, strict=True)
            )
        }
        return cls(int(pred.size), confusion, m, q_sq, q_p, p_p, scores)

    def __add__(self, other: MulticlassEstimate) -> MulticlassEstimate:
        return MulticlassEstimate(
            self.n_rows + other.n_rows,
            self.confusion + other.confusion,
            self.predicted + other.predicted,
            self.q_sq + other.q_sq,
            self.q_p + other.q_p,
            self.p_p + other.p_p,
            {c: h + other.scores[c] for c, h in self.scores.items()},
        )

    def estimate(self) -> tuple[Estimate, float]:
        """Accuracy and macro precision, recall, F1 and one-vs-rest AUC with standard errors,
        and the macro AUC's bound (the mean of the classes').

        The classes' one-vs-rest AUCs covary through each row's single label, which
        :class:`~tripwire.estimation.MulticlassCBPE` counts from the rows; a profile has only
        each class's slots, so the macro AUC's standard error here is the upper bound
        ``sum_c se_c / K`` (a covariance is at most the product of the standard errors). In
        the tests' three-class world it is 1.2-1.6 times MulticlassCBPE's: wider, never
        narrower, so an estimated AUC alert needs a little more evidence.
        """
        values, errors = macro_metrics(
            self.confusion, self.predicted, self.q_sq, self.q_p, self.p_p
        )
        per_class = [h.auc() for h in self.scores.values()]
        defined = [(auc, se, bound) for auc, se, bound in per_class if auc == auc]
        nan = float("nan")
        values["auc"] = float(np.mean([a for a, _, _ in defined])) if defined else nan
        errors["auc"] = sum(se for _, se, _ in defined) / len(defined) if defined else nan
        bound = float(np.mean([b for _, _, b in defined])) if defined else nan
        order = ("auc", "precision", "recall", "f1", "accuracy")
        estimate = Estimate(
            n_rows=self.n_rows,
            values={m: values[m] for m in order},
            standard_errors={m: errors[m] for m in order},
            confusion=self.confusion,
        )
        return estimate, bound


@dataclass(frozen=True)
class RegressionEstimate(Additive):
    """A regression model's estimated MAE and RMSE on a window, as
    :class:`~tripwire.estimation.DLE` makes them, from sums of the predicted losses:
    ``sum a_i``, ``sum s_i``, ``sum max(s_i - a_i^2, 0)`` and ``kappa sum s_i^2``."""

    n_rows: int
    abs_sum: float
    sq_sum: float
    abs_var_sum: float
    sq_var_sum: float

    @classmethod
    def of(cls, losses: Floats, kappa: float) -> Self:
        """``losses`` (2, n): predicted absolute and squared errors (NaN rows skipped)."""
        present = ~np.isnan(losses).any(axis=0)
        a, s = losses[0, present], losses[1, present]
        return cls(
            int(a.size),
            float(a.sum()),
            float(s.sum()),
            float(np.maximum(s - a * a, 0.0).sum()),
            float(kappa * np.square(s).sum()),
        )

    def estimate(self) -> tuple[Estimate, float]:
        n = self.n_rows
        nan = float("nan")
        if n == 0:
            return Estimate(0, {"mae": nan, "rmse": nan}, {"mae": nan, "rmse": nan}), nan
        rmse = float(np.sqrt(self.sq_sum / n))
        se_mse = float(np.sqrt(self.sq_var_sum)) / n
        estimate = Estimate(
            n_rows=n,
            values={"mae": self.abs_sum / n, "rmse": rmse},
            standard_errors={
                "mae": float(np.sqrt(self.abs_var_sum)) / n,
                "rmse": se_mse / (2 * rmse) if rmse > 0 else nan,
            },
        )
        return estimate, nan


Estimated = BinaryEstimate | MulticlassEstimate | RegressionEstimate
