"""A persistent outbox: alert messages wait in the store until every channel has taken them.

Each message becomes one row per channel of its route. :meth:`Outbox.deliver_due` tries the
rows that are due, each on its own, so a channel that is down never holds up the others; a
failed row is retried with exponential backoff (30 s, 1 min, 2 min, ... at most 1 h) and,
after :data:`MAX_ATTEMPTS` failures, stays in the table as ``dead`` for someone to look at.
Nothing is deleted: the table is also the delivery history.

The outbox stores the message and where it goes (route and channel index), never a channel's
configuration, so secrets stay in the environment; the channel is looked up again at delivery
time from the routes passed in.

The table is the store's (migration 3), DuckDB or PostgreSQL alike. Several processes may
deliver from one PostgreSQL store at once (two servers, a server and ``tripwire run``): a row is
claimed in a transaction that locks it (the others skip locked rows) and leased for
:data:`LEASE`, so nobody else takes it while it is being sent. The send itself happens outside
any transaction and outside the caller's lock, so a slow channel never holds up ingestion; a
process that dies mid-send leaves the row to be sent again once the lease runs out (at least
once, as before any outbox).
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

from tripwire.alerts.channels import DeliveryError, send
from tripwire.alerts.message import AlertMessage
from tripwire.config import Channel
from tripwire.store.base import Store

__all__ = [
    "BASE_BACKOFF",
    "LEASE",
    "MAX_ATTEMPTS",
    "MAX_BACKOFF",
    "DeliveryReport",
    "Outbox",
    "OutboxRow",
    "backoff",
]

MAX_ATTEMPTS = 12
BASE_BACKOFF = timedelta(seconds=30)
MAX_BACKOFF = timedelta(hours=1)
# Longer than any send can take (each network step of a channel times out after 10 s).
LEASE = timedelta(minutes=5)

Sender = Callable[[Channel, AlertMessage], None]

_COLUMNS = (
    "id, created_at, route, channel_index, channel_type, dedup_key, event, payload, attempts, "
    "next_attempt_at, delivered_at, last_error"
)

# The three states, as SQL conditions; ``state`` on a row says the same in Python.
_PENDING = f"delivered_at IS NULL AND attempts < {MAX_ATTEMPTS}"
_DEAD = f"delivered_at IS NULL AND attempts >= {MAX_ATTEMPTS}"
_DELIVERED = "delivered_at IS NOT NULL"


def backoff(attempts: int) -> timedelta:
    """The wait after the ``attempts``-th failure: 30 s doubling each time, at most 1 h.

    >>> [backoff(n).total_seconds() for n in (1, 2, 3, 7, 8, 12)]
    [30.0, 60.0, 120.0, 1920.0, 3600.0, 3600.0]
    """
    # Capping the exponent first keeps the arithmetic small for absurd attempt counts.
    return min(BASE_BACKOFF * (1 << min(max(attempts - 1, 0), 20)), MAX_BACKOFF)


class OutboxRow(BaseModel):
    """One message for one channel, with its delivery history; timestamps are UTC."""

    model_config = ConfigDict(frozen=True)

    id: int
    created_at: datetime
    route: str
    channel_index: int
    channel_type: str
    dedup_key: str
    event: Literal["firing", "resolved"]
    message: AlertMessage
    attempts: int
    next_attempt_at: datetime
    delivered_at: datetime | None
    last_error: str | None

    @property
    def state(self) -> Literal["pending", "delivered", "dead"]:
        """``delivered``, ``dead`` (no more retries) or ``pending``."""
        if self.delivered_at is not None:
            return "delivered"
        return "dead" if self.attempts >= MAX_ATTEMPTS else "pending"


@dataclass
class DeliveryReport:
    """What one :meth:`Outbox.deliver_due` pass did, counted in rows."""

    delivered: int = 0
    failed: int = 0  # failed this time and scheduled for a retry
    dead: int = 0  # failed for the last time
    held: int = 0  # resolves waiting for their trigger to go out first

    @property
    def attempted(self) -> int:
        """Rows a send was tried for."""
        return self.delivered + self.failed + self.dead


def _utc_naive(moment: datetime | None) -> datetime:
    """``moment`` (default: now) as a naive UTC datetime, which is what the table holds."""
    if moment is None:
        return datetime.now(UTC).replace(tzinfo=None)
    if moment.tzinfo is None:
        return moment
    return moment.astimezone(UTC).replace(tzinfo=None)


def _as_utc(moment: datetime | None) -> datetime | None:
    return None if moment is None else moment.replace(tzinfo=UTC)


def _row(values: tuple[Any, ...]) -> OutboxRow:
    """An :class:`OutboxRow` from a ``SELECT {_COLUMNS}`` tuple."""
    (ident, created, route, index, kind, key, event, payload, attempts, due, done, error) = values
    return OutboxRow(
        id=ident,
        created_at=created.replace(tzinfo=UTC),
        route=route,
        channel_index=index,
        channel_type=kind,
        dedup_key=key,
        event=event,
        message=AlertMessage.model_validate_json(payload),
        attempts=attempts,
        next_attempt_at=due.replace(tzinfo=UTC),
        delivered_at=_as_utc(done),
        last_error=error,
    )


class Outbox:
    """Alert messages waiting for, or done with, delivery, in the store's table ``outbox``."""

    def __init__(self, store: Store, lock: AbstractContextManager[Any] | None = None) -> None:
        """``lock`` guards the store's connection where other threads share it (the server's
        collector and scheduler); it is held for each statement, never during a send."""
        self._store = store
        self._guard = lock if lock is not None else nullcontext()
        # Only a PostgreSQL store is shared by processes; a DuckDB file has one writer.
        self._lock_claimed = " FOR UPDATE SKIP LOCKED" if store.dialect == "postgres" else ""

    def enqueue(
        self, message: AlertMessage, channels: list[Channel], *, now: datetime | None = None
    ) -> int:
        """Queue ``message`` for each of ``channels`` (its route's); return the rows added.

        A message already queued for a channel (same dedup key, event and route) is not
        queued again, so re-running the alert engine over the same windows is harmless.
        """
        moment = _utc_naive(now)
        added = 0
        for index, channel in enumerate(channels):
            inserted = self._store.sql(
                "INSERT INTO outbox (created_at, route, channel_index, channel_type, dedup_key, "
                "event, payload, attempts, next_attempt_at) VALUES (?, ?, ?, ?, ?, ?, ?, 0, ?) "
                "ON CONFLICT DO NOTHING RETURNING id",
                [
                    moment,
                    message.route,
                    index,
                    channel.type,
                    message.dedup_key,
                    message.event,
                    message.model_dump_json(),
                    moment,
                ],
            )
            added += len(inserted)
        return added

    def deliver_due(
        self,
        channels_by_route: dict[str, list[Channel]],
        now: datetime | None = None,
        send: Sender = send,
    ) -> DeliveryReport:
        """Try every pending row whose next attempt is due at ``now`` (default: the clock).

        Each row is claimed and leased in a transaction, sent with no lock held, and its
        outcome written afterwards; a delivered row is never sent again. ``send`` is
        replaceable only so tests can script failures.
        """
        moment = _utc_naive(now)
        report = DeliveryReport()
        after = 0  # ids are claimed in order, so each row is looked at once per pass
        while True:
            with self._guard, self._store.transaction():
                row = self._claim(after, moment)
                if row is None:
                    return report
                after = row.id
                if row.event == "resolved" and self._trigger_pending(row):
                    # Sending the resolve first would leave the incident open once the trigger
                    # lands.
                    report.held += 1
                    continue
                self._store.sql(
                    "UPDATE outbox SET next_attempt_at = ? WHERE id = ?", [moment + LEASE, row.id]
                )
            self._attempt(row, channels_by_route, moment, send, report)

    def pending(self) -> list[OutboxRow]:
        """Rows still to be delivered, oldest first."""
        return self._select(_PENDING)

    def dead(self) -> list[OutboxRow]:
        """Rows that failed :data:`MAX_ATTEMPTS` times and are no longer retried."""
        return self._select(_DEAD)

    def delivered(self) -> list[OutboxRow]:
        """Rows delivered, oldest first."""
        return self._select(_DELIVERED)

    def fired_keys(self) -> set[str]:
        """Dedup keys of the incidents whose ``firing`` event was ever queued.

        These incidents were (or are being) announced, so their resolution is owed too; the
        resolve waits in :meth:`deliver_due` until the trigger has gone out.
        """
        rows = self._store.sql("SELECT DISTINCT dedup_key FROM outbox WHERE event = 'firing'")
        return {str(key) for (key,) in rows}

    def backlog(self) -> int:
        """How many rows are still to be delivered."""
        ((count,),) = self._store.sql(f"SELECT count(*) FROM outbox WHERE {_PENDING}")
        return int(count)

    def _select(self, condition: str) -> list[OutboxRow]:
        rows = self._store.sql(f"SELECT {_COLUMNS} FROM outbox WHERE {condition} ORDER BY id")
        return [_row(values) for values in rows]

    def _claim(self, after: int, moment: datetime) -> OutboxRow | None:
        """The first pending row due at ``moment`` with an id above ``after``, locked on
        PostgreSQL until the transaction ends; None when there is none (left)."""
        found = self._store.sql(
            f"SELECT {_COLUMNS} FROM outbox WHERE {_PENDING} AND next_attempt_at <= ? "
            f"AND id > ? ORDER BY id LIMIT 1{self._lock_claimed}",
            [moment, after],
        )
        return _row(found[0]) if found else None

    def _trigger_pending(self, row: OutboxRow) -> bool:
        """Whether the trigger for this resolve's incident and channel is still to go out
        (or is being sent by another process right now)."""
        found = self._store.sql(
            f"SELECT 1 FROM outbox WHERE {_PENDING} AND event = 'firing' AND dedup_key = ? "
            "AND route = ? AND channel_index = ? LIMIT 1",
            [row.dedup_key, row.route, row.channel_index],
        )
        return bool(found)

    def _attempt(
        self,
        row: OutboxRow,
        channels_by_route: dict[str, list[Channel]],
        moment: datetime,
        send: Sender,
        report: DeliveryReport,
    ) -> None:
        """Send one row (no lock held) and record the outcome."""
        error = None
        try:
            send(_channel_for(row, channels_by_route), row.message)
        except DeliveryError as exc:
            error = str(exc)
        except Exception as exc:
            # Only the type: an unexpected exception's text is not vetted to be free of secrets.
            error = f"unexpected {type(exc).__name__}"
        with self._guard:
            if error is not None:
                self._record_failure(row, error, moment, report)
                return
            self._store.sql(
                "UPDATE outbox SET attempts = attempts + 1, delivered_at = ? WHERE id = ?",
                [moment, row.id],
            )
            report.delivered += 1

    def _record_failure(
        self, row: OutboxRow, error: str, moment: datetime, report: DeliveryReport
    ) -> None:
        attempts = row.attempts + 1
        self._store.sql(
            "UPDATE outbox SET attempts = ?, last_error = ?, next_attempt_at = ? WHERE id = ?",
            [attempts, error, moment + backoff(attempts), row.id],
        )
        if attempts >= MAX_ATTEMPTS:
            report.dead += 1
        else:
            report.failed += 1


def _channel_for(row: OutboxRow, channels_by_route: dict[str, list[Channel]]) -> Channel:
    """The channel a row was queued for, checked against today's routes."""
    channels = channels_by_route.get(row.route, [])
    if row.channel_index >= len(channels):
        raise DeliveryError(f"route {row.route!r} has no channel #{row.channel_index} any more")
    channel = channels[row.channel_index]
    if channel.type != row.channel_type:
        # The routes changed since queueing; sending to whatever sits at that index now
        # could page the wrong people.
        raise DeliveryError(
            f"route {row.route!r} channel #{row.channel_index} is now {channel.type}, "
            f"was {row.channel_type}"
        )
    return channel
