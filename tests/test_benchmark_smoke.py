"""Smoke test of benchmarks/drift.py on a tiny size: it runs and reports every figure.

No wall-clock assertions: timings depend on the machine.
"""

from __future__ import annotations

import importlib.util
import json
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pyarrow as pa
import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "drift.py"
TINY = ["--rows", "2000", "--cols", "5", "--repeat", "1"]


@pytest.fixture(scope="module")
def drift() -> Iterator[ModuleType]:
    spec = importlib.util.spec_from_file_location("tripwire_benchmark_drift", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up by name
    try:
        spec.loader.exec_module(module)
        yield module
    finally:
        sys.modules.pop(spec.name, None)


def test_table_output_has_every_field(
    drift: ModuleType, capsys: pytest.CaptureFixture[str]
) -> None:
    assert drift.main(TINY) == 0
    out = capsys.readouterr().out
    assert "2,000 reference x 2,000 current rows x (5 numeric + 1 categorical)" in out
    for label in (
        "fit",
        "check",
        "fit+check",
        "best s",
        "median s",
        "rows/s",
        "cells/s",
        "input data",
        "peak RSS",
        "peak above input",
        "metric rows",
        "machine",
        "logical cores",
        "Python",
        "numpy",
        "CPU time",
    ):
        assert label in out, label
    assert "none for this size" in out  # targets and quoted figures are for 1M rows only
    assert "QUOTED" not in out


def test_json_output(drift: ModuleType, capsys: pytest.CaptureFixture[str]) -> None:
    assert drift.main([*TINY, "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert (result["current_rows"], result["numeric"], result["categorical"]) == (2000, 5, 1)
    for step in ("fit", "check", "fit_check"):
        assert set(result["seconds"][step]) == {"best", "median"}
        assert result["seconds"][step]["best"] > 0
    assert set(result["check_cpu_seconds"]) == {"best", "median"}
    assert set(result["load_average"]) == {"before", "after"}
    assert result["throughput"]["check_rows_per_s"] > 0
    assert result["throughput"]["check_cells_per_s"] > 0
    memory = result["memory_mb"]
    assert memory["input_data"] > 0 and memory["peak_process"] > 0
    assert "peak_above_input" in memory
    machine = result["machine"]
    assert {"platform", "python", "numpy", "cpu", "logical_cores"} <= set(machine)
    assert machine["logical_cores"] >= 1
    assert result["report"]["metric_rows"] > 0
    assert result["target"] is None and result["quoted_for_scale"] is None


def test_data_has_the_promised_shape(drift: ModuleType) -> None:
    data = drift.make_dataset(rows=3000, cols=8, categorical=2, seed=0)
    ref, cur = data.reference, data.current
    assert ref.num_rows == cur.num_rows == 3000
    assert ref.column_names == cur.column_names
    assert "score" in ref.column_names and "label" not in ref.column_names
    assert any(ref.column(name).null_count for name in data.numeric)
    assert all(pa.types.is_string(ref.column(name).type) for name in data.categorical)
    ref_levels = set(ref.column("cat_000").to_pylist())
    assert set(cur.column("cat_000").to_pylist()) - ref_levels  # an unseen category
    assert data.drifted and set(data.drifted) <= set(data.numeric) | set(data.categorical)
    # Same seed, same data.
    again = drift.make_dataset(rows=3000, cols=8, categorical=2, seed=0)
    assert again.current.equals(cur)
