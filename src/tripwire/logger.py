"""The serving-side SDK: log one event per prediction without slowing the prediction down.

``Logger.log`` only stamps the call (an id and the time), snapshots the arguments and appends
them to a bounded buffer; a background thread turns them into events (the JSON the collector
accepts, see ``tripwire.events.Event``), batches them and hands each batch to a transport.
Nothing the logger does raises into the caller: a full buffer, an argument that cannot make an
event and a transport that keeps failing are counted in ``Logger.stats`` (and exported by
``Logger.prometheus_text``) instead.

Delivery is at least once: a batch whose send failed part way (a timeout after the collector
stored it, a write error after some lines) is sent again, and the copies are removed by event
id when the events are stored.

Over HTTP the collector learns what was dropped too: each batch carries the logger's random
``instance_id`` and its cumulative drop count in two headers (:data:`LOGGER_ID_HEADER`,
:data:`DROPPED_HEADER`), and ``tripwire serve`` exports the sum over loggers per model. Kafka
and Redis carry only events (the consumers store nothing else), so there the drops are counted
in the logger's own stats only.

Create the logger in the process that logs (after a server forks its workers): the background
thread does not survive ``fork``.
"""

from __future__ import annotations

import atexit
import itertools
import json
import logging
import math
import numbers
import os
import threading
import time
import uuid
import weakref
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any, Literal, Protocol

if TYPE_CHECKING:
    import httpx

__all__ = [
    "CLOSED_SUFFIX",
    "DROPPED_HEADER",
    "LOGGER_ID_HEADER",
    "FileTransport",
    "HttpTransport",
    "Logger",
    "LoggerStats",
    "Transport",
    "TransportError",
]

_log = logging.getLogger(__name__)

MiB = 1024 * 1024
LOGGER_ID_HEADER = "Tripwire-Logger-Id"
"""The request header :class:`HttpTransport` names its logger by (``Logger.instance_id``)."""
DROPPED_HEADER = "Tripwire-Logger-Dropped"
"""The request header carrying the logger's cumulative count of dropped events."""
MAX_EVENT_ID = 200  # as tripwire.events.Event
_now = time.time
_PLAIN = frozenset({str, int, bool, type(None)})
# One encoder: json.dumps with options builds a new one per call. No NaN: JSON has none.
_JSON = json.JSONEncoder(separators=(",", ":"), allow_nan=False)

# What ``log`` queues: (event_id, timestamp, features, prediction, latency_ms, status, cost,
# segments, metadata), exactly as given apart from the copies; the worker checks the rest.
_Item = tuple[str, Any, dict[Any, Any], float, Any, Any, Any, Any, Any]


class Transport(Protocol):
    """Where batches of events go. Both methods are called on the logger's worker thread only,
    so a transport needs no locking and may keep a connection open between batches.

    ``send`` takes a list of events (JSON-ready dicts, see ``tripwire.events.Event``) and raises
    on failure; the logger then retries the whole batch, so a send must be safe to repeat (the
    collector removes duplicates by event id). It returns how many events of the batch the
    receiver rejected as invalid (they are not retried), or None when all were taken or the
    receiver does not say. Raise ``TransportError(..., retryable=False)`` for a failure that
    retrying cannot fix. ``close`` releases the transport; it is called once, after the last
    send.

    A transport may also have ``attach(instance_id, dropped)``: the logger calls it once, when
    it is made, with its id and a function giving its cumulative count of dropped events, for a
    transport that reports them to its receiver (as :class:`HttpTransport` does).
    """

    def send(self, batch: list[dict[str, Any]]) -> int | None: ...

    def close(self) -> None: ...


class TransportError(Exception):
    """A send failed; ``retryable`` says whether sending the same batch again may succeed."""

    def __init__(self, message: str, *, retryable: bool = True) -> None:
        super().__init__(message)
        self.retryable = retryable


@dataclass(frozen=True)
class LoggerStats:
    """Where the logged events went. Once the logger is closed, every ``log`` call is counted
    exactly once in ``sent``, ``rejected``, ``failed``, ``dropped`` or ``invalid``."""

    sent: int
    """Events a transport took (for HTTP: stored by the collector, or already stored)."""
    dropped: int
    """Events never sent: the buffer was full, the logger was closed, or ``close`` ran out of
    time while they were still buffered."""
    invalid: int
    """``log`` calls whose arguments could not make an event."""
    failed: int
    """Events whose batch still failed after every retry."""
    rejected: int
    """Events the receiver refused as invalid (for HTTP: the collector's ``rejected``)."""
    queued: int
    """Events buffered or being sent now."""


