"""Logger benchmark: what ``Logger.log`` costs the serving thread, and how fast the worker ships.

Usage::

    python benchmarks/logger.py
    python benchmarks/logger.py --calls 1000000 --features 10 --threads 4 --json

Measured:

* ``parts``: the pieces ``log`` is made of, with ``timeit``: an id from ``uuid4().hex`` against
  the per-logger prefix + counter that ``log`` uses, ``time.time()``, and the shallow copy of a
  feature dict of ``--features`` entries;
* ``log, accepted``: ``--calls`` calls of ``log`` on one thread to a logger whose transport
  discards batches (the worker still builds every event, sharing the interpreter with the
  caller, as it would in a server). Timed around each block of 1,000 calls, as wall time
  (``time.perf_counter_ns``) and as the calling thread's CPU time (``time.thread_time_ns``):
  the mean ns per call over all calls, and the p50 / p99 / max of the per-block means. The
  wall time also holds the waits while the worker has the interpreter lock: logging flat out,
  every event's encoding is paid there too. ``loop only`` is the same loop calling nothing,
  already included in the figures;
* ``log, dropped``: the same with the worker stuck and the buffer full, so every call is
  refused and counted;
* ``log, N threads``: ``--threads`` threads logging ``--calls`` calls in all; ns per call is the
  wall time over all calls (what the process pays per call), not one thread's wait;
* ``ship to files``: ``--ship`` events queued while the worker is held, then released: events
  per second the worker turns into NDJSON lines through ``FileTransport`` (to a temporary
  directory) until ``close`` returns, and the bytes written.

The target is <= 5 us per ``log`` call on the caller's thread.
"""

from __future__ import annotations

import argparse
import gc
import itertools
import json
import os
import platform
import shutil
import statistics
import sys
import tempfile
import threading
import time
import timeit
import uuid
from pathlib import Path
from typing import Any

from tripwire.logger import FileTransport, Logger

BLOCK = 1000
TARGET_NS = 5000


class Discard:
    """Takes every batch and does nothing with it."""

    def send(self, batch: list[dict[str, Any]]) -> None:
        pass

    def close(self) -> None:
        pass


class Held:
    """Wraps a transport; the first send waits until released, so that the buffer fills."""

    def __init__(self, inner: Any = None) -> None:
        self.inner = inner
        self.entered = threading.Event()
        self.release = threading.Event()

    def send(self, batch: list[dict[str, Any]]) -> None:
        self.entered.set()
        self.release.wait()
        if self.inner is not None:
            self.inner.send(batch)

    def close(self) -> None:
        if self.inner is not None:
            self.inner.close()


def features(n: int) -> dict[str, object]:
    # Mostly numbers, some categories, as a tabular model's request would have.
    return {f"f{i}": (f"level{i}" if i % 4 == 3 else i * 1.25) for i in range(n)}


def ns_per_call(stmt: str, namespace: dict[str, Any], number: int = 200_000) -> float:
    return min(timeit.repeat(stmt, globals=namespace, number=number, repeat=3)) / number * 1e9


def parts(n_features: int) -> dict[str, float]:
    namespace = {
        "uuid": uuid,
        "time": time,
        "count": itertools.count(),
        "prefix": uuid.uuid4().hex[:16] + "-",
        "features": features(n_features),
    }
    return {
        "uuid4().hex": ns_per_call("uuid.uuid4().hex", namespace),
        "prefix + counter": ns_per_call("f'{prefix}{next(count)}'", namespace),
        "time.time()": ns_per_call("time.time()", namespace),
        f"dict() of {n_features} features": ns_per_call("dict(features)", namespace),
    }


