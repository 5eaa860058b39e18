"""Performance-estimation benchmark: CBPE fit on a labelled reference, estimate without labels.

Usage::

    python benchmarks/estimation.py --rows 1000000
    python benchmarks/estimation.py --rows 1000000 --classes 3 --json

Reference and current data are generated with a fixed seed (generation is not timed). The true
class probabilities are a logistic (two classes) or softmax (``--classes`` > 2) function of
normal features, and labels are drawn from them. The model's scores are over-confident (the
true logits divided by ``--temperature``, default 0.5), so the reference check chooses an
isotonic calibrator, the slower path; ``--temperature 1`` gives a calibrated model, which keeps
its scores. The current rows have a covariate shift (their features' mean moves by 0.3 and
their spread shrinks), so estimated performance differs from the reference's.

Timed, each ``--repeat`` times (best and median reported):

* ``fit``: ``CBPE(threshold=0.5).fit(scores, labels)`` on the reference (or
  ``MulticlassCBPE().fit(probas, labels)``): the 5-fold cross-validated calibration check and
  the final calibrator;
* ``estimate``: ``model.estimate(scores)`` with all current rows as one window;
* ``windows``: the same current rows estimated as ``--windows`` windows, one estimate each;
* ``fit+estimate``: the two together.

Also reported: rows/s of ``estimate``, its CPU time over all threads, the input size, the peak
RSS while the timed steps ran (Linux ``VmHWM``, reset just before the first fit), the machine,
the load average, and, as a check of the answer, each metric estimated on the current rows next
to its realized value from the labels the estimator never saw.

With ``--monitor`` the same data goes through the product's path instead: tables with the
``FEATURES`` inputs, the scores (or class probabilities and predicted class) and a ``segment``
column of ``--segments`` values (Zipf-like shares, all of them tracked), and a
:class:`~tripwire.monitor.Monitor` fitted on the labelled reference. Timed:

* ``fit``: ``Monitor(config).fit(reference)``: bins, segments, calibration check and
  calibrator, the reference's profile;
* ``profile``: ``monitor.profile(current)`` of the unlabelled current rows: every layer, overall
  and per segment, estimated performance included;
* ``profile, no estimation`` and ``profile, no segments``: the same with the estimation or the
  segments left out of the fitted bins, so the cost of each shows as a difference;
* ``evaluate``: ``monitor.evaluate(profiles)``: every metric row from the profiles, the
  ``estimated_*`` rows among them;
* ``estimate (arrays)``: the estimator on the same current rows as one array, for comparison.

The answer is checked on the current rows with their labels (not timed): per segment ``all``,
the ``estimated_*`` rows next to the realized rows, and the largest estimation error over the
segments in standard errors.
"""

from __future__ import annotations

import argparse
import dataclasses
import gc
import json
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from tripwire.config import parse_config
from tripwire.estimation import CBPE, Estimate, MulticlassCBPE
from tripwire.monitor import Monitor
from tripwire.profile import serialize
from tripwire.report.model import Report
from tripwire.stats import roc_auc

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:  # loaded by path (the tests do) rather than run as a script
    sys.path.insert(0, str(HERE))
from _measure import (  # noqa: E402
    load_average,
    machine,
    machine_lines,
    proc_status_mb,
    reset_peak_rss,
)

MB = 1024 * 1024
TARGET_ROWS = 1_000_000
TARGET_ESTIMATE_S = 0.5  # for binary CBPE on 2 cores
QUOTED = "NannyML CBPE 7.2 s for 1M rows on the same kind of machine"
FEATURES = 4
THRESHOLD = 0.5


@dataclass
class Dataset:
    reference: np.ndarray  # scores (n,) or probabilities (n, classes)
    reference_labels: np.ndarray
    current: np.ndarray
    current_labels: np.ndarray  # never shown to the estimator; for the realized metrics
    reference_features: np.ndarray | None = None  # (rows, FEATURES): the model's inputs
    current_features: np.ndarray | None = None

    @property
    def input_bytes(self) -> int:
        return int(sum(a.nbytes for a in (self.reference, self.reference_labels, self.current)))


