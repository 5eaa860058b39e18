"""Numeric feature profiles: bins learned from the reference, counts of a window on them.

A window's values are sorted once; every count then comes from binary searches of the reference
grid in the sorted column, which is far cheaper than searching each value in the grid.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from numpy.typing import NDArray

from tripwire.profile.moments import Moments
from tripwire.stats import psi_breakpoints

Ints = NDArray[np.int64]
Floats = NDArray[np.float64]


@dataclass(frozen=True)
class NumericBins:
    """What ``fit`` learns about a numeric feature from the reference.

    Parameters
    ----------
    psi_edges
        PSI breakpoints: quantiles of the reference at ``linspace(0, 1, buckets + 1)`` with the
        outer edges at -inf and +inf, exactly as :func:`tripwire.stats.psi_breakpoints`.
    grid
        The fine grid: distinct reference quantiles at ``grid_size + 1`` evenly spaced levels.
        Its first and last points are the reference minimum and maximum.
    """

    psi_edges: Floats
    grid: Floats

    @classmethod
    def fit(cls, values: Floats, buckets: int = 10, grid_size: int = 1000) -> NumericBins:
        """Learn the bins from reference values (NaN is null and ignored)."""
        present = np.sort(values)[: values.size - int(np.count_nonzero(np.isnan(values)))]
        # Quantiles of already sorted data are cheap to select.
        psi_edges = psi_breakpoints(present, buckets) if present.size else _empty_edges(buckets)
        finite = present[np.isfinite(present)]
        return cls(psi_edges=psi_edges, grid=_quantile_grid(finite, grid_size))


def _empty_edges(buckets: int) -> Floats:
    return np.array([-np.inf] + [np.nan] * (buckets - 1) + [np.inf])


def _quantile_grid(sorted_finite: Floats, grid_size: int) -> Floats:
    """Linear-interpolation quantiles of an already sorted array at grid_size + 1 levels."""
    n = sorted_finite.size
    if n == 0:
        return np.empty(0)
    position = np.linspace(0.0, n - 1, grid_size + 1)
    low = np.floor(position).astype(np.int64)
    high = np.minimum(low + 1, n - 1)
    frac = position - low
    grid = sorted_finite[low] + frac * (sorted_finite[high] - sorted_finite[low])
    # Interpolation can overshoot by one ulp; the outer points must be the exact extremes.
    grid[0], grid[-1] = sorted_finite[0], sorted_finite[-1]
    return np.unique(grid)


def _range_sums(values: Floats, starts: Ints, ends: Ints) -> Floats:
    """``values[s:e].sum()`` for ascending, non-overlapping ranges, in one pass.

    ``np.add.reduceat`` sums from each index to the next; interleaving the ends makes the gaps
    between ranges separate segments, which are dropped. Empty ranges are left at 0 (reduceat
    would return the element at their start instead).
    """
    out = np.zeros(starts.size)
    nonempty = ends > starts
    if not nonempty.any():
        return out
    bounds = np.empty(2 * int(np.count_nonzero(nonempty)), dtype=np.int64)
    bounds[0::2], bounds[1::2] = starts[nonempty], ends[nonempty]
    if bounds[-1] == values.size:  # the last range runs to the end of the array
        bounds = bounds[:-1]
    out[nonempty] = np.add.reduceat(values, bounds)[0::2]
    return out


@dataclass(frozen=True)
class NumericWindow:
    """Counts of one window of a numeric feature on its :class:`NumericBins`.

    The grid's ``G`` points cut the line into ``G + 1`` open cells; a value lies either in an
    open cell or exactly on a grid point. Sizes depend on the grid only, never on row count,
    and windows merge by addition.

    Attributes
    ----------
    n_rows, n_null
        Rows seen and rows whose value is null (NaN).
    n_neginf, n_posinf
        Values equal to -inf / +inf (counted in the outer cells, left out of sums and moments).
    psi_counts
        Non-null values per PSI bucket ``[e_i, e_{i+1})``.
    cell_counts, cell_sums
        Non-null values strictly between consecutive grid points (outer cells unbounded), and
        the sum of the finite ones.
    point_counts
        Values equal to each grid point.
    moments
        Count, mean, variance, min and max of the finite values.
    """

    n_rows: int
    n_null: int
    n_neginf: int
    n_posinf: int
    psi_counts: Ints
    cell_counts: Ints
    point_counts: Ints
    cell_sums: Floats
    moments: Moments = field(default_factory=Moments)

    @classmethod
    def of(cls, values: Floats, bins: NumericBins) -> NumericWindow:
        """Profile ``values`` (float64, NaN for null) on ``bins`` with one sort."""
        n_rows = int(values.size)
        n_null = int(np.count_nonzero(np.isnan(values)))
        ordered = np.sort(values)[: n_rows - n_null]  # NaN sorts last
        n = ordered.size
        n_neginf = int(np.searchsorted(ordered, -np.inf, side="right"))
        n_posinf = n - int(np.searchsorted(ordered, np.inf, side="left"))
        finite = ordered[n_neginf : n - n_posinf]

        inner = np.searchsorted(ordered, bins.psi_edges[1:-1], side="left")
        psi_counts = np.diff(np.concatenate(([0], inner, [n]))).astype(np.int64)

        left = np.searchsorted(ordered, bins.grid, side="left")
        right = np.searchsorted(ordered, bins.grid, side="right")
        starts = np.concatenate(([0], right))
        ends = np.concatenate((left, [n]))
        to_finite = np.clip(np.stack((starts, ends)) - n_neginf, 0, finite.size)
        cell_sums = _range_sums(finite, to_finite[0], to_finite[1])
        return cls(
            n_rows=n_rows,
            n_null=n_null,
            n_neginf=n_neginf,
            n_posinf=n_posinf,
            psi_counts=psi_counts,
            cell_counts=(ends - starts).astype(np.int64),
            point_counts=(right - left).astype(np.int64),
            cell_sums=cell_sums,
            moments=Moments.of_sorted(finite),
        )

    @property
    def n(self) -> int:
        """Non-null values."""
        return self.n_rows - self.n_null

    def __add__(self, other: NumericWindow) -> NumericWindow:
        return NumericWindow(
            n_rows=self.n_rows + other.n_rows,
            n_null=self.n_null + other.n_null,
            n_neginf=self.n_neginf + other.n_neginf,
            n_posinf=self.n_posinf + other.n_posinf,
            psi_counts=self.psi_counts + other.psi_counts,
            cell_counts=self.cell_counts + other.cell_counts,
            point_counts=self.point_counts + other.point_counts,
            cell_sums=self.cell_sums + other.cell_sums,
            moments=self.moments + other.moments,
        )
