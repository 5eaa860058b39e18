"""Group commit: event batches that wait while another is written are stored together, in one
INSERT and one transaction, and each still gets its own answer once its rows are committed; on
every store (see tests/conftest.py).

The tests hold the store's lock while they queue batches, so that the batches wait for it in a
known order, as concurrent requests do while a write is under way.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tripwire.config import ModelConfig
from tripwire.events import Event, Rejected
from tripwire.server import create_app
from tripwire.server.body import Batch
from tripwire.server.collector import Collector, GroupWriteError
from tripwire.server.schemas import EventIngestResult

Store = Any  # DuckDBStore or PostgresStore
Opener = Callable[[], Store]


class SpyStore:
    """A store that records each ``insert_events`` and ``write_events`` call with its size and
    can be made to fail in ``quarantine``, after a group's events are written."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.writes: list[tuple[str, int]] = []
        self.fail: Exception | None = None

    def insert_events(self, events: Sequence[Event]) -> None:
        self.writes.append(("insert", len(events)))
        self.store.insert_events(events)

    def write_events(self, events: Sequence[Event]) -> int:
        self.writes.append(("write", len(events)))
        return int(self.store.write_events(events))

    def quarantine(self, model: str, source: str, rejected: Sequence[Rejected]) -> None:
        if self.fail is not None:
            raise self.fail
        self.store.quarantine(model, source, rejected)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.store, name)


class Ingest(threading.Thread):
    """One batch ingested on a thread of its own, as a request is; its answer or its error."""

    def __init__(self, collector: Collector, items: list[Any], source: str) -> None:
        super().__init__()
        self.collector = collector
        self.batch = Batch(items=items, indices=list(range(len(items))))
        self.source = source
        self.result: EventIngestResult | None = None
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            self.result = self.collector.ingest_events(self.batch, self.source)
        except BaseException as exc:
            self.error = exc


@pytest.fixture
def spy(open_store: Opener) -> Iterator[SpyStore]:
    store = open_store()
    try:
        yield SpyStore(store)
    finally:
        store.close()


@dataclass
class Rig:
    """A collector writing to a spied-on store, and the store's lock, which a test can hold."""

    collector: Collector
    spy: SpyStore
    lock: threading.Lock

    def ingest_together(self, batches: list[list[Any]]) -> list[Ingest]:
        """Ingest ``batches`` while the store is busy: each one's thread is started once the
        one before is waiting, so they wait in order, and then the store is let go."""
        threads = []
        with self.lock:
            for n, items in enumerate(batches):
                thread = Ingest(self.collector, items, source=f"batch {n}")
                thread.start()
                threads.append(thread)
                while len(self.collector._waiting) <= n:
                    time.sleep(0.001)
        for thread in threads:
            thread.join()
        return threads

    def stored(self, model: str) -> int:
        return int(self.spy.store.events(model).num_rows)


@pytest.fixture
def rig(config: ModelConfig, spy: SpyStore) -> Rig:
    lock = threading.Lock()
    return Rig(Collector({config.name: config}, spy, lock), spy, lock)  # type: ignore[arg-type]


def _answers(threads: list[Ingest]) -> list[tuple[int, int, list[int]]]:
    answers = []
    for thread in threads:
        assert thread.error is None, thread.error
        assert thread.result is not None
        rejected = [r.index for r in thread.result.rejected]
        answers.append((thread.result.accepted, thread.result.duplicates, rejected))
    return answers


def test_waiting_batches_are_stored_in_one_insert_and_each_gets_its_own_answer(
    rig: Rig, config: ModelConfig, events: list[dict[str, Any]]
) -> None:
    bad = {**events[40], "prediction": "high"}
    batches = [events[0:20], [*events[20:30], bad], events[30:40]]
    threads = rig.ingest_together(batches)
    assert _answers(threads) == [(20, 0, []), (10, 0, [10]), (10, 0, [])]
    assert rig.spy.writes == [("insert", 40)]  # one plain INSERT for the three batches
    assert rig.stored(config.name) == 40
    # Each batch's rejected items are quarantined under its own source.
    (kept,) = rig.spy.store.quarantined(config.name).to_pylist()
    assert kept["source"] == "batch 1[10]"


