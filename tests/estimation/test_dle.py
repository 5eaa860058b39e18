"""Direct loss estimation in a simulated regression world with a known noise level.

y = 1.5 x1 - x2 + bias(x2) + noise, the noise's standard deviation growing with |x1|; the model
predicts 1.5 x1 - x2, so it is worse where |x1| is large and where x2 > 1 (the bias). The
realized MAE and RMSE come from drawn targets the estimator never sees.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

from tripwire.estimation import DLE

METRICS = ("mae", "rmse")


def draw(
    rng: np.random.Generator, n: int, mean: tuple[float, float] = (0.0, 0.0), sd: float = 1.0
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    x = rng.normal(mean, sd, (n, 2))
    prediction = 1.5 * x[:, 0] - x[:, 1]
    noise = rng.normal(size=n) * (0.3 + 0.7 * np.abs(x[:, 0]))
    return x, prediction, prediction + bias(x) + noise


def bias(x: np.ndarray) -> np.ndarray:
    """Where the model is wrong on average: x2 above 1."""
    return 1.5 * np.maximum(x[:, 1] - 1.0, 0.0)


@pytest.fixture(scope="module")
def model() -> DLE:
    """The loss model, fitted once on a 300,000-row reference."""
    return DLE().fit(*draw(np.random.default_rng(31), 300_000))


def realized(prediction: np.ndarray, target: np.ndarray) -> dict[str, float]:
    error = target - prediction
    return {"mae": float(np.mean(np.abs(error))), "rmse": float(np.sqrt(np.mean(error**2)))}


def test_loss_model_is_the_least_squares_fit_of_the_spline_basis() -> None:
    """The same basis built here by hand, solved by numpy's lstsq (without a ridge). The
    prediction gets its own noise so that it is not a linear function of the features."""
    rng = np.random.default_rng(30)
    x, prediction, target = draw(rng, 5000)
    prediction = prediction + rng.normal(0.0, 0.3, prediction.size)
    model = DLE(knots=3, ridge=0.0).fit(x, prediction, target)
    inputs = np.column_stack([x, prediction])
    z = (inputs - inputs.mean(axis=0)) / inputs.std(axis=0)
    columns = [np.ones(len(z))]
    for j in range(z.shape[1]):
        columns.append(z[:, j])
        columns += [np.maximum(z[:, j] - np.quantile(z[:, j], q), 0.0) for q in (0.25, 0.5, 0.75)]
    design = np.column_stack(columns)
    error = target - prediction
    losses = np.column_stack([np.abs(error), error**2])
    coef, *_ = np.linalg.lstsq(design, losses, rcond=None)
    np.testing.assert_allclose(model.coef_, coef, rtol=1e-8, atol=1e-10)
    fitted = np.maximum(design @ coef, 0.0)
    np.testing.assert_allclose(model.predict_loss(x, prediction), fitted, rtol=1e-8, atol=1e-10)
    assert np.abs(fitted - losses).sum() > 0  # a fit, not an interpolation


def test_windows_without_shift_land_within_standard_errors(
    model: DLE, window_errors: Callable[[], Any]
) -> None:
    rng = np.random.default_rng(35)
    errors = window_errors()
    for _ in range(150):
        x, prediction, target = draw(rng, 2000)
        errors.add(model.estimate(x, prediction), realized(prediction, target))
    errors.check()


@pytest.mark.parametrize(
    ("mean", "sd"),
    [((0.0, 0.0), 0.3), ((1.2, 0.0), 0.5), ((0.0, 1.5), 0.5)],
    ids=["calm centre", "noisy x1", "biased x2"],
)
def test_estimate_follows_covariate_shift(
    model: DLE, mean: tuple[float, float], sd: float, follows_shift: Callable[..., None]
) -> None:
    rng = np.random.default_rng(32)
    x0, p0, t0 = draw(rng, 20_000)
    x1, p1, t1 = draw(rng, 20_000, mean, sd)
    # The additive loss model's own error (it cannot represent |bias(x2) + noise(x1)| exactly)
    # adds to the sampling error: allow 6% of the value on top of 4 standard errors.
    follows_shift(
        model.estimate(x0, p0),
        model.estimate(x1, p1),
        realized(p0, t0),
        realized(p1, t1),
        slack=0.06,
    )


def test_standard_errors_match_the_spread_of_simulated_targets(model: DLE) -> None:
    """Fix one window's inputs, draw its targets 2000 times, compare the realized spread."""
    rng = np.random.default_rng(33)
    x, prediction, _ = draw(rng, 2000)
    estimate = model.estimate(x, prediction)
    sigma = 0.3 + 0.7 * np.abs(x[:, 0])
    error = bias(x) + rng.normal(size=(2000, x.shape[0])) * sigma
    simulated = {
        "mae": np.mean(np.abs(error), axis=1),
        "rmse": np.sqrt(np.mean(error**2, axis=1)),
    }
    for name in METRICS:
        se = estimate.standard_errors[name]
        assert np.std(simulated[name]) == pytest.approx(se, rel=0.15), name
        assert np.mean(simulated[name]) == pytest.approx(estimate[name], abs=2 * se), name


def test_prediction_only_nulls_and_misuse() -> None:
    rng = np.random.default_rng(34)
    x, prediction, target = draw(rng, 3000)
    alone = DLE().fit(None, prediction, target)
    assert alone.coef_.shape == (1 + 1 * (1 + alone.knots), 2)
    assert alone.estimate(None, prediction[:100]).n_rows == 100
    model = DLE().fit(x, prediction, target)
    x_nulls, p_nulls = x[:200].copy(), prediction[:200].copy()
    x_nulls[3, 0] = np.nan  # a null feature: imputed with the reference mean
    p_nulls[4] = np.nan  # a null prediction: the row is skipped
    estimate = model.estimate(x_nulls, p_nulls)
    assert estimate.n_rows == 199 and not math.isnan(estimate["mae"])
    assert model.predict_loss(x[:10], prediction[:10]).shape == (10, 2)
    assert np.all(model.predict_loss(x[:10], prediction[:10]) >= 0)
    empty = model.estimate(np.empty((0, 2)), np.empty(0))
    assert empty.n_rows == 0 and math.isnan(empty["rmse"])
    with pytest.raises(ValueError, match="feature columns"):
        model.estimate(x[:, :1], prediction)
    with pytest.raises(RuntimeError, match="not fitted"):
        DLE().estimate(x, prediction)
    with pytest.raises(ValueError, match="two labelled rows"):
        DLE().fit(x[:1], prediction[:1], target[:1])
