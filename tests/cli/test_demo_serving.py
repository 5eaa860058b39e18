"""The demo's serving process on its own: it logs each file of traffic to a real collector and
answers only once the collector has stored all of it (the demo's clock waits on that)."""

from __future__ import annotations

import threading
from pathlib import Path

import pyarrow.parquet as pq

from tripwire.config import parse_config
from tripwire.demo import scenario
from tripwire.demo.service import collector
from tripwire.demo.serving import serving_process
from tripwire.scheduler import Scheduler
from tripwire.store import DuckDBStore


def test_each_file_is_stored_whole_before_the_serving_process_answers(tmp_path: Path) -> None:
    config_path = tmp_path / "tripwire.yaml"
    config_path.write_text(scenario.CONFIG_YAML, encoding="utf-8")
    config = parse_config(scenario.CONFIG_YAML)
    data = scenario.generate(days=2, rows_per_day=1500, reference_rows=1)
    files = []
    for i, (_, day) in enumerate(data.days):
        files.append(tmp_path / f"day{i}.parquet")
        pq.write_table(day, files[-1])
    with DuckDBStore(tmp_path / "store.duckdb") as store:
        lock = threading.Lock()
        # No monitors: the scheduler only lends the collector its store and lock.
        scheduler = Scheduler({}, store, lock)
        with (
            collector({config.name: config}, scheduler) as running,
            serving_process(config_path) as serving,
        ):
            serving.connect(running)
            for n, path in enumerate(files, start=1):
                serving.serve(path)
                assert serving.shipped() == 1500 * n
                with lock:
                    assert store.events(config.name).num_rows == 1500 * n
