"""The spool-file path: what ``Logger(..., FileTransport(directory))`` writes, ``FileConsumer``
stores exactly once, into DuckDB and into PostgreSQL; lines that are not events are quarantined
once, by file and line; a partial last line waits for its end; finished files (and only those)
are deleted or moved once stored; one consumer per directory; and ``tripwire consume files``
killed with SIGKILL again and again, while a logger goes on writing, loses and duplicates
nothing."""

from __future__ import annotations

import importlib.util
import json
import os
import random
import re
import subprocess
import sys
import threading
import time
from contextlib import suppress
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from click.testing import CliRunner

from tripwire.cli import cli
from tripwire.config import ModelConfig
from tripwire.demo import scenario
from tripwire.ingest.file_consumer import (
    LOCK_NAME,
    STATE_NAME,
    DirectoryBusyError,
    FileConsumer,
    finished_files,
)
from tripwire.logger import CLOSED_SUFFIX, FileTransport, Logger
from tripwire.server.collector import Collector
from tripwire.server.validation import UNKNOWN_MODEL
from tripwire.store import DuckDBStore, open_store


def _load(name: str) -> ModuleType:
    """``<name>.py`` of this directory, loaded once, as ``tripwire_tests_ingest_<name>``: by
    path, since with --import-mode=importlib this directory is not on sys.path."""
    module_name = f"tripwire_tests_ingest_{name}"
    if module_name not in sys.modules:
        spec = importlib.util.spec_from_file_location(
            module_name, Path(__file__).parent / f"{name}.py"
        )
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[module_name] = module  # dataclasses look their module up by name
        spec.loader.exec_module(module)
    return sys.modules[module_name]


_shared = _load("shared")
config = _shared.config  # not its store: these tests take the suite's, DuckDB and PostgreSQL
demo_events = _shared.demo_events
_stored = _shared.stored
_drain = _shared.drain

Store = Any  # DuckDBStore or PostgresStore (tests/conftest.py's store fixture)


@pytest.fixture
def spool(tmp_path: Path) -> Path:
    directory = tmp_path / "spool"
    directory.mkdir()
    return directory


def _collector(config: ModelConfig, store: Store) -> Collector:
    return Collector({config.name: config}, store)


def _consumer(spool: Path, collector: Collector, **options: Any) -> FileConsumer:
    return FileConsumer(spool, collector, **{"batch_size": 300, **options})


def _log(logger: Logger, config: ModelConfig, n: int, seed: int = 0) -> list[str]:
    """Log ``n`` of the demo's predictions as a serving process would; their event ids."""
    day = scenario.generate(days=1, rows_per_day=n, reference_rows=1, seed=seed).days[0][1]
    columns = config.columns
    ids = []
    for row in day.to_pylist():
        event_id = logger.log(
            features={name: row[name] for name in columns.features},
            prediction=row[columns.prediction],
            timestamp=row[columns.timestamp],
        )
        assert event_id is not None
        ids.append(event_id)
    return ids


def _line(event: dict[str, Any]) -> bytes:
    return (json.dumps(event) + "\n").encode()


def _ids(store: Store, config: ModelConfig) -> set[str]:
    return set(store.events(config.name)["event_id"].to_pylist())


def _names(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir() if not p.name.startswith("."))


# --------------------------------------------------------------------------- in process


