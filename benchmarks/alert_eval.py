"""Alert evaluation benchmark: how long ``tripwire.alerts.engine.evaluate`` takes over a year of
stored metric history, and how long reading that history back from a DuckDB file takes.

Usage::

    python benchmarks/alert_eval.py                     # 365 days x 200 features x (10 + all)
    python benchmarks/alert_eval.py --days 90 --features 50 --segments 3 --json
    python benchmarks/alert_eval.py --profile           # cProfile of one evaluate call

The history is built directly with numpy and pyarrow (not timed), with the columns and types
``DuckDBStore.history`` returns (window_start timestamp[us], segment, feature ('' for output
metrics), layer, metric, value, status, threshold, reference, n, importance) and only the
metrics the starter rules read: psi, null_share, out_of_range_share (numeric features) or
unseen_share (categorical ones, a fifth of them) per feature and segment; mean_pred, p95_ms and
auc per segment. Segments are ``region=r0`` .. ``region=rN`` plus ``all``. About 1 % of the
series drift for a stretch of the year, so the rules have incidents to find.

Timed, ``--repeat`` times (best and median):

* ``evaluate``: ``evaluate(config, history, windows, 1d, importance)`` for the starter rules
  (``starter_rules("binary")``), the production function ``derive_incidents`` calls;
* ``history``: ``DuckDBStore(file).history(model, 1d, metrics)`` on a store file holding the
  same rows (written once, not timed), what ``derive_incidents`` reads before evaluating.

Memory: the process's peak RSS and the peak while ``evaluate`` ran (Linux ``VmHWM``, reset
through ``/proc/self/clear_refs``).
"""

from __future__ import annotations

import argparse
import cProfile
import datetime as dt
import gc
import io
import json
import os
import platform
import pstats
import resource
import statistics
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from tripwire.alerts.engine import evaluate
from tripwire.alerts.starter import starter_rules
from tripwire.config import ModelConfig, parse_config
from tripwire.store.common import HISTORY
from tripwire.store.duckdb_store import PRODUCTION, DuckDBStore

MB = 1024 * 1024
DAY = dt.timedelta(days=1)
START = dt.datetime(2026, 1, 1)
MODEL = "alert-eval-benchmark"
TARGET_S = 1.0  # evaluate, a year x 200 features x (10 + all) segments
TARGET_SIZE = (365, 200, 10)
FEATURE_METRICS = ("psi", "null_share", "out_of_range_share", "unseen_share")
OUTPUT_METRICS = {"mean_pred": "predictions", "p95_ms": "cost", "auc": "performance"}


# --------------------------------------------------------------------------- data


def feature_names(n: int) -> list[str]:
    return [f"f{i:03d}" for i in range(n)]


def is_categorical(i: int) -> bool:
    return i % 5 == 4


def make_config(features: int, seed: int = 0) -> tuple[ModelConfig, dict[str, float]]:
    rng = np.random.default_rng([seed, 7])
    names = feature_names(features)
    draws = rng.lognormal(0, 1, features)
    importance = {n: round(float(v), 6) for n, v in zip(names, draws, strict=True)}
    kinds = ["categorical" if is_categorical(i) else "numeric" for i in range(features)]
    text = "\n".join(
        [
            f"name: {MODEL}",
            "task: binary",
            "columns:",
            "  timestamp: ts",
            "  features:",
            *(f"    {n}: {k}" for n, k in zip(names, kinds, strict=True)),
            "  prediction: score",
            "  label: y",
            "  segments: [region]",
            "  latency_ms: latency_ms",
            "window: 1d",
            "importance:",
            *(f"  {n}: {v}" for n, v in importance.items()),
            "",
        ]
    )
    config = parse_config(text + starter_rules("binary"), source="<benchmark>")
    return config, importance


