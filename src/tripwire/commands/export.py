"""``tripwire export``: Prometheus alerting rules and a Grafana dashboard over the metrics that
``tripwire serve`` exposes at ``/metrics`` (see :mod:`tripwire.server.metrics`).

A rule of tripwire.yaml becomes one Prometheus alerting rule per model:

* the threshold becomes the comparison: a static ``threshold`` compares the gauge with the
  number (in Prometheus's units: 350 ms is 0.35 s), ``baseline: reference`` with the
  ``_reference`` gauge plus or minus the threshold, ``threshold: calibrated`` with the
  ``_calibrated_threshold`` gauge (and the rule's floor or the metric's default level where a
  series has no calibration), ``threshold_z`` with the mean and standard deviation of the
  gauge's samples over the trailing baseline, which ends one window back;
* ``direction`` (default: the way the metric gets worse) picks ``>``, ``<`` or both;
* persistence (``window: 3d`` on daily windows: three windows in a row) becomes ``for:``. A
  window's value is exposed from the moment it is checked until the next window is, so by the
  time the third breaching window is checked the breach has held for two windows: ``for: 2d``;
* ``resolve_after`` becomes ``keep_firing_for``, as tripwire keeps an incident open until that
  many windows pass clean;
* ``severity`` is a label, ``summary``, ``description``, the runbook's three sections and
  ``runbook_url`` (from ``--runbook-url``, or a runbook that is itself a URL) annotations.

``digest`` rules are left out: they feed tripwire's weekly digest, not an on-call. So are parts
Prometheus cannot see (drift of one segment: drift is exported for the whole population); the
command says which. ``min_samples`` is not applied: a window or segment too small for a verdict
is stored without a value, and the exporter leaves such rows out.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable, Sequence
from datetime import timedelta
from pathlib import Path
from typing import Any

import click
import yaml

from tripwire.alerts.engine import direction_of, rule_features
from tripwire.commands.common import err
from tripwire.config import AlertRule, ModelConfig, load_config
from tripwire.errors import TripwireError
from tripwire.layers.catalog import CATALOG
from tripwire.layers.thresholds import DEFAULTS
from tripwire.server.metrics import alerting_rules, family_of

# -- Prometheus alerting rules --------------------------------------------------------------


def prom_duration(length: timedelta) -> str:
    """``length`` in Prometheus's duration syntax.

    >>> prom_duration(timedelta(days=2)), prom_duration(timedelta(hours=36, minutes=5))
    ('2d', '1d12h5m')
    """
    seconds = int(length.total_seconds())
    parts = []
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        if seconds >= size:
            parts.append(f"{seconds // size}{unit}")
            seconds %= size
    return "".join(parts) or "0s"


def _number(value: float) -> str:
    """A threshold in PromQL: short, and exact enough (0.35, not 0.35000000000000003)."""
    return f"{value:.10g}"


def _quoted(value: str) -> str:
    return json.dumps(value)  # a PromQL string literal escapes as JSON does


def _any_of(values: Iterable[str]) -> str:
    """A PromQL regular expression matching exactly ``values``."""
    return _quoted("|".join(re.escape(v) for v in values))


def _selector(rule: AlertRule, config: ModelConfig, features: Sequence[str] | None) -> str:
    info = CATALOG[rule.metric]
    family = family_of(rule.metric, info.layer)
    matchers = [f"model={_quoted(config.name)}"]
    if family.metric_label:
        matchers.append(f"metric={_quoted(rule.metric)}")
    matchers += [f"{key}={_quoted(value)}" for key, value in family.fixed]
    if features is not None:
        matchers.append(f"feature=~{_any_of(features)}")
    if not info.per_feature:
        if rule.segment == "all":
            matchers.append('segment="all"')
        elif isinstance(rule.segment, list):
            matchers.append(f"segment=~{_any_of(rule.segment)}")
    return "{" + ", ".join(matchers) + "}"


def _either(direction: str, above: str, below: str) -> str:
    if direction == "above":
        return above
    if direction == "below":
        return below
    return f"{above} or {below}"


def _fallback(rule: AlertRule) -> float | None:
    """A calibrated rule's level for a series without a calibration (as the engine's)."""
    if rule.floor is not None:
        return rule.floor
    default = DEFAULTS.get(rule.metric)
    return default.alert if default is not None and default.basis == "absolute" else None


def rule_expression(
    rule: AlertRule, config: ModelConfig, features: Sequence[str] | None
) -> tuple[str, str]:
    """The PromQL expression of ``rule`` for ``config``'s model, and a phrase saying when it
    breaches (for the summary)."""
    family = family_of(rule.metric, CATALOG[rule.metric].layer)
    selector = _selector(rule, config, features)
    x = family.name() + selector
    direction = direction_of(rule)
    unit = f" {family.unit}" if family.unit == "seconds" else ""
    if rule.threshold_z is not None:
        length = rule.baseline_length()
        assert length is not None  # validated at load
        n = int(length / config.window)
        past = f"{x}[{prom_duration(length)}] offset {prom_duration(config.window)}"
        # stddev_over_time divides by n; the engine's trailing deviation by n - 1.
        k = _number(rule.threshold_z * math.sqrt(n / (n - 1)))
        mean, spread = f"avg_over_time({past})", f"stddev_over_time({past})"
        expr = _either(
            direction, f"{x} > {mean} + {k} * {spread}", f"{x} < {mean} - {k} * {spread}"
        )
        when = f"{rule.threshold_z:g} standard deviations from its {rule.baseline} mean"
        return expr, when
    if rule.baseline == "reference":
        assert isinstance(rule.threshold, float | int)  # validated at load
        t = _number(rule.threshold * family.scale)
        ref = family.name("reference") + selector
        expr = _either(direction, f"{x} > {ref} + {t}", f"{x} < {ref} - {t}")
        return expr, f"more than {t}{unit} from the reference ({direction})"
    if rule.threshold == "calibrated":
        cal = family.name("calibrated_threshold") + selector
        fallback = _fallback(rule)
        if direction == "both":
            expr = f"abs({x}) > {cal}"
            if fallback is not None:
                expr += f" or abs({x} unless {cal}) > {_number(fallback * family.scale)}"
            return expr, "beyond its calibrated threshold (either way)"
        op = ">" if direction == "above" else "<"
        expr = f"{x} {op} {cal}"
        if fallback is not None:
            expr += f" or ({x} unless {cal}) {op} {_number(fallback * family.scale)}"
        return expr, f"{direction} its calibrated threshold"
    assert isinstance(rule.threshold, float | int)  # validated at load
    limit = float(rule.threshold) * family.scale
    level = _number(limit)
    if direction == "both":  # |value| beyond the threshold, as the engine reads it
        return f"{x} > {level} or {x} < {_number(-limit)}", f"beyond ±{level}{unit}"
    op = ">" if direction == "above" else "<"
    return f"{x} {op} {level}", f"{direction} {level}{unit}"


def _summary(rule: AlertRule, config: ModelConfig, when: str) -> str:
    info = CATALOG[rule.metric]
    which = "{{ $labels.feature }}" if info.per_feature else "segment {{ $labels.segment }}"
    persistence = int((rule.window or config.window) / config.window)
    windows = f" for {persistence} windows" if persistence > 1 else ""
    return (
        f"{{{{ $labels.model }}}}: {rule.metric} of {which} is "
        f'{{{{ $value | printf "%.4g" }}}}, {when}{windows}'
    )


def _runbook_url(rule: AlertRule, model: str, template: str | None) -> str | None:
    if isinstance(rule.runbook, str) and re.match(r"https?://\S+$", rule.runbook.strip()):
        return rule.runbook.strip()
    if template is None:
        return None
    return template.format(model=model, rule=rule.name)


def alerting_rule(
    rule: AlertRule, config: ModelConfig, importance: dict[str, float], runbook_url: str | None
) -> dict[str, Any]:
    """One Prometheus alerting rule for ``rule`` of ``config``'s model."""
    features = None
    if CATALOG[rule.metric].per_feature and rule.feature_set != "all":
        features = rule_features(rule, config, importance)
    expr, when = rule_expression(rule, config, features)
    persistence = int((rule.window or config.window) / config.window)
    runbook = rule.resolve_runbook()
    assert runbook is not None  # every rule has one (validated at load)
    described = [runbook.what_it_means]
    if runbook.what_to_check:
        described.append(f"What to check: {runbook.what_to_check}")
    if runbook.who_owns_the_fix:
        described.append(f"Who owns the fix: {runbook.who_owns_the_fix}")
    annotations = {
        "summary": _summary(rule, config, when),
        "description": " ".join(described),
        "what_it_means": runbook.what_it_means,
        "what_to_check": runbook.what_to_check,
        "who_owns_the_fix": runbook.who_owns_the_fix,
        "runbook_url": _runbook_url(rule, config.name, runbook_url),
    }
    labels = {"severity": rule.severity, "route": config.route_for(rule), "owner": rule.owner}
    entry: dict[str, Any] = {"alert": rule.name, "expr": expr}
    if persistence > 1:
        entry["for"] = prom_duration((persistence - 1) * config.window)
    if rule.resolve_after > 1:
        entry["keep_firing_for"] = prom_duration((rule.resolve_after - 1) * config.window)
    entry["labels"] = {k: v for k, v in labels.items() if v}
    entry["annotations"] = {k: v for k, v in annotations.items() if v}
    return entry


