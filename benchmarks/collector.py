"""Collector benchmark: how many events per second ``tripwire serve`` accepts and stores.

Usage::

    python benchmarks/collector.py      # 1,000,000 events, batches of 1,000, 8 clients, 3 trials
    python benchmarks/collector.py --events 50000 --clients 4 --format ndjson --repeat 1 --json

The events are the demo scenario's (``tripwire.demo.scenario``), one day of ``--events`` rows
turned into event payloads, and every batch body is encoded before timing starts: the client's
JSON encoding is not the collector's cost. Then, ``--repeat`` times:

* a real server is started as a subprocess (``python -m tripwire serve``) on 127.0.0.1 with a
  fresh store in a temporary directory, and waited for on ``/v1/health``;
* one more batch of other events is posted first, untimed: the server's first batch pays for
  imports done on first use (pyarrow loads pandas, for one), which is start-up, not throughput;
* ``--clients`` threads, each with its own ``httpx.Client`` (keep-alive), POST the batches over
  loopback until all are sent; wall time runs from the first request to the last answer;
* the server is stopped and the store opened to count what was really stored.

Reported: every trial's events/s stored and, from the median trial, events/s accepted (the sum
of the answers' ``accepted`` over the wall time) and stored (the count read back from the
store, less the untimed batch, over the same time), per-batch latency (median and p95), the
server's CPU time (Linux; its parse workers included), and where a batch's server-side CPU time
goes, measured in this process on the same bodies, one stage at a time: decoding a body of
valid events in one pass (what the server does with these bodies), the long way that a batch
with a bad event takes (parsing, then validating event by event), and writing to DuckDB, one
transaction per batch (a lone client's batches) and one per ``--clients`` batches (what the
server's group commit does when that many wait). The machine and the load average are printed
with the figures: on a shared machine, trials of the same command vary by 10-20 %.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from importlib.metadata import version
from pathlib import Path
from typing import Any

import httpx

from tripwire.config import parse_config
from tripwire.demo import scenario
from tripwire.events import table_to_events
from tripwire.server.body import JSON, NDJSON, parse_batch
from tripwire.server.decoding import decode_events
from tripwire.server.parsing import validate_batch
from tripwire.store import DuckDBStore
from tripwire.store.common import EventRows

TARGET_EVENTS_PER_S = 50_000
TOKEN = "collector-benchmark-token"
STAGE_BATCHES = 48  # batches timed stage by stage (enough for steady figures, quick to run)


# --------------------------------------------------------------------------- data


def make_bodies(n_events: int, batch: int, fmt: str) -> list[bytes]:
    """``n_events`` demo events (unique ids) as request bodies of ``batch`` events each."""
    config = parse_config(scenario.CONFIG_YAML)
    day = scenario.generate(days=1, rows_per_day=n_events, reference_rows=1).days[0][1]
    events = table_to_events(config, day)
    for event in events:
        event["timestamp"] = event["timestamp"].isoformat()
    bodies = []
    for start in range(0, len(events), batch):
        chunk = events[start : start + batch]
        if fmt == "ndjson":
            bodies.append("".join(json.dumps(e) + "\n" for e in chunk).encode())
        else:
            bodies.append(json.dumps({"events": chunk}).encode())
    return bodies


# --------------------------------------------------------------------------- the server


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def start_server(workdir: Path, port: int, parse_workers: int | None) -> subprocess.Popen[bytes]:
    config_path = workdir / "tripwire.yaml"
    config_path.write_text(scenario.CONFIG_YAML, encoding="utf-8")
    command = [sys.executable, "-m", "tripwire", "serve", "--config", str(config_path)]
    command += ["--store", str(workdir / "store.duckdb"), "--host", "127.0.0.1"]
    command += ["--port", str(port)]
    if parse_workers is not None:
        command += ["--parse-workers", str(parse_workers)]
    env = {**os.environ, "TRIPWIRE_INGEST_TOKEN": TOKEN, "TRIPWIRE_READ_TOKEN": TOKEN}
    log = (workdir / "server.log").open("wb")
    process = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 60
    while True:
        if process.poll() is not None:
            raise RuntimeError((workdir / "server.log").read_text())
        try:
            if httpx.get(f"http://127.0.0.1:{port}/v1/health", timeout=1).status_code == 200:
                return process
        except httpx.TransportError:
            pass
        if time.monotonic() > deadline:
            stop_server(process)
            raise RuntimeError("the server did not answer /v1/health in 60 s")
        time.sleep(0.2)


def stop_server(process: subprocess.Popen[bytes]) -> None:
    process.terminate()
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=30)


def _stat(pid: int) -> list[str] | None:
    """The fields of ``/proc/<pid>/stat`` after the command name (Linux)."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as stat:
            return stat.read().rsplit(")", 1)[1].split()
    except OSError:
        return None