def test_batches_with_no_valid_event_are_answered_in_a_group_too(
    rig: Rig, config: ModelConfig, events: list[dict[str, Any]]
) -> None:
    batches = [[], [{**events[0], "model": "churn-model"}, "not an event"], events[0:5]]
    answers = _answers(rig.ingest_together(batches))
    assert answers == [(0, 0, []), (0, 0, [0, 1]), (5, 0, [])]
    assert rig.stored(config.name) == 5
    assert rig.spy.store.quarantined("churn-model").num_rows == 1


def test_overlapping_batches_count_as_if_stored_one_after_another(
    rig: Rig, config: ModelConfig, events: list[dict[str, Any]]
) -> None:
    rig.collector.ingest_events(Batch(events[0:10], list(range(10))))
    rig.spy.writes.clear()
    batches = [
        events[0:20],  # 0-9 stored already
        [*events[15:30], events[25]],  # 15-19 in the batch before; 25 twice
        events[30:40],
    ]
    threads = rig.ingest_together(batches)
    assert _answers(threads) == [(10, 10, []), (10, 6, []), (10, 0, [])]
    # The merged INSERT met stored and repeated ids, so it was rolled back and the batches
    # stored one by one, skipping what was stored already.
    assert rig.spy.writes == [("insert", 46), ("write", 20), ("write", 16), ("write", 10)]
    stored = rig.spy.store.events(config.name).column("event_id").to_pylist()
    assert sorted(stored) == sorted(e["event_id"] for e in events[0:40])


def test_a_failed_write_fails_every_batch_of_its_group_and_stores_none_of_them(
    rig: Rig, config: ModelConfig, events: list[dict[str, Any]]
) -> None:
    bad = {**events[40], "prediction": "high"}
    rig.spy.fail = OSError("disk full")
    batches = [[*events[0:10], bad], events[10:20], events[20:30]]
    first, *others = rig.ingest_together(batches)
    # The thread that wrote the group gets the store's error; the others say what happened.
    assert isinstance(first.error, OSError)
    for thread in others:
        assert isinstance(thread.error, GroupWriteError), thread.error
        assert thread.error.__cause__ is first.error
        assert "disk full" in str(thread.error)
    assert rig.stored(config.name) == 0
    assert rig.spy.store.quarantined(config.name).num_rows == 0
    # The collector goes on: the same batches are stored once the store works again.
    rig.spy.fail = None
    answers = _answers(rig.ingest_together(batches))
    assert answers == [(10, 0, [10]), (10, 0, []), (10, 0, [])]
    assert rig.stored(config.name) == 30


def test_concurrent_requests_each_get_the_right_counts(
    config: ModelConfig, spy: SpyStore, events: list[dict[str, Any]]
) -> None:
    # Eight clients at once, each batch overlapping the next: however the server groups them,
    # every event is stored once, and the answers add up to what was sent.
    store = spy.store
    app = create_app({config.name: config}, store, "t", None)
    batches = [events[start : start + 60] for start in range(0, 240, 30)]
    answers: list[dict[str, Any]] = []

    def post(client: TestClient, batch: list[dict[str, Any]]) -> None:
        response = client.post(
            "/v1/events", json={"events": batch}, headers={"Authorization": "Bearer t"}
        )
        assert response.status_code == 200, response.text
        answers.append(response.json())

    with TestClient(app) as client:
        threads = [threading.Thread(target=post, args=(client, b)) for b in batches]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    assert len(answers) == len(batches)
    distinct = {e["event_id"] for b in batches for e in b}
    assert sum(a["accepted"] for a in answers) == len(distinct)
    assert sum(a["accepted"] + a["duplicates"] for a in answers) == sum(map(len, batches))
    assert store.events(config.name).num_rows == len(distinct)
