"""Direct loss estimation (DLE) of a regression model's MAE and RMSE, without labels."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Self

import numpy as np
from numpy.typing import ArrayLike, NDArray

from ._inputs import require_fitted
from .estimate import Estimate

CHUNK_ROWS = 16_384  # rows per block of the design matrix: memory stays O(block x basis)


def _inputs(
    features: ArrayLike | None, predictions: ArrayLike
) -> tuple[NDArray[np.float64], NDArray[np.bool_]]:
    """The model inputs as an (n, d + 1) matrix, prediction last, and the rows to keep (those
    with a prediction)."""
    pred = np.asarray(predictions, dtype=np.float64)
    if pred.ndim != 1:
        raise ValueError(f"predictions must be 1-D, got shape {pred.shape}")
    if features is None:
        x = pred[:, None]
    else:
        f = np.asarray(features, dtype=np.float64)
        if f.ndim == 1:
            f = f[:, None]
        if f.ndim != 2 or f.shape[0] != pred.size:
            raise ValueError(f"features must be ({pred.size}, d), got shape {f.shape}")
        x = np.column_stack([f, pred])
    if np.any(np.isinf(x)):
        raise ValueError("features and predictions must be finite (NaN is null)")
    return x, ~np.isnan(pred)


class DLE:
    """Estimate a regression model's MAE and RMSE on a window whose targets are not known yet,
    with a second model of the loss learnt on the labelled reference.

    ``fit`` regresses the absolute error ``|y - ŷ|`` and the squared error ``(y - ŷ)^2`` of
    every reference row on the model's inputs and its prediction; ``estimate`` averages the
    predicted losses over a window: ``MAE ≈ mean(â_i)`` and ``RMSE ≈ sqrt(mean(ŝ_i))``.

    The loss model is additive and piecewise linear (a linear spline): each input, standardised
    on the reference, enters linearly and through hinges ``max(0, z - k)`` at ``knots`` of its
    reference quantiles, fitted by ridge-stabilised least squares on normal equations built in
    blocks of rows. It follows losses that grow or shrink along each input (heteroscedastic
    noise, a region the model fits badly), not interactions between inputs. NannyML's DLE
    uses a gradient-boosted model (LightGBM) for the same job.

    Standard errors are those of the realized metric around the estimate given the window's
    inputs: with ``Var(|e_i|) ≈ ŝ_i - â_i^2``, ``se(MAE) = sqrt(sum_i Var(|e_i|)) / n``; with
    ``Var(e_i^2) ≈ κ ŝ_i^2`` (``κ`` fitted on the reference, 2 for normal errors),
    ``se(MSE) = sqrt(κ sum_i ŝ_i^2) / n`` and ``se(RMSE) = se(MSE) / (2 RMSE)``.

    Assumptions: no concept drift (the loss given the inputs is as on the reference), the
    loss model captures how the loss depends on the inputs, and no shift into input regions
    the reference did not cover (beyond the reference's range the hinges extrapolate linearly).

    Parameters
    ----------
    knots : hinge knots per input, at evenly spaced reference quantiles.
    ridge : ridge penalty, relative to the mean diagonal of the normal equations.

    Attributes
    ----------
    center_, scale_ : per input (features, then the prediction), the reference mean and
        standard deviation used to standardise it; a null feature is replaced by its mean.
    knots_ : (inputs, knots) standardised knot positions.
    coef_ : (basis, 2) coefficients of the absolute- and squared-error models.
    kappa_ : ``Var(e^2 | x) / E[e^2 | x]^2`` on the reference.
    n_reference_ : reference rows used.

    Reference: NannyML, "Performance estimation: Direct Loss Estimation (DLE)" (documentation,
    how it works); Friedman, J. H. (1991), "Multivariate adaptive regression splines", Ann.
    Statist. 19(1) (hinge functions).

    >>> rng = np.random.default_rng(0)
    >>> x = rng.normal(size=(20_000, 1))
    >>> y = x[:, 0] + rng.normal(size=20_000) * (0.2 + np.abs(x[:, 0]))
    >>> model = DLE().fit(x, x[:, 0], y)
    >>> near, far = rng.normal(0.0, 0.1, (5000, 1)), rng.normal(2.0, 0.1, (5000, 1))
    >>> round(model.estimate(near, near[:, 0])["mae"], 1)  # truth 0.8 * (0.2 + 0.08)
    0.2
    >>> round(model.estimate(far, far[:, 0])["mae"], 1)  # truth 0.8 * (0.2 + 2)
    1.8
    """

    center_: NDArray[np.float64]
    scale_: NDArray[np.float64]
    knots_: NDArray[np.float64]
    coef_: NDArray[np.float64]
    kappa_: float
    n_reference_: int

    def __init__(self, knots: int = 8, ridge: float = 1e-6) -> None:
        self.knots = knots
        self.ridge = ridge

    def _design(self, x: NDArray[np.float64]) -> NDArray[np.float64]:
        """Basis of one block of inputs: intercept, then per input ``z`` and its hinges."""
        z = (x - self.center_) / self.scale_
        z[np.isnan(z)] = 0.0  # a null feature is its reference mean
        k = self.knots_.shape[1]
        design = np.empty((x.shape[0], 1 + z.shape[1] * (1 + k)), order="F")  # columns contiguous
        design[:, 0] = 1.0
        for j in range(z.shape[1]):
            first = 1 + j * (1 + k)
            design[:, first] = z[:, j]
            hinges = design[:, first + 1 : first + 1 + k]
            np.subtract(z[:, j, None], self.knots_[j], out=hinges)
            np.maximum(hinges, 0.0, out=hinges)
        return design

    def _blocks(self, x: NDArray[np.float64]) -> Iterator[tuple[slice, NDArray[np.float64]]]:
        for start in range(0, x.shape[0], CHUNK_ROWS):
            rows = slice(start, start + CHUNK_ROWS)
            yield rows, self._design(x[rows])

    def fit(self, features: ArrayLike | None, predictions: ArrayLike, targets: ArrayLike) -> Self:
        """Learn the loss models on a labelled reference.

        Parameters
        ----------
        features : (n, d) numeric model inputs (encode categories first), or ``None`` to use
            the prediction alone.
        predictions : the model's predictions ``ŷ``.
        targets : the true values ``y``; rows with a null prediction or target are dropped.
        """
        if self.knots < 0:
            raise ValueError("knots must be >= 0")
        x, keep = _inputs(features, predictions)
        y = np.asarray(targets, dtype=np.float64).reshape(-1)
        if y.size != x.shape[0]:
            raise ValueError(f"expected {x.shape[0]} targets, got {y.size}")
        keep &= ~np.isnan(y)
        x, y = x[keep], y[keep]
        if x.shape[0] < 2:
            raise ValueError("the reference needs at least two labelled rows")
        error = y - x[:, -1]
        losses = np.column_stack([np.abs(error), error * error])
        self.center_ = np.nanmean(x, axis=0)
        scale = np.nanstd(x, axis=0)
        self.scale_ = np.where(scale > 0, scale, 1.0)
        levels = np.linspace(0.0, 1.0, self.knots + 2)[1:-1]
        z = (x - self.center_) / self.scale_
        knots = np.nanquantile(z, levels, axis=0).T if self.knots else np.empty((x.shape[1], 0))
        self.knots_ = np.asarray(knots, dtype=np.float64).reshape(x.shape[1], self.knots)
        width = 1 + x.shape[1] * (1 + self.knots)
        gram, rhs = np.zeros((width, width)), np.zeros((width, 2))
        for rows, design in self._blocks(x):
            gram += design.T @ design
            rhs += design.T @ losses[rows]
        penalty = self.ridge * float(np.trace(gram)) / gram.shape[0]
        self.coef_ = np.linalg.solve(gram + penalty * np.eye(gram.shape[0]), rhs)
        squared = np.maximum(self._predict(x)[:, 1], 0.0)
        spread = float(np.sum(squared * squared))
        self.kappa_ = float(np.sum((losses[:, 1] - squared) ** 2)) / spread if spread else 2.0
        self.n_reference_ = int(x.shape[0])
        return self

    def _predict(self, x: NDArray[np.float64]) -> NDArray[np.float64]:
        out = np.empty((x.shape[0], 2))
        for rows, design in self._blocks(x):
            out[rows] = design @ self.coef_
        return out

    def predict_loss(
        self, features: ArrayLike | None, predictions: ArrayLike
    ) -> NDArray[np.float64]:
        """Per row, the predicted absolute and squared error, shape (n, 2), clipped at 0.

        Parameters
        ----------
        features : (n, d) model inputs as at fit (or ``None``).
        predictions : the model's predictions.
        """
        require_fitted(self, "coef_")
        x, _ = _inputs(features, predictions)
        return np.maximum(self._predict(x), 0.0)

    def estimate(self, features: ArrayLike | None, predictions: ArrayLike) -> Estimate:
        """Estimated MAE and RMSE of one window (rows with a null prediction are skipped).

        Parameters
        ----------
        features : (n, d) model inputs on the window, as at fit (or ``None``).
        predictions : the model's predictions on the window.
        """
        require_fitted(self, "coef_")
        x, keep = _inputs(features, predictions)
        if x.shape[1] != self.center_.size:
            raise ValueError(f"expected {self.center_.size - 1} feature columns")
        x = x[keep]
        n = x.shape[0]
        if n == 0:
            nan = float("nan")
            return Estimate(0, {"mae": nan, "rmse": nan}, {"mae": nan, "rmse": nan})
        loss = np.maximum(self._predict(x), 0.0)
        absolute, squared = loss[:, 0], loss[:, 1]
        mae, mse = float(absolute.mean()), float(squared.mean())
        rmse = float(np.sqrt(mse))
        var_abs = float(np.sum(np.maximum(squared - absolute * absolute, 0.0)))
        se_mse = float(np.sqrt(self.kappa_ * np.sum(squared * squared))) / n
        return Estimate(
            n_rows=n,
            values={"mae": mae, "rmse": rmse},
            standard_errors={
                "mae": float(np.sqrt(var_abs)) / n,
                "rmse": se_mse / (2 * rmse) if rmse > 0 else float("nan"),
            },
        )
