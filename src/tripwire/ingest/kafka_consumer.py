"""Consume prediction events from a Kafka topic into the store, at least once.

The consumer is a member of a consumer group, so the topic's partitions are shared among the
group's consumers and a consumer that dies hands its partitions to the others. Offsets are
never committed automatically: each batch goes through ``Collector.ingest_events`` (the same
validation and quarantine as ``tripwire serve``), and only after that call returns, which is
after the store's transaction committed, are the batch's offsets committed, synchronously. A
consumer killed between the two reads the batch again after a restart (or its partitions'
next owner does); the store keeps one row per (model, event id), so the second copy changes
nothing. Delivery is at least once, storage exactly once.

A message that cannot be an event (no value, not JSON) is quarantined like an unreadable
NDJSON line, with its partition and offset in the reason, never dropped silently.

After its batches (and while idle), at most every ``report_interval_s`` seconds, the consumer
records the group's lag and the events it stored in the store (``Store.record_consumer``), where
``tripwire serve``'s ``/metrics`` reads them: the consumer is a process of its own.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from pydantic_core import from_json

from tripwire.events import Rejected
from tripwire.ingest import progress
from tripwire.server.body import PAYLOAD_CHARS, Batch

if TYPE_CHECKING:
    from confluent_kafka import Message

    from tripwire.server.collector import Collector

__all__ = ["SOURCE", "ConsumerStats", "KafkaConsumer", "decode"]

_log = logging.getLogger(__name__)

# Settings of a consumer that an admin client (the lag's, see KafkaConsumer.lag) has no use for.
_CONSUMER_ONLY = frozenset(
    {
        "group.id",
        "group.instance.id",
        "auto.offset.reset",
        "enable.auto.commit",
        "enable.auto.offset.store",
        "session.timeout.ms",
        "heartbeat.interval.ms",
        "max.poll.interval.ms",
        "partition.assignment.strategy",
        "fetch.wait.max.ms",
        "fetch.min.bytes",
        "fetch.max.bytes",
        "enable.partition.eof",
        "isolation.level",
    }
)

SOURCE = "kafka"
"""The consumer's ``source`` in the store's ``consumers`` table and on ``/metrics``."""

# Waits after a failed poll (a store error, a commit the cluster refused), doubling up to the
# last.
_BACKOFF_S = (0.5, 1.0, 2.0, 5.0)


@dataclass
class ConsumerStats(progress.ConsumerStats):
    """What the consumer has done since it was made (its batches are those committed, its lag
    the group's, see ``KafkaConsumer.lag``)."""

    messages: int = 0
    """Messages ingested (stored, duplicate or quarantined)."""
    commit_failures: int = 0
    """Batches stored whose offsets could not be committed (their partitions were taken
    away in a rebalance, say): they will be delivered again, and found already stored."""


class KafkaConsumer:
    """Read ``topic`` as a member of ``group`` and store the events via ``collector``.

    Parameters
    ----------
    bootstrap_servers
        ``host:port[,host:port...]`` of one or more brokers.
    topic, group
        The topic and the consumer group. A group with no committed offsets starts at the
        topic's earliest retained message (``auto.offset.reset=earliest``), so events logged
        before the first consumer started are stored too.
    collector
        Validates, stores and quarantines each batch (it owns the store).
    batch_size
        The most messages consumed, stored in one transaction and committed together.
    poll_timeout
        How long a poll waits for messages (seconds); also how long ``run`` may take to
        notice its stop event.
    report_interval_s
        The least seconds between two reports of the group's lag and the events stored to the
        store (0: after every batch and every idle poll); each report asks the cluster for
        the topic's partitions, the group's committed offsets and each partition's end.
    consumer_config
        More librdkafka consumer settings (``**{"session.timeout.ms": 10000}``, security
        settings); they override the defaults, except ``enable.auto.commit``, which stays off
        because committing before the store has the batch could lose it.
    """

    def __init__(
        self,
        bootstrap_servers: str,
        topic: str,
        group: str,
        collector: Collector,
        batch_size: int = 1000,
        poll_timeout: float = 1.0,
        report_interval_s: float = 5.0,
        **consumer_config: Any,
    ) -> None:
        # Here, so that importing tripwire never needs the kafka extra.
        from confluent_kafka import Consumer

        if batch_size < 1 or poll_timeout < 0 or report_interval_s < 0:
            raise ValueError("batch_size must be >= 1, poll_timeout and report_interval_s >= 0")
        self.topic = topic
        self.group = group
        self.collector = collector
        self.batch_size = batch_size
        self.poll_timeout = poll_timeout
        self.report_interval_s = report_interval_s
        self.stats = ConsumerStats()
        self._reporter = progress.LagReporter(self, SOURCE, topic, group, report_interval_s)
        config: dict[str, Any] = {
            "bootstrap.servers": bootstrap_servers,
            "group.id": group,
            "auto.offset.reset": "earliest",
            "error_cb": self._on_error,
            **consumer_config,
            # Offsets are committed by hand after the store commits; never before.
            "enable.auto.commit": False,
            "enable.auto.offset.store": False,
        }
        # The lag is asked by an admin client, made on first use, with the same connection
        # and security settings (librdkafka would warn about the consumer-only ones); not
        # the callbacks, which are the consumer's.
        self._admin: Any = None
        self._admin_config = {
            key: value
            for key, value in config.items()
            if key not in _CONSUMER_ONLY and not key.endswith("_cb")
        }
        # Quarantined items are recorded by partition and offset (see decode); the first
        # rejection of each batch is logged with them.
        self._source = f"kafka {topic}"
        self._fatal: Any = None  # a fatal KafkaError reported by librdkafka's error callback
        self._closed = False
        self._consumer = Consumer(config)
        self._consumer.subscribe([topic])

    def close(self) -> None:
        """Leave the group (its partitions go to the other members at once) and release the
        connections. Offsets are committed per batch, so there is nothing to commit here.
        Safe to call more than once."""
        if not self._closed:
            self._closed = True
            self._consumer.close()
            self._admin = None  # an admin client has nothing to close; its threads go with it

    def __enter__(self) -> KafkaConsumer:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"KafkaConsumer(topic={self.topic!r}, group={self.group!r})"

    def check(self, timeout: float = 10.0) -> int:
        """The topic's partition count (0 when the topic does not exist yet); raises
        ``KafkaException`` when no broker answers within ``timeout`` seconds. librdkafka
        itself retries an unreachable cluster forever, so call this to fail at startup."""
        metadata = self._consumer.list_topics(self.topic, timeout=timeout)
        topic = metadata.topics.get(self.topic)
        if topic is None or topic.error is not None:
            return 0
        return len(topic.partitions)

    # -- the loop ----------------------------------------------------------------------

    def run(self, stop: threading.Event) -> None:
        """Poll until ``stop`` is set, then close; the batch in hand is finished first. A
        failing poll (a store error) is logged and retried after a growing pause, from the
        failed batch's first offsets, so nothing read is lost. A fatal Kafka error (one the
        client cannot recover from) is raised."""
        from confluent_kafka import KafkaException

        failures = 0
        try:
            while not stop.is_set():
                try:
                    self.poll_once()
                except KafkaException as exc:
                    if exc.args and getattr(exc.args[0], "fatal", lambda: False)():
                        raise
                    failures = self._pause(stop, failures)
                except Exception:
                    failures = self._pause(stop, failures)
                else:
                    failures = 0
            self.report()  # as it stops: the report's age on /metrics then says it stopped
        finally:
            self.close()

    def _pause(self, stop: threading.Event, failures: int) -> int:
        pause = _BACKOFF_S[min(failures, len(_BACKOFF_S) - 1)]
        _log.exception("%r: poll failed; retrying in %.1f s", self, pause)
        stop.wait(pause)
        return failures + 1

    def poll_once(self) -> int:
        """Consume up to ``batch_size`` messages (waiting up to ``poll_timeout`` for the
        first), ingest them and commit their offsets. Returns how many messages it handled,
        0 when there were none."""
        if self._fatal is not None:
            from confluent_kafka import KafkaException

            raise KafkaException(self._fatal)
        polled = self._consumer.consume(num_messages=self.batch_size, timeout=self.poll_timeout)
        messages = [m for m in polled if not self._is_error(m)]
        if not messages:
            self._reporter.report_if_due()
            return 0
        lines = [m.value() for m in messages]
        try:
            result = self.collector.ingest_lines(lines, lambda: decode(messages), self._source)
        except BaseException:
            # Nothing committed; consume the batch again from its first offsets rather than
            # skip it (the consumer's position is already past it).
            self._rewind(messages)
            raise
        # Only now: the collector's transaction has committed, so the messages are stored (or
        # quarantined) for good. A crash before the commit below redelivers them, harmlessly.
        self._commit(messages)
        self.stats.batches += 1
        self.stats.messages += len(messages)
        self.stats.add(result)
        for rejection in result.rejected[:1]:
            # One line per batch: a systematic problem would otherwise flood the log.
            reason = rejection.reason
            if not reason.startswith("message "):  # decode() names the message in its reasons
                reason = f"{_where(messages[rejection.index])}: {reason}"
            _log.warning(
                "%r: quarantined %d of %d messages; first: %s",
                self,
                len(result.rejected),
                len(messages),
                reason,
            )
        self._reporter.report_if_due()
        return len(messages)

    # -- the group's state, for /metrics -----------------------------------------------

    def lag(self, timeout: float = 5.0) -> int:
        """Messages of the topic the group has not stored yet: per partition, its end (high
        watermark) less the group's committed offset (or its start, where the group has
        committed nothing or the committed messages have expired), summed over all the
        topic's partitions, not only this consumer's, so that every member of the group
        reports the same figure. 0 while the topic does not exist. Raises
        ``KafkaException`` when the cluster does not answer within ``timeout`` seconds.

        Asked with an admin client of its own: on the consumer's connections each request
        would wait behind the broker's pending fetch (up to ``fetch.wait.max.ms`` a partition).
        """
        from confluent_kafka import (
            ConsumerGroupTopicPartitions,
            KafkaError,
            KafkaException,
            TopicPartition,
        )
        from confluent_kafka import admin as kafka_admin

        spec: Any = kafka_admin.OffsetSpec  # type: ignore[attr-defined]  # not in its stubs

        admin = self._admin_client()
        metadata = admin.list_topics(self.topic, timeout=timeout)
        topic = metadata.topics.get(self.topic)
        if topic is None:
            return 0
        if topic.error is not None:
            if topic.error.code() == KafkaError.UNKNOWN_TOPIC_OR_PART:
                return 0
            raise KafkaException(topic.error)
        partitions = [TopicPartition(self.topic, p) for p in sorted(topic.partitions)]
        request = [ConsumerGroupTopicPartitions(self.group, partitions)]
        committed = admin.list_consumer_group_offsets(request, request_timeout=timeout)
        ends = admin.list_offsets({tp: spec.latest() for tp in partitions}, request_timeout=timeout)
        starts = admin.list_offsets(
            {tp: spec.earliest() for tp in partitions}, request_timeout=timeout
        )
        done = committed[self.group].result(timeout)
        by_partition = {tp.partition: tp for tp in done.topic_partitions or []}
        total = 0
        for tp in partitions:
            start = starts[tp].result(timeout).offset
            end = ends[tp].result(timeout).offset
            offset = by_partition[tp.partition].offset if tp.partition in by_partition else -1
            total += max(end - max(offset, start), 0)
        return total

    def _admin_client(self) -> Any:
        if self._admin is None:
            from confluent_kafka.admin import AdminClient

            self._admin = AdminClient(self._admin_config)
        return self._admin

    def report(self) -> None:
        """Record the group's :meth:`lag` and the events this consumer stored since its last
        report in the store, for ``/metrics``. Never raises: a lag the cluster does not give is
        recorded as unknown, and a report the store refuses is logged and its events are
        counted in the next one."""
        self._reporter.report()

    # -- Kafka -------------------------------------------------------------------------

    def _on_error(self, error: Any) -> None:
        # librdkafka reports most errors (a broker down, a timeout) here and recovers from
        # them by itself; only a fatal one ends the consumer.
        if error.fatal():
            self._fatal = error
        _log.warning("%r: %s", self, error)

    def _is_error(self, message: Message) -> bool:
        error = message.error()
        if error is None:
            return False
        from confluent_kafka import KafkaError, KafkaException

        if error.code() == KafkaError._PARTITION_EOF:
            return True  # the end of a partition (enable.partition.eof): no message
        if error.fatal():
            raise KafkaException(error)
        _log.warning("%r: %s", self, error)
        return True

    def _commit(self, messages: Sequence[Message]) -> None:
        from confluent_kafka import KafkaException, TopicPartition

        offsets = _next_offsets(messages)
        partitions = [TopicPartition(t, p, o) for (t, p), o in offsets.items()]
        try:
            committed = self._consumer.commit(offsets=partitions, asynchronous=False)
        except KafkaException as exc:
            error = exc.args[0] if exc.args else exc
            if getattr(error, "fatal", lambda: False)():
                raise
            # Most often a rebalance took the partitions away while the batch was stored:
            # their new owner reads the batch again and finds it stored.
            self.stats.commit_failures += 1
            _log.warning(
                "%r: committing offsets failed, the batch will be redelivered: %s", self, error
            )
            return
        failed = [tp for tp in committed or [] if tp.error is not None]
        if failed:
            self.stats.commit_failures += 1
            _log.warning(
                "%r: committing %d of %d partitions' offsets failed (redelivered): %s",
                self,
                len(failed),
                len(partitions),
                failed[0].error,
            )

    def _rewind(self, messages: Sequence[Message]) -> None:
        from confluent_kafka import KafkaException, TopicPartition

        first: dict[tuple[str, int], int] = {}
        for m in messages:
            first.setdefault(_key(m), _offset(m))
        for (topic, partition), offset in first.items():
            try:
                self._consumer.seek(TopicPartition(topic, partition, offset))
            except KafkaException as exc:
                # Not assigned any more: the next owner starts from the committed offset,
                # which is at or before this batch.
                _log.debug("%r: seek %s[%d]@%d: %s", self, topic, partition, offset, exc)


def _key(message: Message) -> tuple[str, int]:
    return str(message.topic()), int(message.partition() or 0)


def _offset(message: Message) -> int:
    return int(message.offset() or 0)


def _next_offsets(messages: Sequence[Message]) -> dict[tuple[str, int], int]:
    """Per partition, the offset to commit: one past the batch's last message there."""
    offsets: dict[tuple[str, int], int] = {}
    for m in messages:
        key, offset = _key(m), _offset(m) + 1
        if offset > offsets.get(key, -1):
            offsets[key] = offset
    return offsets


def _where(message: Message) -> str:
    topic, partition = _key(message)
    return f"message {topic}[{partition}]@{_offset(message)}"


def decode(messages: Sequence[Message]) -> Batch:
    """Messages as a collector batch; batch index ``i`` is ``messages[i]``.

    A message with no value or a value that is not JSON goes into ``batch.unreadable`` with
    its partition and offset in the reason.
    """
    batch = Batch(origins=[f"kafka {_where(m).removeprefix('message ')}" for m in messages])
    for index, message in enumerate(messages):
        raw = message.value()
        if raw is None:
            reason = f"{_where(message)}: no value (a tombstone?)"
            batch.unreadable.append(Rejected(index=index, reason=reason, payload=""))
            continue
        try:
            batch.items.append(from_json(raw))
        except ValueError as exc:
            data = raw if isinstance(raw, bytes) else str(raw).encode()
            text = data.decode("utf-8", errors="replace")[:PAYLOAD_CHARS]
            reason = f"{_where(message)}: not JSON: {exc}"
            batch.unreadable.append(Rejected(index=index, reason=reason, payload=text))
            continue
        batch.indices.append(index)
    return batch
