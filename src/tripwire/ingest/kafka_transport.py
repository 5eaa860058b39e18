"""A ``tripwire.Logger`` transport that produces each event to a Kafka topic.

Each event is one message: its JSON (as the collector accepts it) keyed by its event id, so the
events of one prediction always land in the same partition and a compacted topic would keep
one copy per id. ``send`` waits until every message of the batch is acknowledged by the
brokers (or failed): the logger counts a batch as sent only when Kafka has it, and retries the
whole batch otherwise. A retried batch may produce some events twice; the consumer's store
keeps one row per event id, so copies are harmless.
"""

from __future__ import annotations

import json
from typing import Any

from tripwire.logger import TransportError

__all__ = ["KafkaTransport"]

# As the logger encodes events: compact, and no NaN (JSON has none).
_JSON = json.JSONEncoder(separators=(",", ":"), allow_nan=False)


class _Deliveries:
    """The delivery reports of one batch. Each batch has its own, so that a report arriving
    late for a batch given up on (after a flush timeout) cannot fail the next one."""

    def __init__(self) -> None:
        self.errors: list[Any] = []  # confluent_kafka.KafkaError

    def __call__(self, error: Any, _message: Any) -> None:
        if error is not None:
            self.errors.append(error)


class KafkaTransport:
    """Produce events to ``topic`` on the cluster at ``bootstrap_servers``.

    Parameters
    ----------
    bootstrap_servers
        ``host:port[,host:port...]`` of one or more brokers.
    topic
        The topic the consumer (``tripwire consume kafka``) reads.
    timeout
        The most seconds ``send`` waits for a batch's acknowledgements before it fails (and
        the logger retries the batch).
    producer_config
        More librdkafka producer settings, e.g. ``**{"security.protocol": "SASL_SSL"}``; they
        override the defaults below.

    The defaults make the producer idempotent with ``acks=all``: a broker's retry never writes
    a message twice or out of order, and a message counts as delivered only once every in-sync
    replica has it. ``linger.ms=5`` lets librdkafka pack the batch into few requests.
    """

    def __init__(
        self,
        bootstrap_servers: str,
        topic: str,
        *,
        timeout: float = 30.0,
        **producer_config: Any,
    ) -> None:
        # Here, so that importing tripwire (or logging to files) never needs the kafka extra.
        from confluent_kafka import Producer

        if timeout <= 0:
            raise ValueError("timeout must be > 0")
        self.topic = topic
        self.timeout = timeout
        config: dict[str, Any] = {
            "bootstrap.servers": bootstrap_servers,
            "enable.idempotence": True,
            "acks": "all",
            "linger.ms": 5,
            **producer_config,
        }
        # Made now, not on the first send: a bad setting fails at startup (KafkaException).
        self._producer = Producer(config)

    def send(self, batch: list[dict[str, Any]]) -> None:
        """Produce the batch and wait until Kafka has all of it; raise ``TransportError``
        otherwise (retryable unless the error says retrying cannot help)."""
        from confluent_kafka import KafkaError

        deliveries = _Deliveries()
        produce = self._producer.produce
        for event in batch:
            value = _JSON.encode(event).encode()
            key = str(event["event_id"]).encode()
            while True:
                try:
                    produce(self.topic, value=value, key=key, on_delivery=deliveries)
                    break
                except BufferError:
                    # The local queue is full (queue.buffering.max.messages): let deliveries
                    # drain it, then try the same message again.
                    self._producer.poll(0.1)
                except Exception as exc:  # KafkaException: an unknown topic, a bad config
                    raise _error(exc.args[0] if exc.args else exc) from exc
        remaining = self._producer.flush(self.timeout)
        if remaining:
            # Drop what is still queued, so that the retry does not pile onto it; messages
            # already in flight may still arrive, and their copies are removed by event id.
            self._producer.purge(in_queue=True, in_flight=False, blocking=True)
            self._producer.poll(0)
            raise TransportError(
                f"Kafka topic {self.topic!r}: {remaining} of {len(batch)} events not "
                f"acknowledged within {self.timeout} s"
            )
        if deliveries.errors:
            first = deliveries.errors[0]
            raise _error(first if isinstance(first, KafkaError) else str(first), len(batch))

    def close(self) -> None:
        """Wait (up to ``timeout``) for anything still in flight; nothing is produced after."""
        self._producer.flush(self.timeout)

    def __repr__(self) -> str:
        return f"KafkaTransport(topic={self.topic!r})"


# Errors that the same batch cannot get past, however often it is sent again.
_PERMANENT = frozenset(
    {
        "MSG_SIZE_TOO_LARGE",
        "INVALID_MSG_SIZE",
        "_MSG_TIMED_OUT_PERMANENT",
        "TOPIC_AUTHORIZATION_FAILED",
        "CLUSTER_AUTHORIZATION_FAILED",
        "SASL_AUTHENTICATION_FAILED",
        "_AUTHENTICATION",
        "INVALID_CONFIG",
        "_INVALID_ARG",
        "INVALID_TOPIC_EXCEPTION",
        "TOPIC_EXCEPTION",
    }
)


def _error(error: Any, batch: int | None = None) -> TransportError:
    """A ``TransportError`` for a ``KafkaError`` (or a message), retryable unless it is fatal
    or one of the errors a retry cannot fix."""
    name = error.name() if hasattr(error, "name") else ""
    fatal = bool(error.fatal()) if hasattr(error, "fatal") else False
    text = error.str() if hasattr(error, "str") else str(error)
    where = f" ({batch} events in the batch)" if batch is not None else ""
    return TransportError(
        f"Kafka delivery failed{where}: {name or 'error'}: {text}",
        retryable=not fatal and name not in _PERMANENT,
    )
