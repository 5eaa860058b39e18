"""Smoke test of benchmarks/alert_eval.py on a tiny history: it runs and prints every figure.

No wall-clock assertions: timings depend on the machine.
"""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest

from tripwire.store.duckdb_store import DuckDBStore

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "alert_eval.py"


@pytest.fixture(scope="module")
def alert_eval() -> Iterator[ModuleType]:
    spec = importlib.util.spec_from_file_location("tripwire_benchmark_alert_eval", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    try:
        spec.loader.exec_module(module)
        yield module
    finally:
        sys.modules.pop(spec.name, None)


def test_table_output_has_every_field(
    alert_eval: ModuleType, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["--days", "40", "--features", "10", "--segments", "2", "--repeat", "1"]
    assert alert_eval.main(argv) == 0
    out = capsys.readouterr().out
    assert "40 daily windows x 10 features x 3 segments (incl. all)" in out
    for label in ("history rows", "incidents", "evaluate", "history", "peak RSS", "machine"):
        assert label in out, label
    # 40 windows x 3 segments x (10 features x 3 metrics + 3 output metrics)
    assert f"history rows        {40 * 3 * 33:,}" in out
    assert "schema differs" not in out  # the built table is what the store returns


def test_the_built_history_is_what_the_store_returns(
    alert_eval: ModuleType, tmp_path: Path
) -> None:
    config, importance = alert_eval.make_config(6)
    history = alert_eval.make_history(20, 6, 1, importance)
    path = tmp_path / "store.duckdb"
    alert_eval.write_store(path, history)
    metrics = sorted({rule.metric for rule in config.alerts})
    with DuckDBStore(path) as store:
        read = store.history(alert_eval.MODEL, alert_eval.DAY, metrics)
    assert read.schema.equals(history.schema)
    assert read.equals(history)
