"""Expected ROC AUC against an O(n^2) double sum, a Monte Carlo draw and finite differences."""

from __future__ import annotations

import math

import numpy as np
import pytest

from tripwire.estimation import expected_roc_auc
from tripwire.estimation.expected_auc import expected_auc_sorted


def brute_force(scores: np.ndarray, p: np.ndarray) -> float:
    """sum_{i != j} p_i (1 - p_j) K_ij / sum_{i != j} p_i (1 - p_j), one pair at a time."""
    num = den = 0.0
    for i in range(scores.size):
        for j in range(scores.size):
            if i == j:
                continue
            weight = p[i] * (1 - p[j])
            den += weight
            if scores[i] > scores[j]:
                num += weight
            elif scores[i] == scores[j]:
                num += 0.5 * weight
    return num / den if den > 0 else math.nan


def case(seed: int, n: int, tied: bool) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    s = rng.random(n)
    if tied:
        s = np.round(s * 4) / 4  # at most 5 distinct scores
    p = rng.random(n)
    p[rng.random(n) < 0.15] = 0.0
    p[rng.random(n) < 0.15] = 1.0
    return s, p


@pytest.mark.parametrize("n", [2, 3, 7, 30, 120])
@pytest.mark.parametrize("tied", [False, True])
@pytest.mark.parametrize("seed", range(4))
def test_matches_the_double_sum(n: int, tied: bool, seed: int) -> None:
    s, p = case(seed, n, tied)
    expected = brute_force(s, p)
    got = expected_roc_auc(s, p)
    if math.isnan(expected):
        assert math.isnan(got)
    else:
        assert got == pytest.approx(expected, abs=1e-12)


def test_row_order_does_not_matter() -> None:
    s, p = case(9, 50, tied=True)
    perm = np.random.default_rng(1).permutation(50)
    assert expected_roc_auc(s[perm], p[perm]) == pytest.approx(expected_roc_auc(s, p), abs=1e-12)


def test_degenerate_cases() -> None:
    assert math.isnan(expected_roc_auc([], []))
    assert math.isnan(expected_roc_auc([0.3], [0.5]))
    assert math.isnan(expected_roc_auc([0.1, 0.9], [1.0, 1.0]))  # no pair can be mixed
    assert expected_roc_auc([0.1, 0.9], [0.0, 1.0]) == 1.0
    assert expected_roc_auc([0.1, 0.9], [1.0, 0.0]) == 0.0
    assert expected_roc_auc([0.5, 0.5, 0.5], [0.2, 0.6, 0.9]) == pytest.approx(0.5)  # all tied
    assert expected_roc_auc([0.2, float("nan"), 0.8], [0.0, 0.5, 1.0]) == 1.0
    with pytest.raises(ValueError, match="probabilities"):
        expected_roc_auc([0.1, 0.2], [0.5, 1.5])


def test_is_the_ratio_of_expectations_of_simulated_labels() -> None:
    """E[U] / E[N+ N-] over 20,000 label draws, with U the Mann-Whitney count of the draw."""
    rng = np.random.default_rng(3)
    s, p = case(5, 40, tied=True)
    y = rng.random((20_000, s.size)) < p
    greater = (s[:, None] > s[None, :]) + 0.5 * (s[:, None] == s[None, :])
    np.fill_diagonal(greater, 0.0)
    u = np.einsum("ri,ij,rj->r", y.astype(float), greater, (~y).astype(float))
    pairs = y.sum(axis=1) * (~y).sum(axis=1)
    simulated = u.mean() / pairs.mean()
    se = np.std(u - expected_roc_auc(s, p) * pairs) / pairs.mean() / np.sqrt(y.shape[0])
    assert expected_roc_auc(s, p) == pytest.approx(simulated, abs=4 * se)


@pytest.mark.parametrize("tied", [False, True])
def test_gradient_matches_finite_differences(tied: bool) -> None:
    """d/dz_k of sum_{i != j} z_i (1 - z_j) K_ij / sum_{i != j} z_i (1 - z_j) at z = p."""
    s, p = case(7, 25, tied=tied)
    order = np.argsort(s, kind="stable")
    s, p = s[order], np.clip(p[order], 0.05, 0.95)

    def auc_of(z: np.ndarray) -> float:
        greater = (s[:, None] > s[None, :]) + 0.5 * (s[:, None] == s[None, :])
        pair = z[:, None] * (1 - z[None, :])
        np.fill_diagonal(pair, 0.0)
        return float((pair * greater).sum() / pair.sum())

    gradient = expected_auc_sorted(s, p).gradient
    h = 1e-6
    for k in range(s.size):
        up, down = p.copy(), p.copy()
        up[k] += h
        down[k] -= h
        numeric = (auc_of(up) - auc_of(down)) / (2 * h)
        assert gradient[k] == pytest.approx(numeric, abs=1e-7), k
