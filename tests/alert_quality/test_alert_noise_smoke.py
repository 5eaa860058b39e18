"""Smoke test of benchmarks/alert_noise.py on a tiny size: it runs and prints every field.

No wall-clock assertions, and none on the counts beyond their consistency: at this size the
figures are not the benchmark's.
"""

from __future__ import annotations

import importlib.util
import re
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "alert_noise.py"
TINY = ["--seeds", "1", "--days", "60", "--rows", "250"]


@pytest.fixture(scope="module")
def alert_noise() -> Iterator[ModuleType]:
    spec = importlib.util.spec_from_file_location("tripwire_benchmark_alert_noise", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    try:
        spec.loader.exec_module(module)
        yield module
    finally:
        sys.modules.pop(spec.name, None)


def test_table_output_has_every_field(
    alert_noise: ModuleType, capsys: pytest.CaptureFixture[str]
) -> None:
    assert alert_noise.main(TINY) == 0
    out = capsys.readouterr().out
    for label in (
        "naive alerts",
        "policy pages",
        "policy incidents",
        "page reduction",
        "recall naive",
        "recall pages",
        "recall policy",
        "every incident caught:",
        "machine",
        "Python",
        "logical cores",
    ):
        assert label in out, label
    assert re.search(r"page reduction\s+-?\d+\.\d%", out)
    assert re.search(r"recall policy\s+\d/4 ", out)
    row = re.search(r"^\s+0\s+60\s+250\s+(\d+)\s+(\d+)\s+(\d+)\s+(\d+)\s+(\d+) ", out, re.M)
    assert row, out
    naive, naive_false, pages, pages_false, incidents = map(int, row.groups())
    assert naive_false <= naive and pages_false <= pages <= incidents


def test_naive_alerts_are_feature_days_over_the_psi_line(alert_noise: ModuleType) -> None:
    import datetime as dt

    import pyarrow as pa

    day = dt.datetime(2027, 1, 4)
    history = pa.table(
        {
            "window_start": [day, day, day, day + dt.timedelta(days=1)],
            "segment": ["all", "user_type=new", "all", "all"],
            "feature": ["a", "a", "b", "a"],
            "metric": ["psi", "psi", "null_share", "psi"],
            "value": [0.3, 0.9, 0.9, 0.25],
        }
    )
    assert alert_noise.naive_alerts(history) == [("a", day.date())]