def test_logger_files_are_stored_once_and_bad_lines_quarantined_once(
    spool: Path, config: ModelConfig, store: Store
) -> None:
    with Logger(
        config.name, FileTransport(spool, max_bytes=60_000), batch_size=200, flush_interval=0.01
    ) as logger:
        ids = _log(logger, config, 1500)
    assert len(list(spool.glob("events-*.ndjson"))) > 3  # rotated
    # A file written by hand: a repeat, lines that are not events, and a valid new one.
    events = demo_events(config, 2)
    repeat = json.loads(next(iter(sorted(spool.glob("*.ndjson")))).read_text().splitlines()[0])
    hand = spool / "by-hand.ndjson"
    hand.write_bytes(
        _line(repeat)  # 1: logged already
        + b'{"event_id": "x", not json\n'  # 2
        + b"\n"  # 3: blank, skipped
        + b"[1, 2]\n"  # 4: JSON, not an event
        + _line(dict(events[0], features={}))  # 5: an invalid event
        + _line(dict(events[1], model="nobody"))  # 6: an unknown model
        + _line(dict(events[1], event_id="by-hand-1"))  # 7
    )
    collector = _collector(config, store)
    with _consumer(spool, collector) as consumer:
        assert _drain(consumer) == 1500 + 7
        s = consumer.stats
        assert (s.stored, s.duplicates, s.quarantined, s.lines) == (1501, 1, 4, 1506)
        assert consumer.lag() == 0
    assert _stored(store) == (1501, 1501)
    assert _ids(store, config) == {*ids, "by-hand-1"}
    unknown = store.quarantined(UNKNOWN_MODEL).to_pylist()
    [invalid] = store.quarantined(config.name).to_pylist()
    [nobody] = store.quarantined("nobody").to_pylist()
    # Each bad line is named by its file and line, in its origin and in its reason.
    assert sorted(row["source"] for row in [*unknown, invalid, nobody]) == [
        f"file {hand}:{n}" for n in (2, 4, 5, 6)
    ]
    assert any(f"{hand}:2: not JSON" in row["reason"] for row in unknown)
    assert "features" in invalid["reason"] and events[0]["event_id"] in invalid["payload"]

    # The positions are kept: a restart reads nothing again.
    with _consumer(spool, collector) as restarted:
        assert _drain(restarted) == 0
    # Without them every line is read again, and nothing is stored or quarantined twice.
    (spool / STATE_NAME).unlink()
    with _consumer(spool, collector) as again:
        assert _drain(again) == 1507
        assert (again.stats.stored, again.stats.duplicates) == (0, 1502)
    assert _stored(store) == (1501, 1501)
    assert len(store.quarantined(UNKNOWN_MODEL)) == 2 and len(store.quarantined("nobody")) == 1


def test_a_partial_last_line_waits_until_it_is_complete(
    spool: Path, config: ModelConfig, store: Store
) -> None:
    events = demo_events(config, 4)
    path = spool / "events-20260101T000000000000Z-000000.ndjson"
    third = _line(events[2])
    path.write_bytes(_line(events[0]) + _line(events[1]) + third[:25])  # a writer mid-line
    collector = _collector(config, store)
    with _consumer(spool, collector, report_interval_s=0) as consumer:
        assert _drain(consumer) == 2
        assert consumer.lag() == 0 and consumer.stats.quarantined == 0
        with path.open("ab") as out:
            out.write(third[25:-1])  # more of it, still no newline
        assert consumer.poll_once() == 0
        with path.open("ab") as out:
            out.write(b"\n" + _line(events[3])[:10])
        assert consumer.lag() == 1
        assert _drain(consumer) == 1
        assert _ids(store, config) == {e["event_id"] for e in events[:3]}
        position = json.loads((spool / STATE_NAME).read_text())["files"][path.name]
        assert position == {"offset": len(_line(events[0]) + _line(events[1]) + third), "line": 3}
        # The writer died mid-line: once the file is marked finished, the piece it left is
        # quarantined as cut off; nothing waits for it any longer.
        path.with_name(path.name + CLOSED_SUFFIX).touch()
        assert _drain(consumer) == 1
        [cut] = store.quarantined(UNKNOWN_MODEL).to_pylist()
        assert cut["source"] == f"file {path}:4" and "cut off" in cut["reason"]
        assert position != json.loads((spool / STATE_NAME).read_text())["files"][path.name]
    assert _stored(store) == (3, 3)


def test_finished_files_are_told_by_the_writers_next_file_or_a_marker() -> None:
    names = [
        "events-A-000000.ndjson",
        "events-A-000001.ndjson",
        "events-A-000002.ndjson",  # A's latest: being written
        "events-B-000000.ndjson",  # another writer, started later: A's files are not B's
        "events-C-000004.ndjson",
        "events-C-000004.ndjson.closed",  # C closed it
        "by-hand.ndjson",
        "other.ndjson",
        "other.ndjson.closed",
    ]
    assert finished_files(names) == {
        "events-A-000000.ndjson",
        "events-A-000001.ndjson",
        "events-C-000004.ndjson",
        "other.ndjson",
    }


