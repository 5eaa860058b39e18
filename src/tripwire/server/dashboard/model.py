"""A model's page: one section per layer, then its incidents.

* inputs: the drift table ranked by importance × PSI, a sparkline per feature and its threshold
  (calibrated where ``tripwire calibrate`` learnt one);
* predictions: each output metric over time, overall and in the top segments, with the trailing
  baseline band of the rule that watches it;
* performance: realized (solid) and estimated (dashed) values overall and in the top 5 segments
  on one chart with each series' threshold (the level of the alert rule that watches it, as
  its incidents report it, else the metric's own alert level), label coverage, proxies;
* cost: latency percentiles, error rate, cost per 1,000 predictions;
* incidents with runbook, evidence window and delivery status.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import datetime
from urllib.parse import quote

import pyarrow as pa
import pyarrow.compute as pc

from tripwire.config import ModelConfig
from tripwire.durations import format_duration
from tripwire.layers.catalog import ESTIMATED_PREFIX, is_proxy
from tripwire.layers.rows import SEVERITY, MetricRow
from tripwire.report.summary import headline
from tripwire.server.dashboard.charts import (
    Band,
    Series,
    Threshold,
    legend,
    line_chart,
    sparkline,
)
from tripwire.server.dashboard.html import badge, esc, href, number, page, table, when
from tripwire.server.dashboard.incidents import incidents_table
from tripwire.server.dashboard.overview import layer_badges
from tripwire.server.dashboard.series import (
    Grid,
    baseline_rule,
    baseline_windows,
    grid,
    rule_levels,
    trailing_band,
    watching_rule,
)
from tripwire.server.reader import StoreReader, metric_rows

__all__ = [
    "DEFAULT_WINDOWS",
    "RANGES",
    "model_page",
    "performance_figures",
    "range_nav",
    "segment_series",
]

DEFAULT_WINDOWS = 90
RANGES = (30, 90, 365)
TOP_FEATURES = 50
TOP_SEGMENTS = 5
DRIFT = "psi"
PREDICTION_ORDER = ("mean_pred", "positive_rate", "score_psi", "entropy")
LATENCY = ("p50_ms", "p95_ms", "p99_ms")
_HEADLINE_PERFORMANCE = {"binary": "auc", "multiclass": "accuracy", "regression": "rmse"}


def range_nav(base: str, windows: int, count: int, **query: object) -> str:
    """Links to show the last 30, 90, 365 or all windows."""
    params = "".join(f"&{k}={quote(str(v), safe='')}" for k, v in query.items() if v is not None)
    links = []
    for n in [*(n for n in RANGES if n < count), count]:
        text = f"all {count}" if n == count else f"last {n}"
        on = ' class="on"' if n == min(windows, count) else ""
        links.append(f'<a href="{esc(f"{base}?windows={n}{params}")}"{on}>{text}</a>')
    return f'<nav class="range">Windows: {"".join(links)}</nav>'


def segment_series(
    g: Grid, metric: str, feature: str, segments: Sequence[str], dashed: bool = False
) -> list[Series]:
    """``metric`` overall and in each of ``segments``, one colour each."""
    out = []
    for color, segment in enumerate(["all", *segments]):
        key = (metric, feature, segment)
        if g.row(key) is not None:
            name = segment if not dashed else f"{segment} (estimated)"
            out.append(Series(name, g.values(key), color, dashed, g.flagged(key)))
    return out


def _figure(caption: str, chart: str, key: str, note: str = "") -> str:
    return (
        f"<figure><figcaption>{esc(caption)}</figcaption>{chart}{key}"
        + (f'<p class="muted small">{note}</p>' if note else "")
        + "</figure>"
    )


def _layer_metrics(latest: pa.Table, layer: str) -> list[str]:
    rows = latest.filter(pc.equal(latest["layer"], layer))
    return list(dict.fromkeys(rows["metric"].to_pylist()))


# -- inputs -----------------------------------------------------------------------------------


def _inputs(
    reader: StoreReader,
    model: str,
    latest: pa.Table,
    shown: list[datetime],
    calibrated: dict[tuple[str, str, str], float],
    all_features: bool,
    windows: int,
) -> str:
    inputs = latest.filter(pc.equal(latest["layer"], "inputs"))
    if inputs.num_rows == 0:
        return '<p class="muted">No input rows in the latest window.</p>'
    overall = metric_rows(inputs.filter(pc.equal(inputs["segment"], "all")))
    by_feature: dict[str, list[MetricRow]] = {}
    for row in overall:
        by_feature.setdefault(row.feature or "", []).append(row)
    segment_alerts = inputs.filter(
        pc.and_(
            pc.not_equal(inputs["segment"], "all"),
            pc.is_in(inputs["status"], pa.array(["alert", "error"])),
        )
    )
    alerting: dict[str, set[str]] = {}
    for feature, segment in zip(
        segment_alerts["feature"].to_pylist(), segment_alerts["segment"].to_pylist(), strict=True
    ):
        alerting.setdefault(feature, set()).add(segment)
    importance = reader.importance(model)
    history = reader.history(model, [DRIFT], since=shown[0])
    history = history.filter(pc.equal(history["segment"], "all"))
    g = grid(history, shown)

    def score(feature: str) -> tuple[float, float]:
        drift = next((r.value for r in by_feature[feature] if r.metric == DRIFT), None)
        weight = importance.get(feature)
        drift_value = drift if drift is not None and math.isfinite(drift) else -1.0
        return ((weight if weight else 1.0) * drift_value, drift_value)

    ranked = sorted(by_feature, key=score, reverse=True)
    chosen = ranked if all_features else ranked[:TOP_FEATURES]
    body = []
    for rank, feature in enumerate(chosen, 1):
        rows = by_feature[feature]
        drift_row = next((r for r in rows if r.metric == DRIFT), None)
        key = (DRIFT, feature, "all")
        threshold = calibrated.get(key)
        source = "calibrated"
        if threshold is None:
            threshold = drift_row.threshold if drift_row else None
            source = "default"
        worst = min(rows, key=lambda r: SEVERITY[r.status])
        flag = (
            f'{badge(worst.status)} <span class="small">{esc(headline(worst))}</span>'
            if worst.status in ("alert", "watch", "error")
            else badge("ok")
        )
        weight = importance.get(feature)
        drift = drift_row.value if drift_row else None
        product = weight * drift if weight is not None and drift is not None else None
        segments = sorted(alerting.get(feature, ()))
        link = href("models", model, "features", feature, windows=windows)
        body.append(
            [
                str(rank),
                f'<a href="{esc(link)}">{esc(feature)}</a>',
                esc(number(weight)),
                esc(number(drift)),
                f'{esc(number(threshold))} <span class="muted small">{source}</span>'
                if threshold is not None
                else "\u2014",
                esc(number(product)),
                sparkline(
                    g.values(key), threshold, label=f"{DRIFT} of {feature}, last {len(shown)}"
                ),
                flag,
                esc(", ".join(segments)) if segments else '<span class="muted">none</span>',
            ]
        )
    more = ""
    if not all_features and len(ranked) > TOP_FEATURES:
        link = href("models", model, windows=windows, features="all")
        more = (
            f'<p class="muted">The {TOP_FEATURES} features with the most weighted drift of '
            f'{len(ranked)}: <a href="{esc(link)}#inputs">show all</a>.</p>'
        )
    return (
        '<p class="muted">Ranked by importance \u00d7 PSI in the latest window, whole '
        "population. The sparkline is PSI over the windows shown, its dashed line the "
        "threshold.</p>"
        + table(
            [
                "#",
                "feature",
                "importance",
                "PSI",
                "threshold",
                "importance \u00d7 PSI",
                f"PSI, last {len(shown)} windows",
                "worst metric",
                "segments alerting",
            ],
            body,
            numeric=(0, 2, 3, 4, 5),
        )
        + more
    )


# -- predictions ------------------------------------------------------------------------------


def _ordered(metrics: Sequence[str], first: Sequence[str]) -> list[str]:
    return [m for m in first if m in metrics] + [m for m in metrics if m not in first]


def _predictions(
    reader: StoreReader,
    config: ModelConfig,
    latest: pa.Table,
    starts: list[datetime],
    shown: list[datetime],
    segments: list[str],
) -> str:
    metrics = _ordered(_layer_metrics(latest, "predictions"), PREDICTION_ORDER)
    if not metrics:
        return '<p class="muted">No prediction rows.</p>'
    bands = {m: baseline_rule(config, m) for m in metrics if m in ("mean_pred", "positive_rate")}
    back = max([baseline_windows(rule, config.window) for rule in bands.values()] or [0])
    first = max(0, starts.index(shown[0]) - back)
    span = starts[first:]
    full = grid(reader.history(config.name, metrics, since=span[0]), span)
    g = full.tail(len(shown))
    figures = []
    for metric in metrics:
        series = segment_series(g, metric, "", segments)
        band = None
        note = ""
        thresholds = []
        if metric in bands:
            rule = bands[metric]
            count = baseline_windows(rule, config.window)
            z = rule.threshold_z if rule is not None and rule.threshold_z else 3.0
            row = full.row((metric, "", "all"))
            if row is not None:
                lower, upper = trailing_band(full.value[row], full.withheld[row], count, z)
                label = f"trailing {count}-window mean \u00b1 {z:g}\u03c3"
                band = Band(lower[-len(shown) :], upper[-len(shown) :], label)
                note = (
                    f"Band: the baseline of rule {esc(rule.name)} (whole population)."
                    if rule is not None and rule.metric == metric
                    else "Band: the trailing baseline a threshold_z rule would use."
                )
        else:
            level = g.latest_threshold((metric, "", "all"))
            if level is not None:
                thresholds.append(Threshold(level, "alert level (whole population)"))
        chart = line_chart(shown, series, band=band, thresholds=thresholds, label=metric)
        figures.append(_figure(metric, chart, legend(series, thresholds, band), note))
    return f'<div class="charts">{"".join(figures)}</div>'


# -- performance ------------------------------------------------------------------------------


def _withheld_tail(g: Grid, key: tuple[str, str, str]) -> int:
    """Trailing windows stored without a verdict (waiting for labels)."""
    row = g.row(key)
    if row is None:
        return 0
    count = 0
    for waiting in reversed(g.withheld[row].tolist()):
        if not waiting:
            break
        count += 1
    return count


def _with_thresholds(
    config: ModelConfig,
    g: Grid,
    series: list[Series],
    metric: str,
    calibrated: dict[tuple[str, str, str], float] | None = None,
) -> list[Threshold]:
    """Each solid series' level, in its colour: where an alert rule watches the series, the
    level the rule breaches at (as its incidents report it), else the level of the metric's
    own verdict stored with its rows."""
    out = []
    for s in series:
        if s.dashed:
            continue
        segment = s.name
        key = (metric, "", segment)
        rule = watching_rule(config, metric, segment)
        levels = rule_levels(rule, g, key, config.window, calibrated) if rule else []
        if rule is not None and levels:
            label = f"rule {rule.name}: the level of each series (its colour)"
            out += [Threshold(level, label, s.color) for level in levels]
            continue
        level = g.latest_threshold(key)
        if level is not None:
            label = "the metric's own alert level of each series (its colour)"
            out.append(Threshold(level, label, s.color))
    return out


def _realized(metrics: Sequence[str]) -> list[str]:
    return [m for m in metrics if not m.startswith(ESTIMATED_PREFIX)]


def _charted(config: ModelConfig, metrics: Sequence[str]) -> list[str]:
    """The performance metrics that get a chart of their own: the headline one and those the
    alert rules watch, realized or estimated (a rule on ``estimated_auc`` watches AUC)."""
    realized = _realized(metrics)
    ruled = [r.metric.removeprefix(ESTIMATED_PREFIX) for r in config.alerts]
    default = _HEADLINE_PERFORMANCE.get(config.task)
    main = list(
        dict.fromkeys(
            m
            for m in [*ruled, default or ""]
            if m in realized and not m.startswith("label_") and not is_proxy(m)
        )
    )
    if not main:  # no rule and no headline metric: the estimated ones, if any, get charts
        main = [m.removeprefix(ESTIMATED_PREFIX) for m in metrics if m.startswith(ESTIMATED_PREFIX)]
    return main


def performance_figures(
    config: ModelConfig,
    g: Grid,
    metrics: Sequence[str],
    segments: Sequence[str],
    calibrated: dict[tuple[str, str, str], float] | None = None,
) -> list[str]:
    """The performance charts over the windows of ``g``: each watched metric (the headline one,
    and those alert rules watch) realized (solid) and estimated (dashed), overall and in each
    of ``segments``, with each realized series' alert level (the rule's that watches it, else
    its rows'; see :func:`_with_thresholds`); then label coverage and the proxies, likewise.
    ``calibrated``: the thresholds ``tripwire calibrate`` learnt, for rules that use them."""
    realized = _realized(metrics)
    figures = []
    for metric in _charted(config, metrics):
        series = segment_series(g, metric, "", segments)
        estimated = segment_series(g, ESTIMATED_PREFIX + metric, "", segments, dashed=True)
        thresholds = _with_thresholds(config, g, series, metric, calibrated)
        waiting = _withheld_tail(g, (metric, "", "all"))
        note = (
            f"Solid: realized, from labels (they arrive {esc(format_duration(config.label_lag))}"
            " after the predictions)"
            + (f"; the latest {waiting} windows await labels" if waiting else "")
            + ". Dashed: estimated without labels."
            if estimated
            else "Realized, from labels"
            + (f"; the latest {waiting} windows await labels" if waiting else "")
            + "."
        )
        chart = line_chart(
            g.windows, [*series, *estimated], thresholds=thresholds, label=f"{metric} by segment"
        )
        figures.append(
            _figure(
                f"{metric}: overall and top {len(segments)} segments",
                chart,
                legend([*series, *estimated], thresholds),
                note,
            )
        )
    for metric in ("label_coverage", *(m for m in realized if is_proxy(m))):
        if metric not in metrics:
            continue
        series = segment_series(g, metric, "", segments)
        thresholds = _with_thresholds(config, g, series, metric, calibrated)
        chart = line_chart(g.windows, series, thresholds=thresholds, label=metric)
        figures.append(_figure(metric, chart, legend(series, thresholds)))
    return figures


def _performance(
    reader: StoreReader,
    config: ModelConfig,
    latest: pa.Table,
    shown: list[datetime],
    segments: list[str],
    calibrated: dict[tuple[str, str, str], float],
) -> str:
    metrics = _layer_metrics(latest, "performance")
    if not metrics:
        return '<p class="muted">No performance rows: the config names no label column.</p>'
    g = grid(reader.history(config.name, metrics, since=shown[0]), shown)
    figures = performance_figures(config, g, metrics, segments, calibrated)
    charted = _charted(config, metrics)
    others = [
        m
        for m in _realized(metrics)
        if m not in charted and m != "label_coverage" and not is_proxy(m)
    ]
    rest = ""
    if others:
        rows = []
        for metric in others:
            key = (metric, "", "all")
            rows.append(
                [
                    esc(metric),
                    esc(number(g.latest(key))),
                    esc(number(g.latest((ESTIMATED_PREFIX + metric, "", "all")))),
                    sparkline(g.values(key), None, label=f"{metric}, whole population"),
                ]
            )
        rest = "<h3>Other metrics (whole population)</h3>" + table(
            ["metric", "latest realized", "latest estimated", f"realized, last {len(shown)}"],
            rows,
            numeric=(1, 2),
        )
    return f'<div class="charts">{"".join(figures)}</div>{rest}'


# -- cost -------------------------------------------------------------------------------------


def _cost(reader: StoreReader, config: ModelConfig, latest: pa.Table, shown: list[datetime]) -> str:
    metrics = _layer_metrics(latest, "cost")
    if not metrics:
        return '<p class="muted">No cost rows: the config names no latency or cost column.</p>'
    rows = reader.history(config.name, metrics, since=shown[0])
    g = grid(rows.filter(pc.equal(rows["segment"], "all")), shown)
    figures = []
    latency = [m for m in LATENCY if m in metrics]
    if latency:
        series = [
            Series(
                m.removesuffix("_ms"),
                g.values((m, "", "all")),
                i,
                flagged=g.flagged((m, "", "all")),
            )
            for i, m in enumerate(latency)
        ]
        thresholds = [
            Threshold(float(r.threshold), f"rule {r.name}")
            for r in config.alerts
            if r.metric in latency and isinstance(r.threshold, float | int)
        ]
        chart = line_chart(shown, series, thresholds=thresholds, label="latency percentiles")
        figures.append(_figure("latency percentiles (ms)", chart, legend(series, thresholds)))
    for metric in (m for m in metrics if m not in LATENCY):
        key = (metric, "", "all")
        series = [Series(metric, g.values(key), 0, flagged=g.flagged(key))]
        level = g.latest_threshold(key)
        thresholds = [Threshold(level, "alert level")] if level is not None else []
        chart = line_chart(shown, series, thresholds=thresholds, label=metric)
        figures.append(_figure(metric, chart, legend(series, thresholds)))
    return f'<p class="muted">Whole population.</p><div class="charts">{"".join(figures)}</div>'


# -- the page ---------------------------------------------------------------------------------


def model_page(
    reader: StoreReader,
    model: str,
    *,
    windows: int,
    all_features: bool,
    signed_in: bool,
) -> str:
    config = reader.config(model)
    starts = reader.window_starts(model)
    owners = ", ".join(
        esc(o.name) + (f' <span class="muted">({esc(o.contact)})</span>' if o.contact else "")
        for o in config.owners
    )
    head = (
        f'<p class="muted"><a href="{esc(href())}">All models</a></p>'
        f"<h1>{esc(model)}</h1>"
        f"<p>{esc(config.task)} model \u00b7 windows of {esc(format_duration(config.window))}"
        f" \u00b7 labels after {esc(format_duration(config.label_lag))}"
        f" \u00b7 owners: {owners or 'none named'}</p>"
    )
    if not starts:
        body = head + '<p class="muted">No window has been checked yet.</p>'
        return page(model, body, signed_in=signed_in)
    shown = starts[-windows:]
    latest = reader.window_rows(model, starts[-1])
    snapshots = reader.layer_states(model, starts, latest)
    incidents = reader.incidents(model)
    deliveries = reader.deliveries() if incidents else {}
    calibrated = reader.calibrated(model)
    segments = reader.segments(model, latest["segment"].to_pylist())[:TOP_SEGMENTS]
    open_count = sum(1 for i in incidents if i.is_open)
    sections = [
        (
            "inputs",
            "Inputs",
            _inputs(reader, model, latest, shown, calibrated, all_features, windows),
        ),
        (
            "predictions",
            "Predictions",
            _predictions(reader, config, latest, starts, shown, segments),
        ),
        (
            "performance",
            "Performance",
            _performance(reader, config, latest, shown, segments, calibrated),
        ),
        ("cost", "Cost and latency", _cost(reader, config, latest, shown)),
        (
            "incidents",
            f"Incidents ({open_count} open)",
            incidents_table(reader, model, incidents, deliveries),
        ),
    ]
    states = {s.layer: s for s in snapshots}
    body = (
        head
        + layer_badges(snapshots)
        + f'<p class="muted">Latest window {esc(when(starts[-1]))}; {len(starts)} stored.</p>'
        + range_nav(href("models", model), windows, len(starts))
        + "".join(
            f'<section id="{anchor}"><h2>{title}'
            + (
                f" {badge(states[anchor].state.replace('_', ' '), states[anchor].state)}"
                if anchor in states
                else ""
            )
            + f"</h2>{content}</section>"
            for anchor, title, content in sections
        )
    )
    return page(model, body, signed_in=signed_in)