def timed_blocks(log: Any, calls: int, row: dict[str, object]) -> dict[str, list[float]]:
    """ns per call of each block of BLOCK calls: wall time, and the calling thread's CPU time
    (the wall time also holds the waits while the worker has the interpreter lock)."""
    clock, cpu = time.perf_counter_ns, time.thread_time_ns
    wall: list[float] = []
    own: list[float] = []
    for _ in range(calls // BLOCK):
        start, start_cpu = clock(), cpu()
        for _ in range(BLOCK):
            log(features=row, prediction=0.5)
        end_cpu, end = cpu(), clock()
        wall.append((end - start) / BLOCK)
        own.append((end_cpu - start_cpu) / BLOCK)
    return {"wall": wall, "cpu": own}


def summary(blocks: dict[str, list[float]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for kind, values in blocks.items():
        ordered = sorted(values)
        out[kind] = {
            "mean_ns": statistics.fmean(values),
            "p50_ns": ordered[len(ordered) // 2],
            "p99_ns": ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))],
            "max_ns": ordered[-1],
        }
    return out


def loop_only(calls: int) -> float:
    clock = time.perf_counter_ns
    start = clock()
    for _ in range(calls // BLOCK):
        for _ in range(BLOCK):
            pass
    return (clock() - start) / calls


def collections() -> list[int]:
    return [generation["collections"] for generation in gc.get_stats()]


def accepted(calls: int, row: dict[str, object]) -> dict[str, Any]:
    logger = Logger("bench", Discard(), max_buffer=calls + 1)
    before = collections()
    blocks = timed_blocks(logger.log, calls, row)
    # The slowest blocks are the cyclic garbage collector's full passes, paid by whichever
    # thread allocates when one is due; counted so that the p99 can be read.
    gcs = [after - first for first, after in zip(before, collections(), strict=True)]
    logger.close(timeout=None)
    stats = logger.stats
    return summary(blocks) | {"sent": stats.sent, "dropped": stats.dropped, "gc": gcs}


def dropped(calls: int, row: dict[str, object]) -> dict[str, Any]:
    held = Held()
    logger = Logger("bench", held, batch_size=1, flush_interval=0.001, max_buffer=10)
    logger.log(features=row, prediction=0.5)
    held.entered.wait()
    for _ in range(10):
        logger.log(features=row, prediction=0.5)
    blocks = timed_blocks(logger.log, calls, row)
    held.release.set()
    logger.close(timeout=None)
    return summary(blocks) | {"dropped": logger.stats.dropped}


def threaded(calls: int, threads: int, row: dict[str, object]) -> dict[str, Any]:
    logger = Logger("bench", Discard(), max_buffer=calls + 1)
    each = calls // threads
    barrier = threading.Barrier(threads + 1)

    def work() -> None:
        log = logger.log
        barrier.wait()
        for _ in range(each):
            log(features=row, prediction=0.5)

    pool = [threading.Thread(target=work) for _ in range(threads)]
    for thread in pool:
        thread.start()
    barrier.wait()
    start = time.perf_counter_ns()
    for thread in pool:
        thread.join()
    wall = time.perf_counter_ns() - start
    logger.close(timeout=None)
    stats = logger.stats
    return {
        "threads": threads,
        "ns_per_call": wall / (each * threads),
        "calls_per_s": each * threads / wall * 1e9,
        "sent": stats.sent,
        "dropped": stats.dropped,
    }


def ship(events: int, row: dict[str, object]) -> dict[str, Any]:
    directory = Path(tempfile.mkdtemp(prefix="tripwire-logger-bench-"))
    try:
        held = Held(FileTransport(directory))
        logger = Logger("bench", held, max_buffer=events + 1)
        for _ in range(events):
            logger.log(features=row, prediction=0.5)
        held.entered.wait()
        start = time.perf_counter()
        held.release.set()
        logger.close(timeout=None)
        seconds = time.perf_counter() - start
        size = sum(path.stat().st_size for path in directory.iterdir())
    finally:
        shutil.rmtree(directory, ignore_errors=True)
    sent = logger.stats.sent
    return {
        "events": sent,
        "seconds": seconds,
        "events_per_s": sent / seconds,
        "bytes_per_event": size / max(sent, 1),
    }


def _cpu_model() -> str | None:
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as info:
            for line in info:
                if line.lower().startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or None


def machine() -> dict[str, Any]:
    affinity = getattr(os, "sched_getaffinity", None)
    return {
        "platform": platform.platform(),
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
        "cpu": _cpu_model(),
        "logical_cores": os.cpu_count(),
        "usable_cores": len(affinity(0)) if affinity else os.cpu_count(),
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--calls", type=int, default=1_000_000)
    parser.add_argument("--features", type=int, default=10)
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument("--ship", type=int, default=200_000)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    calls = max(BLOCK, args.calls // BLOCK * BLOCK)
    row = features(args.features)
    load_before = os.getloadavg()[0] if hasattr(os, "getloadavg") else None

    result: dict[str, Any] = {
        "calls": calls,
        "features": args.features,
        "parts_ns": parts(args.features),
        "loop_only_ns": loop_only(calls),
        "accepted": accepted(calls, row),
        "dropped": dropped(calls, row),
        "threaded": threaded(calls, args.threads, row) if args.threads > 1 else None,
        "ship": ship(args.ship, row),
        "machine": machine(),
        "load_before": load_before,
        "load_after": os.getloadavg()[0] if hasattr(os, "getloadavg") else None,
    }
    if args.json:
        print(json.dumps(result, indent=2))
        return

    print(
        f"tripwire logger benchmark: {calls:,} log() calls, {args.features} features per event, "
        f"timed in blocks of {BLOCK:,}"
    )
    print()
    print("parts of log()        ns/call")
    for name, ns in result["parts_ns"].items():
        print(f"  {name:<24}{ns:>7,.0f}")
    print()
    print("log() on the caller      mean ns   p50 ns   p99 ns   max ns   (per call, by block)")
    for name in ("accepted", "dropped"):
        for kind, what in (("wall", "wall"), ("cpu", "thread CPU")):
            r = result[name][kind]
            print(
                f"  {name + ', ' + what:<22}{r['mean_ns']:>8,.0f} {r['p50_ns']:>8,.0f} "
                f"{r['p99_ns']:>8,.0f} {r['max_ns']:>8,.0f}"
            )
    print(f"  loop only             {result['loop_only_ns']:>8,.1f}   (included above)")
    for kind, what in (("cpu", "caller's CPU"), ("wall", "wall, worker included")):
        mean = result["accepted"][kind]["mean_ns"]
        verdict = "met" if mean <= TARGET_NS else "NOT met"
        print(f"  target <= {TARGET_NS:,} ns per accepted call, {what}: {verdict}")
    a, d = result["accepted"], result["dropped"]
    print(
        f"  accepted run: {a['sent']:,} sent, {a['dropped']:,} dropped; garbage collections "
        f"during it by generation: {', '.join(str(n) for n in a['gc'])}"
    )
    print(f"  dropped run:  {d['dropped']:,} dropped")
    if result["threaded"]:
        t = result["threaded"]
        print(
            f"  {t['threads']} threads: {t['ns_per_call']:,.0f} ns per call "
            f"({t['calls_per_s']:,.0f} calls/s in all), {t['sent']:,} sent, "
            f"{t['dropped']:,} dropped"
        )
    print()
    s = result["ship"]
    print(
        f"ship to files         {s['events']:,} events in {s['seconds']:.2f} s: "
        f"{s['events_per_s']:,.0f} events/s, {s['bytes_per_event']:.0f} bytes/event (NDJSON)"
    )
    print()
    m = result["machine"]
    print(
        f"machine               {m['cpu']}, {m['logical_cores']} logical cores "
        f"({m['usable_cores']} usable)"
    )
    print(f"                      {m['platform']}, {m['implementation']} {m['python']}")
    if load_before is not None:
        print(
            f"load average          {load_before:.2f} before, {result['load_after']:.2f} after "
            "(1 min; the worker shares the interpreter with the caller)"
        )
    sys.stdout.flush()


if __name__ == "__main__":
    main()