@pytest.mark.parametrize("on_finished", ["delete", "move"])
def test_finished_files_are_removed_once_stored_never_the_one_being_written(
    spool: Path, config: ModelConfig, tmp_path: Path, on_finished: str
) -> None:
    logger = Logger(
        config.name, FileTransport(spool, max_bytes=30_000), batch_size=100, flush_interval=0.01
    )
    ids = _log(logger, config, 600)
    assert logger.flush(timeout=30)
    written = _names(spool)
    assert len(written) > 3
    with DuckDBStore(tmp_path / "s.duckdb") as store:
        consumer = _consumer(spool, _collector(config, store), on_finished=on_finished)
        _drain(consumer)
        assert _ids(store, config) == set(ids)
        # Every file is stored, but the logger's latest is still open: it stays.
        assert _names(spool) == [*([] if on_finished == "delete" else ["done"]), written[-1]]
        assert consumer.stats.files_done == len(written) - 1
        more = _log(logger, config, 50, seed=1)
        assert logger.close()  # leaves the marker: its last file is finished now
        _drain(consumer)
        assert _ids(store, config) == {*ids, *more}
        assert _names(spool) == ([] if on_finished == "delete" else ["done"])
        consumer.close()
        state = json.loads((spool / STATE_NAME).read_text())
        assert state["files"] == {}  # positions of removed files are forgotten
    if on_finished == "move":
        done = _names(spool / "done")
        assert set(written) <= set(done) and not any(n.endswith(CLOSED_SUFFIX) for n in done)


def test_one_consumer_per_directory(spool: Path, config: ModelConfig, tmp_path: Path) -> None:
    with DuckDBStore(tmp_path / "s.duckdb") as store:
        collector = _collector(config, store)
        busy = pytest.raises(DirectoryBusyError, match=rf"pid {os.getpid()}.*{LOCK_NAME}")
        with _consumer(spool, collector), busy:
            _consumer(spool, collector)
        with _consumer(spool, collector):  # released on close
            pass


def test_the_lag_and_stored_events_are_recorded_in_the_store(
    spool: Path, config: ModelConfig, store: Store
) -> None:
    events = demo_events(config, 700)
    first, second = spool / "a-000000.ndjson", spool / "a-000001.ndjson"
    first.write_bytes(b"".join(_line(e) for e in events[:400]))
    second.write_bytes(b"".join(_line(e) for e in events[400:600]) + b'{"partial')
    collector = _collector(config, store)
    with _consumer(spool, collector, report_interval_s=0, group="g") as consumer:
        assert consumer.poll_once() == 300
        [row] = store.consumers().to_pylist()
        assert (row["source"], row["stream"], row["group_id"]) == ("file", str(spool), "g")
        assert row["lag"] == 300 == consumer.stats.lag  # complete lines only
        assert row["events_stored"] == 300
        with second.open("ab") as out:
            out.write(b"".join(_line(e) for e in events[600:]))  # ends the partial line too
        # 100 lines left in the first file, 300 in the second: 200, then the partial line
        # ended by the first new event (not JSON), and 99 more.
        assert consumer.lag() == 400
        assert _drain(consumer) == 400
        [row] = store.consumers().to_pylist()
        assert row["lag"] == 0 and row["events_stored"] == 699
    assert len(store.quarantined(UNKNOWN_MODEL)) == 1


