"""Confidence-based performance estimation (CBPE) of a binary classifier, without labels."""

from __future__ import annotations

from typing import Self

import numpy as np
from numpy.typing import ArrayLike, NDArray

from ._inputs import require_fitted, scores_and_labels, window_scores
from .calibration import Calibration, CalibrationCheck, check_options, fit_calibration
from .estimate import Estimate, ratio
from .expected_auc import expected_auc_sorted
from .isotonic import IsotonicCalibrator

BINARY_METRICS = ("auc", "precision", "recall", "f1", "accuracy", "specificity")


class CBPE:
    """Estimate a binary classifier's ROC AUC, precision, recall, F1, accuracy and specificity
    on a window of scores whose labels are not known yet.

    ``fit`` learns, on a labelled reference, a map from score to ``P(y = 1 | score)``: the
    scores themselves when they are calibrated, else an isotonic calibrator, chosen by
    cross-validation (:func:`~tripwire.estimation.calibration.check_calibration`). ``estimate``
    then treats each row's unknown label as Bernoulli(``p_i``) with ``p_i`` the calibrated
    probability, and takes expectations. With ``pred_i = s_i >= threshold``:

    * ``E[TP] = sum_{pred} p_i``, ``E[FP] = sum_{pred} (1 - p_i)``,
      ``E[FN] = sum_{not pred} p_i``, ``E[TN] = sum_{not pred} (1 - p_i)``;
    * precision ``E[TP] / (E[TP] + E[FP])``, recall ``E[TP] / (E[TP] + E[FN])``,
      F1 ``2 E[TP] / (2 E[TP] + E[FP] + E[FN])``, accuracy ``(E[TP] + E[TN]) / n``,
      specificity ``E[TN] / (E[TN] + E[FP])``: ratios of expectations, exact for precision and
      accuracy (their denominators are known) and within O(1/n) of the expected value
      otherwise;
    * ROC AUC: :func:`~tripwire.estimation.expected_auc.expected_roc_auc` of the raw scores
      with the calibrated probabilities.

    Standard errors are analytic: the standard deviation of the realized metric given the
    window's scores when the labels are drawn from the calibrated probabilities (exact for
    precision and accuracy, the delta method for the others). They say how far the realized
    value may fall from the estimate once labels arrive, if the assumptions hold. (NannyML
    instead takes the standard deviation of the realized metric over reference chunks of the
    window's size, which also counts how much the scores vary from window to window.)

    Assumptions, none of which can be checked without labels:

    * no concept drift: ``P(y | score)`` on the window is what it was on the reference;
      covariate shift, a change in which scores occur, is allowed and is what CBPE follows;
    * the calibration learnt on the reference holds, which needs enough reference rows
      around every score the window contains;
    * no shift into regions the reference did not cover (scores outside the reference's range
      get the calibrated probability of its nearest end).

    Parameters
    ----------
    threshold : a row is predicted positive when its score is ``>= threshold``.
    calibration : ``"auto"`` (cross-validated decision), ``"always"`` or ``"never"``.
    folds : cross-validation folds of the calibration check.
    z : standard errors by which calibration must improve the Brier score to be used.
    seed : seed of the fold assignment.

    Attributes
    ----------
    calibration_ : :class:`~tripwire.estimation.calibration.CalibrationCheck`, the decision.
    calibrator_ : the fitted :class:`~tripwire.estimation.isotonic.IsotonicCalibrator`, or
        ``None`` when the scores are used as they are.
    n_reference_ : labelled reference rows used.

    Reference: NannyML, "Performance estimation: Confidence-based Performance Estimation
    (CBPE)" (documentation, how it works); Białek, J., Kivimäki, J., Kuberski, W., Perrakis, N.
    (2024), "Estimating model performance under covariate shift without labels", arXiv
    2401.08348 (CBPE as the baseline of its PAPE method).

    >>> rng = np.random.default_rng(0)
    >>> ref = rng.random(20_000)
    >>> model = CBPE(threshold=0.5).fit(ref, rng.random(20_000) < ref)
    >>> model.calibrator_ is None
    True
    >>> e = model.estimate(rng.random(5_000))
    >>> round(e["accuracy"], 2), round(e["auc"], 2)
    (0.75, 0.83)
    """

    calibration_: CalibrationCheck
    calibrator_: IsotonicCalibrator | None
    n_reference_: int

    def __init__(
        self,
        threshold: float = 0.5,
        calibration: Calibration = "auto",
        folds: int = 5,
        z: float = 2.0,
        seed: int = 0,
    ) -> None:
        self.threshold = threshold
        self.calibration = calibration
        self.folds = folds
        self.z = z
        self.seed = seed

    def fit(self, scores: ArrayLike, labels: ArrayLike) -> Self:
        """Learn the calibration on a labelled reference.

        Parameters
        ----------
        scores : the model's scores on the reference (probabilities unless calibrated).
        labels : the reference's 0/1 labels; both classes must occur.
        """
        check_options(self.calibration, self.folds)
        s, y = scores_and_labels(scores, labels)
        if not (np.any(y == 1) and np.any(y == 0)):
            raise ValueError("the reference must contain both classes")
        order = np.argsort(s)
        s, y = s[order], y[order]
        fold = np.random.default_rng(self.seed).integers(0, self.folds, s.size)  # iid: unsorted
        self.calibration_, self.calibrator_ = fit_calibration(
            self.calibration, s, y, fold, self.folds, self.z
        )
        self.n_reference_ = int(s.size)
        return self

    def probabilities(self, scores: ArrayLike) -> NDArray[np.float64]:
        """Calibrated ``P(y = 1)`` for each score (the scores themselves without a calibrator).

        Parameters
        ----------
        scores : the model's scores.
        """
        require_fitted(self, "calibrator_")
        s = np.asarray(scores, dtype=np.float64)
        if self.calibrator_ is None:
            return s
        return self.calibrator_.predict(s)

    def estimate(self, scores: ArrayLike) -> Estimate:
        """Estimated metrics of one window of scores (null scores are skipped).

        Parameters
        ----------
        scores : the model's scores on the window.
        """
        require_fitted(self, "calibrator_")
        s = np.sort(window_scores(scores))
        p = s if self.calibrator_ is None else self.calibrator_.predict(s)
        if np.any((p < 0) | (p > 1)):
            raise ValueError("scores must lie in [0, 1] when no calibrator is used")
        return binary_estimate(s, p, self.threshold)


