"""Distances between a reference window and a current window, computed from their profiles.

These never touch raw values. PSI, Jensen-Shannon and Hellinger are exact (they are defined on
the PSI buckets, whose counts the profile holds exactly). KS and Wasserstein are computed on the
fine grid and come with a bound that the profile itself certifies:

* ``ks_from_profiles``: ``D_grid <= D_exact <= D_grid + bound`` where ``bound`` is the largest
  share of the reference strictly between two neighbouring grid points, about ``1 / grid_size``.
* ``wasserstein_from_profiles``: ``W_exact - bound <= W <= W_exact``. The integral of
  ``F_ref - F_cur`` over each grid cell is exact (the profile keeps each cell's sum); only a cell
  where the sign of the difference may change inside contributes to ``bound``, by at most twice
  the cell's width times the smaller excursion of the difference to either side of zero.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from tripwire.profile.numeric import Floats, NumericBins, NumericWindow
from tripwire.stats import ks_pvalue


class Estimate(NamedTuple):
    """A statistic computed from profiles and its certified absolute error bound."""

    value: float
    bound: float


def _cdf_at_grid(window: NumericWindow) -> tuple[Floats, Floats]:
    """Share of values below each grid point, and at or below it."""
    grid_size = window.point_counts.size
    cells = np.cumsum(window.cell_counts)[:grid_size]
    points = np.cumsum(window.point_counts)
    below = (cells + points - window.point_counts) / window.n
    return below, (cells + points) / window.n


def ks_from_profiles(reference: NumericWindow, current: NumericWindow) -> Estimate:
    """Two-sample KS statistic evaluated on both sides of every grid point and at ±inf."""
    if reference.n == 0 or current.n == 0:
        return Estimate(float("nan"), float("nan"))
    ref_below, ref_upto = _cdf_at_grid(reference)
    cur_below, cur_upto = _cdf_at_grid(current)
    gaps: list[Floats | list[float]] = [
        np.abs(ref_below - cur_below),
        np.abs(ref_upto - cur_upto),
        [abs(reference.n_neginf / reference.n - current.n_neginf / current.n)],
        [abs(reference.n_posinf / reference.n - current.n_posinf / current.n)],
    ]
    statistic = max(float(np.max(g, initial=0.0)) for g in gaps)
    bound = float(np.max(reference.cell_counts[1:-1], initial=0) / reference.n)
    return Estimate(statistic, bound)


def ks_pvalue_from_profiles(reference: NumericWindow, current: NumericWindow) -> float:
    statistic = ks_from_profiles(reference, current).value
    return ks_pvalue(statistic, reference.n, current.n)


def wasserstein_from_profiles(
    bins: NumericBins, reference: NumericWindow, current: NumericWindow
) -> Estimate:
    """Wasserstein-1 distance of the finite values, ``integral |F_ref - F_cur| dx``."""
    n_ref, n_cur = reference.moments.n, current.moments.n
    grid = bins.grid
    if n_ref == 0 or n_cur == 0 or grid.size == 0:
        return Estimate(float("nan"), float("nan"))

    def finite_cells(w: NumericWindow) -> Floats:
        cells = w.cell_counts.astype(np.float64)
        cells[0] -= w.n_neginf
        cells[-1] -= w.n_posinf
        return cells

    ref_cells, cur_cells = finite_cells(reference), finite_cells(current)

    def tails(cells: Floats, sums: Floats, n: int) -> tuple[float, float]:
        # Integral of F below the grid and of 1 - F above it, from the outer cells' sums.
        return (
            (cells[0] * grid[0] - sums[0]) / n,
            (sums[-1] - cells[-1] * grid[-1]) / n,
        )

    ref_low, ref_high = tails(ref_cells, reference.cell_sums, n_ref)
    cur_low, cur_high = tails(cur_cells, current.cell_sums, n_cur)
    total = abs(ref_low - cur_low) + abs(ref_high - cur_high)

    width = np.diff(grid)
    ref_share = ref_cells[1:-1] / n_ref
    cur_share = cur_cells[1:-1] / n_cur
    # CDFs just right of each cell's left grid point (finite values only).
    ref_cdf = (np.cumsum(ref_cells)[:-1] + np.cumsum(reference.point_counts)) / n_ref
    cur_cdf = (np.cumsum(cur_cells)[:-1] + np.cumsum(current.point_counts)) / n_cur

    def cell_integrals(cdf: Floats, cells: Floats, sums: Floats, n: int) -> Floats:
        return cdf[:-1] * width + (cells[1:-1] * grid[1:] - sums[1:-1]) / n

    signed = cell_integrals(ref_cdf, ref_cells, reference.cell_sums, n_ref) - cell_integrals(
        cur_cdf, cur_cells, current.cell_sums, n_cur
    )
    total += float(np.abs(signed).sum())
    # Inside a cell F_ref - F_cur stays within [start - cur_share, start + ref_share]. Taking
    # |integral| instead of integral |.| loses 2 min(positive part, negative part), at most
    # twice the width times the smaller of the two possible excursions.
    start = ref_cdf[:-1] - cur_cdf[:-1]
    above = np.maximum(start + ref_share, 0.0)
    below = np.maximum(cur_share - start, 0.0)
    bound = float((2 * width * np.minimum(above, below)).sum())
    return Estimate(total, bound)