_METRICS: tuple[tuple[str, str, str], ...] = (
    ("sent", "counter", "Events a transport accepted."),
    ("dropped", "counter", "Events dropped unsent (buffer full, or logger closed)."),
    ("invalid", "counter", "Log calls whose arguments could not make an event."),
    ("failed", "counter", "Events whose batch failed after every retry."),
    ("rejected", "counter", "Events the receiver rejected as invalid."),
    ("queued", "gauge", "Events buffered or being sent."),
)


class _Tally:
    """A counter that any thread may increment without taking a lock: one cell per thread,
    summed when read. ``x += 1`` on a shared attribute can lose updates between threads, and a
    lock on the drop path would make callers wait on each other exactly when the buffer is full
    under load."""

    def __init__(self) -> None:
        self._local = threading.local()
        self._lock = threading.Lock()  # registering a thread's cell and reading only
        self._cells: list[tuple[weakref.ref[threading.Thread], list[int]]] = []
        self._retired = 0

    def add(self, n: int = 1) -> None:
        try:
            self._local.cell[0] += n
        except AttributeError:  # this thread's first increment
            cell = [n]
            with self._lock:
                self._cells.append((weakref.ref(threading.current_thread()), cell))
            self._local.cell = cell

    @property
    def value(self) -> int:
        with self._lock:
            live: list[tuple[weakref.ref[threading.Thread], list[int]]] = []
            for ref, cell in self._cells:
                thread = ref()
                if thread is None or not thread.is_alive():
                    # A finished thread adds nothing more: fold its count in, so a server that
                    # starts a thread per request does not grow this list without end.
                    self._retired += cell[0]
                else:
                    live.append((ref, cell))
            self._cells = live
            return self._retired + sum(cell[0] for _, cell in live)


