"""Drift benchmark: how long ``Monitor.fit`` and ``Monitor.check`` take on wide, long tables.

Usage::

    python benchmarks/drift.py --rows 1000000 --cols 20
    python benchmarks/drift.py --rows 1000000 --cols 100 --json

Reference and current tables are generated with a fixed seed (generation is not timed): ``--cols``
numeric features (normal, lognormal, integer with ties, and some with 1% nulls), ``--categorical``
string features (~20 levels with Zipf-like frequencies, one with an unseen category in current),
and a ``score`` prediction column (a sigmoid of a few features). About half of the features are
drifted in current (mean shift, scale change, category mix change). There is no label column, so
the performance layer is skipped.

Timed, each ``--repeat`` times (best and median reported):

* ``fit``: ``Monitor(config).fit(reference)`` (learn bins, profile the reference);
* ``check``: ``monitor.check(current)`` (every input metric of every feature, plus predictions);
* ``fit+check``: the two together.

Memory: the process's peak RSS (``ru_maxrss``), the peak RSS while the timed steps ran (Linux:
``VmHWM`` after resetting it through ``/proc/self/clear_refs``) and the size of the input tables
(sum of ``Table.nbytes``), so the reader sees how far the peak rises above the input data.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import resource
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pyarrow as pa

from tripwire.config import ModelConfig, parse_config
from tripwire.monitor import Monitor

MB = 1024 * 1024
N_LEVELS = 20
NULL_SHARE = 0.01
UNSEEN_SHARE = 0.02

# (numeric, categorical) -> (check target in seconds, peak RSS above the input data in MB).
# The targets are for a 2-core machine at 1M reference rows x 1M current rows.
TARGETS: dict[tuple[int, int], tuple[float, float | None]] = {
    (20, 4): (0.5, None),
    (100, 20): (2.5, 1024.0),
}
# Quoted, not measured here: figures reported for other tools on the same kind of machine and
# identical data, for scale only.
QUOTED: dict[tuple[int, int], str] = {
    (20, 4): "Evidently 0.7 DataDriftPreset 67 s / 1.9 GB; NannyML univariate drift 7.6 s; "
    "whylogs 34 s",
    (100, 20): "Evidently 0.7 DataDriftPreset 499 s / 7.7 GB; NannyML univariate drift 41 s; "
    "whylogs 170 s",
}
TARGET_ROWS = 1_000_000


# --------------------------------------------------------------------------- data


@dataclass
class Dataset:
    reference: pa.Table
    current: pa.Table
    numeric: list[str]
    categorical: list[str]
    drifted: dict[str, str] = field(default_factory=dict)  # feature -> how it drifted

    @property
    def input_bytes(self) -> int:
        return int(self.reference.nbytes + self.current.nbytes)


def _numeric_column(
    rng: np.random.Generator, kind: int, n: int, shift: float, scale: float
) -> np.ndarray:
    """One numeric column; ``shift`` and ``scale`` apply drift (0 and 1: none)."""
    if kind == 0:  # normal
        return rng.normal(10.0 + 2.0 * shift, 2.0 * scale, n)
    if kind == 1:  # lognormal (skewed, positive)
        return rng.lognormal(1.0 + shift * 0.5, 0.75 * scale, n)
    if kind == 2:  # integer counts: discrete, many ties
        return rng.poisson(4.0 * scale + shift * 2.0, n).astype(np.int64)
    # kind 3: a rounded amount (ties at two decimals) on a uniform-ish range
    return np.round(rng.gamma(2.0 * scale, 50.0, n) + shift * 30.0, 2)


def _with_nulls(rng: np.random.Generator, values: np.ndarray) -> pa.Array:
    mask = rng.random(values.size) < NULL_SHARE
    return pa.array(values, mask=mask)


def _zipf_probabilities(levels: int, exponent: float = 1.1) -> np.ndarray:
    p = 1.0 / np.arange(1, levels + 1) ** exponent
    return p / p.sum()


def _categorical_column(
    rng: np.random.Generator, j: int, n: int, probabilities: np.ndarray, unseen: bool
) -> pa.Array:
    """String categories drawn with ``probabilities``; built as a dictionary array, then decoded
    to plain strings (how most logged data arrives)."""
    levels = [f"c{j}_level_{k:02d}" for k in range(N_LEVELS)]
    cumulative = np.cumsum(probabilities)
    codes = np.searchsorted(cumulative, rng.random(n) * cumulative[-1], side="right")
    codes = np.minimum(codes, N_LEVELS - 1).astype(np.int32)
    if unseen:
        codes[rng.random(n) < UNSEEN_SHARE] = N_LEVELS
        levels.append(f"c{j}_never_seen")
    dictionary = pa.DictionaryArray.from_arrays(pa.array(codes), pa.array(levels, pa.string()))
    return dictionary.cast(pa.string())


def make_dataset(rows: int, cols: int, categorical: int, seed: int = 0) -> Dataset:
    """Reference and current tables of ``rows`` rows each, with a known set of drifted features."""
    rng = np.random.default_rng(seed)
    numeric = [f"num_{i:03d}" for i in range(cols)]
    categories = [f"cat_{j:03d}" for j in range(categorical)]
    drifted: dict[str, str] = {}
    ref_cols: dict[str, pa.Array] = {}
    cur_cols: dict[str, pa.Array] = {}
    for i, name in enumerate(numeric):
        kind = i % 4
        shift, scale = 0.0, 1.0
        if i % 3 == 1:
            shift = 0.5 if kind != 3 else 1.0
            drifted[name] = "mean shift"
        elif i % 6 == 2:
            scale = 1.5
            drifted[name] = "scale change"
        ref = _numeric_column(rng, kind, rows, 0.0, 1.0)
        cur = _numeric_column(rng, kind, rows, shift, scale)
        if i % 5 == 4:  # every fifth column has 1% nulls
            ref_cols[name], cur_cols[name] = _with_nulls(rng, ref), _with_nulls(rng, cur)
        else:
            ref_cols[name], cur_cols[name] = pa.array(ref), pa.array(cur)
    base = _zipf_probabilities(N_LEVELS)
    for j, name in enumerate(categories):
        mixed = base
        if j % 2 == 1:
            # Category mix change: the top three levels swap places with three rare ones.
            order = np.arange(N_LEVELS)
            order[[0, 1, 2, 15, 16, 17]] = order[[15, 16, 17, 0, 1, 2]]
            mixed = base[order]
            drifted[name] = "category mix change"
        unseen = j == 0
        if unseen:
            drifted[name] = "unseen category"
        ref_cols[name] = _categorical_column(rng, j, rows, base, unseen=False)
        cur_cols[name] = _categorical_column(rng, j, rows, mixed, unseen=unseen)

    def score(columns: dict[str, pa.Array]) -> pa.Array:
        logit = np.zeros(rows)
        for weight, name in zip((0.8, -0.5, 0.3, 0.2), numeric[:4], strict=False):
            x = columns[name].to_numpy(zero_copy_only=False).astype(np.float64)
            x = np.nan_to_num((x - np.nanmean(x)) / (np.nanstd(x) or 1.0))
            logit += weight * x
        return pa.array(1.0 / (1.0 + np.exp(-logit)))

    ref_cols["score"], cur_cols["score"] = score(ref_cols), score(cur_cols)
    return Dataset(
        reference=pa.table(ref_cols),
        current=pa.table(cur_cols),
        numeric=numeric,
        categorical=categories,
        drifted=drifted,
    )


def make_config(dataset: Dataset) -> ModelConfig:
    features = [f"    {name}: numeric" for name in dataset.numeric]
    features += [f"    {name}: categorical" for name in dataset.categorical]
    text = "\n".join(
        [
            "name: drift-benchmark",
            "task: binary",
            "columns:",
            "  features:",
            *features,
            "  prediction: score",
            "",
        ]
    )
    return parse_config(text, source="<benchmark>")


# --------------------------------------------------------------------------- measuring


def _rusage_peak_mb() -> float:
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    # Linux reports kilobytes, macOS bytes.
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
    """Reset the kernel's RSS high-water mark (Linux >= 4.0); False where it cannot."""
    try:
        with open("/proc/self/clear_refs", "w", encoding="ascii") as refs:
            refs.write("5")
    except OSError:
        return False
    return True


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
        "numpy": np.__version__,
        "pyarrow": pa.__version__,
        "cpu": _cpu_model(),
        "logical_cores": os.cpu_count(),
        "usable_cores": len(affinity(0)) if affinity else os.cpu_count(),
    }


