"""Dashboard and read-API benchmark: page load times over a year of stored windows.

Usage::

    python benchmarks/dashboard.py              # 365 daily windows, 200 features, 10 segments
    python benchmarks/dashboard.py --days 30 --features 20 --segments 3 --json
    python benchmarks/dashboard.py --db /var/tmp/dash.duckdb   # keep the store, reuse it
    python benchmarks/dashboard.py --days 90 --compressed-profiles   # as before migration 6

What it does:

* builds a binary model's config with ``--features`` features (every tenth categorical) and a
  segment column with ``--segments`` values, fits a monitor on a generated reference (kept in
  the store, as the job keeps it, so the feature page has the reference's histograms) and
  profiles one generated window of ``--rows`` rows: that profile, full size (the default
  1,000-point grid in every segment), is stored with every window;
* seeds a DuckDB store with ``Store.write_window``: ``--days`` daily windows of synthetic metric
  rows, as many as the job writes (per feature and segment: PSI, KS, JS, Wasserstein, null and
  out-of-range shares, schema for a numeric feature; PSI, JS, chi-squared p-value, null and
  unseen shares, schema for a categorical one; per segment: the predictions', performance and
  cost metrics, with estimated AUC), a drift on a few features over the last quarter, and
  incidents with their alert messages queued in the outbox. Seeding is not what is measured;
* times each page as the server renders it (in process, through the app: routing, the store
  reads under the lock, rendering), ``--repeat`` times, best and median: the overview, a
  model's page over the last 90 windows, over the whole year, with every feature in the drift
  table, a feature's page (its metrics over time and its histograms in 8 windows), an
  incident's page, and the API's model list, a feature's PSI series over the year and the
  incident list. The app runs without a scheduler and without the monitor: what it shows is
  read from the store.

``--compressed-profiles`` times the store with its window profiles in a column DuckDB
compresses, as stores were before migration 6 (the ``windows`` table is rebuilt so before the
pages are timed; a kept ``--db`` store is rebuilt back to uncompressed by a later run without it).

Reported: seconds per page (best, median), the page's size, the store's size and rows, the
machine and the load average (wall times on a shared machine are not the software's alone).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from collections.abc import Sequence
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from tripwire.alerts.engine import Incident
from tripwire.alerts.notify import message
from tripwire.alerts.outbox import Outbox
from tripwire.config import ModelConfig, parse_config
from tripwire.job import incidents_table
from tripwire.layers.rows import MetricRow
from tripwire.monitor import Monitor
from tripwire.profile import serialize
from tripwire.server import create_app
from tripwire.store import DuckDBStore

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:  # loaded by path (the tests do) rather than run as a script
    sys.path.insert(0, str(HERE))
from _measure import load_average, machine, machine_lines  # noqa: E402

MODEL = "bench-model"
TOKEN = "benchmark-read-token"
START = datetime(2025, 1, 1)
DAY = timedelta(days=1)
NUMERIC = ("psi", "ks", "js", "wasserstein", "wasserstein_norm", "null_share")
NUMERIC += ("out_of_range_share", "schema")
CATEGORICAL = ("psi", "js", "chi2_pvalue", "null_share", "unseen_share", "schema")
THRESHOLDS = {"psi": 0.25, "ks": 0.2, "js": 0.2, "wasserstein_norm": 0.5, "null_share": 0.05}
OUTPUTS = {
    "predictions": ("mean_pred", "positive_rate", "score_psi", "entropy"),
    "performance": ("auc", "estimated_auc", "precision", "recall", "f1", "label_coverage"),
    "cost": ("p50_ms", "p95_ms", "p99_ms", "error_rate", "cost_per_1k"),
}
RUNBOOK = (
    "{what_it_means: Drift on an important feature., what_to_check: The feature's pipeline., "
    "who_owns_the_fix: the data team}"
)


def feature_names(count: int) -> list[str]:
    return [f"f{i:03d}" for i in range(count)]


def is_categorical(index: int) -> bool:
    return index % 10 == 9


def build_config(features: int, segments: int) -> ModelConfig:
    names = feature_names(features)
    columns = "\n".join(
        f"    {n}: {'categorical' if is_categorical(i) else 'numeric'}" for i, n in enumerate(names)
    )
    importance = "\n".join(f"  {n}: {1.0 / (i + 1):.6f}" for i, n in enumerate(names))
    return parse_config(
        f"""
