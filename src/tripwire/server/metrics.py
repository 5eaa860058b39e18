"""Prometheus exposition at ``GET /metrics``: each model's latest checked window, its open
incidents, and the server's own health, read from the store when Prometheus scrapes.

Nothing is recomputed. Every layer gauge is a stored metric row of the latest window the job
checked (its ``value`` and, where the metric has one, its ``reference``); calibrated thresholds
are the stored calibrations, incident counts the stored incidents. Units follow Prometheus's
conventions: latency and label lag in seconds (tripwire stores milliseconds and hours), shares
as ratios.

Metric families and their labels
--------------------------------
=====================================================  ==========================================
``tripwire_feature_drift{model,feature,metric}``       input drift (psi, null_share, ...)
``tripwire_prediction_value{model,metric,segment}``    mean_pred, positive_rate, entropy, score_psi
``tripwire_performance_value{model,metric,segment}``   auc, rmse, ..., label_coverage
``tripwire_label_lag_seconds{model,segment,percentile}`` label lag, percentile 50 and 90
``tripwire_latency_seconds{model,segment,percentile}``   latency, percentile 50, 95 and 99
``tripwire_error_ratio{model,segment}``                share of requests with an error status
``tripwire_cost_per_1k_predictions{model,segment}``    in the cost column's unit
=====================================================  ==========================================

Each of them has a ``_reference`` twin (the reference window's value: what ``baseline:
reference`` rules compare with) and a ``_calibrated_threshold`` twin (from ``tripwire
calibrate``), with the same labels; the unit stays last (``tripwire_latency_reference_seconds``).
``tripwire_open_incidents{model,severity}`` counts open incidents, and
``tripwire_latest_window_start_timestamp_seconds{model}`` with
``tripwire_window_length_seconds{model}`` says which window the gauges describe.

Cardinality stays low by construction. Drift is exported for the whole population only (no
segment label), for the features that matter: the :data:`TOP_FEATURES` most important ones and
those a ``page`` or ``ticket`` rule watches, times a few metrics: :data:`DRIFT_METRICS` and the
per-feature metrics of those rules. The output gauges carry a ``segment`` label, but stored
segments are already only ``all`` and the few segments tracked per segment column (chosen at
fit from the reference, five by default), so a model has at most a few hundred series.

The server's own health: ``tripwire_collector_events_total{outcome}`` and
``tripwire_collector_labels_total{outcome}`` (stored, duplicate, quarantined: what this
process's collector took since it started), ``tripwire_outbox_pending`` and
``tripwire_outbox_dead`` (alert messages waiting for delivery or given up on),
``tripwire_scheduler_running``, ``tripwire_scheduler_failing{model}``,
``tripwire_scheduler_next_due_timestamp_seconds{model}``, ``tripwire_store_up`` and
``tripwire_store_snapshot_timestamp_seconds``. The scheduler times each window check (failed
ones too, from waiting for the store to the alerts sent): the histogram
``tripwire_job_duration_seconds{model}`` (buckets :data:`tripwire.scheduler.DURATION_BUCKETS`),
``tripwire_job_failures_total{model}`` and ``tripwire_job_last_success_timestamp_seconds{model}``,
kept in memory since the server started and read without waiting for the store.
``tripwire_logger_dropped_events_total{model}`` adds up what serving processes'
:class:`tripwire.Logger` dropped (a full buffer, mostly): each batch it sends over HTTP carries
its id and cumulative drop count, and the collector keeps the latest per logger (since the
server started; summed over loggers by the model of their events). Loggers writing to Kafka,
Redis or files report nothing here: their drops are in the logger's own
``tripwire_logger_events_dropped_total`` (:meth:`tripwire.Logger.prometheus_text`), for the
serving process to expose.

The consumers of ``tripwire consume kafka|redis|files`` run as processes of their own; each
records its consumer group's state in the store (its ``consumers`` table) after its batches,
every few seconds while idle, and as it stops, and the scrape reads it, labelled
:data:`CONSUMER_LABELS` (``source``: ``kafka``, ``redis`` or ``file``; ``stream``: the topic,
stream key or spool directory; ``group``, a file consumer's host): one series per consumer
group, however many consumers it has.

================================================  =============================================
``tripwire_consumer_lag_events``                  events in the stream the group has not stored
                                                  yet (absent while unknown)
``tripwire_consumer_events_stored_total``         events new to the store, all the group's
                                                  consumers together
``tripwire_consumer_report_timestamp_seconds``    when a consumer of the group last reported (a
                                                  group whose consumers died stops moving it)
================================================  =============================================
"""