def _left_out(rule: AlertRule, config: ModelConfig, importance: dict[str, float]) -> str | None:
    """Why ``rule`` cannot be written for Prometheus (None: it can)."""
    info = CATALOG[rule.metric]
    if info.per_feature and not rule_features(rule, config, importance):
        return "it watches no feature (its feature set is empty without importance)"
    if rule.threshold_z is not None:
        length = rule.baseline_length()
        if length is None or int(length / config.window) < 2:
            return "its trailing baseline spans fewer than two windows"
    return None


def prometheus_rules(
    configs: Sequence[ModelConfig], runbook_url: str | None = None
) -> tuple[dict[str, Any], list[str]]:
    """The rule file (one group per model) and notes on what could not be carried over."""
    groups = []
    notes = []
    for config in configs:
        importance = config.resolve_importance()
        rules = []
        alerting = alerting_rules(config)  # the ones the exporter exports series for
        for rule in config.alerts:
            where = f"{config.name}: rule {rule.name!r}"
            if rule not in alerting:
                notes.append(f"{where} left out: digest rules go to tripwire's weekly digest")
                continue
            reason = _left_out(rule, config, importance)
            if reason is not None:
                notes.append(f"{where} left out: {reason}")
                continue
            if CATALOG[rule.metric].per_feature and rule.segment != "all":
                notes.append(
                    f"{where}: watches the whole population only (drift is exported without "
                    "segments)"
                )
            rules.append(alerting_rule(rule, config, importance, runbook_url))
        groups.append({"name": f"tripwire-{config.name}", "rules": rules})
    return {"groups": groups}, notes