def test_a_replaced_file_is_read_again_and_another_store_is_warned_of(
    spool: Path, config: ModelConfig, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    events = demo_events(config, 30)
    path = spool / "e-000000.ndjson"
    path.write_bytes(b"".join(_line(e) for e in events[:20]))
    with (
        DuckDBStore(tmp_path / "a.duckdb") as store,
        _consumer(spool, _collector(config, store)) as c,
    ):
        assert _drain(c) == 20
        # Replaced by a shorter file (not something FileTransport does): read from its start.
        path.write_bytes(b"".join(_line(e) for e in events[20:]))
        assert _drain(c) == 10
        assert "shorter" in caplog.text and _stored(store) == (30, 30)
    # The positions were recorded for store a: store b is told it will not get those lines.
    with DuckDBStore(tmp_path / "b.duckdb") as other:
        with _consumer(spool, _collector(config, other)) as c:
            assert _drain(c) == 0
        assert f"into {tmp_path / 'a.duckdb'}, not {tmp_path / 'b.duckdb'}" in caplog.text
        assert json.loads((spool / STATE_NAME).read_text())["store"] == str(tmp_path / "b.duckdb")


def test_a_failed_batch_is_not_recorded_and_is_stored_after_all(
    spool: Path, config: ModelConfig, tmp_path: Path
) -> None:
    events = demo_events(config, 500)
    (spool / "e-000000.ndjson").write_bytes(b"".join(_line(e) for e in events))
    with DuckDBStore(tmp_path / "s.duckdb") as store:
        collector = _shared.FailsOnce({config.name: config}, store)
        with _consumer(spool, collector) as consumer:
            with pytest.raises(OSError, match="disk full"):
                consumer.poll_once()
            assert not (spool / STATE_NAME).exists()
            assert _drain(consumer) == 500
        assert _stored(store) == (500, 500)


# --------------------------------------------------------------------------- the command


def test_consume_files_help_has_an_example() -> None:
    result = CliRunner().invoke(cli, ["consume", "files", "--help"])
    assert result.exit_code == 0
    assert "Example" in result.output and "tripwire consume files" in result.output


def _args(tmp_path: Path, spool: Path, store: str, *more: str) -> list[str]:
    (tmp_path / "tripwire.yaml").write_text(scenario.CONFIG_YAML, encoding="utf-8")
    return [
        "consume",
        "files",
        "--directory",
        str(spool),
        "--config",
        str(tmp_path / "tripwire.yaml"),
        "--store",
        store,
        *more,
    ]


def test_consume_files_stores_what_is_there_and_exits(
    tmp_path: Path, spool: Path, config: ModelConfig, store_target: str
) -> None:
    events = demo_events(config, 250)
    (spool / "e-000000.ndjson").write_bytes(b"".join(_line(e) for e in events[:200]) + b"oops\n")
    (spool / "e-000001.ndjson").write_bytes(b"".join(_line(e) for e in events[200:]))
    args = _args(tmp_path, spool, store_target, "--batch-size", "64", "--on-finished", "move")
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    assert "250 events stored" in result.output and "1 quarantined" in result.output
    assert "1 finished files moved to done/" in result.output
    assert _names(spool) == ["done", "e-000001.ndjson"]  # the latest may still grow
    with open_store(store_target) as store:
        [bad] = store.quarantined(UNKNOWN_MODEL).to_pylist()
        assert re.fullmatch(r"file .*/e-000000\.ndjson:201", bad["source"])
        assert re.match(r".*/e-000000\.ndjson:201: not JSON", bad["reason"])

        # Busy: another consumer holds the directory.
        with FileConsumer(spool, Collector({}, store)):
            busy = CliRunner().invoke(cli, args)
    assert busy.exit_code == 2 and "another consumer" in busy.output


# --------------------------------------------------------------------------- killed


def _start(tmp_path: Path, spool: Path, log: Path) -> subprocess.Popen[bytes]:
    args = _args(tmp_path, spool, str(tmp_path / "s.db"), "--batch-size", "300")
    args += ["--on-finished", "delete", "--follow", "--poll-interval", "0.05"]
    return _shared.start(args, log)


def _recorded(spool: Path) -> dict[str, int]:
    """The state file's positions: per file, the bytes recorded as stored."""
    try:
        files = json.loads((spool / STATE_NAME).read_text())["files"]
    except FileNotFoundError:
        return {}
    return {name: at["offset"] for name, at in files.items()}


def _ids_in(spool: Path, recorded: bool) -> set[str]:
    """The event ids in the lines of the files left in ``spool`` that the state file records
    as stored (``recorded``), or in the lines after them."""
    positions = _recorded(spool)
    ids = set()
    for path in spool.glob("*.ndjson"):
        try:
            data = path.read_bytes()
        except FileNotFoundError:  # deleted since the listing, once stored
            continue
        offset = positions.get(path.name, 0)
        for line in (data[:offset] if recorded else data[offset:]).splitlines():
            with suppress(ValueError, KeyError, TypeError):  # the lines that are not events
                ids.add(json.loads(line)["event_id"])
    return ids


@pytest.mark.slow
def test_consumer_killed_mid_batch_again_and_again_stores_every_event_once(
    tmp_path: Path, spool: Path, config: ModelConfig
) -> None:
    kills = 8
    # Bad lines by hand, in a finished file: each must be quarantined once, however often
    # it is read.
    hand = spool / "events-by-hand-000000.ndjson"
    hand.write_bytes(b"not json\n" + b"[1]\n" + _line({"event_id": "no-model"}))
    hand.with_name(hand.name + CLOSED_SUFFIX).touch()
    # A serving process logs on while consumers are killed: partial lines, new files.
    logger = Logger(
        config.name, FileTransport(spool, max_bytes=100_000), batch_size=200, flush_interval=0.02
    )
    logged: list[str] = []
    writing = threading.Event()

    def serve() -> None:
        for seed in range(30):
            logged.extend(_log(logger, config, 600, seed=seed))
            time.sleep(0.1)
        writing.set()

    writer = threading.Thread(target=serve)
    writer.start()
    rng = random.Random(7)
    ahead = 0  # kills that caught a batch stored but not yet recorded
    try:
        for k in range(kills):
            log = tmp_path / f"consumer-{k}.log"
            before = _recorded(spool)
            process = _start(tmp_path, spool, log)
            # Once this run has recorded a batch it is mid-stream; kill it a moment later, at
            # whatever point of its next batch that is.
            _shared.wait_for(
                lambda b=before: _recorded(spool) != b, process, log, "a recorded batch"
            )
            _shared.kill_within(process, rng, 0.1)
            with DuckDBStore(tmp_path / "s.db") as store:
                count, distinct = _stored(store)
                ids = _ids(store, config)
            # The one promise: a position is recorded only for lines the store already has.
            recorded = _ids_in(spool, recorded=True)
            assert count == distinct and recorded <= ids, (k, len(recorded - ids))
            ahead += bool(_ids_in(spool, recorded=False) & ids)
    finally:
        writer.join(timeout=120)
    assert writing.is_set()
    assert logger.close(timeout=30)

    log = tmp_path / "consumer-final.log"
    process = _start(tmp_path, spool, log)
    n = len(logged)
    # Everything stored and every file removed (the logger closed its last).
    _shared.wait_for(lambda: _names(spool) == [], process, log, "the files to be consumed")
    _shared.stop_cleanly(process, log)

    with DuckDBStore(tmp_path / "s.db") as store:
        assert _stored(store) == (n, n)
        assert _ids(store, config) == set(logged)
        quarantined = store.quarantined(UNKNOWN_MODEL)["source"].to_pylist()
        assert sorted(quarantined) == [f"file {hand}:{line}" for line in (1, 2, 3)]
    print(f"{ahead} of {kills} kills left a stored batch unrecorded (read again)")


# --------------------------------------------------------------------------- the benchmark


def test_consumer_benchmark_runs_files_and_reports_every_figure(
    capsys: pytest.CaptureFixture[str],
) -> None:
    benchmark = _shared.benchmark("tripwire_benchmark_consumers")
    assert benchmark.main(["files", "--events", "1500", "--batch", "400"]) == 0
    out = capsys.readouterr().out
    for label in ("events/s stored", "1,500 (0 lines left)", "machine", "spool files"):
        assert label in out, label
    assert benchmark.main(["files", "--events", "1500", "--batch", "400", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["stored"] == 1500 and result["stored_per_s"] > 0 and result["left"] == 0
