"""A file checked directly (``tripwire check``) and the same file loaded into the prediction
log and checked from there (``tripwire run`` on the store) give the same rows: the events a
table becomes carry the columns proxies read and a multiclass model's class probabilities."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

from tripwire.cli import cli
from tripwire.config import load_config
from tripwire.demo import scenario
from tripwire.events import table_to_events, validate_events
from tripwire.store import DuckDBStore

Key = tuple[str, str, str]  # metric, feature ('' for the outputs), segment

MULTICLASS = """\
name: pets
task: multiclass
columns:
  timestamp: ts
  id: id
  features: {x1: numeric, x2: numeric}
  prediction: predicted
  label: label
  probabilities: {0: p_cat, 1: p_dog, 2: p_bird}
  segments: [channel]
segments: {min_rows: 50}
label_lag: 14d
window: 1d
reference: reference.parquet
importance: {x1: 0.6, x2: 0.4}
proxies:
  - {name: returned_share, column: returned, equals: true, direction: above}
"""
WEIGHTS = np.array([[1.0, -0.5, 0.2], [0.3, 0.8, -1.0]])


def _softmax(logits: np.ndarray) -> np.ndarray:
    e = np.exp(logits - logits.max(axis=1, keepdims=True))
    out: np.ndarray = e / e.sum(axis=1, keepdims=True)
    return out


def _pets(rng: np.random.Generator, n: int, shift: float, day: dt.datetime) -> pa.Table:
    """A multiclass model's log with classes named by number, as events carry them, and the
    labels (its probabilities are over-confident: logits / 0.6)."""
    x = rng.normal(shift, 1.0, (n, 2))
    truth, p = _softmax(x @ WEIGHTS), _softmax(x @ WEIGHTS / 0.6)
    return pa.table(
        {
            "id": [f"{day:%Y%m%d}-{i}" for i in range(n)],
            "ts": pa.array(day + dt.timedelta(seconds=1) * np.arange(n) * (80_000 // n)),
            "x1": x[:, 0],
            "x2": x[:, 1],
            "p_cat": p[:, 0],
            "p_dog": p[:, 1],
            "p_bird": p[:, 2],
            "predicted": p.argmax(axis=1),
            "label": (rng.random(n)[:, None] > truth.cumsum(axis=1)).sum(axis=1).clip(0, 2),
            "channel": rng.choice(["web", "app"], n, p=[0.7, 0.3]),
            # A proxy's column that is no feature: serving logs it in the event's metadata.
            "returned": pa.array(
                [None if r < 0.05 else bool(r < 0.2 + 0.1 * shift) for r in rng.random(n)]
            ),
        }
    )


def _invoke(*args: str) -> str:
    result = CliRunner().invoke(cli, list(args))
    assert result.exit_code == 0, result.output
    return str(result.stdout)


def _checked(config: Path, current: Path) -> dict[Key, Any]:
    """``tripwire check`` on the file: its rows by key."""
    report = json.loads(
        _invoke("check", "--config", str(config), "--current", str(current), "--json")
    )
    return {(r["metric"], r["feature"] or "", r["segment"]): r["value"] for r in report["rows"]}


def _loaded_and_run(config_path: Path, current: Path, store_path: Path) -> dict[Key, Any]:
    """The file loaded into the log, then ``tripwire run`` on the store: its one window's rows
    by key."""
    config = load_config(config_path)
    events, rejected = validate_events(config, table_to_events(config, pq.read_table(current)))
    assert not rejected
    with DuckDBStore(store_path) as store:
        assert store.write_events(events) == len(events)
    result = json.loads(
        _invoke("run", "--config", str(config_path), "--store", str(store_path), "--json")
    )
    assert len(result["windows"]) == 1
    with DuckDBStore(store_path) as store:
        rows = store.history(config.name, config.window).to_pylist()
    return {(r["metric"], r["feature"] or "", r["segment"]): r["value"] for r in rows}


def _assert_same(
    checked: dict[Key, Any], stored: dict[Key, Any], prefixes: tuple[str, ...]
) -> set[str]:
    """The rows of metrics starting with ``prefixes`` agree; returns their metrics."""
    keys = {k for k in checked if k[0].startswith(prefixes)}
    assert keys == {k for k in stored if k[0].startswith(prefixes)}
    for key in sorted(keys):
        a, b = checked[key], stored[key]
        if a is None or b is None:
            assert a == b, key
        else:
            assert b == pytest.approx(a, rel=1e-9, abs=1e-12), key
    return {k[0] for k in keys}


def test_a_file_with_a_proxy_column_checks_the_same_loaded_into_the_log(tmp_path: Path) -> None:
    data = scenario.generate(days=1, rows_per_day=2000, reference_rows=6000)
    config = tmp_path / "tripwire.yaml"
    config.write_text(scenario.CONFIG_YAML, encoding="utf-8")
    pq.write_table(data.reference, tmp_path / "reference.parquet")
    # Labels reach the log later and on their own; the file holds what serving logged.
    current = tmp_path / "day.parquet"
    pq.write_table(data.days[0][1].drop_columns(["is_fraud"]), current)

    checked = _checked(config, current)
    stored = _loaded_and_run(config, current, tmp_path / "log.duckdb")
    metrics = _assert_same(checked, stored, ("proxy_", "estimated_"))
    assert {"proxy_manual_review_share", "estimated_auc"} <= metrics
    proxies = {k: v for k, v in stored.items() if k[0] == "proxy_manual_review_share"}
    assert len(proxies) > 1 and all(v is not None for v in proxies.values())  # and segments


def test_a_multiclass_file_checks_the_same_loaded_into_the_log(tmp_path: Path) -> None:
    rng = np.random.default_rng(7)
    config = tmp_path / "tripwire.yaml"
    config.write_text(MULTICLASS, encoding="utf-8")
    pq.write_table(_pets(rng, 8000, 0.0, dt.datetime(2026, 4, 1)), tmp_path / "reference.parquet")
    current = tmp_path / "day.parquet"
    pq.write_table(_pets(rng, 3000, 0.6, dt.datetime(2026, 5, 1)).drop_columns(["label"]), current)

    checked = _checked(config, current)
    stored = _loaded_and_run(config, current, tmp_path / "log.duckdb")
    prefixes = ("class_", "estimated_", "proxy_", "entropy", "score_psi", "mean_pred")
    metrics = _assert_same(checked, stored, prefixes)
    assert {
        "class_psi",
        "class_share_0",
        "class_share_2",
        "estimated_accuracy",
        "estimated_f1",
        "entropy",
        "proxy_returned_share",
    } <= metrics
    estimated = {k: v for k, v in stored.items() if k[0] == "estimated_accuracy"}
    assert {k[2] for k in estimated} == {"all", "channel=web", "channel=app"}
    assert all(v is not None for v in estimated.values())
