"""Does a calibrator help? K-fold cross-validation of isotonic calibration on the reference."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
from numpy.typing import ArrayLike, NDArray

from tripwire.stats.classification import ece

from ._inputs import scores_and_labels
from .isotonic import IsotonicCalibrator, isotonic_knots

Calibration = Literal["auto", "always", "never"]


@dataclass(frozen=True)
class CalibrationCheck:
    """The outcome of :func:`check_calibration`.

    Attributes
    ----------
    calibrate : whether isotonic calibration is applied.
    reason : one line saying why.
    brier_raw : Brier score of the raw scores (NaN when they are not probabilities).
    brier_calibrated : out-of-fold Brier score of the cross-validated calibrators.
    improvement, improvement_se : mean per-row Brier improvement of calibration and its
        standard error.
    ece_raw, ece_calibrated : expected calibration error (10 bins) of the raw scores and of
        the out-of-fold calibrated probabilities, for the record.
    """

    calibrate: bool
    reason: str
    brier_raw: float
    brier_calibrated: float
    improvement: float
    improvement_se: float
    ece_raw: float
    ece_calibrated: float


def _nan_check(calibrate: bool, reason: str) -> CalibrationCheck:
    nan = float("nan")
    return CalibrationCheck(calibrate, reason, nan, nan, nan, nan, nan, nan)


def check_calibration_sorted(
    s: NDArray[np.float64],
    y: NDArray[np.float64],
    fold: NDArray[np.intp],
    folds: int,
    z: float,
) -> CalibrationCheck:
    """:func:`check_calibration` on scores already in ascending order, with fold ids given."""
    n = s.size
    probabilities = n == 0 or (float(s[0]) >= 0.0 and float(s[-1]) <= 1.0)
    too_few = _nan_check(
        not probabilities,
        f"{n} reference rows: too few to cross-validate a calibrator"
        + ("" if probabilities else "; scores outside [0, 1] get one anyway"),
    )
    if n < 2 * folds:
        return too_few
    out_of_fold = np.empty(n)
    for k in range(folds):
        held = fold == k
        train = ~held
        if not train.any():
            return too_few
        knot_x, knot_y = isotonic_knots(s[train], y[train])
        out_of_fold[held] = np.interp(s[held], knot_x, knot_y)
    brier_cal = np.square(out_of_fold - y)
    ece_cal = ece(y, out_of_fold)
    if not probabilities:
        reason = "scores lie outside [0, 1]: they need a calibrator to be probabilities"
        nan = float("nan")
        mean_cal = float(brier_cal.mean())
        return CalibrationCheck(True, reason, nan, mean_cal, nan, nan, nan, ece_cal)
    brier_raw = np.square(s - y)
    gain = brier_raw - brier_cal
    improvement = float(gain.mean())
    se = float(gain.std(ddof=1) / np.sqrt(n))
    calibrate = improvement > z * se
    verdict = "improves" if calibrate else "does not improve"
    reason = (
        f"{folds}-fold cross-validated isotonic calibration {verdict} the Brier score "
        f"by more than {z:g} standard errors ({improvement:.3g} ± {se:.2g})"
    )
    return CalibrationCheck(
        calibrate=calibrate,
        reason=reason,
        brier_raw=float(brier_raw.mean()),
        brier_calibrated=float(brier_cal.mean()),
        improvement=improvement,
        improvement_se=se,
        ece_raw=ece(y, s),
        ece_calibrated=ece_cal,
    )


def check_calibration(
    scores: ArrayLike, labels: ArrayLike, folds: int = 5, z: float = 2.0, seed: int = 0
) -> CalibrationCheck:
    """Decide by cross-validation whether isotonic calibration makes scores better probabilities.

    Each reference row goes at random to one of ``folds`` parts; for each, an isotonic calibrator
    (:func:`~tripwire.estimation.isotonic.isotonic_knots`) is fitted on the other parts and
    applied to it, so every row gets an out-of-fold calibrated probability ``c_i``. With
    ``d_i = (s_i - y_i)^2 - (c_i - y_i)^2`` the per-row Brier improvement, calibration is chosen
    when ``mean(d) > z * sd(d) / sqrt(n)``: it must beat the raw scores by more than sampling
    noise. A calibrated model loses a little to the calibrator's own estimation noise and keeps
    its raw scores; an over- or under-confident one gains and gets a calibrator. Scores outside
    [0, 1] always need one. Too few rows (fewer than ``2 * folds``) means no calibrator for
    scores in [0, 1].

    Parameters
    ----------
    scores : the model's scores on the reference.
    labels : 0/1 labels on the reference.
    folds : number of cross-validation folds (>= 2).
    z : how many standard errors the improvement must exceed.
    seed : seed of the random fold assignment.

    Reference: Brier, G. W. (1950), "Verification of forecasts expressed in terms of
    probability", Monthly Weather Review 78(1). NannyML's ``needs_calibration`` makes the same
    decision from the expected calibration error (equal-count bins) of shuffle-split test sets,
    with no margin for noise.

    >>> rng = np.random.default_rng(0)
    >>> p = rng.random(4000)
    >>> y = rng.random(4000) < p
    >>> check_calibration(p, y).calibrate
    False
    >>> check_calibration(np.round(p), y).calibrate
    True
    """
    if folds < 2:
        raise ValueError("folds must be >= 2")
    s, y = scores_and_labels(scores, labels)
    order = np.argsort(s)
    fold = np.random.default_rng(seed).integers(0, folds, s.size)  # iid, so no need to sort
    return check_calibration_sorted(s[order], y[order], fold, folds, z)


def check_options(calibration: str, folds: int) -> None:
    """Refuse an unknown ``calibration`` choice or fewer than two folds.

    >>> check_options("sometimes", 5)
    Traceback (most recent call last):
    ...
    ValueError: calibration must be 'auto', 'always' or 'never'
    """
    if calibration not in ("auto", "always", "never"):
        raise ValueError("calibration must be 'auto', 'always' or 'never'")
    if folds < 2:
        raise ValueError("folds must be >= 2")


def fit_calibration(
    calibration: Calibration,
    s: NDArray[np.float64],
    y: NDArray[np.float64],
    fold: NDArray[np.intp],
    folds: int,
    z: float,
) -> tuple[CalibrationCheck, IsotonicCalibrator | None]:
    """The calibration decision for ascending scores ``s`` with 0/1 labels ``y``, and the
    calibrator fitted on all of them when the decision is to calibrate.

    ``"auto"`` runs :func:`check_calibration_sorted` with the given fold ids; ``"always"`` and
    ``"never"`` decide without it, and ``"never"`` refuses scores outside [0, 1].

    Parameters
    ----------
    calibration : ``"auto"``, ``"always"`` or ``"never"``.
    s, y : ascending scores and their labels.
    fold, folds, z : as :func:`check_calibration_sorted`.
    """
    if calibration == "auto":
        check = check_calibration_sorted(s, y, fold, folds, z)
    elif calibration == "never" and s.size and (s[0] < 0 or s[-1] > 1):
        raise ValueError("scores outside [0, 1] need calibration ('auto' or 'always')")
    else:
        check = _nan_check(calibration == "always", f"calibration={calibration!r}")
    return check, IsotonicCalibrator().fit_sorted(s, y) if check.calibrate else None
