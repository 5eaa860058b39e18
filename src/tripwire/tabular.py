"""Turning user data (files, pandas, polars, Arrow) into Arrow tables and typed numpy columns.

Conversion happens once per column; everything downstream works on contiguous arrays.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq

from tripwire.errors import TripwireError
from tripwire.profile.numeric import Floats


def read_table(path: str | Path) -> pa.Table:
    """Read a Parquet or CSV file; the error names the file and what went wrong."""
    path = Path(path)
    if not path.exists():
        raise TripwireError(f"{path}: no such file")
    suffix = path.suffix.lower()
    try:
        if suffix in {".parquet", ".pq"}:
            return pq.read_table(path)
        if suffix in {".csv", ".txt"}:
            return pa_csv.read_csv(path)
    except (pa.ArrowException, OSError) as exc:
        raise TripwireError(f"{path}: cannot be read as {suffix[1:]}: {exc}") from exc
    raise TripwireError(f"{path}: expected a .parquet or .csv file, got '{suffix or 'no suffix'}'")


def to_table(data: Any) -> pa.Table:
    """Accept a pyarrow Table/RecordBatch, a pandas DataFrame or a polars DataFrame.

    A pandas column that Arrow cannot convert as a whole (mixed types in an object column) is
    converted value by value to text, so one bad column never rejects the table; the numeric
    reader then reports which values are not numbers.
    """
    if isinstance(data, pa.Table):
        return data
    if isinstance(data, pa.RecordBatch):
        return pa.Table.from_batches([data])
    module = type(data).__module__.split(".")[0]
    if module == "polars":
        return data.to_arrow()
    if module == "pandas":
        columns = {str(name): _pandas_column(data[name]) for name in data.columns}
        return pa.table(columns)
    raise TripwireError(
        f"expected a pyarrow Table, pandas DataFrame or polars DataFrame, got {type(data).__name__}"
    )


def _pandas_column(series: Any) -> pa.Array:
    try:
        return pa.array(series, from_pandas=True)
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        return pa.array([None if _is_null(v) else str(v) for v in series], type=pa.string())


def _is_null(value: Any) -> bool:
    """None, NaN, and pandas' missing markers (pd.NA, pd.NaT), without importing pandas."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return True
    return type(value).__name__ in {"NAType", "NaTType"}


def numeric_values(column: pa.ChunkedArray) -> tuple[Floats, str | None]:
    """float64 values with NaN for nulls, and a note when the column was not numeric.

    Text is parsed as numbers; values that do not parse become null and are counted in the note.
    """
    kind = column.type
    if pa.types.is_integer(kind) or pa.types.is_floating(kind) or pa.types.is_boolean(kind):
        return _to_float(column), None
    if pa.types.is_decimal(kind):
        return _to_float(pc.cast(column, pa.float64())), None
    if not (pa.types.is_string(kind) or pa.types.is_large_string(kind)):
        try:
            column = pc.cast(column, pa.string())
        except pa.ArrowException:
            return np.full(len(column), np.nan), f"type {kind} cannot be read as numbers"
    try:
        return _to_float(pc.cast(column, pa.float64())), f"arrived as {kind}; parsed as numbers"
    except pa.ArrowInvalid:
        pass
    texts = column.to_pylist()
    values = np.array([_parse_float(t) for t in texts], dtype=np.float64)
    bad = [t for t, v in zip(texts, values, strict=True) if t is not None and np.isnan(v)]
    example = ", ".join(repr(t) for t in bad[:3])
    return values, f"{len(bad)} of {len(texts)} values are not numbers (e.g. {example})"


def _to_float(column: pa.ChunkedArray | pa.Array) -> Floats:
    values = column.to_numpy(zero_copy_only=False)
    return np.ascontiguousarray(values, dtype=np.float64)


def _parse_float(text: str | None) -> float:
    if text is None:
        return float("nan")
    try:
        return float(text)
    except ValueError:
        return float("nan")


def categorical_values(column: pa.ChunkedArray) -> pa.ChunkedArray:
    """Values as Arrow text (numbers and booleans become their text form)."""
    if pa.types.is_dictionary(column.type):
        column = pc.cast(column, column.type.value_type)
    if pa.types.is_string(column.type) or pa.types.is_large_string(column.type):
        return column
    return pc.cast(column, pa.string())


def type_kind(kind: pa.DataType) -> str:
    """A coarse name for a column's type, used to report schema changes."""
    if pa.types.is_integer(kind) or pa.types.is_floating(kind) or pa.types.is_decimal(kind):
        return "number"
    if pa.types.is_boolean(kind):
        return "boolean"
    if pa.types.is_string(kind) or pa.types.is_large_string(kind) or pa.types.is_dictionary(kind):
        return "text"
    if pa.types.is_temporal(kind):
        return "time"
    return str(kind)
