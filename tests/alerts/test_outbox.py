"""The outbox: persistence, independent retries with backoff, exactly-once delivery, no secrets;
on each store (tests/conftest.py), and on PostgreSQL with several processes delivering at once."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from tripwire.alerts.channels import DeliveryError, send
from tripwire.alerts.message import AlertMessage
from tripwire.alerts.outbox import LEASE, MAX_ATTEMPTS, DeliveryReport, Outbox, backoff
from tripwire.config import Channel, ConsoleChannel, PagerDutyChannel, WebhookChannel
from tripwire.store import Store

SECRET = "outbox-secret-value-never-stored"
T0 = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)

Make = Callable[..., AlertMessage]


@pytest.fixture
def outbox(store: Store) -> Outbox:
    return Outbox(store)


def _webhooks(receiver: Any, *paths: str) -> list[Channel]:
    return [WebhookChannel(type="webhook", url=f"{receiver.url}{path}") for path in paths]


def test_a_failing_channel_is_retried_with_backoff_and_delivered_once(
    outbox: Outbox, http_receiver: Any, make_message: Make
) -> None:
    http_receiver.script("/flaky", 500, 500)
    channels = _webhooks(http_receiver, "/ok", "/flaky")
    routes = {"oncall": channels}
    assert outbox.enqueue(make_message(), channels, now=T0) == 2

    first = outbox.deliver_due(routes, now=T0)
    assert (first.delivered, first.failed) == (1, 1)
    assert len(http_receiver.to("/ok")) == 1
    (waiting,) = outbox.pending()
    assert waiting.channel_index == 1
    assert waiting.attempts == 1
    assert waiting.next_attempt_at == T0 + timedelta(seconds=30)
    assert waiting.last_error is not None
    assert "webhook" in waiting.last_error
    assert "500" in waiting.last_error

    # Not due yet: nothing is tried.
    assert outbox.deliver_due(routes, now=T0 + timedelta(seconds=29)).attempted == 0

    second_try = T0 + timedelta(seconds=30)
    assert outbox.deliver_due(routes, now=second_try).failed == 1
    (waiting,) = outbox.pending()
    assert waiting.attempts == 2
    assert waiting.next_attempt_at == second_try + timedelta(seconds=60)  # the wait doubled

    third_try = second_try + timedelta(seconds=60)
    assert outbox.deliver_due(routes, now=third_try).delivered == 1
    assert outbox.backlog() == 0
    assert outbox.deliver_due(routes, now=third_try + timedelta(days=1)).attempted == 0

    assert len(http_receiver.to("/ok")) == 1
    assert len(http_receiver.to("/flaky")) == 3  # two failures, one success
    delivered = {row.channel_index: row for row in outbox.delivered()}
    assert delivered[0].delivered_at == T0
    assert delivered[1].delivered_at == third_try
    assert delivered[1].attempts == 3
    assert delivered[1].message == make_message()


def test_enqueueing_the_same_event_twice_adds_nothing(outbox: Outbox, make_message: Make) -> None:
    channels: list[Channel] = [ConsoleChannel(type="console"), ConsoleChannel(type="console")]
    message = make_message()

    assert outbox.enqueue(message, channels, now=T0) == 2
    assert outbox.enqueue(message, channels, now=T0 + timedelta(minutes=5)) == 0
    assert outbox.backlog() == 2
    # The resolve is another event of the same incident, so it is queued.
    resolution = message.model_copy(update={"event": "resolved", "resolved_at": T0})
    assert outbox.enqueue(resolution, channels, now=T0) == 2


def test_fired_keys_are_the_incidents_announced(outbox: Outbox, make_message: Make) -> None:
    channels: list[Channel] = [ConsoleChannel(type="console")]
    assert outbox.fired_keys() == set()

    outbox.enqueue(make_message(dedup_key="a"), channels, now=T0)
    outbox.enqueue(make_message(dedup_key="b"), channels, now=T0)
    outbox.enqueue(make_message(dedup_key="c", event="resolved", resolved_at=T0), channels)

    assert outbox.fired_keys() == {"a", "b"}


def test_backoff_grows_to_an_hour_then_the_row_is_dead(outbox: Outbox, make_message: Make) -> None:
    def always_fails(channel: Channel, message: AlertMessage) -> None:
        raise DeliveryError("webhook: receiver answered HTTP 502")

    channels: list[Channel] = [ConsoleChannel(type="console")]
    outbox.enqueue(make_message(), channels, now=T0)
    now, waits = T0, []
    for _ in range(MAX_ATTEMPTS):
        outbox.deliver_due({"oncall": channels}, now=now, send=always_fails)
        rows = outbox.pending() or outbox.dead()
        waits.append(rows[0].next_attempt_at - now)
        now = rows[0].next_attempt_at

    assert [wait.total_seconds() for wait in waits] == [
        30,
        60,
        120,
        240,
        480,
        960,
        1920,
        3600,
        3600,
        3600,
        3600,
        3600,
    ]
    assert outbox.pending() == []
    (dead,) = outbox.dead()
    assert dead.state == "dead"
    assert dead.attempts == MAX_ATTEMPTS
    assert dead.last_error == "webhook: receiver answered HTTP 502"
    assert outbox.deliver_due({"oncall": channels}, now=now + timedelta(days=1)).attempted == 0
    assert backoff(MAX_ATTEMPTS) == timedelta(hours=1)


def test_one_channel_raising_does_not_stop_the_others(outbox: Outbox, make_message: Make) -> None:
    sent: list[int] = []
    channels: list[Channel] = [ConsoleChannel(type="console") for _ in range(3)]

    def second_breaks(channel: Channel, message: AlertMessage) -> None:
        index = next(i for i, candidate in enumerate(channels) if candidate is channel)
        if index == 1:
            raise RuntimeError("a bug, not a delivery failure")
        sent.append(index)

    outbox.enqueue(make_message(), channels, now=T0)
    report = outbox.deliver_due({"oncall": channels}, now=T0, send=second_breaks)

    assert sent == [0, 2]
    assert (report.delivered, report.failed) == (2, 1)
    (failed,) = outbox.pending()
    assert failed.last_error == "unexpected RuntimeError"


def test_a_resolve_waits_for_its_trigger(outbox: Outbox, make_message: Make) -> None:
    failures = iter([True])

    def fails_once(channel: Channel, message: AlertMessage) -> None:
        if next(failures, False):
            raise DeliveryError("pagerduty: request failed")

    channels: list[Channel] = [ConsoleChannel(type="console")]
    message = make_message()
    outbox.enqueue(message, channels, now=T0)
    resolution = message.model_copy(update={"event": "resolved", "resolved_at": T0})
    outbox.enqueue(resolution, channels, now=T0)

    report = outbox.deliver_due({"oncall": channels}, now=T0, send=fails_once)
    assert (report.failed, report.held) == (1, 1)

    report = outbox.deliver_due(
        {"oncall": channels}, now=T0 + timedelta(minutes=1), send=fails_once
    )
    assert report.delivered == 2
    assert [row.event for row in outbox.delivered()] == ["firing", "resolved"]


def test_a_changed_route_is_not_sent_to_the_wrong_channel(
    outbox: Outbox, make_message: Make
) -> None:
    sent: list[Channel] = []
    outbox.enqueue(make_message(), [ConsoleChannel(type="console")], now=T0)

    changed: dict[str, list[Channel]] = {"oncall": [WebhookChannel(type="webhook", url="http://x")]}
    report = outbox.deliver_due(changed, now=T0, send=lambda c, m: sent.append(c))

    assert sent == []
    assert report.failed == 1
    assert "is now webhook, was console" in (outbox.pending()[0].last_error or "")


def test_missing_variable_is_named_and_no_secret_is_stored(
    outbox: Outbox,
    store: Store,
    http_receiver: Any,
    make_message: Make,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("TW_TEST_MISSING_KEY", raising=False)
    monkeypatch.setenv("TW_TEST_TOKEN", SECRET)
    # The failing receiver echoes the request headers, bearer token included, in its answer.
    http_receiver.answer("/hook", 500)
    channels: list[Channel] = [
        PagerDutyChannel(type="pagerduty", routing_key_env="TW_TEST_MISSING_KEY"),
        WebhookChannel(type="webhook", url=f"{http_receiver.url}/hook", token_env="TW_TEST_TOKEN"),
    ]
    outbox.enqueue(make_message(), channels, now=T0)

    report = outbox.deliver_due({"oncall": channels}, now=T0)

    assert report.failed == 2
    assert len(http_receiver.to("/hook")) == 1
    errors = [row.last_error or "" for row in outbox.pending()]
    assert "TW_TEST_MISSING_KEY" in errors[0]
    assert "HTTP 500" in errors[1]
    every_value = store.sql("SELECT * FROM outbox")
    cells = [str(value) for row in every_value for value in row]
    assert all(SECRET not in cell for cell in cells)
    assert any("TW_TEST_MISSING_KEY" in cell for cell in cells)


def test_pending_rows_survive_reopening_the_store(
    open_store: Callable[[], Store], make_message: Make
) -> None:
    channels: list[Channel] = [ConsoleChannel(type="console"), ConsoleChannel(type="console")]
    with open_store() as store:
        Outbox(store).enqueue(make_message(), channels, now=T0)

    with open_store() as store:
        reopened = Outbox(store)
        assert reopened.backlog() == 2
        assert [row.message for row in reopened.pending()] == [make_message()] * 2
        assert reopened.enqueue(make_message(), channels) == 0
        resolution = make_message(event="resolved", resolved_at=T0)
        assert reopened.enqueue(resolution, channels, now=T0) == 2  # fresh ids, no clash
        assert len({row.id for row in reopened.pending()}) == 4


def test_processes_delivering_from_one_postgres_store_send_each_message_once(
    postgres_server: Any, http_receiver: Any, make_message: Make
) -> None:
    """Two servers, or a server and ``tripwire run``, may deliver from one database at once."""
    from tripwire.store import PostgresStore

    dsn = postgres_server.new_dsn()
    channels = _webhooks(http_receiver, "/a", "/b")
    routes = {"oncall": channels}
    keys = [f"incident-{i}" for i in range(6)]
    with PostgresStore(dsn) as first, PostgresStore(dsn) as second:
        for key in keys:
            Outbox(first).enqueue(make_message(dedup_key=key), channels, now=T0)
        # Deliveries slow enough that each process finds the other one mid-send.
        start = threading.Barrier(2)

        def slow(channel: Channel, message: AlertMessage) -> None:
            time.sleep(0.05)
            send(channel, message)

        def deliver(store: Store, reports: list[DeliveryReport]) -> None:
            start.wait()
            reports.append(Outbox(store).deliver_due(routes, now=T0, send=slow))

        reports: list[DeliveryReport] = []
        threads = [threading.Thread(target=deliver, args=(s, reports)) for s in (first, second)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=30)
        assert len(reports) == 2
        assert Outbox(first).backlog() == 0

    assert sum(r.delivered for r in reports) == 2 * len(keys)
    assert all(r.delivered > 0 and r.failed == 0 for r in reports)  # both took a share
    for path in ("/a", "/b"):
        sent = sorted(r.body["dedup_key"] for r in http_receiver.to(path))
        assert sent == keys  # each message once per channel


class RecordingLock:
    """A lock that remembers whether it was held at each moment a test asks."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.acquisitions = 0

    def __enter__(self) -> None:
        self._lock.acquire()
        self.acquisitions += 1

    def __exit__(self, *_: object) -> None:
        self._lock.release()

    def held(self) -> bool:
        return self._lock.locked()