# -- the Grafana dashboard ------------------------------------------------------------------

DATASOURCE = {"type": "prometheus", "uid": "${datasource}"}
_M = 'model="$model"'


class _Layout:
    """Panels placed left to right, top to bottom, with ids in order."""

    def __init__(self) -> None:
        self.panels: list[dict[str, Any]] = []
        self.x = 0
        self.y = 0
        self.height = 0

    def _place(self, w: int, h: int) -> dict[str, int]:
        if self.x + w > 24:
            self.x, self.y, self.height = 0, self.y + self.height, 0
        place = {"h": h, "w": w, "x": self.x, "y": self.y}
        self.x += w
        self.height = max(self.height, h)
        return place

    def row(self, title: str) -> None:
        self.x, self.y, self.height = 0, self.y + self.height, 0
        self.panels.append(
            {
                "id": len(self.panels) + 1,
                "type": "row",
                "title": title,
                "collapsed": False,
                "gridPos": self._place(24, 1),
                "panels": [],
            }
        )
        self.x, self.y, self.height = 0, self.y + 1, 0

    def panel(
        self,
        title: str,
        targets: Sequence[tuple[str, str]],
        *,
        kind: str = "timeseries",
        unit: str | None = None,
        description: str = "",
        thresholds: Sequence[float] = (),
        w: int = 12,
        h: int = 8,
    ) -> None:
        steps: list[dict[str, Any]] = [{"color": "green", "value": None}]
        steps += [
            {"color": color, "value": value}
            for color, value in zip(("orange", "red"), thresholds, strict=False)
        ]
        defaults: dict[str, Any] = {"thresholds": {"mode": "absolute", "steps": steps}}
        if unit is not None:
            defaults["unit"] = unit
        if thresholds and kind == "timeseries":
            defaults["custom"] = {"thresholdsStyle": {"mode": "line"}}
        instant = kind in ("stat", "bargauge")
        self.panels.append(
            {
                "id": len(self.panels) + 1,
                "type": kind,
                "title": title,
                "description": description,
                "datasource": DATASOURCE,
                "gridPos": self._place(w, h),
                "fieldConfig": {"defaults": defaults, "overrides": []},
                "options": {"legend": {"displayMode": "list", "placement": "bottom"}}
                if kind == "timeseries"
                else {"reduceOptions": {"calcs": ["lastNotNull"], "values": False}},
                "targets": [
                    {
                        "datasource": DATASOURCE,
                        "refId": chr(ord("A") + i),
                        "expr": expr,
                        "legendFormat": legend,
                        "instant": instant,
                        "range": not instant,
                    }
                    for i, (expr, legend) in enumerate(targets)
                ],
            }
        )