def _cpu_seconds(pid: int) -> tuple[float, float] | None:
    """User + system CPU seconds of a process, and of its children (the parse workers), all
    threads (Linux ``/proc``)."""
    fields = _stat(pid)
    if fields is None:
        return None
    children = 0
    for entry in os.listdir("/proc"):
        child = _stat(int(entry)) if entry.isdigit() else None
        if child is not None and int(child[1]) == pid:  # field 4, the parent's pid
            children += int(child[11]) + int(child[12])
    tick = os.sysconf("SC_CLK_TCK")
    return (int(fields[11]) + int(fields[12])) / tick, children / tick


# --------------------------------------------------------------------------- sending


def send(port: int, bodies: Sequence[bytes], clients: int, fmt: str) -> dict[str, Any]:
    """POST every body from ``clients`` threads; the answers' totals, latencies and wall time."""
    headers = {
        "Authorization": f"Bearer {TOKEN}",
        "Content-Type": NDJSON if fmt == "ndjson" else JSON,
    }
    url = f"http://127.0.0.1:{port}/v1/events"
    lock = threading.Lock()
    queue = list(reversed(bodies))
    totals = {"accepted": 0, "duplicates": 0, "rejected": 0}
    latencies: list[float] = []
    failures: list[str] = []

    def worker() -> None:
        with httpx.Client(headers=headers, timeout=120) as client:
            while True:
                with lock:
                    if not queue:
                        return
                    body = queue.pop()
                start = time.perf_counter()
                response = client.post(url, content=body)
                took = time.perf_counter() - start
                with lock:
                    latencies.append(took)
                    if response.status_code != 200:
                        failures.append(f"{response.status_code} {response.text[:200]}")
                        continue
                    answer = response.json()
                    totals["accepted"] += answer["accepted"]
                    totals["duplicates"] += answer["duplicates"]
                    totals["rejected"] += len(answer["rejected"])

    threads = [threading.Thread(target=worker) for _ in range(clients)]
    start = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    wall = time.perf_counter() - start
    if failures:
        raise RuntimeError(f"{len(failures)} requests failed, first: {failures[0]}")
    latencies.sort()
    return {
        **totals,
        "seconds": wall,
        "latency_ms": {
            "median": statistics.median(latencies) * 1000,
            "p95": latencies[int(0.95 * (len(latencies) - 1))] * 1000,
        },
    }


# --------------------------------------------------------------------------- stages


def stages(bodies: Sequence[bytes], fmt: str, group: int) -> dict[str, float]:
    """CPU microseconds per event of each server-side stage, in this process (DuckDB's own
    threads included): CPU time, unlike wall time, holds still while other work loads the
    machine."""
    config = parse_config(scenario.CONFIG_YAML)
    configs = {config.name: config}
    content_type = NDJSON if fmt == "ndjson" else JSON
    spent = dict.fromkeys(("decode", "long_way", "write", "write_group"), 0.0)
    # Once untimed: the first call of each stage imports and builds what it uses.
    decode_events(configs, content_type, bodies[0])
    validate_batch(configs, parse_batch(content_type, bodies[0], "events"))
    accepted = []
    for body in bodies[:STAGE_BATCHES]:
        t0 = time.process_time()
        rows = decode_events(configs, content_type, body)
        t1 = time.process_time()
        validate_batch(configs, parse_batch(content_type, body, "events"))
        t2 = time.process_time()
        if rows is None:
            raise RuntimeError("a benchmark body was not decoded in one pass")
        accepted.append(rows)
        spent["decode"] += t1 - t0
        spent["long_way"] += t2 - t1
    # Each write into a fresh store, so both see the same table sizes.
    for stage, size in (("write", 1), ("write_group", group)):
        with tempfile.TemporaryDirectory() as tmp, DuckDBStore(Path(tmp) / "s.duckdb") as store:
            for start in range(0, len(accepted), size):
                events = EventRows.concat(accepted[start : start + size])
                t0 = time.process_time()
                with store.transaction():
                    store.insert_events(events)  # as the collector does when no id repeats
                spent[stage] += time.process_time() - t0
    n = sum(len(events) for events in accepted)
    return {stage: seconds / n * 1e6 for stage, seconds in spent.items()}


