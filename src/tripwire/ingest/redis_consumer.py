"""Consume prediction events from a Redis stream into the store, at least once.

The consumer reads as a member of a consumer group, so several consumers may share a stream
and a consumer that dies does not lose what it had read. Each batch of entries goes through
``Collector.ingest_events`` (the same validation and quarantine as ``tripwire serve``); only
after that call returns, which is after the store's transaction committed, are the batch's
entries acknowledged (XACK). A consumer killed between the commit and the acknowledgement
reads the batch again after a restart; the store keeps one row per (model, event id), so the
second copy changes nothing. Delivery is at least once, storage exactly once.

Where unacknowledged entries are picked up again:

* the consumer's own (same ``consumer_name``): read first after a start, and after a batch
  that failed, with ``XREADGROUP ... 0`` (its pending list);
* another consumer's: taken over with ``XAUTOCLAIM`` once they have been idle for
  ``claim_idle_ms``, on start and then every ``claim_interval_s``, before new entries.

An entry that cannot be an event (not JSON, no ``event`` field, or trimmed from the stream
before it was stored) is quarantined like an unreadable NDJSON line, never dropped silently.

After its batches (and while idle), at most every ``report_interval_s`` seconds, the consumer
records the group's lag and the events it stored in the store (``Store.record_consumer``), where
``tripwire serve``'s ``/metrics`` reads them: the consumer is a process of its own.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from pydantic_core import from_json

from tripwire.events import Rejected
from tripwire.ingest import progress
from tripwire.ingest.redis_transport import FIELD
from tripwire.server.body import PAYLOAD_CHARS, Batch

if TYPE_CHECKING:
    import redis

    from tripwire.server.collector import Collector

__all__ = ["SOURCE", "ConsumerStats", "RedisConsumer"]

_log = logging.getLogger(__name__)

SOURCE = "redis"
"""The consumer's ``source`` in the store's ``consumers`` table and on ``/metrics``."""

_FIELD = FIELD.encode()
_NO_ID = b"0-0"  # XAUTOCLAIM's cursor when the whole pending list has been scanned
# Waits after a failed poll (Redis unreachable, a store error), doubling up to the last.
_BACKOFF_S = (0.5, 1.0, 2.0, 5.0)

# (entry id, {field: value}) as redis-py returns stream entries without decoding; the fields
# are empty for an entry that was trimmed from the stream while it was pending.
Entry = tuple[bytes, dict[bytes, bytes] | None]


@dataclass
class ConsumerStats(progress.ConsumerStats):
    """What the consumer has done since it was made (its batches are those acknowledged, its
    lag the group's, see ``RedisConsumer.lag``)."""

    entries: int = 0
    """Stream entries ingested and acknowledged (stored, duplicate or quarantined)."""
    reclaimed: int = 0
    """Entries taken over from other consumers with XAUTOCLAIM."""


class RedisConsumer:
    """Read ``stream`` as ``consumer_name`` of ``group`` and store the events via ``collector``.

    Parameters
    ----------
    url
        A Redis URL, ``redis://[:password@]host:port/db`` (``rediss://`` for TLS).
    stream, group, consumer_name
        The stream, the consumer group (created at the stream's start, with the stream, when
        missing) and this consumer's name in it. Keep the name across restarts of the same
        consumer so that it resumes its own unacknowledged entries at once; other consumers
        take them over only after ``claim_idle_ms``.
    collector
        Validates, stores and quarantines each batch (it owns the store).
    batch_size
        The most entries read, stored in one transaction and acknowledged together.
    block_ms
        How long a read waits for new entries; also how long ``run`` may take to notice its
        stop event.
    claim_idle_ms
        Entries pending this long with another consumer are taken to be that consumer's loss.
        Keep it well above the time a batch takes, or live consumers' batches get stored
        twice (harmlessly, but for nothing).
    claim_interval_s
        How often to look for such entries (also once on start).
    report_interval_s
        The least seconds between two reports of the group's lag and the events stored to the
        store (0: after every batch and every idle poll).
    """

    def __init__(
        self,
        url: str,
        stream: str,
        group: str,
        consumer_name: str,
        collector: Collector,
        batch_size: int = 1000,
        block_ms: int = 1000,
        claim_idle_ms: int = 30_000,
        claim_interval_s: float = 10.0,
        report_interval_s: float = 5.0,
    ) -> None:
        import redis  # here, so that importing tripwire never needs the redis extra

        if batch_size < 1 or min(block_ms, claim_idle_ms, claim_interval_s, report_interval_s) < 0:
            raise ValueError(
                "batch_size must be >= 1; block_ms, claim_idle_ms, claim_interval_s and "
                "report_interval_s >= 0"
            )
        self.stream = stream
        self.group = group
        self.consumer_name = consumer_name
        self.collector = collector
        self.batch_size = batch_size
        self.block_ms = block_ms
        self.claim_idle_ms = claim_idle_ms
        self.claim_interval_s = claim_interval_s
        self.report_interval_s = report_interval_s
        self.stats = ConsumerStats()
        self._reporter = progress.LagReporter(self, SOURCE, stream, group, report_interval_s)
        # No decode_responses: from_json reads the bytes as they are, and entry ids go back
        # to XACK unchanged.
        self._redis: redis.Redis = redis.Redis.from_url(url)
        self._group_ready = False
        self._own_pending = True  # a (re)started consumer first finishes what it had read
        self._claim_cursor = b"0-0"
        self._next_claim = 0.0  # monotonic time of the next XAUTOCLAIM scan; 0: at once

    def close(self) -> None:
        self._redis.close()

    def __enter__(self) -> RedisConsumer:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def __repr__(self) -> str:  # never shows a password in the URL
        return (
            f"RedisConsumer(stream={self.stream!r}, group={self.group!r}, "
            f"consumer_name={self.consumer_name!r})"
        )

    # -- the loop ----------------------------------------------------------------------

    def run(self, stop: threading.Event) -> None:
        """Poll until ``stop`` is set; the batch in hand is finished first. A failing poll
        (Redis unreachable, a store error) is logged and retried after a growing pause, its
        entries still pending, so nothing read is lost."""
        failures = 0
        while not stop.is_set():
            try:
                self.poll_once()
            except Exception:
                pause = _BACKOFF_S[min(failures, len(_BACKOFF_S) - 1)]
                failures += 1
                _log.exception("%r: poll failed; retrying in %.1f s", self, pause)
                stop.wait(pause)
            else:
                failures = 0
        self.report()  # as it stops: the report's age on /metrics then says it stopped

    def poll_once(self) -> int:
        """Ingest and acknowledge one batch: this consumer's own pending entries first, then
        entries reclaimed from dead consumers, then new ones (waiting up to ``block_ms`` for
        them). Returns how many entries it handled, 0 when there were none."""
        handled = self._poll()
        self._reporter.report_if_due()
        return handled

    def _poll(self) -> int:
        self._ensure_group()
        if self._own_pending:
            entries = self._read("0")
            if entries:
                return self._handle(entries)
            self._own_pending = False
        if time.monotonic() >= self._next_claim:
            entries, deleted = self._autoclaim()
            if entries or deleted:
                self.stats.reclaimed += len(entries) + len(deleted)
                return self._handle(entries, deleted)
        return self._handle(self._read(">", block=True))

    # -- the group's state, for /metrics -----------------------------------------------

    def lag(self) -> int | None:
        """Entries of the stream the group has not stored yet: those not yet delivered to any
        of its consumers (XINFO GROUPS' ``lag``, Redis 7 and later) and those delivered but
        not acknowledged (its ``pending``). None when Redis cannot tell (Redis 6, or entries
        deleted with XDEL after the group's last delivered one) and the group has not read
        to the stream's end."""
        infos: Any = self._redis.xinfo_groups(self.stream)
        for info in infos:
            if _text(info.get("name")) != self.group:
                continue
            pending = int(info.get("pending") or 0)
            undelivered = info.get("lag")
            if undelivered is None:
                stream: Any = self._redis.xinfo_stream(self.stream)
                if stream.get("last-generated-id") != info.get("last-delivered-id"):
                    return None
                undelivered = 0
            return int(undelivered) + pending
        return None  # no such group (yet)

    def report(self) -> None:
        """Record the group's :meth:`lag` and the events this consumer stored since its last
        report in the store, for ``/metrics``. Never raises: a lag Redis does not give is
        recorded as unknown, and a report the store refuses is logged and its events are
        counted in the next one."""
        self._reporter.report()

    # -- Redis -------------------------------------------------------------------------

    def _ensure_group(self) -> None:
        if self._group_ready:
            return
        import redis

        try:
            # From the stream's first entry: events logged before the first consumer started
            # are stored too.
            self._redis.xgroup_create(self.stream, self.group, id="0", mkstream=True)
        except redis.ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise
        self._group_ready = True

    def _read(self, start: str, block: bool = False) -> list[Entry]:
        reply: Any = self._redis.xreadgroup(
            self.group,
            self.consumer_name,
            {self.stream: start},
            count=self.batch_size,
            block=self.block_ms if block else None,
        )
        return _entries(reply)

    def _autoclaim(self) -> tuple[list[Entry], list[bytes]]:
        """One page of entries idle for ``claim_idle_ms`` in other consumers' pending lists,
        now ours; and the ids of pending entries that were trimmed from the stream (Redis
        drops those from the pending list itself)."""
        reply: Any = self._redis.xautoclaim(
            self.stream,
            self.group,
            self.consumer_name,
            min_idle_time=self.claim_idle_ms,
            start_id=self._claim_cursor,
            count=self.batch_size,
        )
        cursor, entries = reply[0], reply[1]
        deleted: list[bytes] = reply[2] if len(reply) > 2 else []  # Redis >= 7 only
        self._claim_cursor = cursor
        if cursor == _NO_ID:
            # Scanned to the end: rest until the next interval. Otherwise the next poll
            # continues the scan, so a large backlog of a dead consumer is taken page by page.
            self._next_claim = time.monotonic() + self.claim_interval_s
        # Redis 6.2 answers None for a deleted entry instead of listing it in ``deleted``.
        return [e for e in entries if e[0] is not None], list(deleted)

    # -- a batch -----------------------------------------------------------------------

    def _handle(self, entries: Sequence[Entry], deleted: Sequence[bytes] = ()) -> int:
        if not entries and not deleted:
            return 0
        # As decode numbers them: the entries, then the ones trimmed before they were stored.
        ids = [entry_id for entry_id, _ in entries] + list(deleted)
        lines = [fields.get(_FIELD) if fields else None for _, fields in entries]

        def read() -> Batch:
            batch, _ = decode(entries, deleted)
            batch.origins = [f"redis {self.stream} {entry_id.decode()}" for entry_id in ids]
            return batch

        try:
            result = self.collector.ingest_lines(
                lines + [None] * len(deleted), read, source=f"redis {self.stream}"
            )
        except BaseException:
            # Not acknowledged: the entries stay in this consumer's pending list; read them
            # again before anything new.
            self._own_pending = True
            raise
        # Only now: the collector's transaction has committed, so the entries are stored (or
        # quarantined) for good. A crash before this line redelivers them, harmlessly.
        if ids:
            self._redis.xack(self.stream, self.group, *ids)
        self.stats.batches += 1
        self.stats.entries += len(ids)
        self.stats.add(result)
        for rejection in result.rejected[:1]:
            # One line per batch: a systematic problem would otherwise flood the log.
            reason = rejection.reason
            if not reason.startswith("entry "):  # decode() names the entry in its reasons
                reason = f"entry {ids[rejection.index].decode()}: {reason}"
            _log.warning(
                "%r: quarantined %d of %d entries; first: %s",
                self,
                len(result.rejected),
                len(ids),
                reason,
            )
        return len(ids)


def _text(value: Any) -> str | None:
    return value.decode("utf-8", errors="replace") if isinstance(value, bytes) else value


def _entries(reply: Any) -> list[Entry]:
    """The entries of a one-stream XREADGROUP reply, whichever shape redis-py gives it."""
    if not reply:  # None, [] or {}: a blocking read that timed out
        return []
    if isinstance(reply, dict):  # RESP3: {stream: [entries]}, or {stream: entries}
        value: list[Any] = next(iter(reply.values()))
        return value[0] if value and isinstance(value[0], list) else value
    entries: list[Entry] = reply[0][1]  # RESP2: [[stream, entries]]
    return entries


def decode(entries: Sequence[Entry], deleted: Sequence[bytes] = ()) -> tuple[Batch, list[bytes]]:
    """Stream entries as a collector batch, and the ids to acknowledge once it is stored.

    Batch index ``i`` is ``ids[i]``. An entry whose ``event`` field is missing or not JSON,
    and an entry trimmed from the stream before it was stored (in ``deleted``, or pending with
    no fields), goes into ``batch.unreadable`` with its reason.
    """
    batch = Batch()
    ids: list[bytes] = []
    for entry_id, fields in entries:
        index = len(ids)
        ids.append(entry_id)
        # redis-py gives a trimmed entry's fields as {} (or None): no entry is ever empty.
        raw = fields.get(_FIELD) if fields else None
        if raw is None:
            batch.unreadable.append(_missing(index, entry_id, fields))
            continue
        try:
            batch.items.append(from_json(raw))
        except ValueError as exc:
            text = raw.decode("utf-8", errors="replace")[:PAYLOAD_CHARS]
            reason = f"entry {entry_id.decode()}: not JSON: {exc}"
            batch.unreadable.append(Rejected(index=index, reason=reason, payload=text))
            continue
        batch.indices.append(index)
    for entry_id in deleted:
        batch.unreadable.append(_missing(len(ids), entry_id, None))
        ids.append(entry_id)
    return batch, ids


def _missing(index: int, entry_id: bytes, fields: dict[bytes, bytes] | None) -> Rejected:
    if not fields:
        reason = (
            f"entry {entry_id.decode()}: trimmed from the stream (MAXLEN or XDEL) before it "
            "was stored; the event is lost"
        )
        return Rejected(index=index, reason=reason, payload="")
    names = ", ".join(repr(name.decode("utf-8", errors="replace")) for name in fields)
    reason = f"entry {entry_id.decode()}: no {FIELD!r} field (fields: {names or 'none'})"
    payload = repr({k.decode("utf-8", "replace"): v for k, v in fields.items()})
    return Rejected(index=index, reason=reason, payload=payload[:PAYLOAD_CHARS])
