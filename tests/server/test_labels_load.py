"""``tripwire labels load``: labels from a file join their events; bad rows are quarantined
with their row number."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from click.testing import CliRunner

from tripwire.cli import cli
from tripwire.config import ModelConfig
from tripwire.demo import scenario
from tripwire.events import validate_events
from tripwire.store import DuckDBStore


def test_labels_load_stores_labels_and_quarantines_the_bad_row(
    tmp_path: Path, config: ModelConfig, events: list[dict[str, Any]]
) -> None:
    config_path = tmp_path / "tripwire.yaml"
    config_path.write_text(scenario.CONFIG_YAML, encoding="utf-8")
    store_path = tmp_path / "store.duckdb"
    with DuckDBStore(store_path) as store:
        store.write_events(validate_events(config, events[:5])[0])
    ids = [e["event_id"] for e in events[:5]]
    csv_path = tmp_path / "labels.csv"
    csv_path.write_text(
        "event_id,label,labelled_at\n"
        f"{ids[0]},1,2026-10-08T09:00:00\n"
        f"{ids[1]},0,2026-10-08T09:00:00\n"
        f"{ids[2]},maybe,2026-10-08T09:00:00\n"
        f"{ids[3]},0,\n"
        f"{ids[4]},1,2026-10-09T09:00:00\n",
        encoding="utf-8",
    )
    args = ["labels", "load", str(csv_path), "--config", str(config_path)]
    result = CliRunner().invoke(cli, [*args, "--store", str(store_path)])
    assert result.exit_code == 0, result.output
    output = " ".join(result.output.split())  # as the terminal wrapped it
    assert "4 labels stored, 1 quarantined" in output
    assert "row 3: label:" in output
    with DuckDBStore(store_path) as store:
        joined = {r["event_id"]: r["label"] for r in store.events(config.name).to_pylist()}
        (kept,) = store.quarantined(config.name).to_pylist()
    assert [joined[i] for i in ids] == [1.0, 0.0, None, 0.0, 1.0]
    assert kept["source"] == f"labels load {csv_path}[3]"
    assert "maybe" in kept["payload"]


def test_labels_load_names_a_missing_column(tmp_path: Path) -> None:
    config_path = tmp_path / "tripwire.yaml"
    config_path.write_text(scenario.CONFIG_YAML, encoding="utf-8")
    csv_path = tmp_path / "labels.csv"
    csv_path.write_text("id,label\na,1\n", encoding="utf-8")
    args = ["labels", "load", str(csv_path), "--config", str(config_path)]
    result = CliRunner().invoke(cli, [*args, "--store", str(tmp_path / "s.duckdb")])
    assert result.exit_code == 2
    assert "missing column event_id" in " ".join(result.output.split())