# --------------------------------------------------------------------------- report


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
        "cpu": _cpu_model(),
        "logical_cores": os.cpu_count(),
        "usable_cores": len(affinity(0)) if affinity else os.cpu_count(),
        "versions": {
            name: version(name) for name in ("fastapi", "uvicorn", "pydantic", "duckdb", "httpx")
        },
    }


def _load() -> float | None:
    """The 1-minute load average: on a busy machine wall times are not the software's."""
    return os.getloadavg()[0] if hasattr(os, "getloadavg") else None


def trial(
    warm_up: bytes, bodies: Sequence[bytes], clients: int, fmt: str, parse_workers: int | None
) -> dict[str, Any]:
    """One run against a fresh server and store: what was sent, stored, and the CPU it took."""
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        port = _free_port()
        process = start_server(workdir, port, parse_workers)
        try:
            warm = send(port, [warm_up], 1, fmt)
            cpu_before = _cpu_seconds(process.pid)
            client_before = time.process_time()
            sent = send(port, bodies, clients, fmt)
            client_cpu = time.process_time() - client_before
            cpu_after = _cpu_seconds(process.pid)
        finally:
            stop_server(process)
        with DuckDBStore(workdir / "store.duckdb") as store:
            ((count,),) = store.connection.execute("SELECT count(*) FROM events").fetchall()
    n_events = sent["accepted"] + sent["duplicates"] + sent["rejected"]
    stored = count - warm["accepted"]
    server_cpu = workers_cpu = None
    if cpu_before is not None and cpu_after is not None:
        server_cpu = cpu_after[0] - cpu_before[0] + cpu_after[1] - cpu_before[1]
        workers_cpu = cpu_after[1] - cpu_before[1]
    seconds = sent["seconds"]
    return {
        "seconds": seconds,
        "accepted": sent["accepted"],
        "duplicates": sent["duplicates"],
        "rejected": sent["rejected"],
        "stored": stored,
        "accepted_per_s": sent["accepted"] / seconds,
        "stored_per_s": stored / seconds,
        "latency_ms": sent["latency_ms"],
        "server_cpu_seconds": server_cpu,
        "server_cpu_us_per_event": None if server_cpu is None else server_cpu / n_events * 1e6,
        "workers_cpu_us_per_event": None if workers_cpu is None else workers_cpu / n_events * 1e6,
        # The clients share the machine: on a small one, their CPU is the server's ceiling too.
        "client_cpu_us_per_event": client_cpu / n_events * 1e6,
    }