def _variable(name: str, label: str, query: str) -> dict[str, Any]:
    return {
        "name": name,
        "label": label,
        "type": "query",
        "datasource": DATASOURCE,
        "definition": query,
        "query": {"query": query, "refId": f"{name}-values"},
        "refresh": 2,  # on time range change: a new model shows up without a reload
        "includeAll": False,
        "multi": False,
        "sort": 1,
        "current": {},
        "options": [],
        "hide": 0,
    }


def grafana_dashboard(title: str = "tripwire", uid: str = "tripwire-models") -> dict[str, Any]:
    """A Grafana dashboard (schema 39) over the exporter's metrics: one row per layer, the
    model chosen by a variable, the data source an input chosen at import."""
    g = _Layout()
    g.row("Overview")
    g.panel(
        "Open incidents",
        [(f"sum by (severity) (tripwire_open_incidents{{{_M}}})", "{{severity}}")],
        kind="stat",
        w=8,
        h=5,
        thresholds=(1,),
    )
    g.panel(
        "Time since the latest checked window ended",
        [
            (
                f"time() - tripwire_latest_window_start_timestamp_seconds{{{_M}}}"
                f" - tripwire_window_length_seconds{{{_M}}}",
                "{{model}}",
            )
        ],
        kind="stat",
        unit="s",
        w=8,
        h=5,
    )
    g.panel(
        "Predictions in the latest window",
        [(f'tripwire_window_predictions{{{_M}, segment="all"}}', "{{model}}")],
        kind="stat",
        unit="short",
        w=8,
        h=5,
    )
    g.row("Inputs: drift of the features that matter")
    g.panel(
        "PSI by feature",
        [(f'tripwire_feature_drift{{{_M}, metric="psi"}}', "{{feature}}")],
        description="Below 0.1 stable, 0.1 to 0.25 watch, above 0.25 investigate.",
        thresholds=(0.1, 0.25),
    )
    g.panel(
        "PSI now, highest first",
        [(f'sort_desc(tripwire_feature_drift{{{_M}, metric="psi"}})', "{{feature}}")],
        kind="bargauge",
        thresholds=(0.1, 0.25),
    )
    g.panel(
        "Null share against the reference",
        [
            (f'tripwire_feature_drift{{{_M}, metric="null_share"}}', "{{feature}}"),
            (f'tripwire_feature_drift_reference{{{_M}, metric="null_share"}}', "{{feature}} ref"),
        ],
        unit="percentunit",
    )
    g.panel(
        "Other drift metrics the rules watch",
        [(f'tripwire_feature_drift{{{_M}, metric!~"psi|null_share"}}', "{{feature}} {{metric}}")],
    )
    g.panel(
        "Calibrated thresholds",
        [(f"tripwire_feature_drift_calibrated_threshold{{{_M}}}", "{{feature}} {{metric}}")],
        w=24,
        h=6,
    )
    g.row("Predictions")
    for metric, title in (("mean_pred", "Mean prediction"), ("positive_rate", "Positive rate")):
        g.panel(
            f"{title} by segment, with the reference",
            [
                (f'tripwire_prediction_value{{{_M}, metric="{metric}"}}', "{{segment}}"),
                (
                    f'tripwire_prediction_reference{{{_M}, metric="{metric}", segment="all"}}',
                    "reference",
                ),
            ],
        )
    g.panel(
        "Score PSI and entropy",
        [
            (
                f'tripwire_prediction_value{{{_M}, metric=~"score_psi|entropy"}}',
                "{{metric}} {{segment}}",
            )
        ],
        w=24,
    )
    g.row("Performance (as labels arrive)")
    g.panel(
        "$performance by segment, with the reference",
        [
            (f'tripwire_performance_value{{{_M}, metric="$performance"}}', "{{segment}}"),
            (f'tripwire_performance_reference{{{_M}, metric="$performance"}}', "{{segment}} ref"),
        ],
        description="Overall and the top segments on one chart, with the same thresholds.",
    )
    g.panel(
        "Label coverage",
        [(f'tripwire_performance_value{{{_M}, metric="label_coverage"}}', "{{segment}}")],
        unit="percentunit",
    )
    g.panel(
        "Label lag",
        [(f'tripwire_label_lag_seconds{{{_M}, segment="all"}}', "p{{percentile}}")],
        unit="s",
        w=24,
        h=6,
    )
    g.row("Cost and latency")
    g.panel(
        "Latency",
        [
            (f'tripwire_latency_seconds{{{_M}, segment="all"}}', "p{{percentile}}"),
            (f'tripwire_latency_reference_seconds{{{_M}, segment="all"}}', "p{{percentile}} ref"),
        ],
        unit="s",
        w=8,
    )
    g.panel(
        "Error ratio", [(f"tripwire_error_ratio{{{_M}}}", "{{segment}}")], unit="percentunit", w=8
    )
    g.panel(
        "Cost per 1,000 predictions",
        [(f"tripwire_cost_per_1k_predictions{{{_M}}}", "{{segment}}")],
        w=8,
    )
    g.row("Pipeline health (all models)")
    g.panel(
        "Events into the collector",
        [("sum by (outcome) (rate(tripwire_collector_events_total[5m]))", "{{outcome}}")],
        unit="ops",
        w=8,
    )
    g.panel(
        "Labels into the collector",
        [("sum by (outcome) (rate(tripwire_collector_labels_total[5m]))", "{{outcome}}")],
        unit="ops",
        w=8,
    )
    g.panel(
        "Events $model's loggers dropped",
        [
            (
                f"increase(tripwire_logger_dropped_events_total{{{_M}}}[1h])",
                "dropped in the last hour",
            )
        ],
        description="Events tripwire.Logger dropped in serving processes (a full buffer), as "
        "they report with their batches over HTTP.",
        thresholds=(1,),
        w=8,
    )
    consumer = "{{source}} {{stream}} {{group}}"
    g.panel(
        "Queue consumers' lag",
        [("tripwire_consumer_lag_events", consumer)],
        unit="short",
        description="Events in each Kafka topic or Redis stream its tripwire consume group "
        "has not stored yet.",
        w=8,
    )
    g.panel(
        "Events the queue consumers stored",
        [("rate(tripwire_consumer_events_stored_total[5m])", consumer)],
        unit="ops",
        w=8,
    )
    g.panel(
        "Time since each consumer group reported",
        [("time() - tripwire_consumer_report_timestamp_seconds", consumer)],
        kind="stat",
        unit="s",
        description="A running consumer reports every few seconds, idle or not.",
        thresholds=(60, 300),
        w=8,
    )
    g.panel(
        "Alert outbox",
        [("tripwire_outbox_pending", "pending"), ("tripwire_outbox_dead", "dead")],
        w=8,
        thresholds=(1,),
    )
    g.panel(
        "Scheduler and store",
        [
            ("tripwire_scheduler_failing", "failing {{model}}"),
            ("tripwire_scheduler_running", "scheduler running"),
            ("tripwire_store_up", "store up"),
        ],
        w=8,
    )
    g.panel(
        "Window check duration of $model, p95",
        [
            (
                "histogram_quantile(0.95, sum by (le) "
                f"(rate(tripwire_job_duration_seconds_bucket{{{_M}}}[1h])))",
                "p95",
            )
        ],
        unit="s",
        description="How long checking a window took, from waiting for the store to the "
        "alerts sent.",
        w=8,
    )
    g.panel(
        "Failed window checks of $model",
        [(f"increase(tripwire_job_failures_total{{{_M}}}[1h])", "failed in the last hour")],
        thresholds=(1,),
        w=8,
    )
    return {
        "__inputs": [
            {
                "name": "DS_PROMETHEUS",
                "label": "Prometheus",
                "description": "The Prometheus that scrapes tripwire serve's /metrics.",
                "type": "datasource",
                "pluginId": "prometheus",
                "pluginName": "Prometheus",
            }
        ],
        "__requires": [
            {"type": "grafana", "id": "grafana", "name": "Grafana", "version": "10.0.0"},
            {"type": "datasource", "id": "prometheus", "name": "Prometheus", "version": "1.0.0"},
        ],
        "annotations": {"list": []},
        "description": "Models watched by tripwire: drift, predictions, performance, cost and "
        "the pipeline's health, from tripwire serve's /metrics.",
        "editable": True,
        "graphTooltip": 1,
        "links": [],
        "panels": g.panels,
        "refresh": "1m",
        "schemaVersion": 39,
        "tags": ["tripwire", "ml-monitoring"],
        "templating": {
            "list": [
                {
                    "name": "datasource",
                    "label": "Data source",
                    "type": "datasource",
                    "query": "prometheus",
                    "current": {"text": "${DS_PROMETHEUS}", "value": "${DS_PROMETHEUS}"},
                    "hide": 0,
                },
                _variable("model", "Model", "label_values(tripwire_window_length_seconds, model)"),
                _variable(
                    "performance",
                    "Performance metric",
                    'label_values(tripwire_performance_value{model="$model"}, metric)',
                ),
            ]
        },
        "time": {"from": "now-30d", "to": "now"},
        "timepicker": {},
        "timezone": "utc",
        "title": title,
        "uid": uid,
        "version": 1,
    }


