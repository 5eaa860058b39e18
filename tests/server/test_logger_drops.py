"""What serving processes' loggers dropped reaches ``/metrics``: real ``tripwire.Logger`` objects
with a tiny buffer send over HTTP (``HttpTransport``) to the real app served by uvicorn on
127.0.0.1; each batch carries the logger's id and its cumulative drop count, and the collector
adds up the latest count of every logger per model."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tripwire import Logger
from tripwire.config import ModelConfig, parse_config
from tripwire.demo import scenario
from tripwire.logger import DROPPED_HEADER, LOGGER_ID_HEADER, HttpTransport
from tripwire.server import create_app
from tripwire.server.collector import MAX_LOGGERS, IngestCounts, LoggerReport
from tripwire.store import DuckDBStore

INGEST_TOKEN = "ingest-token-for-logger-drops"
READ_TOKEN = "read-token-for-logger-drops"
OTHER = "churn-detector"  # a second model with the demo's columns
WAIT_S = 60.0


@dataclass
class Served:
    url: str
    configs: dict[str, ModelConfig]

    def dropped(self) -> dict[str, float]:
        """``tripwire_logger_dropped_events_total`` by model, as scraped."""
        response = httpx.get(
            f"{self.url}/metrics", headers={"Authorization": f"Bearer {READ_TOKEN}"}, timeout=30
        )
        response.raise_for_status()
        return {
            sample.labels["model"]: sample.value
            for family in text_string_to_metric_families(response.text)
            if family.name == "tripwire_logger_dropped_events"
            for sample in family.samples
            if sample.name == "tripwire_logger_dropped_events_total"
        }


@pytest.fixture
def served(tmp_path: Path) -> Iterator[Served]:
    import uvicorn

    demo = parse_config(scenario.CONFIG_YAML)
    other = parse_config(scenario.CONFIG_YAML.replace(f"name: {demo.name}", f"name: {OTHER}"))
    configs = {demo.name: demo, OTHER: other}
    with DuckDBStore(tmp_path / "store.duckdb") as store:
        app = create_app(configs, store, INGEST_TOKEN, READ_TOKEN)
        server = uvicorn.Server(
            uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", lifespan="on")
        )
        thread = threading.Thread(target=server.run, name="collector", daemon=True)
        thread.start()
        deadline = time.monotonic() + WAIT_S
        while not server.started:
            assert thread.is_alive(), "the collector did not start"
            assert time.monotonic() < deadline, "the collector did not start in time"
            time.sleep(0.05)
        port = server.servers[0].sockets[0].getsockname()[1]
        try:
            yield Served(f"http://127.0.0.1:{port}", configs)
        finally:
            server.should_exit = True
            thread.join(WAIT_S)


def _rows(n: int) -> list[dict[str, Any]]:
    return scenario.generate(days=1, rows_per_day=n, reference_rows=1).days[0][1].to_pylist()


def _log_a_burst(logger: Logger, config: ModelConfig, rows: list[dict[str, Any]]) -> None:
    """Log ``rows`` as fast as a busy server would, overflowing the logger's tiny buffer, then
    one more event once the buffer has room, so that the last batch sent carries every drop."""
    columns = config.columns

    def log(row: dict[str, Any]) -> str | None:
        return logger.log(
            features={name: row[name] for name in columns.features},
            prediction=row[columns.prediction],
            timestamp=row[columns.timestamp],
        )

    for row in rows[:-1]:
        log(row)
    assert logger.flush(timeout=WAIT_S)
    assert log(rows[-1]) is not None
    assert logger.flush(timeout=WAIT_S)


def test_every_loggers_latest_drop_count_is_added_up_per_model(served: Served) -> None:
    demo = next(iter(served.configs))
    rows = _rows(1500)

    def logger(model: str) -> Logger:
        transport = HttpTransport(served.url, token=INGEST_TOKEN)
        # Five events at most wait for the worker: the burst outruns its HTTP round trips.
        return Logger(model, transport, batch_size=5, max_buffer=5, flush_interval=0.05)

    assert served.dropped() == {demo: 0, OTHER: 0}  # every model's series, before any drop
    first, second, third = logger(demo), logger(demo), logger(OTHER)
    try:
        for each, model in ((first, demo), (second, demo), (third, OTHER)):
            _log_a_burst(each, served.configs[model], rows)
        stats = [each.stats for each in (first, second, third)]
        assert all(s.dropped > 0 and s.failed == 0 and s.rejected == 0 for s in stats)
        expected = {demo: stats[0].dropped + stats[1].dropped, OTHER: stats[2].dropped}
        assert served.dropped() == expected

        # Requests that arrive late or again change nothing: counts are cumulative, and the
        # highest a logger reported is kept.
        event = {
            "event_id": "late-request",
            "model": demo,
            "timestamp": "2026-10-01T00:00:00+00:00",
            "features": {"amount": 1.0},
            "prediction": 0.5,
        }
        headers = {"Authorization": f"Bearer {INGEST_TOKEN}"}
        for instance, dropped in ((first.instance_id, 0), (second.instance_id, 1)):
            late = {**headers, LOGGER_ID_HEADER: instance, DROPPED_HEADER: str(dropped)}
            posted = httpx.post(
                f"{served.url}/v1/events", json={"events": [event]}, headers=late, timeout=30
            )
            assert posted.status_code == 200, posted.text
        # A logger of a model the server does not know adds no series.
        stranger = {**headers, LOGGER_ID_HEADER: "0123456789abcdef", DROPPED_HEADER: "99"}
        posted = httpx.post(
            f"{served.url}/v1/events",
            json={"events": [{**event, "model": "nobody"}]},
            headers=stranger,
            timeout=30,
        )
        assert posted.status_code == 200, posted.text
        assert served.dropped() == expected
    finally:
        for each in (first, second, third):
            each.close()


def test_malformed_reports_are_ignored_and_forgotten_loggers_still_count() -> None:
    assert LoggerReport.of("abc", "12") == LoggerReport("abc", 12)
    for instance, dropped in ((None, "1"), ("abc", None), ("abc", "-1"), ("abc", "1e3")):
        assert LoggerReport.of(instance, dropped) is None
    assert LoggerReport.of("has space", "1") is None
    assert LoggerReport.of("x" * 65, "1") is None
    assert LoggerReport.of("abc", "9" * 19) is None

    counts = IngestCounts()
    counts.add_logger_drops(LoggerReport("first", 5), None)  # model not known yet: kept later
    assert counts.logger_drops() == {}
    counts.add_logger_drops(LoggerReport("first", 7), "m")
    counts.add_logger_drops(LoggerReport("first", 6), "other")  # late, and its model stays
    assert counts.logger_drops() == {"m": 7}
    for i in range(MAX_LOGGERS):
        counts.add_logger_drops(LoggerReport(f"logger-{i}", 1), "m")
    # The least recently heard logger was forgotten, its count kept in its model's total.
    assert counts.logger_drops() == {"m": 7 + MAX_LOGGERS}