def run(
    n_events: int,
    batch: int,
    clients: int,
    fmt: str,
    parse_workers: int | None,
    repeat: int = 1,
) -> dict[str, Any]:
    """``repeat`` trials of the same bodies, each against a fresh server and store; the figures
    of the median trial (by events/s stored), with every trial's throughput beside them."""
    warm_up, *bodies = make_bodies(n_events + batch, batch, fmt)
    load_before = _load()
    trials = [trial(warm_up, bodies, clients, fmt, parse_workers) for _ in range(repeat)]
    load_after = _load()
    median = sorted(trials, key=lambda t: t["stored_per_s"])[(len(trials) - 1) // 2]
    return {
        "events": n_events,
        "batch": batch,
        "clients": clients,
        "format": fmt,
        "parse_workers": "default" if parse_workers is None else parse_workers,
        **median,
        "trials_stored_per_s": [t["stored_per_s"] for t in trials],
        "trials_stored": [t["stored"] for t in trials],
        "stages_cpu_us_per_event": stages(bodies, fmt, clients),
        "target_events_per_s": TARGET_EVENTS_PER_S,
        "machine": machine(),
        "load_average": {"before": load_before, "after": load_after},
    }


def format_report(r: dict[str, Any]) -> str:
    m = r["machine"]
    met = "met" if r["stored_per_s"] >= r["target_events_per_s"] else "NOT met"
    stages = r["stages_cpu_us_per_event"]
    cpu = r["server_cpu_us_per_event"]
    load = r["load_average"]
    trials = r["trials_stored_per_s"]
    lines = [
        f"tripwire collector benchmark: {r['events']:,} events in batches of {r['batch']:,} "
        f"({r['format']}), {r['clients']} client threads, loopback, "
        f"parse workers: {r['parse_workers']}",
        "",
        f"trials              {len(trials)}, "
        + ", ".join(f"{x:,.0f}" for x in trials)
        + " events/s stored; the median trial's figures follow",
        f"wall time           {r['seconds']:.2f} s",
        f"accepted            {r['accepted']:,} ({r['duplicates']:,} duplicates, "
        f"{r['rejected']:,} rejected)",
        f"stored (read back)  {r['stored']:,} (and {r['batch']:,} of the untimed first batch)",
        f"throughput          {r['accepted_per_s']:,.0f} events/s accepted, "
        f"{r['stored_per_s']:,.0f} events/s stored   "
        f"target >= {r['target_events_per_s']:,} events/s: {met}",
        f"batch latency       {r['latency_ms']['median']:.1f} ms median, "
        f"{r['latency_ms']['p95']:.1f} ms p95",
        "server CPU          "
        + (
            "unknown (no /proc)"
            if cpu is None
            else f"{r['server_cpu_seconds']:.2f} s, {cpu:.1f} us/event (all threads; "
            f"{r['workers_cpu_us_per_event']:.1f} of it in the parse workers)"
        ),
        f"client CPU          {r['client_cpu_us_per_event']:.1f} us/event (the {r['clients']} "
        "client threads, this process)",
        f"server-side stages  (CPU us/event, this process, {STAGE_BATCHES} batches)",
        f"  decode in one pass        {stages['decode']:5.1f}  (a batch of valid events)",
        f"  the long way              {stages['long_way']:5.1f}  (parse, then validate: a "
        "batch with a bad event)",
        f"  write to DuckDB           {stages['write']:5.1f}  one batch per commit",
        f"                            {stages['write_group']:5.1f}  {r['clients']} batches per "
        "commit (group commit)",
        "",
        f"machine             {m['cpu'] or 'unknown CPU'}, {m['logical_cores']} logical cores "
        f"({m['usable_cores']} usable)",
        f"                    {m['platform']}, Python {m['python']}, "
        + ", ".join(f"{k} {v}" for k, v in m["versions"].items()),
        f"load average        {load['before']:.2f} before, {load['after']:.2f} after "
        "(1 min, this run included)"
        if load["before"] is not None and load["after"] is not None
        else "load average        unknown",
    ]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--events", type=int, default=1_000_000, help="events to send")
    parser.add_argument("--batch", type=int, default=1_000, help="events per request")
    parser.add_argument("--clients", type=int, default=8, help="client threads")
    parser.add_argument("--format", choices=("json", "ndjson"), default="json")
    parser.add_argument(
        "--parse-workers", type=int, default=None, help="tripwire serve --parse-workers"
    )
    parser.add_argument(
        "--repeat", type=int, default=3, help="trials, each with a fresh server and store"
    )
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    args = parser.parse_args(argv)
    result = run(
        args.events, args.batch, args.clients, args.format, args.parse_workers, args.repeat
    )
    print(json.dumps(result, indent=2) if args.json else format_report(result))
    return 0 if all(n == args.events for n in result["trials_stored"]) else 1


if __name__ == "__main__":
    sys.exit(main())