from __future__ import annotations

import logging
import re
import threading
import time
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import TimeoutError as Pending
from dataclasses import dataclass
from datetime import UTC, datetime

import pyarrow as pa
import pyarrow.compute as pc
from fastapi import APIRouter, Depends, Request, Response
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.exposition import choose_encoder
from prometheus_client.registry import CollectorRegistry

from tripwire import __version__
from tripwire.alerts.engine import rule_features
from tripwire.alerts.outbox import Outbox
from tripwire.config import AlertRule, ModelConfig
from tripwire.importance import top_k
from tripwire.layers.catalog import CATALOG
from tripwire.scheduler import Scheduler, SchedulerStatus
from tripwire.server.auth import bearer_guard
from tripwire.server.collector import Collector, IngestCounts
from tripwire.store import Store

__all__ = [
    "CONSUMER_LABELS",
    "DRIFT_METRICS",
    "SEVERITIES",
    "TOP_FEATURES",
    "VARIANTS",
    "DriftSelection",
    "Family",
    "StoreMetrics",
    "alerting_rules",
    "drift_selection",
    "family_of",
    "metrics_router",
]

_log = logging.getLogger(__name__)

TOP_FEATURES = 10
"""Drift is exported for this many of the most important features (and the rules' features)."""
DRIFT_METRICS = ("psi", "null_share")
"""Drift metrics exported for every selected feature, besides the ones rules alert on."""
SEVERITIES = ("page", "ticket", "digest")
VARIANTS = ("", "reference", "calibrated_threshold")
"""The gauges of one metric: its value, the reference's value, its calibrated threshold."""
CONSUMER_LABELS = ("source", "stream", "group")
"""The labels of the queue consumers' series: ``kafka``, ``redis`` or ``file``, the topic, stream
or spool directory, and the consumer group (a file consumer's host)."""
LOCK_WAIT = 2.0
"""Seconds a scrape waits for the store while a job holds it, before it serves the last
snapshot (a scrape must answer within Prometheus's scrape timeout, 10 s by default)."""

_PERCENTILE = re.compile(r"p(\d+)_(ms|hours)$")


@dataclass(frozen=True)
class Family:
    """Where one tripwire metric goes in the exposition: the metric family and its labels."""

    base: str
    layer: str
    help: str
    unit: str = ""  # Prometheus's base unit, last in the name: seconds, ratio
    value_suffix: str = ""  # the value gauge's last word when there is no unit ("value")
    fixed: tuple[tuple[str, str], ...] = ()  # labels that name the metric: the percentile
    scale: float = 1.0  # from tripwire's unit to the base unit (ms to seconds)
    metric_label: bool = False  # whether a ``metric`` label carries tripwire's metric name

    def name(self, variant: str = "") -> str:
        """The family's name for a :data:`VARIANTS` entry."""
        return "_".join(p for p in (self.base, variant or self.value_suffix, self.unit) if p)

    @property
    def label_names(self) -> tuple[str, ...]:
        names = ["model"]
        if self.layer == "inputs":
            names.append("feature")
        if self.metric_label:
            names.append("metric")
        names += [key for key, _ in self.fixed]
        if self.layer != "inputs":
            names.append("segment")
        return tuple(names)

    def labels(self, model: str, metric: str, feature: str, segment: str) -> dict[str, str]:
        """The labels of ``metric``'s series (of ``feature`` for inputs, else of ``segment``)."""
        given = {"model": model, "feature": feature, "metric": metric, "segment": segment}
        given.update(self.fixed)
        return {name: given[name] for name in self.label_names}


def _percentile(metric: str) -> tuple[tuple[str, str], ...]:
    match = _PERCENTILE.search(metric)
    assert match is not None
    # Not "quantile": Prometheus keeps that label for summaries, and these are gauges.
    return (("percentile", match.group(1)),)


