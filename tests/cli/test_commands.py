"""The CLI end to end, on the demo's files."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from tripwire.cli import cli
from tripwire.config import load_config


def invoke(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, list(args))
    return result.exit_code, result.output


@pytest.mark.parametrize("command", ["check", "fit", "init", "demo"])
def test_every_command_has_help_with_an_example(command: str) -> None:
    code, output = invoke(command, "--help")
    assert code == 0
    assert "Example" in output and f"tripwire {command}" in output


def test_check_finds_the_population_shift(demo_dir: Path) -> None:
    code, output = invoke(
        "check",
        "--config",
        str(demo_dir / "tripwire.yaml"),
        "--current",
        str(demo_dir / "days" / "2026-10-12.parquet"),
        "--json",
    )
    assert code == 0, output
    report = json.loads(output)
    psi = {
        r["feature"]: r for r in report["rows"] if r["metric"] == "psi" and r["segment"] == "all"
    }
    assert psi["distance_km"]["status"] == "alert" and psi["distance_km"]["value"] > 0.25
    assert psi["amount"]["status"] == "ok"


def test_check_prints_a_table_and_writes_html(demo_dir: Path, tmp_path: Path) -> None:
    html = tmp_path / "day5.html"
    code, output = invoke(
        "check",
        "--config",
        str(demo_dir / "tripwire.yaml"),
        "--current",
        str(demo_dir / "days" / "2026-10-05.parquet"),
        "--html",
        str(html),
    )
    assert code == 0, output
    assert "merchant_risk" in output and "ALERT" in output
    assert html.read_text(encoding="utf-8").startswith("<!DOCTYPE html>")


def test_fit_then_check_with_the_saved_monitor_gives_the_same_report(
    demo_dir: Path, tmp_path: Path
) -> None:
    saved = tmp_path / "fraud.monitor"
    config = str(demo_dir / "tripwire.yaml")
    current = str(demo_dir / "days" / "2026-10-25.parquet")
    assert invoke("fit", "--config", config, "--out", str(saved))[0] == 0
    direct = json.loads(invoke("check", "--config", config, "--current", current, "--json")[1])
    loaded = json.loads(
        invoke(
            "check", "--config", config, "--monitor", str(saved), "--current", current, "--json"
        )[1]
    )
    assert direct["rows"] == loaded["rows"]


def test_init_writes_a_config_that_loads(demo_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "tripwire.yaml"
    code, output = invoke("init", str(demo_dir / "reference.parquet"), "--out", str(out))
    assert code == 0, output
    config = load_config(out)
    assert config.columns.prediction == "score"
    assert config.columns.label == "is_fraud"
    assert config.columns.features["amount"] == "numeric"
    assert config.columns.features["country"] == "categorical"
    assert invoke("init", str(demo_dir / "reference.parquet"), "--out", str(out))[0] == 2


def test_errors_name_the_file_and_hide_the_traceback(demo_dir: Path, tmp_path: Path) -> None:
    missing = tmp_path / "nope.parquet"
    code, output = invoke(
        "check", "--config", str(demo_dir / "tripwire.yaml"), "--current", str(missing)
    )
    assert code == 2
    assert str(missing) in output and "Traceback" not in output


def test_a_bad_config_names_line_and_field(tmp_path: Path) -> None:
    config = tmp_path / "tripwire.yaml"
    config.write_text(
        "name: m\ntask: binary\ncolumns:\n  features:\n    x: number\n  prediction: p\n",
        encoding="utf-8",
    )
    current = tmp_path / "x.csv"
    current.write_text("x,p\n1,0.5\n", encoding="utf-8")
    code, output = invoke("check", "--config", str(config), "--current", str(current))
    assert code == 2
    assert "tripwire.yaml:5" in output and "columns.features.x" in output


def test_missing_prediction_column_is_named(tmp_path: Path) -> None:
    config = tmp_path / "tripwire.yaml"
    config.write_text(
        "name: m\ntask: regression\ncolumns:\n  features: {x: numeric}\n  prediction: p\n"
        "reference: ref.csv\n",
        encoding="utf-8",
    )
    (tmp_path / "ref.csv").write_text("x,p\n1,0.5\n2,0.7\n", encoding="utf-8")
    (tmp_path / "cur.csv").write_text("x\n1\n", encoding="utf-8")
    code, output = invoke("check", "--config", str(config), "--current", str(tmp_path / "cur.csv"))
    assert code == 2
    assert "cur.csv" in output and "'p'" in output and "prediction" in output


def test_debug_shows_the_traceback(tmp_path: Path) -> None:
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "tripwire",
            "--debug",
            "check",
            "--config",
            str(tmp_path / "missing.yaml"),
            "--current",
            str(tmp_path / "x.parquet"),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode != 0
    assert "Traceback" in result.stderr


def test_console_script_runs() -> None:
    result = subprocess.run(["tripwire", "--version"], capture_output=True, text=True, check=False)
    assert result.returncode == 0 and "tripwire" in result.stdout