def binary_estimate(s: NDArray[np.float64], p: NDArray[np.float64], threshold: float) -> Estimate:
    """Expected confusion matrix, metrics and standard errors for ascending scores ``s`` with
    calibrated probabilities ``p`` (see :class:`CBPE`).

    With ``m`` rows predicted positive, ``v_pos = sum_{pred} p_i (1 - p_i)`` and
    ``v_neg = sum_{not pred} p_i (1 - p_i)`` (the variances of TP and of FN), the standard
    errors are ``sqrt(v_pos + v_neg) / n`` (accuracy), ``sqrt(v_pos) / m`` (precision) and, by
    the delta method, ``sqrt(FN^2 v_pos + TP^2 v_neg) / (TP + FN)^2`` (recall),
    ``sqrt(TN^2 v_pos + FP^2 v_neg) / (TN + FP)^2`` (specificity) and
    ``2 sqrt((m + FN)^2 v_pos + TP^2 v_neg) / (TP + m + FN)^2`` (F1), with expected counts.

    Parameters
    ----------
    s : ascending scores of the window.
    p : calibrated probabilities aligned with ``s``.
    threshold : predicted positive when ``s >= threshold``.
    """
    n = s.size
    cut = int(np.searchsorted(s, threshold, side="left"))  # rows [cut:] are predicted positive
    pq = p * (1.0 - p)
    tp, fn = float(p[cut:].sum()), float(p[:cut].sum())
    auc = expected_auc_sorted(s, p)
    values, variances = confusion_metrics(
        tp, n - cut - tp, fn, cut - fn, float(pq[cut:].sum()), float(pq[:cut].sum())
    )
    values["auc"] = auc.auc
    variances["auc"] = float(np.einsum("i,i,i->", pq, auc.gradient, auc.gradient))
    values = {name: values[name] for name in BINARY_METRICS}
    errors = {
        name: float("nan") if np.isnan(values[name]) else float(np.sqrt(variances[name]))
        for name in BINARY_METRICS
    }
    confusion = np.array([[cut - fn, n - cut - tp], [fn, tp]])
    return Estimate(n_rows=n, values=values, standard_errors=errors, confusion=confusion)


def confusion_metrics(
    tp: float, fp: float, fn: float, tn: float, v_pos: float, v_neg: float
) -> tuple[dict[str, float], dict[str, float]]:
    """Precision, recall, F1, accuracy and specificity from an expected confusion matrix, and
    their variances (see :func:`binary_estimate`), from sums alone: what a profile keeps.

    Parameters
    ----------
    tp, fp, fn, tn : expected counts; ``tp + fp`` rows are predicted positive.
    v_pos, v_neg : ``sum p_i (1 - p_i)`` over the rows predicted positive and negative.

    >>> values, variances = confusion_metrics(30.0, 10.0, 20.0, 40.0, 6.0, 9.0)
    >>> values["precision"], values["accuracy"], variances["accuracy"]
    (0.75, 0.7, 0.0015)
    """
    m, n = tp + fp, tp + fp + fn + tn
    values = {
        "precision": ratio(tp, m),
        "recall": ratio(tp, tp + fn),
        "f1": ratio(2 * tp, 2 * tp + fp + fn),
        "accuracy": ratio(tp + tn, n),
        "specificity": ratio(tn, tn + fp),
    }
    variances = {
        "precision": ratio(v_pos, m * m),
        "recall": ratio(fn * fn * v_pos + tp * tp * v_neg, (tp + fn) ** 4),
        "f1": ratio(4 * ((m + fn) ** 2 * v_pos + tp * tp * v_neg), (tp + m + fn) ** 4),
        "accuracy": ratio(v_pos + v_neg, n * n),
        "specificity": ratio(tn * tn * v_pos + fp * fp * v_neg, (tn + fp) ** 4),
    }
    return values, variances
