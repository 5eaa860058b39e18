"""Reading event batches in worker processes, so that the collector is not held to one core.

Decoding a body and validating its events (which lays them out as the store's Arrow rows) is
work under the interpreter lock, and in the server process it also held up the store's writes,
which take the lock back after every statement (benchmarks/README.md, "Collector"). An
:class:`EventParser` with ``workers`` hands each body to a pool of processes that decode and
validate it and send back the result; the server process is left the HTTP and the store's
writes. With no workers it does the same work in the calling thread (tests, small servers,
the queue consumers).

A worker that dies (killed, out of memory) breaks the pool: the body it held is read again in
the calling thread and a new pool takes the next ones, so no client sees the failure.
"""

from __future__ import annotations

import gc
import multiprocessing
import os
import threading
from collections.abc import Mapping
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool

from tripwire.config import ModelConfig
from tripwire.events import Event
from tripwire.server.body import Batch, parse_batch
from tripwire.server.decoding import decode_events
from tripwire.server.validation import Validated, add_unreadable, validate_event_batch

# A worker process's models, set once when it starts (pickling them with every body would cost
# the server process a millisecond a batch).
_worker_configs: dict[str, ModelConfig] = {}


def default_workers(cores: int | None = None) -> int:
    """Workers for a machine with ``cores`` (this one's by default): all but one core, at
    most four; none on one core.

    Even on two cores one worker pays (benchmarks/README.md, "Collector"): the store's writes
    run without the interpreter lock but take it back after every statement, and in the
    server process they waited for it behind request threads decoding bodies, a few
    milliseconds each. Past four, the store's writes bound the collector, not decoding.

    >>> [default_workers(n) for n in (1, 2, 3, 4, 8, 64)]
    [0, 1, 2, 3, 4, 4]
    """
    cores = cores if cores is not None else os.cpu_count() or 1
    return max(0, min(4, cores - 1))


def read_events(
    configs: Mapping[str, ModelConfig], content_type: str | None, raw: bytes
) -> Validated[Event]:
    """The body's valid events, and its rejected items (lines that are not JSON included) by
    the model they are quarantined under. Raises ``BodyError`` or ``MediaTypeError`` for a body
    that is not a batch at all."""
    rows = decode_events(configs, content_type, raw)
    if rows is not None:  # every event valid: the usual batch, decoded in one pass
        return Validated(accepted=rows)
    return validate_batch(configs, parse_batch(content_type, raw, "events"))


def validate_batch(configs: Mapping[str, ModelConfig], batch: Batch) -> Validated[Event]:
    """The batch's valid events, and its rejected items (lines that were not JSON included)."""
    result = validate_event_batch(configs, batch.items, batch.indices)
    add_unreadable(result.rejected, batch)
    return result


class EventParser:
    """Reads event bodies for ``configs``, in ``workers`` processes (0: in the calling thread).

    Example:

    >>> from tripwire.config import parse_config
    >>> config = parse_config(
    ...     "name: m\\ntask: binary\\ncolumns: {features: {x: numeric}, prediction: p}"
    ... )
    >>> parser = EventParser({"m": config}, workers=0)
    >>> body = b'{"model": "m", "event_id": "1", "timestamp": "2026-01-01T00:00:00Z",'
    >>> body += b' "features": {"x": 1.5}, "prediction": 0.9}'
    >>> result = parser.read("application/x-ndjson", body + b"\\nnot json\\n")
    >>> len(result.accepted), result.rejected["(unknown)"][0].index
    (1, 1)
    >>> parser.close()
    """

    def __init__(self, configs: Mapping[str, ModelConfig], workers: int) -> None:
        if workers < 0:
            raise ValueError(f"workers must be 0 or more, got {workers}")
        self.configs = dict(configs)
        self.workers = workers
        self._lock = threading.Lock()
        self._pool = self._new_pool() if workers else None

    def _new_pool(self) -> ProcessPoolExecutor:
        # Spawned, not forked: the server process has threads (and a DuckDB connection) that a
        # fork would copy in whatever state they were in.
        return ProcessPoolExecutor(
            self.workers,
            mp_context=multiprocessing.get_context("spawn"),
            initializer=_start_worker,
            initargs=(self.configs,),
        )

    def start(self) -> None:
        """Start every worker now (each imports tripwire, about a second), not on the first
        requests."""
        pool = self._pool
        if pool is not None:
            for done in [pool.submit(os.getpid) for _ in range(self.workers)]:
                done.result()

    def read(self, content_type: str | None, raw: bytes) -> Validated[Event]:
        """What :func:`read_events` returns for the body, read in a worker when there are any;
        blocks the calling thread until it is."""
        pool = self._pool
        if pool is None:
            return read_events(self.configs, content_type, raw)
        try:
            future: Future[Validated[Event]] = pool.submit(_read_in_worker, content_type, raw)
            return future.result()
        except BrokenProcessPool:
            self._replace(pool)
            return read_events(self.configs, content_type, raw)

    def _replace(self, broken: ProcessPoolExecutor) -> None:
        with self._lock:
            if self._pool is broken:  # not already replaced by another thread
                self._pool = self._new_pool()
        broken.shutdown(wait=False, cancel_futures=True)

    def worker_pids(self) -> list[int]:
        """The live workers' process ids (for tests that kill one)."""
        pool = self._pool
        processes = getattr(pool, "_processes", None) or {}
        return sorted(processes)

    def close(self) -> None:
        with self._lock:
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)


def _start_worker(configs: dict[str, ModelConfig]) -> None:
    _worker_configs.update(configs)
    # As in the server process: what start-up made (modules, the configs) out of the cyclic
    # GC's way, so that a collection walks only what the bodies make.
    gc.collect()
    gc.freeze()


def _read_in_worker(content_type: str | None, raw: bytes) -> Validated[Event]:
    return read_events(_worker_configs, content_type, raw)