name: {MODEL}
task: binary
columns:
  timestamp: ts
  features:
{columns}
  prediction: score
  label: y
  segments: [region]
  latency_ms: latency_ms
segments:
  columns: [region]
  top: {segments}
importance:
{importance}
owners:
  - name: bench-team
    contact: "#bench"
alerts:
  - name: psi_top_feature_drift
    metric: psi
    feature_set: top_quartile_shap
    threshold: 0.25
    window: 3d
    severity: page
    runbook: {RUNBOOK}
  - name: prediction_rate_shift
    metric: mean_pred
    baseline: 7d_trailing
    threshold_z: 3.0
    severity: ticket
    runbook: {RUNBOOK}
  - name: segment_auc
    metric: auc
    segment: each
    baseline: reference
    threshold: 0.05
    window: 2d
    severity: ticket
    runbook: {RUNBOOK}
"""
    )


def generate(config: ModelConfig, rows: int, segments: int, seed: int) -> pa.Table:
    rng = np.random.default_rng(seed)
    columns: dict[str, Any] = {}
    for i, name in enumerate(config.columns.features):
        if is_categorical(i):
            columns[name] = rng.choice([f"c{k}" for k in range(12)], rows)
        else:
            columns[name] = rng.normal(i % 7, 1 + i % 3, rows)
    columns["score"] = rng.random(rows)
    columns["y"] = (rng.random(rows) < columns["score"] * 0.3).astype(float)
    columns["region"] = rng.choice([f"r{k}" for k in range(segments)], rows)
    columns["latency_ms"] = rng.gamma(4.0, 30.0, rows)
    columns["ts"] = pa.array([START] * rows, pa.timestamp("us"))
    return pa.table(columns)


def metric_rows(
    config: ModelConfig, segments: list[str], day: int, days: int, rng: np.random.Generator
) -> list[MetricRow]:
    """One window's rows: what the job writes, with made-up values."""
    importance = config.resolve_importance()
    drifting = day >= days * 3 // 4
    out = []
    for i, feature in enumerate(config.columns.features):
        metrics = CATEGORICAL if is_categorical(i) else NUMERIC
        shift = 0.4 if drifting and i % 37 == 2 else 0.0
        for segment in segments:
            values = rng.gamma(2.0, 0.01, len(metrics)) + shift
            for metric, value in zip(metrics, values, strict=True):
                threshold = THRESHOLDS.get(metric)
                status = "info" if threshold is None else "alert" if value > threshold else "ok"
                out.append(
                    MetricRow.model_construct(
                        layer="inputs",
                        metric=metric,
                        feature=feature,
                        segment=segment,
                        value=float(value),
                        status=status,
                        threshold=threshold,
                        n=1000,
                        importance=importance[feature],
                    )
                )
    labelled = day < days - 7  # labels lag a week
    for layer, metrics in OUTPUTS.items():
        for segment in segments:
            for metric in metrics:
                value = float(rng.normal(0.8, 0.01))
                withheld = layer == "performance" and not labelled and metric != "label_coverage"
                out.append(
                    MetricRow.model_construct(
                        layer=layer,
                        metric=metric,
                        segment=segment,
                        value=None if withheld else value,
                        status="insufficient_labels" if withheld else "ok",
                        threshold=0.75 if metric.endswith("auc") else None,
                        reference=0.8,
                        n=1000,
                    )
                )
    return out