def _softmax(logits: np.ndarray) -> np.ndarray:
    e = np.exp(logits - logits.max(axis=1, keepdims=True))
    out: np.ndarray = e / e.sum(axis=1, keepdims=True)
    return out


def _draw(
    rng: np.random.Generator,
    weights: np.ndarray,
    rows: int,
    temperature: float,
    shift: float,
    spread: float,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Model outputs, labels and inputs for ``rows`` rows; ``weights`` is (features, classes)."""
    x = rng.normal(shift, spread, (rows, FEATURES))
    logits = x @ weights
    if weights.shape[1] == 1:  # binary: one logit
        logit = logits[:, 0] - 0.5
        labels = (rng.random(rows) < 1.0 / (1.0 + np.exp(-logit))).astype(np.int8)
        return 1.0 / (1.0 + np.exp(-logit / temperature)), labels, x
    truth = np.cumsum(_softmax(logits), axis=1)
    labels = np.minimum((rng.random(rows)[:, None] > truth).sum(axis=1), weights.shape[1] - 1)
    return _softmax(logits / temperature), labels.astype(np.int8), x


def make_dataset(rows: int, classes: int, temperature: float, seed: int = 0) -> Dataset:
    """Reference and current data of ``rows`` rows each; the current rows are shifted."""
    rng = np.random.default_rng(seed)
    weights = rng.normal(0.0, 1.0, (FEATURES, 1 if classes == 2 else classes))
    reference, reference_labels, reference_x = _draw(rng, weights, rows, temperature, 0.0, 1.0)
    current, current_labels, current_x = _draw(rng, weights, rows, temperature, 0.3, 0.8)
    return Dataset(reference, reference_labels, current, current_labels, reference_x, current_x)


def realized(dataset: Dataset) -> dict[str, float]:
    """The current rows' metrics from their labels: what the estimate should come close to."""
    x, y = dataset.current, dataset.current_labels.astype(np.intp)
    if x.ndim == 1:
        pred = x >= THRESHOLD
        tp, fp = int(np.sum(pred & (y == 1))), int(np.sum(pred & (y == 0)))
        fn, tn = int(np.sum(~pred & (y == 1))), int(np.sum(~pred & (y == 0)))
        return {
            "auc": roc_auc(y, x),
            "precision": tp / (tp + fp),
            "recall": tp / (tp + fn),
            "f1": 2 * tp / (2 * tp + fp + fn),
            "accuracy": (tp + tn) / y.size,
            "specificity": tn / (tn + fp),
        }
    k = x.shape[1]
    pred = x.argmax(axis=1)
    confusion = np.zeros((k, k))
    np.add.at(confusion, (y, pred), 1.0)
    tp, m, positives = np.diag(confusion), confusion.sum(axis=0), confusion.sum(axis=1)
    return {
        "auc": float(np.mean([roc_auc(y == c, x[:, c]) for c in range(k)])),
        "precision": float(np.mean(tp / m)),
        "recall": float(np.mean(tp / positives)),
        "f1": float(np.mean(2 * tp / (m + positives))),
        "accuracy": float(tp.sum() / y.size),
    }


# --------------------------------------------------------------------------- measuring


def _summary(seconds: list[float]) -> dict[str, float]:
    return {"best": min(seconds), "median": statistics.median(seconds)}


def _timed(step: Callable[[], Any]) -> tuple[float, float, Any]:
    """Wall seconds, CPU seconds of the process (all threads) and the step's result."""
    start, cpu = time.perf_counter(), time.process_time()
    result = step()
    return time.perf_counter() - start, time.process_time() - cpu, result


def run(
    rows: int, classes: int, temperature: float, windows: int, seed: int, repeat: int
) -> dict[str, Any]:
    """Generate the data, time fit and estimate ``repeat`` times, and return every figure."""
    dataset = make_dataset(rows, classes, temperature, seed)
    chunks = np.array_split(dataset.current, windows)

    def fit() -> CBPE | MulticlassCBPE:
        model = CBPE(threshold=THRESHOLD) if classes == 2 else MulticlassCBPE()
        return model.fit(dataset.reference, dataset.reference_labels)

    gc.collect()
    rss_before = proc_status_mb("VmRSS")
    hwm_reset = reset_peak_rss()
    load_before = load_average()
    fit_s: list[float] = []
    fit_cpu: list[float] = []
    estimate_s: list[float] = []
    estimate_cpu: list[float] = []
    windows_s: list[float] = []
    estimate: Estimate | None = None
    model: CBPE | MulticlassCBPE | None = None
    for _ in range(repeat):
        estimate = None
        gc.collect()
        seconds, cpu, model = _timed(fit)
        fit_s.append(seconds)
        fit_cpu.append(cpu)
        seconds, cpu, estimate = _timed(lambda m=model: m.estimate(dataset.current))
        estimate_s.append(seconds)
        estimate_cpu.append(cpu)
        seconds, _, _ = _timed(lambda m=model: [m.estimate(chunk) for chunk in chunks])
        windows_s.append(seconds)
    assert estimate is not None and model is not None
    timed_peak = proc_status_mb("VmHWM") if hwm_reset else None
    load_after = load_average()

    truth = realized(dataset)
    checks = [model.calibration_] if isinstance(model, CBPE) else list(model.calibration_)
    at_target = rows == TARGET_ROWS and classes == 2
    best = min(estimate_s)
    return {
        "rows": rows,
        "classes": classes,
        "temperature": temperature,
        "windows": windows,
        "seed": seed,
        "repeat": repeat,
        "calibrated_classes": sum(check.calibrate for check in checks),
        "seconds": {
            "fit": _summary(fit_s),
            "estimate": _summary(estimate_s),
            "windows": _summary(windows_s),
            "fit_estimate": _summary([f + e for f, e in zip(fit_s, estimate_s, strict=True)]),
        },
        "fit_cpu_seconds": _summary(fit_cpu),
        "estimate_cpu_seconds": _summary(estimate_cpu),
        "estimate_rows_per_s": rows / best,
        "memory_mb": {
            "input_data": dataset.input_bytes / MB,
            "rss_before_timing": rss_before,
            "peak_during_timing": timed_peak,
        },
        "metrics": {
            name: {
                "estimated": estimate.values[name],
                "standard_error": estimate.standard_errors[name],
                "realized": truth[name],
            }
            for name in estimate.values
            if name in truth
        },
        "target": {"estimate_s": TARGET_ESTIMATE_S, "met": best <= TARGET_ESTIMATE_S}
        if at_target
        else None,
        "quoted_for_scale": QUOTED if at_target else None,
        "machine": machine(["numpy", "scipy"]),
        "load_average": {"before": load_before, "after": load_after},
    }


# --------------------------------------------------------------------------- the monitor


def monitor_config(classes: int, segments: int) -> str:
    """The benchmark model's ``tripwire.yaml``: binary scores or class probabilities, every
    ``segment`` value tracked."""
    features = ", ".join(f"x{j}: numeric" for j in range(FEATURES))
    if classes == 2:
        outputs = "  prediction: score\n"
    else:
        columns = ", ".join(f"{c}: p{c}" for c in range(classes))
        outputs = f"  prediction: predicted\n  probabilities: {{{columns}}}\n"
    tracked = f"segments: {{columns: [segment], top: {segments}}}\n" if segments else ""
    task = "binary" if classes == 2 else "multiclass"
    return (
        f"name: bench\ntask: {task}\ndecision_threshold: {THRESHOLD}\n"
        f"columns:\n  features: {{{features}}}\n{outputs}  label: label\n{tracked}"
    )


def monitor_table(
    features: np.ndarray,
    outputs: np.ndarray,
    labels: np.ndarray | None,
    segment: np.ndarray | None,
) -> pa.Table:
    """A logged table: inputs, outputs, labels (when given) and the segment column."""
    columns: dict[str, Any] = {f"x{j}": features[:, j] for j in range(FEATURES)}
    if outputs.ndim == 1:
        columns["score"] = outputs
    else:
        columns.update({f"p{c}": outputs[:, c] for c in range(outputs.shape[1])})
        columns["predicted"] = outputs.argmax(axis=1).astype(np.int8)
    if labels is not None:
        columns["label"] = labels
    if segment is not None:
        names = pa.array([f"s{k}" for k in range(int(segment.max()) + 1)])
        columns["segment"] = pa.DictionaryArray.from_arrays(segment, names).cast(pa.string())
    return pa.table(columns)


def segment_codes(rng: np.random.Generator, rows: int, segments: int) -> np.ndarray | None:
    """Each row's segment, with shares proportional to 1 / (rank + 1)."""
    if not segments:
        return None
    shares = 1.0 / np.arange(1, segments + 1)
    codes: np.ndarray = rng.choice(segments, rows, p=shares / shares.sum()).astype(np.int32)
    return codes


def _without(monitor: Monitor, **changes: Any) -> Monitor:
    """A copy of a fitted monitor whose bins leave something out (estimation, segments)."""
    other = Monitor(monitor.config, settings=monitor.settings)
    other.bins_ = dataclasses.replace(monitor.bins_, **changes)
    other.reference_, other.importance_ = monitor.reference_, monitor.importance_
    return other


def estimation_check(report: Report, z: float) -> dict[str, Any]:
    """Per metric of segment ``all``: estimated, its standard error and realized; and over all
    segments the largest |estimated - realized| in standard errors."""
    out: dict[str, Any] = {"metrics": {}, "worst_z": 0.0}
    for row in report.rows:
        if not row.metric.startswith("estimated_") or row.value is None:
            continue
        metric = row.metric.removeprefix("estimated_")
        actual = report.value(metric, segment=row.segment)
        se = max(row.value - (row.ci_low or row.value), (row.ci_high or row.value) - row.value)
        se /= z
        if row.segment == "all":
            out["metrics"][metric] = {"estimated": row.value, "standard_error": se,
                                      "realized": actual}  # fmt: skip
        if actual is not None and se > 0:
            out["worst_z"] = max(out["worst_z"], abs(row.value - actual) / se)
    return out


def run_monitor(
    rows: int, classes: int, temperature: float, segments: int, seed: int, repeat: int
) -> dict[str, Any]:
    """Time the monitor's estimation path (see the module's docstring) and check its answer."""
    dataset = make_dataset(rows, classes, temperature, seed)
    assert dataset.reference_features is not None and dataset.current_features is not None
    rng = np.random.default_rng(seed + 1)
    reference = monitor_table(
        dataset.reference_features,
        dataset.reference,
        dataset.reference_labels,
        segment_codes(rng, rows, segments),
    )
    codes = segment_codes(rng, rows, segments)
    current = monitor_table(dataset.current_features, dataset.current, None, codes)
    config = parse_config(monitor_config(classes, segments))

    gc.collect()
    rss_before = proc_status_mb("VmRSS")
    hwm_reset = reset_peak_rss()
    load_before = load_average()
    steps: dict[str, list[float]] = {}
    cpu: dict[str, list[float]] = {}

    def timed(name: str, step: Callable[[], Any]) -> Any:
        seconds, cpu_seconds, result = _timed(step)
        steps.setdefault(name, []).append(seconds)
        cpu.setdefault(name, []).append(cpu_seconds)
        return result

    monitor = profiles = None
    for _ in range(repeat):
        gc.collect()
        monitor = timed("fit", lambda: Monitor(config).fit(reference))
        profiles = timed("profile", lambda m=monitor: m.profile(current))
        timed(
            "profile_no_estimation", lambda m=monitor: _without(m, estimation=None).profile(current)
        )
        timed("profile_no_segments", lambda m=monitor: _without(m, segments=()).profile(current))
        timed("evaluate", lambda m=monitor, p=profiles: m.evaluate(p))
        model = CBPE(THRESHOLD) if classes == 2 else MulticlassCBPE()
        model.fit(dataset.reference, dataset.reference_labels)
        timed("estimate_arrays", lambda m=model: m.estimate(dataset.current))
    assert monitor is not None and profiles is not None
    timed_peak = proc_status_mb("VmHWM") if hwm_reset else None
    load_after = load_average()

    report = monitor.evaluate(profiles)
    labelled = monitor.check(
        monitor_table(dataset.current_features, dataset.current, dataset.current_labels, codes)
    )
    estimation = monitor.bins_.estimation
    assert estimation is not None
    return {
        "path": "monitor",
        "rows": rows,
        "classes": classes,
        "temperature": temperature,
        "segments": segments,
        "seed": seed,
        "repeat": repeat,
        "calibrated_classes": sum(c.calibrated for c in estimation.calibrations),
        "seconds": {name: _summary(values) for name, values in steps.items()},
        "cpu_seconds": {name: _summary(values) for name, values in cpu.items()},
        "profile_rows_per_s": rows / min(steps["profile"]),
        "profile_bytes": len(serialize.to_bytes(profiles)),
        "metric_rows": len(report.rows),
        "estimated_rows": sum(r.metric.startswith("estimated_") for r in report.rows),
        "profiled_segments": len(profiles),
        "memory_mb": {
            "input_data": (reference.nbytes + current.nbytes) / MB,
            "rss_before_timing": rss_before,
            "peak_during_timing": timed_peak,
        },
        **estimation_check(labelled, 1.959963984540054),
        "machine": machine(["numpy", "scipy", "pyarrow"]),
        "load_average": {"before": load_before, "after": load_after},
    }


def format_monitor(result: dict[str, Any]) -> str:
    s, cpu, mem = result["seconds"], result["cpu_seconds"], result["memory_mb"]
    kind = "binary" if result["classes"] == 2 else f"{result['classes']}-class"
    inputs = f"{FEATURES} numeric features, {result['segments']} segments (+ all), "
    lines = [
        _heading(result, f"tripwire estimation benchmark, monitor path: {kind} model", inputs),
        "",
        f"{'step':<34}{'best s':>10}{'median s':>10}{'CPU s':>10}",
    ]
    for key, label in (
        ("fit", "fit (bins, calibration, reference)"),
        ("profile", "profile (all layers, estimation)"),
        ("profile_no_estimation", "profile, no estimation"),
        ("profile_no_segments", "profile, no segments"),
        ("evaluate", "evaluate (metric rows)"),
        ("estimate_arrays", "estimate (arrays, one window)"),
    ):
        lines.append(
            f"{label:<34}{s[key]['best']:>10.3f}{s[key]['median']:>10.3f}{cpu[key]['best']:>10.3f}"
        )
    peak = mem["peak_during_timing"]
    lines += [
        "",
        f"profile throughput  {result['profile_rows_per_s']:,.0f} rows/s (CPU s: the best "
        "CPU time of the process over all threads)",
        f"profiles            {result['profiled_segments']} (all + segments), "
        f"{result['profile_bytes']:,} bytes serialized; {result['metric_rows']} metric rows, "
        f"{result['estimated_rows']} of them estimated_*",
        f"input data          {mem['input_data']:,.0f} MB (reference and current tables)",
        f"RSS before timing   {_mb(mem['rss_before_timing'])}",
        f"peak RSS, timed     {_mb(peak)} (VmHWM reset before the first fit)",
        "",
        f"{'metric (all)':<14}{'estimated':>10}{'± se':>9}{'realized':>10}",
    ]
    for name, m in result["metrics"].items():
        realized = "—" if m["realized"] is None else f"{m['realized']:.4f}"
        lines.append(f"{name:<14}{m['estimated']:>10.4f}{m['standard_error']:>9.4f}{realized:>10}")
    lines += [
        f"largest |estimated - realized| over all segments: {result['worst_z']:.2f} se",
        "",
        *machine_lines(result["machine"], result["load_average"]),
    ]
    return "\n".join(lines)


# --------------------------------------------------------------------------- output


def _heading(result: dict[str, Any], what: str, inputs: str = "") -> str:
    return (
        f"{what}, {result['rows']:,} reference x {result['rows']:,} current rows, {inputs}"
        f"temperature {result['temperature']:g} ({result['calibrated_classes']} calibrator(s) "
        f"fitted), seed {result['seed']}, best/median of {result['repeat']}"
    )


def _mb(value: float | None) -> str:
    return "n/a" if value is None else f"{value:,.0f} MB"


def format_table(result: dict[str, Any]) -> str:
    s, mem, target = result["seconds"], result["memory_mb"], result["target"]
    kind = "binary CBPE" if result["classes"] == 2 else f"{result['classes']}-class CBPE"
    lines = [
        _heading(result, f"tripwire estimation benchmark: {kind}"),
        "",
        f"{'step':<26}{'best s':>10}{'median s':>10}",
    ]
    for key, label in (
        ("fit", "fit"),
        ("estimate", "estimate (one window)"),
        ("windows", f"estimate ({result['windows']} windows)"),
        ("fit_estimate", "fit+estimate"),
    ):
        lines.append(f"{label:<26}{s[key]['best']:>10.3f}{s[key]['median']:>10.3f}")
    verdict = ""
    if target is not None:
        met = "met" if target["met"] else "MISSED"
        verdict = f"   target <= {target['estimate_s']} s on 2 cores: {met}"
    peak = mem["peak_during_timing"]
    lines += [
        "",
        f"estimate throughput {result['estimate_rows_per_s']:,.0f} rows/s{verdict}",
        f"estimate CPU time   {result['estimate_cpu_seconds']['best']:.3f} s best, "
        f"{result['estimate_cpu_seconds']['median']:.3f} s median (all threads)",
        f"fit CPU time        {result['fit_cpu_seconds']['best']:.3f} s best, "
        f"{result['fit_cpu_seconds']['median']:.3f} s median (all threads)",
        f"input data          {mem['input_data']:,.0f} MB (reference scores and labels, "
        "current scores)",
        f"RSS before timing   {_mb(mem['rss_before_timing'])}",
        f"peak RSS, timed     {_mb(peak)} (VmHWM reset before the first fit)",
        "",
        f"{'metric':<14}{'estimated':>10}{'± se':>9}{'realized':>10}",
    ]
    for name, m in result["metrics"].items():
        lines.append(
            f"{name:<14}{m['estimated']:>10.4f}{m['standard_error']:>9.4f}{m['realized']:>10.4f}"
        )
    if target is None:
        lines.append("target              none for this size (it is for 1M rows, binary)")
    if result["quoted_for_scale"]:
        lines.append(f"for scale (QUOTED, not measured here): {result['quoted_for_scale']}")
    lines += ["", *machine_lines(result["machine"], result["load_average"])]
    return "\n".join(lines)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=TARGET_ROWS, help="rows in each of the sets")
    parser.add_argument("--classes", type=int, default=2, help="2: binary; more: multiclass")
    parser.add_argument(
        "--temperature", type=float, default=0.5, help="model logits = true logits / this"
    )
    parser.add_argument("--windows", type=int, default=10, help="windows the current rows make")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--repeat", type=int, default=3, help="runs of each timed step")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    parser.add_argument(
        "--monitor", action="store_true", help="time the Monitor's path (profile, rows)"
    )
    parser.add_argument("--segments", type=int, default=10, help="with --monitor: segments")
    args = parser.parse_args(argv)
    if args.rows < 100 or args.classes < 2 or args.windows < 1 or args.repeat < 1:
        parser.error("--rows must be >= 100, --classes >= 2, --windows and --repeat >= 1")
    if args.temperature <= 0:
        parser.error("--temperature must be > 0")
    if args.segments < 0:
        parser.error("--segments must be >= 0")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if args.monitor:
        result = run_monitor(
            args.rows, args.classes, args.temperature, args.segments, args.seed, args.repeat
        )
        print(json.dumps(result, indent=2) if args.json else format_monitor(result))
        return 0
    result = run(args.rows, args.classes, args.temperature, args.windows, args.seed, args.repeat)
    print(json.dumps(result, indent=2) if args.json else format_table(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
