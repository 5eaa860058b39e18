from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from tripwire.cli import cli


@pytest.fixture(scope="session")
def demo_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The demo run once for the whole session: its files feed the other CLI tests."""
    out = tmp_path_factory.mktemp("demo")
    result = CliRunner().invoke(cli, ["demo", "--out", str(out), "--json"])
    assert result.exit_code == 0, result.output
    (out / "demo.json").write_text(result.stdout, encoding="utf-8")
    return out
