"""Confidence-based performance estimation (CBPE) of a multiclass classifier, without labels."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Self

import numpy as np
from numpy.typing import ArrayLike, NDArray

from ._inputs import require_fitted
from .calibration import Calibration, CalibrationCheck, check_options, fit_calibration
from .estimate import Estimate, categorical_variance, ratio
from .expected_auc import expected_auc_sorted
from .isotonic import IsotonicCalibrator

MULTICLASS_METRICS = ("auc", "precision", "recall", "f1", "accuracy")


def _probability_matrix(probas: ArrayLike, k: int | None = None) -> NDArray[np.float64]:
    x = np.asarray(probas, dtype=np.float64)
    if x.ndim != 2 or x.shape[1] < 2:
        raise ValueError(f"expected an (n, classes) array of probabilities, got shape {x.shape}")
    if k is not None and x.shape[1] != k:
        raise ValueError(f"expected {k} probability columns, got {x.shape[1]}")
    if np.any(np.isinf(x)):
        raise ValueError("probabilities must be finite")
    return x


def _class_index(labels: NDArray[Any], classes: NDArray[Any]) -> NDArray[np.intp]:
    sorter = np.argsort(classes, kind="stable")
    pos = np.searchsorted(classes, labels, sorter=sorter)
    idx = sorter[np.minimum(pos, classes.size - 1)]
    unknown = classes[idx] != labels
    if np.any(unknown):
        raise ValueError(f"label {labels[unknown][0]!r} is not one of the classes {list(classes)}")
    return np.asarray(idx, dtype=np.intp)


class MulticlassCBPE:
    """Estimate a multiclass classifier's macro ROC AUC, macro precision, recall and F1 and
    accuracy on a window of predicted probabilities whose labels are not known yet.

    ``fit`` calibrates each class's probability one-vs-rest on the labelled reference, with the
    cross-validated decision of :func:`~tripwire.estimation.calibration.check_calibration` per
    class; calibrated rows are renormalised to sum to 1. ``estimate`` treats each row's unknown
    label as categorical with those probabilities ``p_ik``. The predicted class is the argmax of
    the raw probabilities (the model's own decision), so the expected confusion matrix is
    ``E[C_ab] = sum_{i: pred_i = b} p_ia`` (rows actual, columns predicted); per class
    ``c``, with ``m_c`` rows predicted ``c``, ``E[TP_c] = E[C_cc]`` and ``E[N_c] = sum_i p_ic``:

    * precision ``E[TP_c] / m_c``, recall ``E[TP_c] / E[N_c]``,
      F1 ``2 E[TP_c] / (m_c + E[N_c])``, each averaged over the classes where it is defined
      (macro), and accuracy ``sum_c E[TP_c] / n``;
    * ROC AUC one-vs-rest per class
      (:func:`~tripwire.estimation.expected_auc.expected_roc_auc` of the raw column with the
      calibrated one), macro-averaged, as ``roc_auc_score(multi_class="ovr")`` in scikit-learn.

    Standard errors come from the delta method over independent categorical labels
    (:func:`~tripwire.estimation.estimate.categorical_variance`): exact for accuracy and
    precision, first order for the rest. The assumptions are those of
    :class:`~tripwire.estimation.cbpe.CBPE`: no concept drift (``P(y | probabilities)`` as on
    the reference), calibration learnt on the reference, no shift into regions it did not cover.

    One-vs-rest calibration learns ``P(y = c | p_c)`` for each class on its own; renormalising
    the row makes it a distribution again but no longer calibrates each class exactly, and the
    predicted class depends on all the columns. Where the raw probabilities are miscalibrated
    this leaves a small bias even without any shift (in the tests' over-confident world, 0.003
    on accuracy and macro F1, 0.002 on macro AUC), and under covariate shift
    ``P(y = c | p_c)`` itself can move. Calibrated probabilities need no calibrator and have
    neither problem.

    Parameters
    ----------
    classes : the class of each probability column, in column order; by default the sorted
        distinct reference labels (scikit-learn's ``classes_`` order).
    calibration : ``"auto"`` (cross-validated decision per class), ``"always"`` or ``"never"``.
    folds : cross-validation folds of the calibration check.
    z : standard errors by which calibration must improve a class's Brier score to be used.
    seed : seed of the fold assignment.

    Attributes
    ----------
    classes_ : the classes in column order.
    calibration_ : one :class:`~tripwire.estimation.calibration.CalibrationCheck` per class.
    calibrators_ : per class, the fitted
        :class:`~tripwire.estimation.isotonic.IsotonicCalibrator` or ``None``.
    n_reference_ : labelled reference rows used.

    Reference: NannyML, "Performance estimation: Confidence-based Performance Estimation
    (CBPE)", multiclass classification (documentation, how it works); Zadrozny, B., Elkan, C.
    (2002), "Transforming classifier scores into accurate multiclass probability estimates", KDD.

    >>> rng = np.random.default_rng(0)
    >>> ref = rng.dirichlet([1.0, 1.0, 1.0], 20_000)
    >>> labels = (rng.random(20_000)[:, None] > ref.cumsum(axis=1)).sum(axis=1)
    >>> model = MulticlassCBPE().fit(ref, labels)
    >>> [c is None for c in model.calibrators_]
    [True, True, True]
    >>> round(model.estimate(rng.dirichlet([1.0, 1.0, 1.0], 5_000))["accuracy"], 2)
    0.61
    """

    classes_: NDArray[Any]
    calibration_: list[CalibrationCheck]
    calibrators_: list[IsotonicCalibrator | None]
    n_reference_: int

    def __init__(
        self,
        classes: Sequence[Any] | None = None,
        calibration: Calibration = "auto",
        folds: int = 5,
        z: float = 2.0,
        seed: int = 0,
    ) -> None:
        self.classes = classes
        self.calibration = calibration
        self.folds = folds
        self.z = z
        self.seed = seed

    def fit(self, probas: ArrayLike, labels: ArrayLike) -> Self:
        """Learn the per-class calibration on a labelled reference.

        Parameters
        ----------
        probas : (n, classes) predicted probabilities on the reference.
        labels : the reference's labels, each one of ``classes``.
        """
        check_options(self.calibration, self.folds)
        x = _probability_matrix(probas)
        y = np.asarray(labels)
        if y.shape != (x.shape[0],):
            raise ValueError(f"expected {x.shape[0]} labels, got shape {y.shape}")
        keep = ~np.isnan(x).any(axis=1)
        if y.dtype.kind == "f":
            keep &= ~np.isnan(y)
        x, y = x[keep], y[keep]
        classes = np.unique(y) if self.classes is None else np.asarray(self.classes)
        if classes.size != x.shape[1]:
            raise ValueError(
                f"{x.shape[1]} probability columns but {classes.size} classes; "
                "pass classes=[...] in column order"
            )
        idx = _class_index(y, classes)
        fold = np.asarray(np.random.default_rng(self.seed).integers(0, self.folds, x.shape[0]))
        checks: list[CalibrationCheck] = []
        calibrators: list[IsotonicCalibrator | None] = []
        for c in range(classes.size):
            order = np.argsort(x[:, c])
            check, calibrator = fit_calibration(
                self.calibration,
                x[order, c],
                (idx[order] == c).astype(np.float64),
                fold[order],
                self.folds,
                self.z,
            )
            checks.append(check)
            calibrators.append(calibrator)
        self.classes_ = classes
        self.calibration_ = checks
        self.calibrators_ = calibrators
        self.n_reference_ = int(x.shape[0])
        return self

    def probabilities(self, probas: ArrayLike) -> NDArray[np.float64]:
        """Calibrated class probabilities, each row renormalised to sum to 1.

        A row whose calibrated probabilities are all 0 keeps its raw ones (renormalised).

        Parameters
        ----------
        probas : (n, classes) predicted probabilities.
        """
        require_fitted(self, "calibrators_")
        xt = _probability_matrix(probas, len(self.calibrators_)).T
        pt = np.array(
            [
                row if cal is None else cal.predict(row)
                for row, cal in zip(xt, self.calibrators_, strict=True)
            ]
        )
        return renormalise(pt, xt).T

    def estimate(self, probas: ArrayLike) -> Estimate:
        """Estimated metrics of one window (rows with a null probability are skipped).

        Parameters
        ----------
        probas : (n, classes) predicted probabilities on the window.
        """
        require_fitted(self, "calibrators_")
        x = _probability_matrix(probas, len(self.calibrators_))
        xt = np.ascontiguousarray(x[~np.isnan(x).any(axis=1)].T)  # class-major: rows contiguous
        # Each class's column is sorted once: its calibrator runs on sorted scores (fast
        # interpolation) and its expected AUC needs the order anyway.
        orders = [np.argsort(row) for row in xt]
        pt = np.empty_like(xt)
        for c, (row, order, cal) in enumerate(zip(xt, orders, self.calibrators_, strict=True)):
            s = row[order]
            pt[c, order] = s if cal is None else cal.predict(s)
        pt = renormalise(pt, xt)
        if np.any((pt < 0) | (pt > 1)):
            raise ValueError("probabilities must lie in [0, 1] when no calibrator is used")
        return multiclass_estimate(xt, pt, orders)


def renormalise(pt: NDArray[np.float64], xt: NDArray[np.float64]) -> NDArray[np.float64]:
    """Class-major probabilities divided by each row's total; all-zero rows take the raw ones."""
    total = pt.sum(axis=0)
    empty = total <= 0
    if empty.any():
        pt[:, empty] = xt[:, empty]
        total[empty] = xt[:, empty].sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        pt /= total
    return pt


def multiclass_estimate(
    xt: NDArray[np.float64],
    pt: NDArray[np.float64],
    orders: list[NDArray[np.intp]] | None = None,
) -> Estimate:
    """Expected confusion matrix, macro metrics and standard errors for raw probabilities
    (which decide the predicted class and rank each class's rows) and calibrated ones.

    Parameters
    ----------
    xt : (K, n) raw predicted probabilities, class-major.
    pt : (K, n) calibrated probabilities, each column summing to 1.
    orders : per class, the argsort of its row of ``xt`` (computed when not given).
    """
    k, n = xt.shape
    pred = np.argmax(xt, axis=0)
    sums = class_sums(pt, pred)
    values, errors = macro_metrics(*sums)
    auc = np.full(k, np.nan)
    h_auc = np.zeros((k, n))
    for c in range(k):
        order = np.argsort(xt[c]) if orders is None else orders[c]
        result = expected_auc_sorted(xt[c, order], pt[c, order])
        auc[c] = result.auc
        if not np.isnan(result.auc):
            h_auc[c, order] = result.gradient
    defined = int(np.count_nonzero(~np.isnan(auc)))
    values["auc"] = float(np.nanmean(auc)) if defined else float("nan")
    errors["auc"] = float(np.sqrt(categorical_variance(pt, h_auc))) / defined if defined else np.nan
    ordered = {name: values[name] for name in MULTICLASS_METRICS}
    ordered_errors = {name: float(errors[name]) for name in MULTICLASS_METRICS}
    return Estimate(n_rows=n, values=ordered, standard_errors=ordered_errors, confusion=sums[0])


ClassSums = tuple[
    NDArray[np.float64], NDArray[np.float64], NDArray[np.float64], NDArray[np.float64],
    NDArray[np.float64],
]  # fmt: skip


def class_sums(pt: NDArray[np.float64], pred: NDArray[np.intp]) -> ClassSums:
    """What :func:`macro_metrics` needs of a window, as sums over its rows (so that windows
    merge by addition): the expected confusion matrix ``C[a, b] = sum_{pred = b} p_a``, the
    rows predicted each class ``m``, and, with ``q_i`` the probability that row ``i``'s
    prediction is right, ``sum_{pred = j} q_i^2``, ``sum_{pred = j} q_i p_ki`` (j, k) and
    ``sum_i p_ki p_li`` (k, l).

    Parameters
    ----------
    pt : (K, n) calibrated probabilities, class-major.
    pred : the predicted class of each row, in ``0 .. K - 1``.
    """
    k, n = pt.shape
    confusion = np.array([np.bincount(pred, weights=pt[a], minlength=k) for a in range(k)])
    m = np.bincount(pred, minlength=k).astype(np.float64)
    q = pt[pred, np.arange(n)]
    q_sq = np.bincount(pred, weights=q * q, minlength=k).astype(np.float64)
    q_p = np.array([np.bincount(pred, weights=q * pt[c], minlength=k) for c in range(k)]).T
    p_p = np.einsum("ki,li->kl", pt, pt)  # not BLAS: profiles run in a thread pool
    return confusion, m, q_sq, q_p, p_p


def macro_metrics(
    confusion: NDArray[np.float64],
    m: NDArray[np.float64],
    q_sq: NDArray[np.float64],
    q_p: NDArray[np.float64],
    p_p: NDArray[np.float64],
) -> tuple[dict[str, float], dict[str, float]]:
    """Macro precision, recall and F1 and accuracy, with their standard errors, from the sums
    of :func:`class_sums` alone.

    Each macro metric's sum over classes moves by ``h[k, i] = a_k 1(k = pred_i) - b_k`` when
    row ``i``'s label is ``k``; its variance ``sum_i (sum_k p_ki h_ki^2 - (sum_k p_ki h_ki)^2)``
    expands, with ``T_j = C[j, j]`` and ``N_k = sum_b C[k, b]``, into
    ``sum_j a_j (a_j - 2 b_j) T_j + sum_k b_k^2 N_k - sum_j a_j^2 sum_{pred = j} q^2
    + 2 sum_jk a_j b_k sum_{pred = j} q p_k - sum_kl b_k b_l sum_i p_k p_l``.
    Accuracy's variance is ``sum_i q_i (1 - q_i) = sum_j (T_j - sum_{pred = j} q^2)``.

    Parameters
    ----------
    confusion, m, q_sq, q_p, p_p : as :func:`class_sums` returns them.
    """
    tp = np.diag(confusion)
    positives = confusion.sum(axis=1)
    n = float(m.sum())
    with np.errstate(invalid="ignore", divide="ignore"):
        precision = np.where(m > 0, tp / m, np.nan)
        recall = np.where(positives > 0, tp / positives, np.nan)
        f1 = np.where(m + positives > 0, 2 * tp / (m + positives), np.nan)
        recall_w = np.where(positives > 0, 1.0 / positives, 0.0)
        f1_w = np.where(m + positives > 0, 1.0 / (m + positives), 0.0)
        sensitivities = {
            "precision": (np.where(m > 0, 1.0 / m, 0.0), np.zeros_like(m)),
            "recall": (recall_w, np.nan_to_num(recall) * recall_w),
            "f1": (2 * f1_w, np.nan_to_num(f1) * f1_w),
        }
    values: dict[str, float] = {}
    errors: dict[str, float] = {}
    for name, per_class in (("precision", precision), ("recall", recall), ("f1", f1)):
        a, b = sensitivities[name]
        variance = float(
            a @ ((a - 2 * b) * tp)
            + (b * b) @ positives
            - (a * a) @ q_sq
            + 2 * a @ q_p @ b
            - b @ p_p @ b
        )
        defined = int(np.count_nonzero(~np.isnan(per_class)))
        values[name] = float(np.nanmean(per_class)) if defined else float("nan")
        sd = float(np.sqrt(max(variance, 0.0)))
        errors[name] = sd / defined if defined else float("nan")
    values["accuracy"] = ratio(float(tp.sum()), n)
    variance = float(np.sum(tp - q_sq))
    errors["accuracy"] = float(np.sqrt(max(variance, 0.0))) / n if n else float("nan")
    return values, errors