class Logger:
    """Log predictions from a serving process; a background thread batches and ships them.

    ``log`` returns at once (about 1.5 us per call on a small shared VM, mostly the event id
    and a shallow copy of the features; see ``benchmarks/logger.py``). Up to ``max_buffer``
    events wait for the worker, which wakes every ``flush_interval`` seconds or when
    ``batch_size`` events are waiting and hands batches of at most ``batch_size`` events to
    ``transport``. A failed batch is retried ``retries`` times, ``backoff`` seconds apart and
    doubling, then counted as failed. ``flush`` waits until what was logged so far has been
    shipped; the logger flushes on ``close``, at the end of a ``with`` block, and at
    interpreter exit.

    Example, writing NDJSON files that the collector accepts:

    >>> import json, pathlib, shutil, tempfile
    >>> directory = tempfile.mkdtemp()
    >>> with Logger("fraud", FileTransport(directory), model_version="v3") as logger:
    ...     event_id = logger.log(features={"amount": 12.5, "country": "US"}, prediction=0.93)
    ...     logger.log(features={"amount": 3.0}, prediction="not a number") is None
    True
    >>> logger.stats
    LoggerStats(sent=1, dropped=0, invalid=1, failed=0, rejected=0, queued=0)
    >>> [path] = pathlib.Path(directory).glob("events-*.ndjson")
    >>> event = json.loads(path.read_text())
    >>> event["event_id"] == event_id, event["features"], event["prediction"]
    (True, {'amount': 12.5, 'country': 'US'}, 0.93)
    >>> print(logger.prometheus_text().splitlines()[2])
    tripwire_logger_events_sent_total{model="fraud",role="production"} 1
    >>> shutil.rmtree(directory)
    """

    def __init__(
        self,
        model: str,
        transport: Transport,
        *,
        model_version: str | None = None,
        role: Literal["production", "shadow"] = "production",
        batch_size: int = 1000,
        flush_interval: float = 1.0,
        max_buffer: int = 100_000,
        retries: int = 3,
        backoff: float = 0.5,
    ) -> None:
        # Configuration errors are the one thing that raises: at startup, not per prediction.
        if role not in ("production", "shadow"):
            raise ValueError(f"role must be 'production' or 'shadow', got {role!r}")
        if batch_size < 1 or max_buffer < 1 or retries < 0:
            raise ValueError("batch_size and max_buffer must be >= 1, retries >= 0")
        if flush_interval <= 0 or backoff < 0:
            raise ValueError("flush_interval must be > 0 and backoff >= 0")
        self.model = model
        self.model_version = model_version
        self.role = role
        self.transport = transport
        self.batch_size = batch_size
        self.flush_interval = flush_interval
        self.max_buffer = max_buffer
        self.retries = retries
        self.backoff = backoff

        # A random prefix per logger and a counter: unique across processes and restarts, and
        # ~20x cheaper per call than uuid4() (benchmarks/logger.py measures both).
        self.instance_id = uuid.uuid4().hex[:16]
        """This logger, among every logger of every process: the prefix of the event ids it
        makes, and what the collector adds its drop count up by."""
        self._prefix = self.instance_id + "-"
        self._seq = itertools.count()
        # A deque without maxlen: with one, a full deque silently evicts the OLDEST event; the
        # bound is checked in log() so that the overflow is refused and counted instead.
        # append/popleft are atomic, so callers never wait for the worker or for each other.
        # With several logging threads the bound may be passed by one event per other thread
        # inside log() at that moment; every event is still either queued or counted.
        self._queue: deque[_Item] = deque()
        self._limit = max_buffer  # set to 0 by close(), so that later calls are dropped
        self._dropped = _Tally()
        self._invalid = _Tally()
        # Written by the worker thread only.
        self._sent = 0
        self._failed = 0
        self._rejected = 0
        self._in_flight = 0
        self._last_send = 0.0
        # For flush(): events the worker has taken from the buffer and, of those, the ones
        # resolved (sent, rejected, failed, invalid or dropped). The worker takes a batch and
        # counts it under the lock, so that flush() sees each event either buffered or taken.
        self._progress = threading.Condition(threading.Lock())
        self._taken = 0
        self._resolved = 0
        self._finished = False  # the worker has exited
        self._warned: set[str] = set()
        self._second = -1  # the Unix second last formatted by _iso, and its text
        self._second_text = ""

        self._wake = threading.Event()
        self._stop = threading.Event()
        self._deadline = math.inf  # monotonic time by which close() wants the worker done
        self._close_lock = threading.Lock()
        self._closed = False
        attach = getattr(transport, "attach", None)
        if callable(attach):
            dropped = self._dropped
            attach(self.instance_id, lambda: dropped.value)
        self._worker = threading.Thread(
            target=self._run, name=f"tripwire-logger-{model}", daemon=True
        )
        self._worker.start()
        # The worker is a daemon thread (a non-daemon one would keep the process alive), so
        # the flush at exit is an atexit hook; close() removes it again.
        atexit.register(self._close_at_exit)

    # ----------------------------------------------------------------- caller's thread

    def log(
        self,
        *,
        features: Mapping[str, object],
        prediction: float,
        event_id: str | None = None,
        timestamp: datetime | float | None = None,
        latency_ms: float | None = None,
        status: str | None = None,
        cost: float | None = None,
        segments: Mapping[str, str] | None = None,
        metadata: Mapping[str, object] | None = None,
    ) -> str | None:
        """Queue one prediction; the event id, or None if it was dropped or is invalid.

        Never raises and never blocks. ``timestamp`` defaults to now (naive datetimes are
        UTC). The mappings are copied shallowly, so a dict changed after the call logs what
        it held at the call; nested values are not copied. Arguments that fail the cheap checks
        here (``features`` not a mapping, ``prediction`` not a number) return None; the rest
        are checked on the worker, and an event that fails there is counted as invalid though
        its id was returned.
        """
        try:
            queue = self._queue
            waiting = len(queue)
            if waiting >= self._limit:
                self._dropped.add()
                return None
            if event_id is None:
                event_id = f"{self._prefix}{next(self._seq)}"
            queue.append(
                (
                    event_id,
                    _now() if timestamp is None else timestamp,
                    dict(features),
                    float(prediction),
                    latency_ms,
                    status,
                    cost,
                    None if segments is None else dict(segments),
                    None if metadata is None else dict(metadata),
                )
            )
            # Only the call that fills a batch wakes the worker (Event.set takes a lock); if
            # concurrent calls skip past this size, the worker still wakes on its interval.
            if waiting + 1 == self.batch_size:
                self._wake.set()
            return event_id
        except Exception:
            self._invalid.add()
            return None

    @property
    def stats(self) -> LoggerStats:
        """A snapshot of the counters (``queued`` may lag by a batch while the worker runs)."""
        return LoggerStats(
            sent=self._sent,
            dropped=self._dropped.value,
            invalid=self._invalid.value,
            failed=self._failed,
            rejected=self._rejected,
            queued=len(self._queue) + self._in_flight,
        )

    def prometheus_text(self) -> str:
        """The stats in the Prometheus text exposition format, labelled with model and role.

        Counters: ``tripwire_logger_events_{sent,dropped,invalid,failed,rejected}_total``;
        gauges: ``tripwire_logger_events_queued`` and
        ``tripwire_logger_last_send_timestamp_seconds`` (0 before the first send; alert when it
        stops moving). To expose several loggers, merge their samples under one ``# HELP`` and
        ``# TYPE`` per metric.
        """
        stats = self.stats
        labels = f'{{model="{_label(self.model)}",role="{self.role}"}}'
        lines = []
        for field, kind, help_text in _METRICS:
            name = f"tripwire_logger_events_{field}" + ("_total" if kind == "counter" else "")
            lines += [
                f"# HELP {name} {help_text}",
                f"# TYPE {name} {kind}",
                f"{name}{labels} {getattr(stats, field)}",
            ]
        name = "tripwire_logger_last_send_timestamp_seconds"
        lines += [
            f"# HELP {name} Unix time of the last successful send.",
            f"# TYPE {name} gauge",
            f"{name}{labels} {self._last_send:.3f}",
        ]
        return "\n".join(lines) + "\n"

    def flush(self, timeout: float | None = None) -> bool:
        """Wait until every event logged before the call has been handed to the transport and
        resolved: sent, rejected, failed (after its retries, so a failing transport takes a
        while), or dropped and counted; at most ``timeout`` seconds (None: as long as it
        takes). True when they all were, False at the timeout. Later ``log`` calls are not
        waited for. Never raises; once ``close`` has finished, returns at once.
        """
        try:
            if threading.current_thread() is self._worker:
                return False  # a transport flushing its own logger would wait for itself
            deadline = None if timeout is None else time.monotonic() + timeout
            with self._progress:
                target = self._taken + len(self._queue)
            self._wake.set()
            with self._progress:
                while self._resolved < target and not self._finished:
                    remaining = None if deadline is None else deadline - time.monotonic()
                    if remaining is not None and remaining <= 0:
                        return False
                    self._progress.wait(remaining)
            if self._finished:
                # Only a log() that raced close() can have left an event: count it dropped.
                self._dropped.add(self._discard())
            return True
        except Exception:
            _log.debug("tripwire logger %r: flush failed", self.model, exc_info=True)
            return False

    def close(self, timeout: float | None = 5.0) -> bool:
        """Ship what is buffered, stop the worker and close the transport; at most ``timeout``
        seconds (None: as long as it takes). True when everything logged before was resolved
        (sent, rejected or failed); what was still buffered at the timeout is counted as
        dropped. Later ``log`` calls are dropped. Safe to call more than once."""
        with self._close_lock:
            if not self._closed:
                self._closed = True
                atexit.unregister(self._close_at_exit)
                self._limit = 0
                if timeout is not None:
                    self._deadline = time.monotonic() + timeout
                self._stop.set()
                self._wake.set()
            self._worker.join(timeout)
            if self._worker.is_alive():
                # The worker is stuck in a send. What it has not taken yet will not be sent:
                # count it now (popleft is atomic, so nothing is taken twice).
                self._dropped.add(self._discard())
                return False
            return True

    def __enter__(self) -> Logger:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Logger({self.model!r}, {type(self.transport).__name__}, role={self.role!r})"

    def _close_at_exit(self) -> None:
        self.close()

    # ----------------------------------------------------------------- worker thread

    def _run(self) -> None:
        try:
            while not self._stop.is_set():
                self._wake.wait(self.flush_interval)
                # Cleared before draining, so that a wake-up during the drain is not lost.
                self._wake.clear()
                self._drain_safely()
            self._drain_safely()
            self._dropped.add(self._discard())  # only left over when the deadline passed
        finally:
            try:
                self.transport.close()
            except Exception as exc:
                self._warn("close", f"closing the transport failed: {exc!r}")
            with self._progress:
                self._finished = True
                self._progress.notify_all()

    def _drain_safely(self) -> None:
        try:
            self._drain()
        except Exception:
            # _ship already counts transport and event errors, so this is a bug in the logger;
            # say so, and keep the worker alive rather than let the buffer fill for good.
            _log.exception("tripwire logger %r: worker failed", self.model)

    def _drain(self) -> None:
        """Ship batches until the buffer is empty (or close()'s deadline has passed)."""
        queue = self._queue
        while queue and time.monotonic() < self._deadline:
            items = []
            pop = queue.popleft
            with self._progress:
                try:
                    for _ in range(self.batch_size):
                        items.append(pop())
                except IndexError:
                    pass
                self._taken += len(items)
            self._in_flight = len(items)
            try:
                self._ship(items)
            finally:
                self._in_flight = 0
                self._resolve(len(items))

    def _resolve(self, n: int) -> None:
        """Count ``n`` taken events as resolved and wake whoever waits in flush()."""
        with self._progress:
            self._resolved += n
            self._progress.notify_all()

    def _ship(self, items: list[_Item]) -> None:
        batch = []
        for item in items:
            try:
                batch.append(self._event(item))
            except Exception as exc:
                self._invalid.add()
                self._warn("invalid", f"invalid event {item[0]!r} not sent: {exc}")
        if not batch:
            return
        delay = self.backoff
        for attempt in range(self.retries + 1):
            try:
                rejected = self.transport.send(batch)
            except Exception as exc:
                retryable = getattr(exc, "retryable", True)
                if not retryable or attempt == self.retries or not self._pause(delay):
                    self._failed += len(batch)
                    self._warn("failed", f"{len(batch)} events failed: {exc!r}")
                    return
                delay *= 2
            else:
                rejected = min(max(rejected or 0, 0), len(batch))
                self._sent += len(batch) - rejected
                self._rejected += rejected
                self._last_send = _now()
                return

    def _pause(self, delay: float) -> bool:
        """Wait ``delay`` seconds before a retry; False if close()'s deadline comes first."""
        start = time.monotonic()
        if self._stop.wait(delay):
            # Closing: finish the wait, but only while the deadline allows another try.
            remaining = min(start + delay, self._deadline) - time.monotonic()
            if remaining > 0:
                time.sleep(remaining)
        return time.monotonic() < self._deadline

    def _discard(self) -> int:
        """Empty the buffer; how many events it held (resolved: the caller counts them)."""
        n = 0
        with self._progress:
            try:
                while True:
                    self._queue.popleft()
                    n += 1
            except IndexError:
                pass
            self._taken += n
            self._resolved += n
            self._progress.notify_all()
        return n

    def _warn(self, kind: str, message: str) -> None:
        # The first problem of each kind is a warning, the rest debug: a broken collector or a
        # systematic bad field would otherwise write a line per batch to the serving logs.
        level = logging.DEBUG if kind in self._warned else logging.WARNING
        self._warned.add(kind)
        _log.log(level, "tripwire logger %r: %s", self.model, message)

    def _iso(self, timestamp: object) -> str:
        """ISO 8601 in UTC, as the collector stores it."""
        if type(timestamp) is float:
            # Most timestamps are time.time() of the last second or so: format the second once
            # and add the microseconds (datetime.isoformat per event is a third of the work).
            second = math.floor(timestamp)
            micros = round((timestamp - second) * 1e6)
            if second == self._second and micros < 1_000_000:
                return f"{self._second_text}.{micros:06d}+00:00"
            if micros < 1_000_000:
                self._second = second
                self._second_text = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))
                return f"{self._second_text}.{micros:06d}+00:00"
        if isinstance(timestamp, datetime):
            # Naive is UTC, as in tripwire.events.Event.
            if timestamp.tzinfo is None:
                return timestamp.replace(tzinfo=UTC).isoformat(timespec="microseconds")
            return timestamp.astimezone(UTC).isoformat(timespec="microseconds")
        if isinstance(timestamp, numbers.Real) and not isinstance(timestamp, bool):
            return datetime.fromtimestamp(float(timestamp), UTC).isoformat(timespec="microseconds")
        raise TypeError(f"timestamp must be a datetime or Unix seconds, got {type(timestamp)}")

    def _event(self, item: _Item) -> dict[str, Any]:
        """The JSON-ready event for a queued call; ValueError/TypeError says what is wrong."""
        event_id, timestamp, features, prediction, latency_ms, status, cost, segs, meta = item
        if not isinstance(event_id, str) or not 0 < len(event_id) <= MAX_EVENT_ID:
            raise ValueError(f"event_id must be a string of 1 to {MAX_EVENT_ID} characters")
        if not math.isfinite(prediction):
            raise ValueError(f"prediction must be finite, got {prediction}")
        event: dict[str, Any] = {
            "event_id": event_id,
            "model": self.model,
            "role": self.role,
            "timestamp": self._iso(timestamp),
            "features": _features(features),
            "prediction": prediction,
        }
        if self.model_version is not None:
            event["model_version"] = self.model_version
        if latency_ms is not None:
            event["latency_ms"] = _number("latency_ms", latency_ms)
        if status is not None:
            if not isinstance(status, str):
                raise TypeError(f"status must be a string, got {type(status).__name__}")
            event["status"] = status
        if cost is not None:
            event["cost"] = _number("cost", cost)
        if segs:
            event["segments"] = {_key(k): str(v) for k, v in segs.items() if v is not None}
        if meta:
            # Checked here so that one bad event fails alone rather than its whole batch.
            _JSON.encode(meta)
            event["metadata"] = meta
        return event