def test_the_callers_lock_is_held_for_the_outboxs_statements_never_during_a_send(
    store: Store, make_message: Make
) -> None:
    lock = RecordingLock()
    outbox = Outbox(store, lock)
    channels: list[Channel] = [ConsoleChannel(type="console") for _ in range(2)]
    outbox.enqueue(make_message(), channels, now=T0)
    held_while_sending: list[bool] = []

    def record(channel: Channel, message: AlertMessage) -> None:
        held_while_sending.append(lock.held())

    report = outbox.deliver_due({"oncall": channels}, now=T0, send=record)
    assert report.delivered == 2
    assert held_while_sending == [False, False]
    assert lock.acquisitions >= 4  # a claim and an outcome per row


def test_a_row_being_sent_is_leased_so_no_one_else_takes_it(
    store: Store, make_message: Make
) -> None:
    outbox = Outbox(store)
    channels: list[Channel] = [ConsoleChannel(type="console")]
    outbox.enqueue(make_message(), channels, now=T0)
    nested: list[DeliveryReport] = []

    def deliver_again_meanwhile(channel: Channel, message: AlertMessage) -> None:
        # Another delivery pass while this row is in flight: it must not send it too.
        nested.append(outbox.deliver_due({"oncall": channels}, now=T0, send=send))

    report = outbox.deliver_due({"oncall": channels}, now=T0, send=deliver_again_meanwhile)
    assert report.delivered == 1
    assert nested[0].attempted == 0
    assert outbox.backlog() == 0


def test_a_row_whose_sender_died_mid_send_goes_out_once_the_lease_runs_out(
    store: Store, make_message: Make
) -> None:
    channels: list[Channel] = [ConsoleChannel(type="console")]
    Outbox(store).enqueue(make_message(), channels, now=T0)

    class Died(BaseException):
        """Stands in for the process being killed between the send and its record."""

    def dies(channel: Channel, message: AlertMessage) -> None:
        raise Died

    with pytest.raises(Died):
        Outbox(store).deliver_due({"oncall": channels}, now=T0, send=dies)
    sent: list[str] = []

    def record(channel: Channel, message: AlertMessage) -> None:
        sent.append(message.dedup_key)

    early = Outbox(store).deliver_due({"oncall": channels}, now=T0 + LEASE / 2, send=record)
    assert early.attempted == 0 and sent == []
    late = Outbox(store).deliver_due({"oncall": channels}, now=T0 + LEASE, send=record)
    assert late.delivered == 1 and len(sent) == 1