# -- the commands ---------------------------------------------------------------------------


def _write(text: str, path: Path | None, what: str) -> None:
    if path is None:
        click.echo(text, nl=False)
        return
    try:
        path.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise TripwireError(f"cannot write {path}: {exc.strerror or exc}") from exc
    err.print(f"wrote {what} to {path}")


_out_option = click.option(
    "--out",
    "out_path",
    type=click.Path(path_type=Path, dir_okay=False),
    help="Where to write it (default: standard output).",
)


@click.group()
def export() -> None:
    """Write configuration for an existing Prometheus and Grafana, over the metrics that
    `tripwire serve` exposes at /metrics."""


@export.command("prometheus-rules")
@click.option(
    "--config",
    "config_paths",
    required=True,
    multiple=True,
    type=click.Path(path_type=Path),
    help="A model's tripwire.yaml; repeat for each model.",
)
@_out_option
@click.option(
    "--runbook-url",
    metavar="TEMPLATE",
    help="Each alert's runbook_url, with {model} and {rule} filled in "
    "(a rule whose runbook is itself a URL keeps it).",
)
def prometheus_rules_command(
    config_paths: tuple[Path, ...], out_path: Path | None, runbook_url: str | None
) -> None:
    """Write Prometheus alerting rules for the configs' page and ticket rules.

    Each rule keeps its threshold, direction and persistence (as `for:`), its severity as a
    label and its runbook as annotations. Check the file with `promtool check rules` and list
    it under rule_files in prometheus.yml.

    \b
    Example:
      tripwire export prometheus-rules --config tripwire.yaml --out tripwire-rules.yml \\
          --runbook-url 'https://wiki.example.com/ml/{model}#{rule}'
    """
    configs = [load_config(path) for path in config_paths]
    if runbook_url is not None:
        try:
            runbook_url.format(model="m", rule="r")
        except (KeyError, IndexError, ValueError) as exc:
            raise click.BadParameter(
                f"only {{model}} and {{rule}} can be filled in ({exc})", param_hint="--runbook-url"
            ) from None
    rules, notes = prometheus_rules(configs, runbook_url)
    header = (
        f"# Prometheus alerting rules written by `tripwire export prometheus-rules` from "
        f"{', '.join(str(p) for p in config_paths)}.\n"
        "# They alert on the gauges tripwire serve exposes at /metrics; tripwire's own\n"
        "# incidents are derived from the same rows.\n"
    )
    body = yaml.safe_dump(rules, sort_keys=False, allow_unicode=True, width=100)
    _write(header + body, out_path, f"{sum(len(g['rules']) for g in rules['groups'])} rules")
    for note in notes:
        err.print(f"note: {note}")


@export.command("grafana-dashboard")
@_out_option
@click.option("--title", default="tripwire", show_default=True, help="The dashboard's title.")
@click.option("--uid", default="tripwire-models", show_default=True, help="The dashboard's uid.")
def grafana_dashboard_command(out_path: Path | None, title: str, uid: str) -> None:
    """Write a Grafana dashboard over the metrics at /metrics: one row per layer, a model
    picker, and pipeline health.

    Import it in Grafana (Dashboards, New, Import) and pick the Prometheus that scrapes
    tripwire serve, or provision it from a file.

    \b
    Example:
      tripwire export grafana-dashboard --out tripwire-dashboard.json
    """
    _write(json.dumps(grafana_dashboard(title, uid), indent=2) + "\n", out_path, "the dashboard")


COMMANDS = (export,)
