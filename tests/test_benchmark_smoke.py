"""Smoke tests of the benchmarks on tiny sizes: each runs and reports every figure.

benchmarks/drift.py; benchmarks/job.py (the monitoring job over stored events);
benchmarks/scheduler.py (a scheduler pass on a loaded store); and
benchmarks/consumers.py into PostgreSQL (its DuckDB runs are tested with the consumers, in
tests/ingest/). No wall-clock assertions: timings depend on the machine.
"""

from __future__ import annotations

import importlib.util
import json
import shutil
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pyarrow as pa
import pytest

from tripwire.events import table_to_events, validate_events
from tripwire.store import DuckDBStore

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"
TINY = ["--rows", "2000", "--cols", "5", "--repeat", "1"]


def _load(path: Path, name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look their module up by name
    try:
        spec.loader.exec_module(module)
    except BaseException:
        sys.modules.pop(name, None)
        raise
    return module


def _script(name: str) -> Iterator[ModuleType]:
    module = _load(BENCHMARKS / name, f"tripwire_benchmark_{name}")
    try:
        yield module
    finally:
        sys.modules.pop(module.__name__, None)


# The throwaway cluster's helper, shared with benchmarks/consumers.py.
postgres_cluster = _load(
    Path(__file__).with_name("postgres_cluster.py"), "tripwire_test_postgres_cluster"
)
needs_postgres = pytest.mark.skipif(
    postgres_cluster.bindir() is None, reason=postgres_cluster.NOT_INSTALLED
)


@pytest.fixture(scope="module")
def drift() -> Iterator[ModuleType]:
    yield from _script("drift.py")


@pytest.fixture(scope="module")
def job() -> Iterator[ModuleType]:
    yield from _script("job.py")


@pytest.fixture(scope="module")
def scheduler() -> Iterator[ModuleType]:
    yield from _script("scheduler.py")


@pytest.fixture(scope="module")
def consumers() -> Iterator[ModuleType]:
    yield from _script("consumers.py")


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


# --------------------------------------------------------------------------- job.py


def test_job_benchmark_reports_every_step(
    job: ModuleType, capsys: pytest.CaptureFixture[str]
) -> None:
    assert job.main(["--events", "3000", "--days", "3"]) == 0
    out = capsys.readouterr().out
    assert "3,000 stored events of the demo's fraud model over 3 daily windows" in out
    for label in (
        "loaded in",
        "RSS before the job",
        "read",
        "parse",
        "check",
        "alerts",
        "total",
        "events/s",
        "peak RSS",
        "3 windows checked",
        "DuckDB memory",
        "machine",
        "load average",
    ):
        assert label in out, label
    assert "read a window at a time" in out
    # The whole period in one read, as tripwire run read before: the same windows.
    assert job.main(["--events", "3000", "--days", "3", "--read", "period"]) == 0
    out = capsys.readouterr().out
    assert "the whole period in one read" in out and "3 windows checked" in out


def test_job_benchmark_json(job: ModuleType, capsys: pytest.CaptureFixture[str]) -> None:
    assert job.main(["--events", "2000", "--days", "10", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["read_rows"] == 2000 and result["windows"] == 10
    # The demo's labels arrive 7 days late: the first 3 of 10 days have them.
    assert result["labelled_days"] == 3 and result["labelled_rows"] == 600
    assert set(result["steps"]) == {"read", "parse", "check", "alerts"}
    for step in result["steps"].values():
        assert step["seconds"] > 0 and step["cpu_seconds"] >= 0
    assert result["events_per_s"] > 0
    assert {"platform", "cpu", "logical_cores", "versions"} <= set(result["machine"])


def test_job_benchmark_stores_what_the_collector_would(job: ModuleType, tmp_path: Path) -> None:
    """The benchmark loads events with SQL, not through the collector; read back, they must
    be the collector's rows, feature JSON included."""
    config = job.CONFIG
    day = job.generate(300, 1, seed=3).days[0][1]
    accepted, rejected = validate_events(config, table_to_events(config, day))
    assert not rejected
    with DuckDBStore(tmp_path / "collector.duckdb") as collected:
        collected.write_events(accepted)
        expected = collected.events(config.name)
    with DuckDBStore(tmp_path / "benchmark.duckdb") as loaded:
        job.load_day(loaded, config, day, labelled=True)
        got = loaded.events(config.name)
    unlabelled = [c for c in expected.column_names if c not in ("label", "labelled_at")]
    assert got.select(unlabelled).equals(expected.select(unlabelled))
    assert got["label"].to_pylist() == [float(y) for y in day["is_fraud"].to_pylist()]


# --------------------------------------------------------------------------- scheduler.py


def test_scheduler_benchmark_times_each_look_and_finds_the_trickle(
    scheduler: ModuleType, capsys: pytest.CaptureFixture[str]
) -> None:
    assert scheduler.main(["--events", "3000", "--days", "5", "--passes", "2", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert set(result["steps"]) == {"first pass", "idle pass", "after a trickle"}
    for step in result["steps"].values():
        assert step["seconds"] > 0 and step["cpu_seconds"] >= 0
    # Labels for every day, and late events for the second: every window is found again.
    assert result["found"] == result["expected"] and len(result["found"]) == 5
    assert "5 windows to check again (as expected)" in scheduler.format_report(result)


# --------------------------------------------------------------------------- consumers.py


@needs_postgres
@pytest.mark.skipif(shutil.which("redis-server") is None, reason="redis-server is not installed")
def test_redis_consumer_benchmark_into_postgres(
    consumers: ModuleType, capsys: pytest.CaptureFixture[str]
) -> None:
    pytest.importorskip("redis")
    pytest.importorskip("psycopg")
    tiny = ["redis", "--events", "1200", "--batch", "400", "--store", "postgres"]
    assert consumers.main(tiny) == 0
    out = capsys.readouterr().out
    for label in (
        "one consumer, PostgreSQL store",
        "1,200 (0 entries left pending)",
        "events/s stored",
        "PostgreSQL",
        "throwaway cluster, loopback, fsync on",
        "PostgreSQL CPU",
        "machine",
    ):
        assert label in out, label


@needs_postgres
def test_kafka_consumer_benchmark_into_both_stores(
    consumers: ModuleType, capsys: pytest.CaptureFixture[str]
) -> None:
    pytest.importorskip("confluent_kafka")
    pytest.importorskip("psycopg")
    tiny = ["kafka", "--events", "1200", "--batch", "400", "--store", "both", "--json"]
    assert consumers.main(tiny) == 0
    results = json.loads(capsys.readouterr().out)
    assert [r["store_kind"] for r in results] == ["duckdb", "postgres"]
    for result in results:
        assert result["stored"] == 1200 and result["uncommitted_after"] == 0
        assert result["stored_per_s"] > 0
    assert results[1]["store"].startswith("PostgreSQL")
    assert "PostgreSQL" in consumers.format_kafka_report(results[1])


@needs_postgres
def test_job_benchmark_on_both_stores_finds_the_same(
    job: ModuleType, capsys: pytest.CaptureFixture[str]
) -> None:
    pytest.importorskip("psycopg")
    assert job.main(["--events", "2000", "--days", "10", "--store", "both", "--json"]) == 0
    duck, pg = json.loads(capsys.readouterr().out)
    assert (duck["store_kind"], pg["store_kind"]) == ("duckdb", "postgres")
    assert pg["store"].startswith("PostgreSQL") and "throwaway cluster" in pg["store"]
    for key in ("read_rows", "labelled_rows", "windows", "incidents"):
        assert duck[key] == pg[key], key
    assert "PostgreSQL store" in job.format_report(pg)