def family_of(metric: str, layer: str) -> Family:
    """The family that a stored metric of ``layer`` is exported in."""
    if layer == "inputs":
        return Family(
            "tripwire_feature_drift",
            layer,
            "Drift of an input feature (metric: psi, null_share, ...) in the latest checked "
            "window, whole population.",
            metric_label=True,
        )
    if layer == "predictions":
        return Family(
            "tripwire_prediction",
            layer,
            "A metric of the model's predictions (mean_pred, positive_rate, ...) in the latest "
            "checked window.",
            value_suffix="value",
            metric_label=True,
        )
    if layer == "performance" and metric.startswith("label_lag_"):
        return Family(
            "tripwire_label_lag",
            layer,
            "How long labels took to arrive, by percentile, in the latest checked window.",
            unit="seconds",
            fixed=_percentile(metric),
            scale=3600.0,
        )
    if layer == "performance":
        return Family(
            "tripwire_performance",
            layer,
            "Realized performance (auc, rmse, ..., label_coverage) in the latest checked window.",
            value_suffix="value",
            metric_label=True,
        )
    if _PERCENTILE.search(metric) and metric.endswith("_ms"):
        return Family(
            "tripwire_latency",
            layer,
            "Serving latency, by percentile, in the latest checked window.",
            unit="seconds",
            fixed=_percentile(metric),
            scale=0.001,
        )
    if metric == "error_rate":
        return Family(
            "tripwire_error",
            layer,
            "Share of requests with an error status in the latest checked window.",
            unit="ratio",
        )
    if metric == "cost_per_1k":
        return Family(
            "tripwire_cost_per_1k_predictions",
            layer,
            "Serving cost per 1,000 predictions (in the cost column's unit) in the latest "
            "checked window.",
        )
    return Family(
        "tripwire_cost",
        layer,
        "Another cost metric in the latest checked window.",
        value_suffix="value",
        metric_label=True,
    )


def _variant_help(family: Family, variant: str) -> str:
    if variant == "reference":
        return f"The reference window's value of {family.name()} (same labels)."
    if variant == "calibrated_threshold":
        return f"The threshold calibrated for {family.name()} by tripwire calibrate (same labels)."
    return family.help


# -- what is exported -----------------------------------------------------------------------


def alerting_rules(config: ModelConfig) -> list[AlertRule]:
    """The rules that alert someone (``page`` and ``ticket``); ``digest`` rules feed tripwire's
    weekly digest instead."""
    return [rule for rule in config.alerts if rule.severity != "digest"]


@dataclass(frozen=True)
class DriftSelection:
    """The features and metrics whose drift a model exports."""

    features: frozenset[str]
    metrics: frozenset[str]


def drift_selection(config: ModelConfig, importance: Mapping[str, float]) -> DriftSelection:
    """The :data:`TOP_FEATURES` most important features and every feature an alerting rule
    watches, with :data:`DRIFT_METRICS` and every per-feature metric of those rules.

    >>> from tripwire.config import parse_config
    >>> from tripwire.demo import scenario
    >>> config = parse_config(scenario.CONFIG_YAML)
    >>> chosen = drift_selection(config, config.resolve_importance())
    >>> sorted(chosen.metrics)
    ['null_share', 'out_of_range_share', 'psi', 'unseen_share']
    """
    importance = dict(importance)
    if any(importance.values()):
        features = set(top_k(importance, TOP_FEATURES))
    else:  # no importance known: the first features, as the config lists them
        features = set(list(config.columns.features)[:TOP_FEATURES])
    metrics = set(DRIFT_METRICS)
    for rule in alerting_rules(config):
        if CATALOG[rule.metric].per_feature:
            metrics.add(rule.metric)
            features.update(rule_features(rule, config, importance))
    return DriftSelection(frozenset(features), frozenset(metrics))


def _importance(config: ModelConfig) -> dict[str, float]:
    try:
        return config.resolve_importance()
    except Exception as exc:  # an unreadable importance file must not stop the server
        _log.warning(
            "%s: importance unreadable (%s); drift export by config order", config.name, exc
        )
        return {}


# -- the scrape -----------------------------------------------------------------------------


