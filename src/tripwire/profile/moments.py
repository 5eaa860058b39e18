"""Mergeable count, mean, variance, min and max (Chan et al. parallel update)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray


@dataclass(frozen=True)
class Moments:
    """Count, mean and sum of squared deviations (``m2``) of finite values, plus min and max.

    Merging uses the pairwise update of Chan, Golub and LeVeque (1979), so the variance of a
    merged window equals the variance of the concatenated values without catastrophic
    cancellation.

    >>> a = Moments.of(np.array([1.0, 2.0]))
    >>> b = Moments.of(np.array([3.0, 4.0]))
    >>> (a + b).mean, (a + b).variance
    (2.5, 1.25)
    """

    n: int = 0
    mean: float = 0.0
    m2: float = 0.0
    min: float = float("nan")
    max: float = float("nan")

    @classmethod
    def of(cls, finite: NDArray[np.float64]) -> Moments:
        if finite.size == 0:
            return cls()
        mean = float(finite.mean())
        return cls(
            n=int(finite.size),
            mean=mean,
            m2=float(np.square(finite - mean).sum()),
            min=float(finite.min()),
            max=float(finite.max()),
        )

    @classmethod
    def of_sorted(cls, finite: NDArray[np.float64]) -> Moments:
        """As :meth:`of`, for ascending values: min and max are the ends."""
        if finite.size == 0:
            return cls()
        mean = float(finite.mean())
        deviation = finite - mean
        return cls(
            n=int(finite.size),
            mean=mean,
            # einsum, not np.dot: BLAS would start threads of its own inside the profile's
            # thread pool, which oversubscribes the cores (about 2x the CPU time on 2 cores).
            m2=float(np.einsum("i,i->", deviation, deviation)),
            min=float(finite[0]),
            max=float(finite[-1]),
        )

    @property
    def variance(self) -> float:
        """Population variance (ddof=0); nan when empty."""
        return self.m2 / self.n if self.n else float("nan")

    @property
    def std(self) -> float:
        return float(np.sqrt(self.variance))

    def __add__(self, other: Moments) -> Moments:
        if other.n == 0:
            return self
        if self.n == 0:
            return other
        n = self.n + other.n
        delta = other.mean - self.mean
        return Moments(
            n=n,
            mean=self.mean + delta * other.n / n,
            m2=self.m2 + other.m2 + delta * delta * self.n * other.n / n,
            min=min(self.min, other.min),
            max=max(self.max, other.max),
        )
