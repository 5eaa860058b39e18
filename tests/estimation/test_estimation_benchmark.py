"""Smoke test of benchmarks/estimation.py on tiny sizes: it runs and reports every figure.

No wall-clock assertions: timings depend on the machine.
"""

from __future__ import annotations

import importlib.util
import json
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "estimation.py"
TINY = ["--rows", "3000", "--windows", "3", "--repeat", "1"]


@pytest.fixture(scope="module")
def estimation() -> Iterator[ModuleType]:
    spec = importlib.util.spec_from_file_location("tripwire_benchmark_estimation", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up by name
    try:
        spec.loader.exec_module(module)
        yield module
    finally:
        sys.modules.pop(spec.name, None)


def test_table_output_has_every_field(
    estimation: ModuleType, capsys: pytest.CaptureFixture[str]
) -> None:
    assert estimation.main(TINY) == 0
    out = capsys.readouterr().out
    assert "binary CBPE, 3,000 reference x 3,000 current rows" in out
    for label in (
        "fit",
        "estimate (one window)",
        "estimate (3 windows)",
        "fit+estimate",
        "best s",
        "median s",
        "rows/s",
        "CPU time",
        "input data",
        "peak RSS",
        "estimated",
        "realized",
        "auc",
        "specificity",
        "machine",
        "logical cores",
        "load average",
    ):
        assert label in out, label
    assert "none for this size" in out  # the target and the quoted figure are for 1M rows
    assert "QUOTED" not in out


def test_json_output_multiclass(estimation: ModuleType, capsys: pytest.CaptureFixture[str]) -> None:
    assert estimation.main([*TINY, "--classes", "3", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert (result["rows"], result["classes"], result["windows"]) == (3000, 3, 3)
    for step in ("fit", "estimate", "windows", "fit_estimate"):
        assert set(result["seconds"][step]) == {"best", "median"}
        assert result["seconds"][step]["best"] > 0
    assert result["estimate_rows_per_s"] > 0
    assert set(result["metrics"]) == {"auc", "precision", "recall", "f1", "accuracy"}
    for figures in result["metrics"].values():
        # 3000 rows: the estimate is close to the realized value (a loose sanity check).
        assert abs(figures["estimated"] - figures["realized"]) < 8 * figures["standard_error"]
    assert result["calibrated_classes"] == 3  # temperature 0.5: over-confident
    assert result["target"] is None and result["quoted_for_scale"] is None
    assert {"platform", "python", "cpu", "logical_cores", "versions"} <= set(result["machine"])
    assert set(result["load_average"]) == {"before", "after"}


def test_calibrated_model_keeps_its_scores(estimation: ModuleType) -> None:
    result = estimation.run(rows=5000, classes=2, temperature=1.0, windows=2, seed=1, repeat=1)
    assert result["calibrated_classes"] == 0
    data = estimation.make_dataset(rows=500, classes=2, temperature=1.0, seed=3)
    again = estimation.make_dataset(rows=500, classes=2, temperature=1.0, seed=3)
    assert data.reference.shape == (500,) and set(data.reference_labels) == {0, 1}
    assert (data.current == again.current).all()  # same seed, same data


def test_monitor_path_reports_every_step(
    estimation: ModuleType, capsys: pytest.CaptureFixture[str]
) -> None:
    assert estimation.main([*TINY, "--monitor", "--segments", "4"]) == 0
    out = capsys.readouterr().out
    assert "monitor path: binary model, 3,000 reference x 3,000 current rows" in out
    for label in (
        "fit (bins, calibration, reference)",
        "profile (all layers, estimation)",
        "profile, no estimation",
        "profile, no segments",
        "evaluate (metric rows)",
        "estimate (arrays, one window)",
        "5 (all + segments)",
        "estimated_*",
        "largest |estimated - realized| over all segments",
        "machine",
        "load average",
    ):
        assert label in out, label


def test_monitor_path_json_multiclass(estimation: ModuleType) -> None:
    result = estimation.run_monitor(
        rows=4000, classes=3, temperature=0.5, segments=3, seed=2, repeat=1
    )
    assert result["profiled_segments"] == 4 and result["calibrated_classes"] == 3
    assert result["estimated_rows"] == 4 * 5  # five estimated metrics, overall and per segment
    assert set(result["metrics"]) == {"auc", "precision", "recall", "f1", "accuracy"}
    for figures in result["metrics"].values():
        assert abs(figures["estimated"] - figures["realized"]) < 5 * figures["standard_error"]
    assert result["worst_z"] < 5
    assert all(result["seconds"][step]["best"] > 0 for step in result["seconds"])
