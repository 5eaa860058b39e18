"""Turning stored events back into the table a :class:`~tripwire.monitor.Monitor` checks.

Features and segments are stored as JSON. They are parsed by Arrow's C++ JSON reader straight
from the column's own buffers, a block of rows at a time: no Python object per event, and no
copy of the whole column's text, which at millions of events would be gigabytes.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import datetime, timedelta

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.json as pa_json

from tripwire.config import ModelConfig
from tripwire.store.base import Store
from tripwire.store.common import naive_utc

EPOCH = datetime(1970, 1, 1)
BLOCK_ROWS = 100_000  # rows parsed at once: bounds the text copied for the reader


def _ndjson(texts: pa.Array) -> pa.Buffer:
    """JSON objects as one newline-separated buffer (a null is ``{}``), built by Arrow."""
    lines = pc.binary_join_element_wise(pc.fill_null(texts, "{}"), "", "\n")
    offsets_type = np.int64 if pa.types.is_large_string(lines.type) else np.int32
    offsets = np.frombuffer(lines.buffers()[1], dtype=offsets_type)
    first, last = offsets[lines.offset], offsets[lines.offset + len(lines)]
    return lines.buffers()[2].slice(int(first), int(last - first))


def _as_text(texts: pa.ChunkedArray) -> pa.Table:
    """Every key's values as text, for keys whose values change type between events (say 3
    then "n/a"), so that the numeric reader can report the values that are not numbers."""
    rows = [json.loads(t) if t is not None else {} for t in texts.to_pylist()]
    keys = sorted({k for row in rows for k in row})
    return pa.table(
        {k: pa.array([None if r.get(k) is None else str(r[k]) for r in rows]) for k in keys}
    )


def _expand(texts: pa.ChunkedArray) -> pa.Table:
    """A JSON-object column as a table of its keys."""
    if len(texts) == 0:
        return pa.table({})
    blocks = []
    for start in range(0, len(texts), BLOCK_ROWS):
        block = texts.slice(start, BLOCK_ROWS).combine_chunks()
        blocks.append(pa_json.read_json(pa.BufferReader(_ndjson(block))))
    try:
        # Blocks agree as one read would: a key missing or all null in a block gets nulls
        # there, and integers in one block widen to floats in another.
        return pa.concat_tables(blocks, promote_options="permissive")
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        return _as_text(texts)


def to_monitor_table(config: ModelConfig, stored: pa.Table) -> pa.Table:
    """Stored events (with their labels) as columns named the way the config names them."""
    columns = config.columns
    out: dict[str, pa.ChunkedArray | pa.Array] = {
        columns.time_column: stored["ts"],
        columns.prediction: stored["prediction"],
        columns.label_time_column: stored["labelled_at"],
    }
    if columns.id:
        out[columns.id] = stored["event_id"]
    for role, name in (
        ("label", columns.label),
        ("latency_ms", columns.latency_ms),
        ("cost", columns.cost),
        ("status", columns.status),
    ):
        if name:
            out[name] = stored[role]
    for part in ("features", "segments"):
        expanded = _expand(stored[part])
        for name in expanded.column_names:
            out.setdefault(name, expanded[name])
    # Metadata holds what serving logged beside the prediction (a decision, a click): only the
    # columns a proxy reads are taken, so that other keys are not reported as new columns.
    wanted = {proxy.column for proxy in config.proxies} - out.keys()
    if wanted:
        metadata = _expand(stored["metadata"])
        for name in sorted(wanted & set(metadata.column_names)):
            out[name] = metadata[name]
    return pa.table(out)


def _floor(moment: datetime, length: timedelta) -> datetime:
    """The start of the window of ``length`` holding ``moment`` (naive UTC, epoch-aligned, as
    the job's windows are)."""
    return EPOCH + (moment - EPOCH) // length * length


def stored_windows(
    store: Store,
    config: ModelConfig,
    since: datetime | None,
    until: datetime | None,
    length: timedelta,
) -> Iterator[pa.Table]:
    """The stored events of ``[since, until)`` (either may be open), as
    :func:`to_monitor_table` gives them, one window of ``length`` at a time: a period of any
    size is checked holding one window's events in memory, not the whole period's.

    Each read starts at the next stored event, so stretches without events cost nothing.
    """
    cursor = naive_utc(since) if since is not None else None
    end = naive_utc(until) if until is not None else None
    while (first := store.first_event(config.name, cursor)) is not None:
        if end is not None and first >= end:
            return
        stop = _floor(first, length) + length
        if end is not None:
            stop = min(stop, end)
        yield to_monitor_table(config, store.events(config.name, first, stop))
        cursor = stop