def _summary(seconds: list[float]) -> dict[str, float]:
    return {"best": min(seconds), "median": statistics.median(seconds)}


def _timed(step: Callable[[], Any]) -> tuple[float, float, Any]:
    """Wall seconds, CPU seconds of the process (all threads) and the step's result."""
    start, cpu = time.perf_counter(), time.process_time()
    result = step()
    return time.perf_counter() - start, time.process_time() - cpu, result


def _load() -> float | None:
    """The 1-minute load average: on a busy machine wall times are not the software's."""
    return os.getloadavg()[0] if hasattr(os, "getloadavg") else None


def run(rows: int, cols: int, categorical: int, seed: int, repeat: int) -> dict[str, Any]:
    """Generate the data, time fit and check ``repeat`` times, and return every figure."""
    dataset = make_dataset(rows, cols, categorical, seed)
    config = make_config(dataset)
    gc.collect()
    rss_before = _proc_status_mb("VmRSS")
    hwm_reset = _reset_peak_rss()

    load_before = _load()
    fit_s: list[float] = []
    check_s: list[float] = []
    check_cpu: list[float] = []
    report = None
    for _ in range(repeat):
        report = None  # let the previous round's objects go before timing the next
        gc.collect()
        seconds, _, monitor = _timed(lambda: Monitor(config).fit(dataset.reference))
        fit_s.append(seconds)
        seconds, cpu, report = _timed(lambda m=monitor: m.check(dataset.current))
        check_s.append(seconds)
        check_cpu.append(cpu)
    assert report is not None

    timed_peak = _proc_status_mb("VmHWM") if hwm_reset else None
    load_after = _load()
    process_peak = _rusage_peak_mb()
    input_mb = dataset.input_bytes / MB
    n_features = cols + categorical
    check_best = min(check_s)

    flagged = {
        row.feature for row in report.select(layer="inputs") if row.status in ("watch", "alert")
    }
    caught = sorted(name for name in dataset.drifted if name in flagged)
    false_alarms = sorted(name for name in flagged if name and name not in dataset.drifted)

    target = TARGETS.get((cols, categorical)) if rows == TARGET_ROWS else None
    peak_for_target = timed_peak if timed_peak is not None else process_peak
    return {
        "rows": rows,
        "reference_rows": dataset.reference.num_rows,
        "current_rows": dataset.current.num_rows,
        "numeric": cols,
        "categorical": categorical,
        "features": n_features,
        "seed": seed,
        "repeat": repeat,
        "seconds": {
            "fit": _summary(fit_s),
            "check": _summary(check_s),
            "fit_check": _summary([f + c for f, c in zip(fit_s, check_s, strict=True)]),
        },
        "check_cpu_seconds": _summary(check_cpu),
        "throughput": {
            "check_rows_per_s": dataset.current.num_rows / check_best,
            "check_cells_per_s": dataset.current.num_rows * n_features / check_best,
        },
        "memory_mb": {
            "input_data": input_mb,
            "rss_before_timing": rss_before,
            "peak_during_timing": timed_peak,
            "peak_process": process_peak,
            "peak_above_input": peak_for_target - input_mb,
        },
        "report": {
            "metric_rows": len(report.rows),
            "inputs_status": report.status("inputs"),
            "drifted_features": len(dataset.drifted),
            "drifted_flagged": len(caught),
            "undrifted_flagged": false_alarms,
        },
        "target": None
        if target is None
        else {
            "check_s": target[0],
            "check_met": check_best <= target[0],
            "peak_above_input_mb": target[1],
            "peak_met": None if target[1] is None else peak_for_target - input_mb <= target[1],
            "machine": "2 cores",
        },
        "quoted_for_scale": QUOTED.get((cols, categorical)) if rows == TARGET_ROWS else None,
        "machine": machine(),
        "load_average": {"before": load_before, "after": load_after},
    }


