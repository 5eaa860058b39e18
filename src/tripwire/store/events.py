"""Turning stored events back into the table a :class:`~tripwire.monitor.Monitor` checks.

Features and segments are stored as JSON; a window's worth is parsed by Arrow's C++ JSON reader
in one call rather than row by row.
"""

from __future__ import annotations

import io
import json

import pyarrow as pa
import pyarrow.json as pa_json

from tripwire.config import ModelConfig


def _expand(texts: pa.ChunkedArray) -> pa.Table:
    """A JSON-object column as a table of its keys."""
    lines = "\n".join(t if t is not None else "{}" for t in texts.to_pylist())
    if not lines:
        return pa.table({})
    try:
        return pa_json.read_json(io.BytesIO(lines.encode()))
    except pa.ArrowInvalid:
        # A key whose values change type between events (say 3 then "n/a"): fall back to
        # Python, keeping each value as text so the numeric reader can report the bad ones.
        rows = [json.loads(line) for line in lines.split("\n")]
        keys = sorted({k for row in rows for k in row})
        return pa.table(
            {k: pa.array([None if r.get(k) is None else str(r[k]) for r in rows]) for k in keys}
        )


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
    return pa.table(out)