def incidents(config: ModelConfig, days: int) -> list[Incident]:
    found = []
    for k in range(20):
        start = START + DAY * (days * 3 // 4 + k % 10)
        feature = f"f{(2 + 37 * k) % len(config.columns.features):03d}"
        resolved = None if k % 3 else start + 5 * DAY
        found.append(
            Incident(
                dedup_key=f"{MODEL}/psi_top_feature_drift/{feature}/all/{start:%Y-%m-%dT%H:%M}",
                model=MODEL,
                rule="psi_top_feature_drift",
                metric="psi",
                feature=feature,
                segment="all",
                severity="page",
                route="console",
                evidence_start=start,
                opened_at=start + 2 * DAY,
                last_breach_at=start + 4 * DAY,
                resolved_at=resolved,
                value=0.42,
                threshold=0.25,
                reopened=0,
            )
        )
    return found


def seed_store(
    path: Path,
    config: ModelConfig,
    reference: bytes,
    profile: bytes,
    days: int,
    segments: list[str],
) -> None:
    rng = np.random.default_rng(0)
    with DuckDBStore(path) as store:
        store.save_reference(MODEL, reference)
        for day in range(days):
            rows = metric_rows(config, segments, day, days, rng)
            store.write_window(MODEL, START + day * DAY, DAY, rows, profile, 1000)
        found = incidents(config, days)
        store.save_incidents(MODEL, incidents_table(found))
        outbox = Outbox(store)
        for incident in found:
            outbox.enqueue(message(config, incident, DAY, "firing"), config.routes["console"])


# The windows table as migration 1 made it: DuckDB picks the profile column's compression.
_WINDOWS = """
CREATE TABLE windows_rebuilt (
    model TEXT NOT NULL,
    namespace TEXT NOT NULL,
    window_start TIMESTAMP NOT NULL,
    window_seconds BIGINT NOT NULL,
    n_rows BIGINT NOT NULL,
    profile BLOB NOT NULL{compression},
    computed_at TIMESTAMP NOT NULL,
    PRIMARY KEY (model, namespace, window_start, window_seconds)
);
INSERT INTO windows_rebuilt SELECT * FROM windows ORDER BY window_start;
DROP TABLE windows;
ALTER TABLE windows_rebuilt RENAME TO windows;
"""


def profile_compression(store: DuckDBStore) -> str:
    """How DuckDB keeps the stored profiles: "Uncompressed", "ZSTD", ..."""
    found = store.sql(
        "SELECT DISTINCT compression FROM pragma_storage_info('windows') "
        "WHERE column_name = 'profile' AND segment_type = 'BLOB' ORDER BY 1"
    )
    return ", ".join(str(c) for (c,) in found) or "empty"


def set_profile_compression(store: DuckDBStore, compressed: bool) -> float:
    """Rebuild the windows table with its profiles compressed by DuckDB (as before migration
    6) or not, unless they are so already; the seconds it took."""
    begin = time.perf_counter()
    if (profile_compression(store) != "Uncompressed") != compressed:
        kind = "" if compressed else " USING COMPRESSION uncompressed"
        with store.transaction():
            store.connection.execute(_WINDOWS.format(compression=kind))
        store.connection.execute("CHECKPOINT")
    return time.perf_counter() - begin


def timed(client: Any, url: str, repeat: int) -> dict[str, Any]:
    seconds = []
    size = 0
    for _ in range(repeat):
        begin = time.perf_counter()
        response = client.get(url, headers={"Authorization": f"Bearer {TOKEN}"})
        seconds.append(time.perf_counter() - begin)
        if response.status_code != 200:
            raise RuntimeError(f"{url}: {response.status_code} {response.text[:300]}")
        size = len(response.content)
    return {
        "url": url,
        "best": min(seconds),
        "median": statistics.median(seconds),
        "bytes": size,
    }


def run(
    days: int,
    features: int,
    segments: int,
    rows: int,
    repeat: int,
    db: Path | None,
    compressed: bool = False,
) -> dict[str, Any]:
    from fastapi.testclient import TestClient

    config = build_config(features, segments)
    monitor = Monitor(config).fit(generate(config, rows, segments, 1))
    windows = monitor.profile(generate(config, rows, segments, 2))
    names = ["all", *sorted(s for s in windows if s != "all")]
    profile = serialize.to_bytes(windows)
    with tempfile.TemporaryDirectory() as scratch:
        path = db or Path(scratch) / "dashboard.duckdb"
        seeded = 0.0
        if not path.exists():
            begin = time.perf_counter()
            seed_store(path, config, monitor.to_bytes(), profile, days, names)
            seeded = time.perf_counter() - begin
        with DuckDBStore(path) as store:
            rebuilt = set_profile_compression(store, compressed)
            compression = profile_compression(store)
        load_before = load_average()
        with DuckDBStore(path) as store:
            starts = store.window_starts(MODEL, DAY)
            key = store.incidents(MODEL)["dedup_key"][0].as_py()
            # No scheduler, no monitor: the pages read the store only.
            client = TestClient(create_app({MODEL: config}, store, None, TOKEN))
            client.get(f"/dashboard?token={TOKEN}")  # signs in (the cookie)
            feature = next(iter(config.columns.features))  # the most important
            pages = {
                "overview": "/dashboard",
                "model, 90 windows": f"/dashboard/models/{MODEL}",
                "model, all windows": f"/dashboard/models/{MODEL}?windows={days}",
                "model, all features": f"/dashboard/models/{MODEL}?features=all",
                "feature": f"/dashboard/models/{MODEL}/features/{feature}",
                "incident": f"/dashboard/models/{MODEL}/incidents/{key}",
                "API: models": "/v1/models",
                "API: PSI of a feature, all windows": (
                    f"/v1/models/{MODEL}/metrics?metric=psi&feature={feature}&limit=1000"
                ),
                "API: incidents": f"/v1/models/{MODEL}/incidents",
            }
            timings = {name: timed(client, url, repeat) for name, url in pages.items()}
        size = path.stat().st_size
    return {
        "days": days,
        "features": features,
        "segments": segments,
        "windows": len(starts),
        "metric_rows": _rows_per_window(config, names) * len(starts),
        "profile_bytes": len(profile),
        "store_bytes": size,
        "seed_seconds": seeded,
        "profile_compression": compression,
        "rebuild_seconds": rebuilt,
        "repeat": repeat,
        "pages": timings,
        "machine": machine(["duckdb", "pyarrow", "numpy", "fastapi"]),
        "load_average": {"before": load_before, "after": load_average()},
    }


def _rows_per_window(config: ModelConfig, segments: list[str]) -> int:
    per_feature = sum(
        len(CATEGORICAL if is_categorical(i) else NUMERIC)
        for i in range(len(config.columns.features))
    )
    return (per_feature + sum(len(m) for m in OUTPUTS.values())) * len(segments)


def format_table(result: dict[str, Any]) -> str:
    lines = [
        f"tripwire dashboard benchmark: {result['windows']} daily windows x "
        f"{result['features']} features x ({result['segments']} segments + all), "
        f"{result['metric_rows']:,} metric rows, a {result['profile_bytes'] / 1e6:.1f} MB "
        f"profile per window ({result['profile_compression']} in the store), store "
        f"{result['store_bytes'] / 1e9:.2f} GB; best/median of {result['repeat']}",
        "",
        f"{'page':<38}{'best s':>9}{'median s':>10}{'KB':>9}",
    ]
    for name, t in result["pages"].items():
        lines.append(f"{name:<38}{t['best']:>9.3f}{t['median']:>10.3f}{t['bytes'] / 1e3:>9.0f}")
    if result["seed_seconds"]:
        lines.append(f"\nseeding the store took {result['seed_seconds']:.0f} s (not measured)")
    if result["rebuild_seconds"] >= 0.5:
        lines.append(
            f"rebuilding the windows table ({result['profile_compression']}) took "
            f"{result['rebuild_seconds']:.0f} s (not measured)"
        )
    lines += ["", *machine_lines(result["machine"], result["load_average"])]
    return "\n".join(lines)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--days", type=int, default=365, help="daily windows stored")
    parser.add_argument("--features", type=int, default=200)
    parser.add_argument("--segments", type=int, default=10, help="segments besides 'all'")
    parser.add_argument("--rows", type=int, default=5000, help="rows of the profiled window")
    parser.add_argument("--repeat", type=int, default=3, help="loads of each page")
    parser.add_argument("--db", type=Path, help="keep the store here (reused when it exists)")
    parser.add_argument(
        "--compressed-profiles",
        action="store_true",
        help="time the profiles in a column DuckDB compresses, as before migration 6",
    )
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    args = parser.parse_args(argv)
    if args.days < 10 or args.features < 1 or args.segments < 1 or args.repeat < 1:
        parser.error("--days must be >= 10, --features, --segments and --repeat >= 1")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    result = run(
        args.days,
        args.features,
        args.segments,
        args.rows,
        args.repeat,
        args.db,
        args.compressed_profiles,
    )
    print(json.dumps(result, indent=2) if args.json else format_table(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