class _Families:
    """Gauge families by name, created on first use, in the order first used."""

    def __init__(self) -> None:
        self.found: dict[str, GaugeMetricFamily] = {}

    def gauge(self, name: str, help_text: str, labels: Iterable[str] = ()) -> GaugeMetricFamily:
        if name not in self.found:
            self.found[name] = GaugeMetricFamily(name, help_text, labels=list(labels))
        return self.found[name]

    def add(self, name: str, help_text: str, labels: Mapping[str, str], value: float) -> None:
        self.gauge(name, help_text, labels).add_metric(list(labels.values()), value)


def _le(bound: float) -> str:
    """A histogram bucket's ``le`` label, as Prometheus's clients write it."""
    return "+Inf" if bound == float("inf") else repr(float(bound))


def _seconds(moment: datetime) -> float:
    # The store holds naive UTC.
    return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).timestamp()


@dataclass(frozen=True)
class _Model:
    name: str
    config: ModelConfig
    drift: DriftSelection


class StoreMetrics:
    """A Prometheus collector that reads the store at each scrape.

    ``lock`` is the one held around every use of ``store`` (the collector's and the
    scheduler's). While a job holds it longer than :data:`LOCK_WAIT`, a scrape serves the
    store's gauges as last read; ``tripwire_store_snapshot_timestamp_seconds`` says when.
    """

    def __init__(
        self,
        configs: Mapping[str, ModelConfig],
        store: Store,
        lock: threading.Lock,
        *,
        scheduler: Scheduler | None = None,
        counts: IngestCounts | None = None,
    ) -> None:
        self.store = store
        self.lock = lock
        self.scheduler = scheduler
        self.counts = counts
        self.models = [
            _Model(name, config, drift_selection(config, _importance(config)))
            for name, config in configs.items()
        ]
        self._snapshot: list[Metric] = []
        self._snapshot_at: float | None = None
        self._store_up = 0.0
        # The scheduler's status() takes the lock itself, so it is asked on a thread of its own
        # and waited for as long as the store is; meanwhile the last answer is served.
        self._asking = ThreadPoolExecutor(max_workers=1, thread_name_prefix="tripwire-metrics")
        self._asked: Future[SchedulerStatus] | None = None
        self._status: SchedulerStatus | None = None

    def describe(self) -> list[Metric]:
        return []  # registering must not read the store

    def collect(self) -> Iterator[Metric]:
        yield from self._own()
        yield from self._store_families()
        yield from self._scheduler_families()

    def _own(self) -> Iterator[Metric]:
        info = GaugeMetricFamily(
            "tripwire_build_info", "The tripwire version serving.", labels=["version"]
        )
        info.add_metric([__version__], 1.0)
        yield info
        if self.counts is not None:
            events, labels = self.counts.snapshot()
            for kind, counts in (("events", events), ("labels", labels)):
                family = CounterMetricFamily(
                    f"tripwire_collector_{kind}",
                    f"{kind.capitalize()} this process's collector took since it started, by "
                    "outcome (stored, duplicate, quarantined).",
                    labels=["outcome"],
                )
                for outcome, value in counts.items():
                    family.add_metric([outcome], value)
                yield family
            drops = self.counts.logger_drops()
            dropped = CounterMetricFamily(
                "tripwire_logger_dropped_events",
                "Events the serving processes' loggers dropped (buffer full) that sent batches "
                "to this collector over HTTP since it started, as they last reported.",
                labels=["model"],
            )
            for model in sorted({*(m.name for m in self.models), *drops}):
                dropped.add_metric([model], drops.get(model, 0))
            yield dropped

    def _store_families(self) -> Iterator[Metric]:
        if self.lock.acquire(timeout=LOCK_WAIT):
            try:
                self._snapshot = self._read()
                self._snapshot_at = time.time()
                self._store_up = 1.0
            except Exception:
                _log.exception("reading the store for /metrics failed")
                self._store_up = 0.0
            finally:
                self.lock.release()
        yield from self._snapshot
        up = GaugeMetricFamily(
            "tripwire_store_up", "1 when the latest read of the store for /metrics succeeded."
        )
        up.add_metric([], self._store_up)
        yield up
        if self._snapshot_at is not None:
            at = GaugeMetricFamily(
                "tripwire_store_snapshot_timestamp_seconds",
                "When the store's gauges were read (older than the scrape while a job held "
                "the store).",
            )
            at.add_metric([], self._snapshot_at)
            yield at

    def _read(self) -> list[Metric]:
        out = _Families()
        for model in self.models:
            self._read_model(model, out)
        outbox = Outbox(self.store)
        out.add(
            "tripwire_outbox_pending", "Alert messages waiting for delivery.", {}, outbox.backlog()
        )
        out.add(
            "tripwire_outbox_dead",
            "Alert messages given up on after every retry.",
            {},
            len(outbox.dead()),
        )
        stored = self._consumers(out)
        return [*out.found.values(), stored]

    def _consumers(self, out: _Families) -> Metric:
        """The queue consumers' latest reports (``tripwire consume`` runs as processes of its
        own and records its group's state in the store)."""
        stored = CounterMetricFamily(
            "tripwire_consumer_events_stored",
            "Events the consumer group stored that were new to the store, all its consumers "
            "together, as they last reported.",
            labels=list(CONSUMER_LABELS),
        )
        for row in self.store.consumers().to_pylist():
            labels = {"source": row["source"], "stream": row["stream"], "group": row["group_id"]}
            stored.add_metric(list(labels.values()), row["events_stored"])
            out.add(
                "tripwire_consumer_report_timestamp_seconds",
                "When a consumer of the group last reported (after its batches, every few "
                "seconds while it runs, and as it stops).",
                labels,
                _seconds(row["updated_at"]),
            )
            if row["lag"] is not None:
                out.add(
                    "tripwire_consumer_lag_events",
                    "Events in the stream the consumer group had not stored yet, at its latest "
                    "report (Kafka: the partitions' ends less the committed offsets; Redis: "
                    "entries not delivered or not acknowledged).",
                    labels,
                    row["lag"],
                )
        return stored

    def _read_model(self, model: _Model, out: _Families) -> None:
        name, length = model.name, model.config.window
        out.add(
            "tripwire_window_length_seconds",
            "The length of the model's windows.",
            {"model": name},
            length.total_seconds(),
        )
        self._incidents(name, out)
        starts = self.store.window_starts(name, length)
        if not starts:
            return
        latest = starts[-1]
        out.add(
            "tripwire_latest_window_start_timestamp_seconds",
            "The start of the latest checked window, whose rows the layer gauges show.",
            {"model": name},
            _seconds(latest),
        )
        rows = self.store.history(name, length, since=latest, until=latest + length)
        rows = _exported_rows(rows, model.drift)
        calibrated = {
            (c["metric"], c["feature"], c["segment"]): c["threshold"]
            for c in self.store.calibrations(name).to_pylist()
        }
        predictions: dict[str, float] = {}
        for row in rows.to_pylist():
            metric, feature, segment = row["metric"], row["feature"], row["segment"]
            family = family_of(metric, row["layer"])
            labels = family.labels(name, metric, feature, segment)
            given = {
                "": row["value"],
                "reference": row["reference"],
                "calibrated_threshold": calibrated.get((metric, feature, segment)),
            }
            for variant in VARIANTS:
                value = given[variant]
                if value is not None:
                    out.add(
                        family.name(variant),
                        _variant_help(family, variant),
                        labels,
                        value * family.scale,
                    )
            if row["layer"] == "predictions":
                predictions[segment] = max(predictions.get(segment, 0), row["n"])
        for segment, n in predictions.items():
            out.add(
                "tripwire_window_predictions",
                "Predictions in the latest checked window.",
                {"model": name, "segment": segment},
                n,
            )

    def _incidents(self, name: str, out: _Families) -> None:
        incidents = self.store.incidents(name)
        severities: Counter[str] = Counter({severity: 0 for severity in SEVERITIES})
        if incidents.num_rows:
            open_ = incidents.filter(pc.is_null(incidents["resolved_at"]))
            severities.update(open_["severity"].to_pylist())
        for severity, n in severities.items():
            out.add(
                "tripwire_open_incidents",
                "Open incidents, by severity.",
                {"model": name, "severity": severity},
                n,
            )

    def _scheduler_families(self) -> Iterator[Metric]:
        yield from self._job_families()
        status = self._scheduler_status()
        if status is None:
            return
        out = _Families()
        out.add(
            "tripwire_scheduler_running",
            "1 while the scheduler's thread runs.",
            {},
            float(status.running),
        )
        for jobs in status.models:
            labels = {"model": jobs.model}
            out.add(
                "tripwire_scheduler_failing",
                "1 when the model's latest check failed or it could not be scheduled.",
                labels,
                float(jobs.failing),
            )
            if jobs.next_due is not None:
                out.add(
                    "tripwire_scheduler_next_due_timestamp_seconds",
                    "When the model's next window is due to be checked.",
                    labels,
                    _seconds(jobs.next_due),
                )
        yield from out.found.values()

    def _job_families(self) -> Iterator[Metric]:
        """The scheduler's check durations and failures: kept in memory, never waited for."""
        if self.scheduler is None:
            return
        durations = self.scheduler.durations.snapshot()
        histogram = HistogramMetricFamily(
            "tripwire_job_duration_seconds",
            "How long the model's window checks took (failed ones too), from waiting for the "
            "store to the alerts sent, since the server started.",
            labels=["model"],
        )
        failures = CounterMetricFamily(
            "tripwire_job_failures",
            "The model's window checks that failed since the server started (and passes that "
            "could not read its due windows).",
            labels=["model"],
        )
        success = GaugeMetricFamily(
            "tripwire_job_last_success_timestamp_seconds",
            "When the model's latest successful window check ended.",
            labels=["model"],
        )
        for model, d in sorted(durations.items()):
            buckets = [(_le(bound), n) for bound, n in d.cumulative()]
            histogram.add_metric([model], buckets, sum_value=d.total)
            failures.add_metric([model], d.failures)
            if d.last_success is not None:
                success.add_metric([model], _seconds(d.last_success))
        yield histogram
        yield failures
        yield success

    def _scheduler_status(self) -> SchedulerStatus | None:
        if self.scheduler is None:
            return None
        if self._asked is None or self._asked.done():
            self._asked = self._asking.submit(self.scheduler.status)
        try:
            self._status = self._asked.result(timeout=LOCK_WAIT)
        except Pending:
            pass  # a job holds the store: the last status it is
        except Exception:
            _log.exception("reading the scheduler's status for /metrics failed")
        return self._status


