"""Isotonic calibrator against scikit-learn; the cross-validated calibrate-or-not decision."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.isotonic import IsotonicRegression

from tripwire.estimation import CBPE, IsotonicCalibrator, check_calibration


def sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


@pytest.mark.parametrize("seed", range(3))
@pytest.mark.parametrize("tied", [False, True])
def test_isotonic_matches_scikit_learn(seed: int, tied: bool) -> None:
    rng = np.random.default_rng(seed)
    s = rng.normal(size=3000)
    if tied:
        s = np.round(s, 1)
    y = (rng.random(3000) < sigmoid(1.5 * s)).astype(float)
    ours = IsotonicCalibrator().fit(s, y)
    theirs = IsotonicRegression(out_of_bounds="clip").fit(s, y)
    grid = np.concatenate([np.linspace(-5, 5, 2001), s])
    np.testing.assert_allclose(ours.predict(grid), theirs.predict(grid), atol=1e-12)
    assert np.all(np.diff(ours.knots_x_) >= 0) and np.all(np.diff(ours.knots_y_) >= 0)


def test_isotonic_small_cases_and_nulls() -> None:
    cal = IsotonicCalibrator().fit([3.0, 1.0, 2.0, 2.0, float("nan")], [1, 0, 1, 0, 1])
    np.testing.assert_allclose(cal.predict([1.0, 2.0, 3.0]), [0.0, 0.5, 1.0])
    assert np.isnan(cal.predict([float("nan")])[0])
    one = IsotonicCalibrator().fit([0.4], [1])
    np.testing.assert_allclose(one.predict([0.0, 1.0]), [1.0, 1.0])
    with pytest.raises(RuntimeError, match="not fitted"):
        IsotonicCalibrator().predict([0.5])
    with pytest.raises(ValueError, match="0 and 1"):
        IsotonicCalibrator().fit([0.1, 0.2], [0, 2])


def world(seed: int, n: int, temperature: float) -> tuple[np.ndarray, np.ndarray]:
    """True P(y=1|x) = sigmoid(2x); the model scores sigmoid(2x / temperature)."""
    rng = np.random.default_rng(seed)
    x = rng.normal(0.0, 1.5, n)
    y = (rng.random(n) < sigmoid(2 * x)).astype(float)
    return sigmoid(2 * x / temperature), y


@pytest.mark.parametrize("seed", range(5))
def test_calibrated_scores_keep_no_calibrator(seed: int) -> None:
    scores, labels = world(seed, 20_000, temperature=1.0)
    check = check_calibration(scores, labels, seed=seed)
    assert not check.calibrate, check.reason
    assert check.improvement < 2 * check.improvement_se
    assert CBPE().fit(scores, labels).calibrator_ is None


@pytest.mark.parametrize("seed", range(3))
@pytest.mark.parametrize("temperature", [0.4, 2.5])  # over- and under-confident
def test_miscalibrated_scores_get_a_calibrator(seed: int, temperature: float) -> None:
    scores, labels = world(seed, 20_000, temperature)
    check = check_calibration(scores, labels, seed=seed)
    assert check.calibrate, check.reason
    assert check.brier_calibrated < check.brier_raw
    assert check.ece_calibrated < check.ece_raw
    model = CBPE().fit(scores, labels)
    assert model.calibrator_ is not None
    # The calibrator recovers the true probability sigmoid(2x) from the model's score.
    x = np.linspace(-1.5, 1.5, 61)
    calibrated = model.probabilities(sigmoid(2 * x / temperature))
    assert np.max(np.abs(calibrated - sigmoid(2 * x))) < 0.06


def test_scores_outside_the_unit_interval_need_a_calibrator() -> None:
    scores, labels = world(0, 5000, temperature=1.0)
    logits = np.log(scores / (1 - scores))
    check = check_calibration(logits, labels)
    assert check.calibrate and "outside [0, 1]" in check.reason
    assert np.isnan(check.brier_raw)
    with pytest.raises(ValueError, match="need calibration"):
        CBPE(calibration="never").fit(logits, labels)
    model = CBPE(threshold=0.0).fit(logits, labels)  # logit 0 is probability 1/2
    assert model.calibrator_ is not None
    assert model.estimate(logits)["accuracy"] == pytest.approx(
        CBPE().fit(scores, labels).estimate(scores)["accuracy"], abs=0.01
    )


def test_forced_choices_and_small_references() -> None:
    scores, labels = world(1, 2000, temperature=1.0)
    assert CBPE(calibration="always").fit(scores, labels).calibrator_ is not None
    assert CBPE(calibration="never").fit(scores, labels).calibrator_ is None
    check = check_calibration(scores[:7], labels[:7])
    assert not check.calibrate and "too few" in check.reason
    logits = np.log(scores[:7] / (1 - scores[:7]))
    check = check_calibration(logits, labels[:7])
    assert check.calibrate and "too few" in check.reason  # not probabilities: calibrate anyway
    with pytest.raises(ValueError, match="folds"):
        check_calibration(scores, labels, folds=1)