def make_history(
    days: int, features: int, segments: int, importance: dict[str, float], seed: int = 0
) -> pa.Table:
    """The metric rows of ``days`` daily windows, ordered as ``DuckDBStore.history`` orders
    them (window_start, segment, feature, metric)."""
    rng = np.random.default_rng(seed)
    segs = sorted(["all", *(f"region=r{j}" for j in range(segments))])
    names = feature_names(features)
    windows = np.array([np.datetime64(START + d * DAY, "us") for d in range(days)])
    n_seg = len(segs)
    # Per-feature rows: three metrics per feature (out_of_range_share or unseen_share).
    third = ["unseen_share" if is_categorical(i) else "out_of_range_share" for i in range(features)]
    f_metric = np.array([["null_share", "psi", third[i]] for i in range(features)])  # sorted
    per_window_f = n_seg * features * 3
    w_idx = np.repeat(np.arange(days), per_window_f)
    s_idx = np.tile(np.repeat(np.arange(n_seg), features * 3), days)
    f_idx = np.tile(np.repeat(np.arange(features), 3), days * n_seg)
    metric = np.tile(f_metric.reshape(-1), days * n_seg)
    n_rows = metric.size
    value = np.empty(n_rows)
    is_psi = metric == "psi"
    is_null = metric == "null_share"
    is_share = ~is_psi & ~is_null
    value[is_psi] = rng.gamma(2.0, 0.015, int(is_psi.sum()))
    value[is_null] = 0.01 + rng.normal(0, 0.004, int(is_null.sum())).clip(-0.01)
    value[is_share] = rng.exponential(0.004, int(is_share.sum()))
    # About 1 % of the (feature, segment) series drift for 5 to 30 days somewhere in the year.
    series = f_idx * n_seg + s_idx
    n_series = features * n_seg
    drifting = rng.random(n_series) < 0.01
    start = rng.integers(0, max(1, days - 30), n_series)
    length = rng.integers(5, 31, n_series)
    hit = drifting[series] & (w_idx >= start[series]) & (w_idx < start[series] + length[series])
    value[hit & is_psi] += 0.4
    value[hit & is_null] += 0.2
    reference = np.where(is_null, 0.01, np.nan)
    threshold = np.where(is_psi, 0.25, np.where(is_null, 0.06, 0.05))
    weights = np.array([importance[n] for n in names])
    feature_rows = {
        "window_start": windows[w_idx],
        "segment": np.array(segs)[s_idx],
        "feature": np.array(names)[f_idx],
        "layer": np.full(n_rows, "inputs"),
        "metric": metric,
        "value": value,
        "status": np.where(value > threshold, "alert", "ok"),
        "threshold": threshold,
        "reference": reference,
        "n": rng.integers(800, 1200, n_rows),
        "importance": weights[f_idx],
    }
    # Output rows: auc, mean_pred, p95_ms per segment (feature '').
    out_names = sorted(OUTPUT_METRICS)
    k = len(out_names)
    m = days * n_seg * k
    ow = np.repeat(np.arange(days), n_seg * k)
    os_ = np.tile(np.repeat(np.arange(n_seg), k), days)
    om = np.tile(np.array(out_names), days * n_seg)
    base = {"auc": 0.8, "mean_pred": 0.2, "p95_ms": 240.0}
    noise = {"auc": 0.01, "mean_pred": 0.005, "p95_ms": 10.0}
    scale = np.array([noise[x] for x in om])
    ovalue = np.array([base[x] for x in om]) + rng.normal(0, 1, m) * scale
    late = ow >= days - 10  # a latency regression in the year's last ten days
    ovalue[late & (om == "p95_ms")] += 200.0
    output_rows = {
        "window_start": windows[ow],
        "segment": np.array(segs)[os_],
        "feature": np.full(m, ""),
        "layer": np.array([OUTPUT_METRICS[x] for x in om]),
        "metric": om,
        "value": ovalue,
        "status": np.full(m, "ok"),
        "threshold": np.full(m, np.nan),
        "reference": np.array([base[x] for x in om]),
        "n": rng.integers(800, 1200, m),
        "importance": np.full(m, np.nan),
    }
    schema = pa.schema(
        [
            ("window_start", pa.timestamp("us")),
            ("segment", pa.string()),
            ("feature", pa.string()),
            ("layer", pa.string()),
            ("metric", pa.string()),
            ("value", pa.float64()),
            ("status", pa.string()),
            ("threshold", pa.float64()),
            ("reference", pa.float64()),
            ("n", pa.int64()),
            ("importance", pa.float64()),
        ]
    )
    tables = [
        pa.table({name: pa.array(cols[name], schema.field(name).type) for name in schema.names})
        for cols in (feature_rows, output_rows)
    ]
    # NaN marks "none" while building; the store holds NULL there.
    built = to_store_nulls(pa.concat_tables(tables).combine_chunks())
    # The store's layout, with null where the benchmark has no values (intervals, coverage).
    history = pa.table(
        {
            f.name: built[f.name] if f.name in built.column_names else pa.nulls(len(built), f.type)
            for f in HISTORY
        },
        schema=HISTORY,
    )
    return history.sort_by(
        [("window_start", "ascending"), ("segment", "ascending"), ("feature", "ascending"),
         ("metric", "ascending")]
    )  # fmt: skip