# --------------------------------------------------------------------------- output


def _fmt_mb(value: float | None) -> str:
    return "n/a" if value is None else f"{value:,.0f} MB"


def format_table(result: dict[str, Any]) -> str:
    s, mem, tp, tgt = result["seconds"], result["memory_mb"], result["throughput"], result["target"]
    lines = [
        f"tripwire drift benchmark: {result['reference_rows']:,} reference x "
        f"{result['current_rows']:,} current rows x ({result['numeric']} numeric + "
        f"{result['categorical']} categorical) features, seed {result['seed']}, "
        f"best/median of {result['repeat']}",
        "",
        f"{'step':<12}{'best s':>10}{'median s':>10}",
    ]
    for key, label in (("fit", "fit"), ("check", "check"), ("fit_check", "fit+check")):
        lines.append(f"{label:<12}{s[key]['best']:>10.3f}{s[key]['median']:>10.3f}")
    check_target = ""
    if tgt is not None:
        verdict = "met" if tgt["check_met"] else "MISSED"
        check_target = f"   target <= {tgt['check_s']} s on {tgt['machine']}: {verdict}"
    lines += [
        "",
        f"check throughput    {tp['check_rows_per_s']:,.0f} rows/s, "
        f"{tp['check_cells_per_s']:,.0f} cells/s (rows x features){check_target}",
        f"check CPU time      {result['check_cpu_seconds']['best']:.3f} s best, "
        f"{result['check_cpu_seconds']['median']:.3f} s median (all threads)",
        f"input data          {_fmt_mb(mem['input_data'])} (reference + current, Table.nbytes)",
        f"RSS before timing   {_fmt_mb(mem['rss_before_timing'])}",
        f"peak RSS, timed     {_fmt_mb(mem['peak_during_timing'])} (VmHWM reset before fit)",
        f"peak RSS, process   {_fmt_mb(mem['peak_process'])} (ru_maxrss, includes data generation)",
    ]
    peak_line = f"peak above input    {_fmt_mb(mem['peak_above_input'])}"
    if tgt is not None and tgt["peak_above_input_mb"] is not None:
        verdict = "met" if tgt["peak_met"] else "MISSED"
        peak_line += f"   target < {tgt['peak_above_input_mb'] / 1024:g} GB: {verdict}"
    lines.append(peak_line)
    rep = result["report"]
    lines += [
        f"report              {rep['metric_rows']:,} metric rows, inputs {rep['inputs_status']}, "
        f"{rep['drifted_flagged']}/{rep['drifted_features']} drifted features flagged, "
        f"{len(rep['undrifted_flagged'])} undrifted flagged",
    ]
    if tgt is None:
        lines.append(
            "targets             none for this size (they are for 1M rows x (20 + 4) "
            "and 1M rows x (100 + 20))"
        )
    if result["quoted_for_scale"]:
        lines.append(f"for scale (QUOTED, not measured here): {result['quoted_for_scale']}")
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
            "(1 min, this run included; above ~2 other work shared the cores)"
        )
    return "\n".join(lines)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000, help="rows in each table")
    parser.add_argument("--cols", type=int, default=20, help="numeric feature columns")
    parser.add_argument(
        "--categorical",
        type=int,
        default=None,
        help="categorical feature columns (default: cols // 5)",
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--repeat", type=int, default=3, help="runs of each timed step")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    args = parser.parse_args(argv)
    if args.categorical is None:
        args.categorical = args.cols // 5
    if args.rows < 1 or args.cols < 1 or args.categorical < 0 or args.repeat < 1:
        parser.error("--rows, --cols and --repeat must be >= 1, --categorical >= 0")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    result = run(args.rows, args.cols, args.categorical, args.seed, args.repeat)
    print(json.dumps(result, indent=2) if args.json else format_table(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