def _exported_rows(rows: pa.Table, drift: DriftSelection) -> pa.Table:
    """The latest window's rows that are exported: drift of the selected features and metrics
    for the whole population, every metric of the outputs; rows without a value are left out."""
    inputs = pc.equal(rows["layer"], "inputs")
    chosen = pc.and_(
        pc.and_(
            pc.equal(rows["segment"], "all"),
            pc.is_in(rows["feature"], pa.array(sorted(drift.features), pa.string())),
        ),
        pc.is_in(rows["metric"], pa.array(sorted(drift.metrics), pa.string())),
    )
    keep = pc.and_(pc.or_(pc.invert(inputs), chosen), pc.is_valid(rows["value"]))
    return rows.filter(keep)


# -- the endpoint ---------------------------------------------------------------------------


def metrics_router(
    configs: Mapping[str, ModelConfig],
    store: Store,
    lock: threading.Lock,
    read_token: str | None,
    collector: Collector | None = None,
    scheduler: Scheduler | None = None,
) -> APIRouter:
    """``GET /metrics`` for Prometheus, behind the read token (a bearer token in the scrape
    config's ``authorization``)."""
    counts = collector.counts if collector is not None else None
    registry = CollectorRegistry(auto_describe=False)
    registry.register(StoreMetrics(configs, store, lock, scheduler=scheduler, counts=counts))
    router = APIRouter()

    @router.get(
        "/metrics",
        dependencies=[Depends(bearer_guard(read_token, "ReadToken"))],
        response_class=Response,
        responses={
            200: {"content": {"text/plain": {}}, "description": "The Prometheus exposition."},
            401: {"description": "Missing or wrong bearer token."},
        },
    )
    def metrics(request: Request) -> Response:
        """Each model's latest checked window (drift, predictions, performance, cost), open
        incidents and the server's own health, in Prometheus's text format (or OpenMetrics when
        asked for). Label set and cardinality: see the README's "Prometheus and Grafana"."""
        encode, content_type = choose_encoder(request.headers.get("accept", ""))
        return Response(encode(registry), media_type=content_type)

    return router
