"""A mergeable quantile sketch with relative accuracy, for latencies and other positive values.

Masson, Rim and Lee, "DDSketch: a fast and fully-mergeable quantile sketch with
relative-error guarantees", VLDB 2019. Positive values fall in logarithmic buckets
``(gamma^(i-1), gamma^i]`` with ``gamma = (1 + alpha) / (1 - alpha)``; a bucket is reported by
``2 gamma^i / (gamma + 1)``, which is within ``alpha`` (relative) of every value in it. Buckets
cover ``[min_value, max_value]``; values at or below ``min_value`` (zero included) are
reported as 0 and values above ``max_value`` as ``max_value``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from tripwire.profile.numeric import Floats, Ints

ALPHA = 0.005
MIN_VALUE = 1e-3
MAX_VALUE = 1e8
_GAMMA = (1 + ALPHA) / (1 - ALPHA)
_LOG_GAMMA = float(np.log(_GAMMA))
_OFFSET = int(np.ceil(np.log(MIN_VALUE) / _LOG_GAMMA))
_BUCKETS = int(np.ceil(np.log(MAX_VALUE) / _LOG_GAMMA)) - _OFFSET + 1


@dataclass(frozen=True)
class QuantileSketch:
    """Counts per logarithmic bucket; slot 0 holds values at or below ``MIN_VALUE``.

    >>> sketch = QuantileSketch.of(np.array([10.0, 20.0, 30.0, 40.0, 1000.0]))
    >>> abs(sketch.quantile(0.5) / 30.0 - 1) <= ALPHA  # the median, 30, within 0.5 %
    True
    """

    counts: Ints

    @classmethod
    def of(cls, values: Floats) -> QuantileSketch:
        """Sketch the non-null values (NaN is skipped)."""
        present = values[~np.isnan(values)]
        with np.errstate(divide="ignore", invalid="ignore"):
            index = np.ceil(np.log(present) / _LOG_GAMMA)
        slots = np.where(present > MIN_VALUE, index - _OFFSET + 1, 0)
        slots = np.clip(slots, 0, _BUCKETS).astype(np.int64)
        return cls(np.bincount(slots, minlength=_BUCKETS + 1).astype(np.int64))

    @property
    def n(self) -> int:
        return int(self.counts.sum())

    def quantile(self, q: float) -> float:
        """The value of rank ``floor(q * (n - 1))``, within relative error ``ALPHA``.

        NaN when the sketch is empty.
        """
        n = self.n
        if n == 0:
            return float("nan")
        rank = int(np.floor(q * (n - 1)))
        slot = int(np.searchsorted(np.cumsum(self.counts), rank, side="right"))
        if slot == 0:
            return 0.0
        if slot >= _BUCKETS:
            return MAX_VALUE
        return float(2 * _GAMMA ** (slot - 1 + _OFFSET) / (_GAMMA + 1))

    def __add__(self, other: QuantileSketch) -> QuantileSketch:
        return QuantileSketch(self.counts + other.counts)
