"""A ``tripwire.Logger`` transport that appends events to a Redis stream.

Each event becomes one stream entry with a single field, ``event``, holding the event's JSON
(the same JSON the collector accepts). ``tripwire consume redis`` (``RedisConsumer``) reads the
stream into the store.

Example (needs a running Redis)::

    from tripwire.logger import Logger
    from tripwire.ingest.redis_transport import RedisTransport

    logger = Logger("fraud", RedisTransport("redis://127.0.0.1:6379/0", "tripwire:events"))
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from tripwire.logger import TransportError

if TYPE_CHECKING:
    import redis

__all__ = ["FIELD", "RedisTransport"]

FIELD = "event"
"""The stream entry's field that holds the event's JSON."""

# As the logger's own encoder: compact, and no NaN (JSON has none; the logger already turned
# non-finite numbers into null).
_JSON = json.JSONEncoder(separators=(",", ":"), allow_nan=False)


class RedisTransport:
    """XADD each event of a batch to ``stream`` as one entry, in one pipeline per batch.

    ``maxlen`` caps the stream's length (approximately, which lets Redis trim whole nodes
    cheaply); leave it None unless the consumer is known to keep up, since entries trimmed
    before they are consumed are lost. A failure to reach Redis raises a retryable
    ``TransportError``, so the logger sends the batch again; a batch that was partly added
    before the failure is then partly added twice, and the copies are removed by event id when
    the consumer stores them. An error Redis answers with (the key holds another type, say) is
    not retryable.
    """

    def __init__(self, url: str, stream: str, maxlen: int | None = None) -> None:
        if maxlen is not None and maxlen < 1:
            raise ValueError("maxlen must be >= 1 or None")
        self.url = url
        self.stream = stream
        self.maxlen = maxlen
        self._client: redis.Redis | None = None

    def send(self, batch: list[dict[str, Any]]) -> None:
        import redis  # here, so that importing tripwire never needs the redis extra

        if self._client is None:
            # Made on first use, which is on the logger's worker thread (see Transport).
            self._client = redis.Redis.from_url(self.url)
        # No MULTI/EXEC: the batch need not be atomic (a repeated event is harmless) and a
        # plain pipeline is one round trip without the transaction's bookkeeping.
        pipe = self._client.pipeline(transaction=False)
        for event in batch:
            pipe.xadd(
                self.stream,
                {FIELD: _JSON.encode(event)},
                maxlen=self.maxlen,
                approximate=True,
            )
        try:
            pipe.execute()
        except (redis.ConnectionError, redis.TimeoutError) as exc:
            raise TransportError(f"{self!r}: {exc}") from exc
        except redis.RedisError as exc:
            raise TransportError(f"{self!r}: {exc}", retryable=False) from exc

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None

    def __repr__(self) -> str:  # never shows a password in the URL
        return f"RedisTransport(stream={self.stream!r})"
