"""Browser tests: the dashboard in Debian's Chromium, driven by Playwright.

The browser is the system's (``/usr/bin/chromium``, Debian's ``chromium`` package, which
``.ci/run`` installs); Playwright never downloads one here. Without it, or without the
``playwright`` package, these tests skip.

The store is the demo's month (``tripwire.demo.scenario``), lived through day by day as
production would: each day ``job.run`` checks the new window without its labels and the window
whose labels arrived (a week late), saves the incidents and delivers their alerts to the
console, its clock just past the day's end as the demo's scheduler's is. The server is the app
``tripwire serve --no-schedule`` builds (no monitor: what it shows, the reference's histograms
included, it reads from the store), run by uvicorn in a thread on 127.0.0.1 and stopped at the
end.

Screenshots go to ``$TRIPWIRE_TEST_ARTIFACTS/browser`` when that variable is set (``.ci/run``
sets it to ``test-artifacts/`` in the checkout, where CI collects them), else to pytest's
temporary directory.
"""

from __future__ import annotations

import io
import os
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import redirect_stderr
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from tripwire.config import ModelConfig, parse_config
from tripwire.demo import scenario
from tripwire.job import run
from tripwire.monitor import Monitor
from tripwire.server import create_app
from tripwire.store import DuckDBStore

CHROMIUM = Path("/usr/bin/chromium")
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
READ_TOKEN = "browser-test-read-token"
DAY = timedelta(days=1)
CHECKED = timedelta(minutes=10)  # past a day's end, when the job checks it

if not CHROMIUM.exists():
    pytest.skip(
        "Debian's chromium is not installed (apt-get install chromium; .ci/run does)",
        allow_module_level=True,
    )
sync_api = pytest.importorskip("playwright.sync_api", reason="pip install 'tripwire[test]'")


@dataclass
class Site:
    """The running dashboard: its address, the read token, what the store holds."""

    base: str
    token: str
    config: ModelConfig
    incidents: list[dict[str, Any]] = field(default_factory=list)

    def url(self, path: str) -> str:
        return self.base + path


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@pytest.fixture(scope="session")
def demo_store(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Monitor]:
    """The demo's month in a store, checked as the days went by."""
    data = scenario.generate()
    monitor = Monitor(parse_config(scenario.CONFIG_YAML, "demo tripwire.yaml")).fit(data.reference)
    path = tmp_path_factory.mktemp("demo") / "tripwire.duckdb"
    lag = scenario.LABEL_LAG_DAYS
    with DuckDBStore(path) as store, redirect_stderr(io.StringIO()):  # the console channel
        for index, (day, table) in enumerate(data.days):
            # The job's clock, as the demo's scheduler's: just past the day's end.
            now = datetime(day.year, day.month, day.day, tzinfo=UTC) + DAY + CHECKED
            run(monitor, store, scenario.without_labels(table), DAY, now=now)
            if index >= lag:
                run(monitor, store, data.days[index - lag][1], DAY, now=now)
    return path, monitor


@pytest.fixture(scope="session")
def site(demo_store: tuple[Path, Monitor]) -> Iterator[Site]:
    import uvicorn

    path, monitor = demo_store
    config = monitor.config
    with DuckDBStore(path) as store:
        # No scheduler and no monitor, as `tripwire serve --no-schedule` over a store the job
        # filled: the feature pages' reference histograms are the one the job kept there.
        app = create_app({config.name: config}, store, None, READ_TOKEN)
        server = uvicorn.Server(
            uvicorn.Config(
                app, host="127.0.0.1", port=_free_port(), log_level="warning", lifespan="off"
            )
        )
        thread = threading.Thread(target=server.run, name="dashboard", daemon=True)
        thread.start()
        while not server.started:
            if not thread.is_alive():
                raise RuntimeError("the dashboard's server did not start")
            time.sleep(0.05)
        port = server.servers[0].sockets[0].getsockname()[1]
        incidents = store.incidents(config.name).to_pylist()
        try:
            yield Site(f"http://127.0.0.1:{port}", READ_TOKEN, config, incidents)
        finally:
            server.should_exit = True
            thread.join()


@pytest.fixture(scope="session")
def artifacts(tmp_path_factory: pytest.TempPathFactory) -> Path:
    configured = os.environ.get("TRIPWIRE_TEST_ARTIFACTS")
    where = Path(configured) / "browser" if configured else tmp_path_factory.mktemp("browser")
    where.mkdir(parents=True, exist_ok=True)
    return where


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    with sync_api.sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        try:
            yield chromium
        finally:
            chromium.close()


@dataclass
class Watched:
    """A browser page, with what it logged and every address it asked for."""

    page: Any
    errors: list[str]
    requests: list[str]
    artifacts: Path

    def shot(self, name: str) -> Path:
        path = self.artifacts / f"{name}.png"
        self.page.screenshot(path=str(path), full_page=True)
        return path


@pytest.fixture
def page(browser: Any, site: Site, artifacts: Path) -> Iterator[Watched]:
    """A fresh browser context (no cookie yet); after the test, no page may have logged an
    error (a refused style or script shows up as one) or asked anything of another host."""
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    tab = context.new_page()
    watched = Watched(tab, [], [], artifacts)
    tab.on("console", lambda m: watched.errors.append(m.text) if m.type == "error" else None)
    tab.on("pageerror", lambda e: watched.errors.append(str(e)))
    tab.on("request", lambda r: watched.requests.append(r.url))
    try:
        yield watched
    finally:
        context.close()
    assert watched.errors == []
    assert [u for u in watched.requests if not u.startswith(site.base)] == []
