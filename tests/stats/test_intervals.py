"""Confidence intervals against formulas written out here and against simulations with a known
truth: each interval must cover the true value about as often as it promises."""

from __future__ import annotations

import math

import numpy as np
import pytest

from tripwire.stats.intervals import (
    auc_interval,
    f1_interval,
    hanley_mcneil_se,
    mean_interval,
    wilson,
    z_for,
)

Z = 1.959963984540054  # the 97.5 % quantile of the standard normal


def wilson_by_roots(x: int, n: int, z: float = Z) -> tuple[float, float]:
    """The Wilson interval as the score test inverts it: the p with (x/n - p)^2 = z^2 p(1-p)/n,
    i.e. the roots of (1 + z^2/n) p^2 - (2 x/n + z^2/n) p + (x/n)^2 = 0."""
    phat = x / n
    roots = np.roots([1 + z * z / n, -(2 * phat + z * z / n), phat * phat])
    return float(min(roots.real)), float(max(roots.real))


def test_z_for_levels():
    assert z_for(0.95) == pytest.approx(Z, abs=1e-9)
    assert z_for(0.90) == pytest.approx(1.6448536269514722, abs=1e-9)


@pytest.mark.parametrize(("x", "n"), [(1, 10), (8, 10), (37, 120), (0, 25), (25, 25), (3, 4000)])
def test_wilson_solves_the_score_equation(x: int, n: int) -> None:
    low, high = wilson(x, n, Z)
    ref_low, ref_high = wilson_by_roots(x, n)
    assert low == pytest.approx(max(ref_low, 0.0), abs=1e-9)
    assert high == pytest.approx(min(ref_high, 1.0), abs=1e-9)


def test_wilson_textbook_value():
    # 8 successes in 10, by hand: z^2/n = 0.38415, center (0.8 + 0.19207) / 1.38415 = 0.71674,
    # half-width 1.96 / 1.38415 * sqrt(0.016 + 0.0096037) = 0.22658.
    low, high = wilson(8, 10)
    assert (round(low, 4), round(high, 4)) == (0.4902, 0.9433)


def test_wilson_without_rows_is_nan():
    assert all(math.isnan(v) for v in wilson(0, 0))


@pytest.mark.parametrize(("p", "n"), [(0.05, 60), (0.3, 40), (0.9, 200)])
def test_wilson_covers_the_true_proportion(p: float, n: int) -> None:
    rng = np.random.default_rng(7)
    hits = 0
    trials = 4000
    for x in rng.binomial(n, p, trials):
        low, high = wilson(int(x), n)
        hits += low <= p <= high
    # Nominal 95 %; Wilson's actual coverage stays within a couple of points of it.
    assert 0.92 <= hits / trials <= 0.985


def test_f1_interval_is_the_mapped_jaccard_interval():
    tp, fp, fn = 40, 10, 15
    low_j, high_j = wilson_by_roots(tp, tp + fp + fn)
    low, high = f1_interval(tp, fp, fn)
    assert low == pytest.approx(2 * low_j / (1 + low_j), abs=1e-9)
    assert high == pytest.approx(2 * high_j / (1 + high_j), abs=1e-9)
    assert low < 2 * tp / (2 * tp + fp + fn) < high


def test_f1_interval_covers_the_true_f1():
    # Rows fall in tp/fp/fn/tn with fixed probabilities; the "true" F1 is that of the
    # probabilities, 2 P(tp) / (2 P(tp) + P(fp) + P(fn)).
    probs = np.array([0.08, 0.04, 0.05, 0.83])
    true_f1 = 2 * probs[0] / (2 * probs[0] + probs[1] + probs[2])
    rng = np.random.default_rng(11)
    trials, hits = 3000, 0
    for tp, fp, fn, _ in rng.multinomial(400, probs, trials):
        low, high = f1_interval(tp, fp, fn)
        hits += low <= true_f1 <= high
    assert 0.92 <= hits / trials <= 0.985


def test_hanley_mcneil_by_hand():
    # A = 0.8, 30 positives, 50 negatives: Q1 = 0.8/1.2, Q2 = 1.28/1.8.
    a, p, n = 0.8, 30, 50
    q1, q2 = a / (2 - a), 2 * a * a / (1 + a)
    variance = (a * (1 - a) + (p - 1) * (q1 - a * a) + (n - 1) * (q2 - a * a)) / (p * n)
    assert hanley_mcneil_se(a, p, n) == pytest.approx(math.sqrt(variance), rel=1e-12)
    assert math.isnan(hanley_mcneil_se(0.8, 0, 50))


def _auc_by_ranks(pos: np.ndarray, neg: np.ndarray) -> float:
    """Mann-Whitney: the share of (positive, negative) pairs in order, ties counting half."""
    scores = np.concatenate([pos, neg])
    order = scores.argsort()
    ranks = np.empty(scores.size)
    ranks[order] = np.arange(1, scores.size + 1)
    return float((ranks[: pos.size].sum() - pos.size * (pos.size + 1) / 2) / (pos.size * neg.size))


def test_hanley_mcneil_matches_the_simulated_spread_and_covers():
    # Binormal scores: positives N(d, 1), negatives N(0, 1); the true AUC is Phi(d / sqrt 2).
    d, n_pos, n_neg = 1.2, 60, 240
    true_auc = 0.5 * (1 + math.erf(d / 2))
    rng = np.random.default_rng(3)
    aucs, hits = [], 0
    for _ in range(2000):
        auc = _auc_by_ranks(rng.normal(d, 1, n_pos), rng.normal(0, 1, n_neg))
        aucs.append(auc)
        low, high = auc_interval(auc, n_pos, n_neg)
        hits += low <= true_auc <= high
    se = hanley_mcneil_se(true_auc, n_pos, n_neg)
    assert se == pytest.approx(float(np.std(aucs)), rel=0.15)
    assert 0.92 <= hits / 2000 <= 0.98


def test_auc_interval_widens_by_the_profile_bound_and_stays_in_range():
    low, high = auc_interval(0.99, 100, 100, bound=0.0)
    wide_low, wide_high = auc_interval(0.99, 100, 100, bound=0.01)
    assert wide_low == pytest.approx(low - 0.01) and high == wide_high == 1.0


def test_mean_interval_by_hand():
    values = np.array([1.0, 2.0, 3.0, 4.0])
    half = Z * values.std(ddof=1) / math.sqrt(values.size)
    low, high = mean_interval(values.sum(), np.square(values).sum(), values.size)
    assert (low, high) == pytest.approx((2.5 - half, 2.5 + half), abs=1e-12)
    assert all(math.isnan(v) for v in mean_interval(1.0, 1.0, 1))
    assert all(math.isnan(v) for v in mean_interval(3.0, float("nan"), 3))
