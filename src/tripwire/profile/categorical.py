"""Categorical feature profiles: a vocabulary learned from the reference, counts on it."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from tripwire.profile.numeric import Ints

OTHER = "__other__"


def value_counts(values: pa.Array | pa.ChunkedArray) -> tuple[list[str], Ints, int]:
    """Distinct non-null values (as text), their counts, and the null count; in Arrow's C++."""
    if not pa.types.is_string(values.type) and not pa.types.is_large_string(values.type):
        values = pc.cast(values, pa.string())
    n_null = int(values.null_count)
    counted = pc.value_counts(pc.drop_null(values))
    names = counted.field("values").to_pylist()
    counts = counted.field("counts").to_numpy().astype(np.int64)
    return names, counts, n_null


@dataclass(frozen=True)
class CategoricalBins:
    """What ``fit`` learns about a categorical feature from the reference.

    Parameters
    ----------
    vocabulary
        The reference's most frequent categories (at most ``max_categories``), most frequent
        first. Every other value of a window counts in one extra "other" bucket.
    known
        Every category seen in the reference, or ``None`` when there were more than
        ``max_known``; without it unseen categories cannot be told from rare ones.
    """

    vocabulary: tuple[str, ...]
    known: frozenset[str] | None

    @classmethod
    def fit(
        cls, values: pa.Array | pa.ChunkedArray, max_categories: int = 50, max_known: int = 10_000
    ) -> CategoricalBins:
        names, counts, _ = value_counts(values)
        # Most frequent first; ties by name, so the vocabulary does not depend on row order.
        ranked = tuple(name for _, name in sorted(zip((-counts).tolist(), names, strict=True)))
        known = frozenset(names) if len(names) <= max_known else None
        return cls(vocabulary=ranked[:max_categories], known=known)

    @property
    def labels(self) -> tuple[str, ...]:
        """Bucket labels: the vocabulary, then the "other" bucket."""
        return (*self.vocabulary, OTHER)


@dataclass(frozen=True)
class CategoricalWindow:
    """Counts of one window of a categorical feature on its :class:`CategoricalBins`.

    Attributes
    ----------
    n_rows, n_null
        Rows seen and null values.
    counts
        Non-null values per vocabulary category, then the "other" bucket.
    n_unseen
        Values never seen in the reference (-1 when the reference was too varied to tell).
    unseen_examples
        Up to five of the most frequent unseen values with their counts, for the report.
    """

    n_rows: int
    n_null: int
    counts: Ints
    n_unseen: int
    unseen_examples: tuple[tuple[str, int], ...] = ()

    @classmethod
    def of(cls, values: pa.Array | pa.ChunkedArray, bins: CategoricalBins) -> CategoricalWindow:
        names, counts, n_null = value_counts(values)
        index = {name: i for i, name in enumerate(bins.vocabulary)}
        other = len(bins.vocabulary)
        slots = np.array([index.get(name, other) for name in names], dtype=np.int64)
        bucket_counts = np.bincount(slots, weights=counts, minlength=other + 1).astype(np.int64)
        if bins.known is None:
            return cls(len(values), n_null, bucket_counts, -1)
        unseen = Counter(
            {name: int(c) for name, c in zip(names, counts, strict=True) if name not in bins.known}
        )
        return cls(len(values), n_null, bucket_counts, sum(unseen.values()), _top(unseen))

    @property
    def n(self) -> int:
        return self.n_rows - self.n_null

    def __add__(self, other: CategoricalWindow) -> CategoricalWindow:
        unknown = self.n_unseen < 0 or other.n_unseen < 0
        examples = Counter(dict(self.unseen_examples)) + Counter(dict(other.unseen_examples))
        return CategoricalWindow(
            n_rows=self.n_rows + other.n_rows,
            n_null=self.n_null + other.n_null,
            counts=self.counts + other.counts,
            n_unseen=-1 if unknown else self.n_unseen + other.n_unseen,
            unseen_examples=_top(examples),
        )


def _top(counter: Counter[str]) -> tuple[tuple[str, int], ...]:
    return tuple(sorted(counter.items(), key=lambda kv: (-kv[1], kv[0]))[:5])