def _label(value: str) -> str:
    """A Prometheus label value, escaped."""
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _features(features: dict[Any, Any]) -> dict[str, Any]:
    """The feature values as JSON scalars (see _scalar). ``features`` is log()'s own copy, so
    in the common case, where every value already is one, it is returned as it is."""
    for name, value in features.items():
        kind = type(value)
        # value - value is 0.0 for a finite float and NaN for NaN and the infinities.
        if (kind in _PLAIN or (kind is float and value - value == 0.0)) and type(name) is str:
            continue
        return {_key(k): _scalar(k, v) for k, v in features.items()}
    return features


def _key(key: object) -> str:
    if not isinstance(key, str):
        raise TypeError(f"names must be strings, got {key!r}")
    return key


def _scalar(name: str, value: object) -> float | int | str | bool | None:
    """A feature value as JSON: non-finite floats become null (JSON has no NaN, and tripwire
    treats null as missing); numpy scalars become Python ones."""
    if value is None or isinstance(value, str | bool | int):
        return value
    if isinstance(value, float):  # np.float64 is one too
        return value if math.isfinite(value) else None
    if isinstance(value, numbers.Integral):
        return int(value)
    if isinstance(value, numbers.Real):
        number = float(value)
        return number if math.isfinite(number) else None
    item = getattr(value, "item", None)  # numpy scalars (np.bool_ is not a numbers.Number)
    if callable(item) and getattr(value, "ndim", None) == 0:
        return _scalar(name, item())
    raise TypeError(
        f"features.{name}: {type(value).__name__} is not a number, string, bool or null"
    )