def to_store_nulls(table: pa.Table) -> pa.Table:
    """NaN as NULL in the optional columns, as the store holds them."""
    for name in ("threshold", "reference", "importance"):
        column = table[name].combine_chunks()
        values = column.to_numpy(zero_copy_only=False)
        index = table.column_names.index(name)
        table = table.set_column(index, name, pa.array(values, mask=np.isnan(values)))
    return table


def write_store(path: Path, history: pa.Table) -> None:
    """The rows into a store file's ``metrics`` table, as ``write_window`` would leave them."""
    with DuckDBStore(path) as store:
        db = store.connection
        db.register("bench_rows", history)
        # BY NAME: the columns the benchmark has no values for (bounds, intervals) stay null.
        db.execute(
            "INSERT INTO metrics BY NAME SELECT ? AS model, ? AS namespace, window_start, "
            "? AS window_seconds, segment, feature, layer, metric, value, status, threshold, "
            "reference, n, importance FROM bench_rows",
            [MODEL, PRODUCTION, int(DAY.total_seconds())],
        )
        db.unregister("bench_rows")


# --------------------------------------------------------------------------- measuring


def _rusage_peak_mb() -> float:
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / MB if sys.platform == "darwin" else peak / 1024


def _proc_status_mb(key: str) -> float | None:
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith(key + ":"):
                    return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


def _reset_peak_rss() -> bool:
    try:
        with open("/proc/self/clear_refs", "w", encoding="ascii") as refs:
            refs.write("5")
    except OSError:
        return False
    return True


def machine() -> dict[str, Any]:
    affinity = getattr(os, "sched_getaffinity", None)
    cpu = platform.processor() or None
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as info:
            cpu = next(
                (ln.split(":", 1)[1].strip() for ln in info if ln.lower().startswith("model name")),
                cpu,
            )
    except OSError:
        pass
    return {
        "platform": platform.platform(),
        "python": platform.python_version(),
        "numpy": np.__version__,
        "pyarrow": pa.__version__,
        "cpu": cpu,
        "logical_cores": os.cpu_count(),
        "usable_cores": len(affinity(0)) if affinity else os.cpu_count(),
    }


def _load() -> float | None:
    """The 1-minute load average: on a busy machine wall times are not the software's."""
    return os.getloadavg()[0] if hasattr(os, "getloadavg") else None


def _summary(seconds: list[float]) -> dict[str, float]:
    return {"best": min(seconds), "median": statistics.median(seconds)}


def run(
    days: int, features: int, segments: int, repeat: int, seed: int = 0, profile: bool = False
) -> dict[str, Any]:
    config, importance = make_config(features, seed)
    load_before = _load()
    history = make_history(days, features, segments, importance, seed)
    windows = [START + d * DAY for d in range(days)]
    metrics = sorted({rule.metric for rule in config.alerts})
    gc.collect()
    rss_before = _proc_status_mb("VmRSS")
    hwm_reset = _reset_peak_rss()
    evaluate_s, evaluate_cpu = [], []
    incidents: list[Any] = []
    for _ in range(repeat):
        gc.collect()
        started, cpu = time.perf_counter(), time.process_time()
        incidents = evaluate(config, history, windows, DAY, importance)
        evaluate_s.append(time.perf_counter() - started)
        evaluate_cpu.append(time.process_time() - cpu)
    evaluate_peak = _proc_status_mb("VmHWM") if hwm_reset else None
    profile_text = None
    if profile:
        profiler = cProfile.Profile()
        profiler.enable()
        evaluate(config, history, windows, DAY, importance)
        profiler.disable()
        out = io.StringIO()
        pstats.Stats(profiler, stream=out).sort_stats("cumulative").print_stats(20)
        profile_text = out.getvalue()

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "history.duckdb"
        write_store(path, history)
        file_mb = path.stat().st_size / MB
        history_s = []
        read = None
        for _ in range(repeat):
            with DuckDBStore(path) as store:
                read = None
                gc.collect()
                started = time.perf_counter()
                read = store.history(MODEL, DAY, metrics)
                history_s.append(time.perf_counter() - started)
        assert read is not None
        read_matches = read.num_rows == history.num_rows and read.schema.equals(history.schema)

    load_after = _load()
    by_severity = {s: sum(i.severity == s for i in incidents) for s in ("page", "ticket", "digest")}
    target = (days, features, segments) == TARGET_SIZE
    best = min(evaluate_s)
    return {
        "days": days,
        "features": features,
        "segments": segments + 1,
        "rows": history.num_rows,
        "history_mb": history.nbytes / MB,
        "rules": len(config.alerts),
        "repeat": repeat,
        "seconds": {"evaluate": _summary(evaluate_s), "history": _summary(history_s)},
        "evaluate_cpu_seconds": _summary(evaluate_cpu),
        "incidents": len(incidents),
        "incidents_by_severity": by_severity,
        "store": {"file_mb": file_mb, "read_matches_schema": read_matches},
        "memory_mb": {
            "rss_before_evaluate": rss_before,
            "peak_during_evaluate": evaluate_peak,
            "peak_process": _rusage_peak_mb(),
        },
        "target": {"evaluate_s": TARGET_S, "met": best < TARGET_S} if target else None,
        "profile": profile_text,
        "machine": machine(),
        "load_average": {"before": load_before, "after": load_after},
    }


