"""Which segments are tracked: chosen once, at fit, from the reference.

Per segment column, the ``top`` values by business value — the sum of a value column (say the
transaction amount), or the row count without one — plus the pinned segments, whatever their
rank. Each segment is named ``column=value`` with the value as text.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from tripwire.config import ModelConfig
from tripwire.errors import TripwireError
from tripwire.tabular import categorical_values, numeric_values


def value_column(config: ModelConfig) -> str | None:
    """The column whose sum is a segment's business value: ``segments.value``, else
    ``business_value.value_column``; None means the row count."""
    if config.segments.value is not None:
        return config.segments.value
    return config.business_value.value_column if config.business_value else None


def segment_values(column: pa.ChunkedArray, weights: np.ndarray | None) -> dict[str, float]:
    """Each distinct non-null value (as text) and its business value: the sum of ``weights``
    over its rows (NaN weights count 0), or its row count."""
    encoded = pc.dictionary_encode(categorical_values(column)).combine_chunks()
    names = [str(v) for v in encoded.dictionary.to_pylist()]
    codes = pc.fill_null(encoded.indices, -1).to_numpy(zero_copy_only=False)
    present = codes >= 0
    w = None if weights is None else np.nan_to_num(weights[present], nan=0.0)
    totals = np.bincount(codes[present], weights=w, minlength=len(names))
    return dict(zip(names, totals.astype(np.float64).tolist(), strict=True))


def choose_segments(config: ModelConfig, reference: pa.Table) -> dict[str, float]:
    """The tracked segments, ``column=value`` to its business value in the reference, in order:
    per column the top ones by value (ties by name), then pinned ones not already chosen.

    Raises :class:`TripwireError` when a column is missing or a pinned segment does not occur
    in the reference (most often a typo in its value).
    """
    settings = config.segments
    by_value = value_column(config)
    weights = None
    if by_value is not None and config.columns.segments:
        weights = numeric_values(_column(reference, by_value, "segments.value"))[0]
    chosen: dict[str, float] = {}
    per_column: dict[str, dict[str, float]] = {}
    for name in config.columns.segments:
        values = segment_values(_column(reference, name, "segment"), weights)
        per_column[name] = values
        ranked = sorted(values.items(), key=lambda item: (-item[1], item[0]))
        chosen.update((f"{name}={value}", total) for value, total in ranked[: settings.top])
    for segment in settings.pinned:
        name, _, value = segment.partition("=")
        if segment in chosen:
            continue
        if value not in per_column[name]:
            seen = ", ".join(sorted(per_column[name])[:10]) or "none"
            raise TripwireError(
                f"segments.pinned: {segment!r} does not occur in the reference "
                f"(values of {name} there: {seen})"
            )
        chosen[segment] = per_column[name][value]
    return chosen


def _column(table: pa.Table, name: str, what: str) -> pa.ChunkedArray:
    if name not in table.column_names:
        raise TripwireError(
            f"column '{name}' ({what}) is missing from the reference; it has: "
            f"{', '.join(table.column_names)}"
        )
    return table.column(name)