def _number(name: str, value: object) -> float | None:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a number, got {type(value).__name__}")
    number = float(value)
    return number if math.isfinite(number) else None


class FileTransport:
    """Append events as NDJSON (one event per line, as the collector accepts them) to files
    ``events-<start>-<n>.ndjson`` in ``directory``. ``<start>`` is when the transport was made
    (UTC, to the microsecond) and ``<n>`` counts from 000000, so the names sort
    in write order; a file is never shared with another writer (a transport that finds its first
    name taken, made in the same microsecond as another, takes a later ``<start>``). A new file
    is started before one would pass ``max_bytes``; each file is flushed after every batch and
    fsynced when it is rotated and on close.

    A file is finished, never to be written again, once the same writer's next file exists
    (``<n>`` + 1: the transport fsyncs and closes a file before it opens the next), and its last
    file once ``close`` has left an empty marker beside it, ``events-<start>-<n>.ndjson.closed``
    (:data:`CLOSED_SUFFIX`). ``tripwire consume files`` goes by these rules to tell the files
    it may delete from the one a logger is still writing."""

    def __init__(self, directory: str | os.PathLike[str], max_bytes: int = 64 * MiB) -> None:
        if max_bytes < 1:
            raise ValueError("max_bytes must be >= 1")
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)  # fail at startup, not per batch
        self.max_bytes = max_bytes
        self._start = _file_stamp()
        self._n = 0
        self._file: Any = None
        self._path: Path | None = None
        self._size = 0

    def send(self, batch: list[dict[str, Any]]) -> None:
        for event in batch:
            line = (_JSON.encode(event) + "\n").encode()
            if self._file is not None and self._size + len(line) > self.max_bytes:
                self._rotate()
            if self._file is None:
                self._open()
            self._file.write(line)
            self._size += len(line)
        if self._file is not None:
            self._file.flush()

    def close(self) -> None:
        path = self._path
        self._rotate()
        if path is not None:
            # After the fsync: a marker seen means the file is complete. A marker lost in a
            # crash only leaves the file unfinished to its readers, never the reverse.
            path.with_name(path.name + CLOSED_SUFFIX).touch()

    def _open(self) -> None:
        while True:
            path = self.directory / f"events-{self._start}-{self._n:06d}.ndjson"
            try:
                self._file = open(path, "xb")  # noqa: SIM115 - kept open across batches
            except FileExistsError:
                if self._n == 0:
                    # Another writer's start: take a later one, so that no two writers ever
                    # number files under one start (readers take a writer's next file to
                    # mean the previous one is finished).
                    self._start = _file_stamp(after=self._start)
                else:
                    self._n += 1
                continue
            self._n += 1
            self._path = path
            self._size = 0
            return

    def _rotate(self) -> None:
        if self._file is None:
            return
        file, self._file, self._path = self._file, None, None
        try:
            file.flush()
            os.fsync(file.fileno())
        finally:
            file.close()