# --------------------------------------------------------------------------- output


def _mb(value: float | None) -> str:
    return "n/a" if value is None else f"{value:,.0f} MB"


def format_table(result: dict[str, Any]) -> str:
    s, mem = result["seconds"], result["memory_mb"]
    sev = result["incidents_by_severity"]
    evaluate_line = (
        f"{'evaluate':<10}{s['evaluate']['best']:>10.3f}{s['evaluate']['median']:>10.3f}"
    )
    if result["target"] is not None:
        verdict = "met" if result["target"]["met"] else "MISSED"
        evaluate_line += f"   target < {result['target']['evaluate_s']:g} s: {verdict}"
    same = result["store"]["read_matches_schema"]
    lines = [
        f"tripwire alert evaluation benchmark: {result['days']} daily windows x "
        f"{result['features']} features x {result['segments']} segments (incl. all), "
        f"{result['rules']} starter rules, best/median of {result['repeat']}",
        "",
        f"history rows        {result['rows']:,} ({result['history_mb']:,.0f} MB in Arrow)",
        f"incidents           {result['incidents']} ({sev['page']} page, {sev['ticket']} ticket, "
        f"{sev['digest']} digest)",
        "",
        f"{'step':<10}{'best s':>10}{'median s':>10}",
        evaluate_line,
        f"{'history':<10}{s['history']['best']:>10.3f}{s['history']['median']:>10.3f}"
        f"   DuckDBStore.history from a {result['store']['file_mb']:,.0f} MB file"
        + ("" if same else " (its schema differs from the built table's)"),
        "",
        f"evaluate CPU time   {result['evaluate_cpu_seconds']['best']:.3f} s best, "
        f"{result['evaluate_cpu_seconds']['median']:.3f} s median (all threads)",
        f"RSS before evaluate {_mb(mem['rss_before_evaluate'])}",
        f"peak RSS, evaluate  {_mb(mem['peak_during_evaluate'])} (VmHWM reset before the first)",
        f"peak RSS, process   {_mb(mem['peak_process'])} (ru_maxrss, includes building the data "
        "and the store)",
    ]
    m = result["machine"]
    lines += [
        "",
        f"machine             {m['cpu'] or 'unknown CPU'}, {m['logical_cores']} logical cores "
        f"({m['usable_cores']} usable)",
        f"                    {m['platform']}, Python {m['python']}, numpy {m['numpy']}, "
        f"pyarrow {m['pyarrow']}",
    ]
    load = result["load_average"]
    if load["before"] is not None:
        lines.append(
            f"load average        {load['before']:.2f} before, {load['after']:.2f} after "
            "(1 min, this run included; above ~1 other work shared the cores)"
        )
    if result["profile"]:
        lines += ["", "cProfile of one evaluate call (cumulative):", result["profile"]]
    return "\n".join(lines)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--days", type=int, default=365, help="daily windows")
    parser.add_argument("--features", type=int, default=200)
    parser.add_argument("--segments", type=int, default=10, help="segments besides 'all'")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--profile", action="store_true", help="cProfile one evaluate call")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    args = parser.parse_args(argv)
    if min(args.days, args.features, args.repeat) < 1 or args.segments < 0:
        parser.error("--days, --features and --repeat must be >= 1, --segments >= 0")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    result = run(args.days, args.features, args.segments, args.repeat, args.seed, args.profile)
    print(json.dumps(result, indent=2) if args.json else format_table(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