CLOSED_SUFFIX = ".closed"
"""The marker :meth:`FileTransport.close` leaves beside its last file (``<file>.closed``, empty):
the file is complete. Touch one by hand for the last file of a writer that died."""


def _file_stamp(after: str = "") -> str:
    """Now, as :class:`FileTransport` names files by it; later than ``after``."""
    while True:
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
        if stamp > after:
            return stamp
        time.sleep(1e-6)


class HttpTransport:
    """POST batches as ``{"events": [...]}`` to ``{url}/v1/events`` of a tripwire collector,
    with ``Authorization: Bearer <token>`` when a token is given. A response status >= 300
    raises ``TransportError`` (retryable for 408, 425, 429 and 5xx); the collector's
    ``rejected`` items are returned as the rejected count. One HTTP client (and its
    connections) is kept for the worker thread's life.

    Once a :class:`Logger` has it, each request also carries the logger's ``instance_id`` and
    how many events it has dropped so far (headers :data:`LOGGER_ID_HEADER` and
    :data:`DROPPED_HEADER`), so that the collector can export the drops of every logger
    sending to it: counts are cumulative, so a retried or reordered request counts nothing
    twice. Drops after the logger's last batch are never reported."""

    def __init__(self, url: str, token: str | None = None, timeout: float = 5.0) -> None:
        self.endpoint = url.rstrip("/") + "/v1/events"
        self.timeout = timeout
        self._headers = {"Content-Type": "application/json"}
        if token:
            self._headers["Authorization"] = f"Bearer {token}"
        self._client: httpx.Client | None = None
        self._warned = False
        self._instance: str | None = None
        self._dropped: Callable[[], int] | None = None

    def attach(self, instance_id: str, dropped: Callable[[], int]) -> None:
        """Report ``dropped()`` under ``instance_id`` with every batch (the logger calls this)."""
        self._instance, self._dropped = instance_id, dropped

    def send(self, batch: list[dict[str, Any]]) -> int | None:
        if self._client is None:
            # Made on first use, which is on the logger's worker thread; imported here so that
            # a process logging to files does not pay for importing httpx.
            import httpx

            self._client = httpx.Client(timeout=self.timeout, headers=self._headers)
        body = _JSON.encode({"events": batch})
        headers = None
        if self._instance is not None and self._dropped is not None:
            headers = {LOGGER_ID_HEADER: self._instance, DROPPED_HEADER: str(self._dropped())}
        response = self._client.post(self.endpoint, content=body.encode(), headers=headers)
        status = response.status_code
        if status >= 300:
            retryable = status in (408, 425, 429) or status >= 500
            raise TransportError(f"POST {self.endpoint}: HTTP {status}", retryable=retryable)
        try:
            rejected = response.json().get("rejected") or []
        except (ValueError, AttributeError):
            return None  # not the collector's answer; the status says the batch was taken
        if rejected:
            # Warn once: a systematic problem would otherwise log a line per batch.
            first = rejected[0].get("reason") if isinstance(rejected[0], dict) else rejected[0]
            level = logging.DEBUG if self._warned else logging.WARNING
            self._warned = True
            _log.log(
                level, "collector rejected %d of %d events: %s", len(rejected), len(batch), first
            )
        return len(rejected)

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None

    def __repr__(self) -> str:  # never shows the token
        return f"HttpTransport({self.endpoint!r})"
