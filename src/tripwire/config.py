"""The per-model ``tripwire.yaml``: typed models, loading, and errors that point at a line.

>>> config = parse_config('''
... name: fraud
... task: binary
... columns:
...   features: {amount: numeric, country: categorical}
...   prediction: score
...   label: is_fraud
... window: 7d
... importance: {amount: 0.4}
... ''')
>>> config.window
datetime.timedelta(days=7)
>>> config.resolve_importance()
{'amount': 0.4, 'country': 0.0}

Mistakes are reported with the file, the line and the field:

>>> try:
...     parse_config('''
... name: fraud
... task: binary
... columns:
...   features: {amount: number}
...   prediction: score
... ''', source="tripwire.yaml")
... except ConfigError as error:
...     print(error)
tripwire.yaml:5: columns.features.amount: expected one of 'numeric', 'categorical', got 'number'
"""

from __future__ import annotations

import csv
import difflib
import math
import types
from collections.abc import Sequence
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Any, Literal, Union, get_args, get_origin

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    NonNegativeFloat,
    PositiveInt,
    PrivateAttr,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_core import ErrorDetails, PydanticCustomError

from tripwire.durations import Duration, format_duration, parse_duration

__all__ = [
    "AlertRule",
    "BusinessValue",
    "Columns",
    "ConfigError",
    "FeatureType",
    "ModelConfig",
    "Owner",
    "PerformanceSettings",
    "Proxy",
    "Runbook",
    "Segments",
    "Task",
    "TopK",
    "load_config",
    "parse_config",
]

FeatureType = Literal["numeric", "categorical"]
Task = Literal["binary", "multiclass", "regression"]

# Tasks the design document promises but that this version cannot monitor yet.
_PLANNED_TASKS = ("llm",)

# Validators attach this context key to an error to point it at a sub-field (e.g. the clashing
# column) rather than at the whole model, so the reported line is the one to fix.
_AT = "tripwire_at"

Loc = tuple[str | int, ...]


class ConfigError(Exception):
    """A config that cannot be read or does not validate.

    ``str(error)`` lists one problem per line as ``file:line: field.path: what was expected``;
    the same lines are available as :attr:`problems`.
    """

    def __init__(self, problems: str | Sequence[str]) -> None:
        self.problems = [problems] if isinstance(problems, str) else list(problems)
        super().__init__("\n".join(self.problems))


def _error_at(at: Loc, message: str) -> PydanticCustomError:
    return PydanticCustomError("tripwire", message, {_AT: at})


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Columns(_Strict):
    """Which column of the logged data plays which role.

    ``prediction`` is the score column of a binary classifier (a probability of the positive
    class, predicted positive from ``decision_threshold`` on), the prediction of a regression
    model, and the predicted class of a multiclass classifier, whose class probabilities are
    ``probabilities``: ``{class: column}``, one numeric column per class, in a fixed order.
    Class names are matched as text against the prediction and label columns (a number by its
    text, ``2`` or ``2.0`` as ``"2"``); stored events carry numbers there, so a model logged
    through the collector names its classes by number.
    """

    timestamp: str | None = None
    id: str | None = None
    features: Annotated[dict[str, FeatureType], Field(min_length=1)]
    prediction: str
    label: str | None = None
    # When each label became known; with the timestamp it gives the label lag. Stored events
    # have it as "label_time" whether or not it is set here.
    label_time: str | None = None
    segments: list[str] = Field(default_factory=list)
    latency_ms: str | None = None
    cost: str | None = None
    status: str | None = None
    ok_status: list[str] = Field(default_factory=lambda: ["ok", "success", "200"])
    probabilities: Annotated[dict[str, str], Field(min_length=2)] | None = None

    @field_validator("probabilities", mode="before")
    @classmethod
    def _class_names_as_text(cls, value: Any) -> Any:
        # YAML reads `{0: p0, 1: p1}` with integer keys; a class is named by its text.
        if isinstance(value, dict):
            return {_class_text(k): v for k, v in value.items()}
        return value

    @field_validator("ok_status", mode="before")
    @classmethod
    def _status_codes_as_text(cls, value: Any) -> Any:
        # YAML reads `ok_status: [ok, 200]` as a mix of str and int; HTTP codes are meant as text.
        if isinstance(value, list):
            return [str(v) if isinstance(v, int) and not isinstance(v, bool) else v for v in value]
        return value

    @property
    def time_column(self) -> str:
        """The timestamp column: as configured, else ``"timestamp"``."""
        return self.timestamp or "timestamp"

    @property
    def label_time_column(self) -> str:
        """When labels became known: as configured, else ``"label_time"``."""
        return self.label_time or "label_time"

    def roles(self) -> dict[str, str]:
        """Single-column roles that are set, as ``{role: column}``.

        >>> Columns(features={"x": "numeric"}, prediction="p", label="y").roles()
        {'prediction': 'p', 'label': 'y'}
        """
        names = (
            "timestamp",
            "id",
            "prediction",
            "label",
            "label_time",
            "latency_ms",
            "cost",
            "status",
        )
        return {role: col for role in names if (col := getattr(self, role)) is not None}

    @model_validator(mode="after")
    def _one_role_per_column(self) -> Columns:
        seen: dict[str, str] = {}
        for role, column in self.roles().items():
            if column in self.features:
                raise _error_at(
                    (role,), f"column {column!r} is both a feature and the {role} column"
                )
            if column in seen:
                raise _error_at(
                    (role,), f"column {column!r} is both the {seen[column]} and the {role} column"
                )
            seen[column] = role
        for name, column in (self.probabilities or {}).items():
            if column in self.features or column in seen:
                what = "a feature" if column in self.features else f"the {seen[column]} column"
                raise _error_at(
                    ("probabilities", name), f"column {column!r} is both {what} and a probability"
                )
            seen[column] = f"probability of class {name!r}"
        # Segments may be features (slicing by country is common) but not single-role columns.
        for i, column in enumerate(self.segments):
            if column in seen:
                raise _error_at(
                    ("segments", i), f"column {column!r} is both a segment and the {seen[column]}"
                )
        return self


class PerformanceSettings(_Strict):
    """When realized performance gets a verdict.

    A window's performance metrics are judged only once at least ``min_labels`` of its rows are
    labelled and they are at least ``min_coverage`` of its rows; until then they are shown with
    status ``insufficient_labels``. Early labels are rarely a fair sample (a chargeback arrives
    sooner for a blatant fraud), hence the share as well as the count. ``confidence`` is the
    level of the intervals on performance and proxy metrics.
    """

    min_labels: PositiveInt = 100
    min_coverage: Annotated[float, Field(ge=0.0, le=1.0)] = 0.3
    confidence: Annotated[float, Field(gt=0.0, lt=1.0)] = 0.95


class Segments(_Strict):
    """Which segments are tracked, each with every layer's metrics.

    For each of ``columns`` the ``top`` values by business value in the reference are chosen at
    fit: the sum of ``value`` (a numeric column; else ``business_value.value_column``; else the
    row count) per value. ``pinned`` segments (``column=value``) are tracked whether or not they
    are among the top. A segment with fewer than ``min_rows`` rows in a window gets no verdict.
    ``columns.segments`` is a short form of ``columns`` here.
    """

    columns: list[str] = Field(default_factory=list)
    value: str | None = None
    top: Annotated[int, Field(ge=0)] = 5
    pinned: list[str] = Field(default_factory=list)
    min_rows: PositiveInt = 100


ProxyValue = str | bool | float


class Proxy(_Strict):
    """A proxy metric: an aggregation over a logged column, which moves long before labels do.

    Exactly one of ``equals`` (share of rows equal to a value), ``in`` (share of rows with one
    of several values) and ``mean: true`` (mean of a numeric or boolean column). Rows where the
    column is null are left out. It is reported as the performance metric ``proxy_<name>``
    and judged against the reference's value; ``direction`` is the way it gets worse.
    """

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    name: Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]*$")]
    column: str
    equals: ProxyValue | None = None
    in_: Annotated[list[ProxyValue], Field(min_length=1)] | None = Field(default=None, alias="in")
    mean: bool = False
    direction: Literal["above", "below", "both"] = "both"

    @model_validator(mode="after")
    def _one_aggregation(self) -> Proxy:
        given = [self.equals is not None, self.in_ is not None, self.mean]
        if sum(given) != 1:
            raise _error_at((), "give exactly one of equals, in and mean: true")
        return self

    @property
    def metric(self) -> str:
        """The metric name rows and alert rules use.

        >>> Proxy(name="blocked_share", column="decision", equals="block").metric
        'proxy_blocked_share'
        """
        return f"proxy_{self.name}"

    @property
    def values(self) -> list[ProxyValue]:
        """The values counted by ``equals`` or ``in`` (empty for a mean)."""
        if self.in_ is not None:
            return list(self.in_)
        return [] if self.equals is None else [self.equals]


class Runbook(_Strict):
    """What an alert means, what to look at, and who fixes it."""

    what_it_means: str
    what_to_check: str
    who_owns_the_fix: str


class TopK(_Strict):
    """Select the ``top_k`` most important features."""

    top_k: PositiveInt


Severity = Literal["page", "ticket", "digest"]


class AlertRule(_Strict):
    """One alert rule: which metric, on which features and segments, when it breaches, for how
    long, and who hears about it.

    ``segment: all`` watches the whole population; ``each`` watches it and every tracked
    segment; ``top`` every tracked segment (the top ones and the pinned ones) but not the whole;
    one ``column=value`` or a list of them names segments. ``direction`` defaults to the way the
    metric gets worse for static thresholds and to both ways for ``threshold_z``.
    """

    name: str
    metric: str
    feature_set: Literal["all", "top_quartile_shap"] | TopK | list[str] = "all"
    segment: Literal["all", "each", "top"] | list[str] = "all"
    threshold: float | Literal["calibrated"] | None = None
    direction: Literal["above", "below", "both"] | None = None
    threshold_z: float | None = None
    baseline: str | None = None
    window: Duration | None = None
    severity: Severity = "ticket"
    runbook: Runbook | str | None = None
    owner: str | None = None
    route: str | None = None
    min_samples: PositiveInt = 100
    resolve_after: PositiveInt = 2
    floor: float | None = None

    @field_validator("segment", mode="before")
    @classmethod
    def _one_segment(cls, value: Any) -> Any:
        # `segment: user_type=new` is one segment; the keywords stay keywords.
        if isinstance(value, str) and value not in ("all", "each", "top"):
            return [value]
        return value

    @model_validator(mode="after")
    def _semantics(self) -> AlertRule:
        # Imported here: the catalog lives with the layers, which import this module.
        from tripwire.layers.catalog import CATALOG

        if self.metric not in CATALOG:
            close = difflib.get_close_matches(self.metric, CATALOG, n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            raise _error_at(("metric",), f"unknown metric {self.metric!r}{hint}")
        if self.runbook is None:
            raise _error_at(
                ("runbook",),
                "every rule needs a runbook (what it means, what to check, who owns the fix)",
            )
        if (self.threshold is None) == (self.threshold_z is None):
            raise _error_at(
                ("threshold",),
                "give exactly one of threshold (a number or 'calibrated') and threshold_z",
            )
        if self.threshold_z is not None:
            if self.baseline is None:
                raise _error_at(("baseline",), "threshold_z needs a baseline, e.g. 7d_trailing")
            if self.baseline_length() is None:
                raise _error_at(
                    ("baseline",),
                    f"expected a trailing baseline like 7d_trailing, got {self.baseline!r}",
                )
        elif self.baseline not in (None, "reference"):
            raise _error_at(
                ("baseline",),
                "with threshold, baseline can only be 'reference' (threshold is then the change "
                "from the reference's value); trailing baselines go with threshold_z",
            )
        if self.baseline == "reference" and not isinstance(self.threshold, float | int):
            raise _error_at(("threshold",), "baseline: reference needs a numeric threshold")
        if not CATALOG[self.metric].per_feature and self.feature_set != "all":
            raise _error_at(
                ("feature_set",),
                f"{self.metric} is not a per-feature metric; leave feature_set out",
            )
        return self

    def baseline_length(self) -> timedelta | None:
        """The trailing baseline's length, from ``Nd_trailing`` (None when malformed)."""
        if self.baseline is None or not self.baseline.endswith("_trailing"):
            return None
        try:
            return parse_duration(self.baseline.removesuffix("_trailing"))
        except ValueError:
            return None

    def resolve_runbook(self) -> Runbook | None:
        """The runbook as a :class:`Runbook`; a bare string becomes ``what_it_means``.

        >>> rule = AlertRule(name="a", metric="psi", threshold=0.25, runbook="Inputs drifted.")
        >>> rule.resolve_runbook()
        Runbook(what_it_means='Inputs drifted.', what_to_check='', who_owns_the_fix='')
        """
        if isinstance(self.runbook, str):
            return Runbook(what_it_means=self.runbook, what_to_check="", who_owns_the_fix="")
        return self.runbook


class _Secret(_Strict):
    """Channels read secrets from environment variables; the config only names them."""


class SlackChannel(_Secret):
    type: Literal["slack"]
    webhook_url_env: str


class PagerDutyChannel(_Secret):
    type: Literal["pagerduty"]
    routing_key_env: str
    url: str = "https://events.pagerduty.com/v2/enqueue"


class WebhookChannel(_Secret):
    type: Literal["webhook"]
    url: str
    token_env: str | None = None  # sent as a bearer token when set


class EmailChannel(_Secret):
    type: Literal["email"]
    to: Annotated[list[str], Field(min_length=1)]
    sender: str = "tripwire@localhost"
    smtp_host: str = "localhost"
    smtp_port: PositiveInt = 25
    starttls: bool = False
    username_env: str | None = None
    password_env: str | None = None


class AlertmanagerChannel(_Secret):
    type: Literal["alertmanager"]
    url: str  # the Alertmanager's base URL; alerts go to {url}/api/v2/alerts


class ConsoleChannel(_Secret):
    type: Literal["console"]


Channel = Annotated[
    SlackChannel
    | PagerDutyChannel
    | WebhookChannel
    | EmailChannel
    | AlertmanagerChannel
    | ConsoleChannel,
    Field(discriminator="type"),
]


def _console_route() -> dict[str, list[Channel]]:
    return {"console": [ConsoleChannel(type="console")]}


def _console_for_every_severity() -> dict[Severity, str]:
    return {"page": "console", "ticket": "console", "digest": "console"}


class Owner(_Strict):
    """Someone responsible for the model."""

    name: str
    role: str | None = None
    contact: str | None = None


class BusinessValue(_Strict):
    """What the model is worth, to weigh alerts: a yearly figure and/or a per-row column."""

    annual_usd: float | None = None
    value_column: str | None = None


class ModelConfig(_Strict):
    """The whole ``tripwire.yaml`` of one model."""

    name: str
    task: Task
    columns: Columns
    decision_threshold: float = 0.5
    label_lag: Duration = timedelta(0)
    window: Duration = timedelta(days=1)
    importance: dict[str, NonNegativeFloat] | str | None = None
    reference: str | None = None
    business_value: BusinessValue | None = None
    owners: list[Owner] = Field(default_factory=list)
    performance: PerformanceSettings = Field(default_factory=PerformanceSettings)
    segments: Segments = Field(default_factory=Segments)
    proxies: list[Proxy] = Field(default_factory=list)
    alerts: list[AlertRule] = Field(default_factory=list)
    # How long raw events are kept; window profiles and metric rows are kept for good.
    retention: Duration | None = None
    routes: dict[str, list[Channel]] = Field(default_factory=_console_route)
    severity_routes: dict[Severity, str] = Field(default_factory=_console_for_every_severity)

    _source: Path | None = PrivateAttr(default=None)

    @field_validator("task", mode="before")
    @classmethod
    def _planned_task(cls, value: Any) -> Any:
        if value in _PLANNED_TASKS:
            raise ValueError(
                f"{value!r} is not supported yet; supported tasks are 'binary', 'multiclass' "
                "and 'regression'"
            )
        return value

    @field_validator("decision_threshold")
    @classmethod
    def _threshold_is_probability(cls, value: float, info: ValidationInfo) -> float:
        if info.data.get("task") == "binary" and not 0.0 < value < 1.0:
            raise ValueError(f"expected a probability strictly between 0 and 1, got {value}")
        return value

    @model_validator(mode="after")
    def _cross_checks(self) -> ModelConfig:
        if self.task == "multiclass" and self.columns.probabilities is None:
            raise _error_at(
                ("columns", "probabilities"),
                "task: multiclass needs columns.probabilities: {class: column}, one column of "
                "probabilities per class",
            )
        if self.task != "multiclass" and self.columns.probabilities is not None:
            raise _error_at(
                ("columns", "probabilities"), "columns.probabilities is for task: multiclass"
            )
        self._check_segments()
        self._check_proxies()
        if isinstance(self.importance, dict):
            for feature in self.importance:
                if feature not in self.columns.features:
                    raise _error_at(
                        ("importance", feature),
                        f"{feature!r} is not in columns.features",
                    )
        names: set[str] = set()
        for i, rule in enumerate(self.alerts):
            if rule.name in names:
                raise _error_at(("alerts", i, "name"), f"duplicate alert name {rule.name!r}")
            names.add(rule.name)
            self._check_rule(i, rule)
        for severity, route in self.severity_routes.items():
            if route not in self.routes:
                raise _error_at(("severity_routes", severity), f"unknown route {route!r}")
        return self

    def _check_segments(self) -> None:
        # One list of segment columns, in both places, so code reading either agrees.
        merged = list(dict.fromkeys([*self.columns.segments, *self.segments.columns]))
        roles = {column: role for role, column in self.columns.roles().items()}
        for i, column in enumerate(self.segments.columns):
            if column in roles:
                raise _error_at(
                    ("segments", "columns", i),
                    f"column {column!r} is both a segment and the {roles[column]}",
                )
        self.columns.segments[:] = merged
        self.segments.columns[:] = merged
        for i, segment in enumerate(self.segments.pinned):
            column, sep, value = segment.partition("=")
            if not sep or not value or column not in merged:
                raise _error_at(
                    ("segments", "pinned", i),
                    f"expected column=value with a segment column, got {segment!r}",
                )

    def _check_proxies(self) -> None:
        names: set[str] = set()
        for i, proxy in enumerate(self.proxies):
            if proxy.name in names:
                raise _error_at(("proxies", i, "name"), f"duplicate proxy name {proxy.name!r}")
            names.add(proxy.name)

    def proxy(self, metric: str) -> Proxy | None:
        """The declared proxy a metric name (``proxy_<name>``) refers to, if any."""
        return next((p for p in self.proxies if p.metric == metric), None)

    def _check_proxy_rule(self, at: Loc, rule: AlertRule) -> None:
        proxy = self.proxy(rule.metric)
        if proxy is None:
            declared = ", ".join(p.metric for p in self.proxies) or "none"
            raise _error_at(
                (*at, "metric"),
                f"unknown proxy metric {rule.metric!r}; the config declares {declared}",
            )
        static = rule.threshold_z is None and rule.baseline != "reference"
        if rule.direction is None and static:
            if proxy.direction == "both":
                raise _error_at(
                    (*at, "direction"),
                    f"a static threshold on {rule.metric} needs direction: above or below "
                    "(or direction on the proxy)",
                )
            rule.direction = proxy.direction
        elif rule.direction is None and rule.threshold_z is None:
            rule.direction = proxy.direction

    def _check_rule(self, i: int, rule: AlertRule) -> None:
        """What a rule can only be checked against the rest of the config."""
        from tripwire.layers.catalog import is_proxy  # see AlertRule._semantics

        at: Loc = ("alerts", i)
        if is_proxy(rule.metric):
            self._check_proxy_rule(at, rule)
        by_importance = rule.feature_set == "top_quartile_shap" or isinstance(
            rule.feature_set, TopK
        )
        if by_importance and self.importance is None:
            raise _error_at(
                (*at, "feature_set"),
                f"rule {rule.name!r} selects features by importance, but the config has no "
                "importance (a mapping or a CSV of mean |SHAP| per feature)",
            )
        if isinstance(rule.feature_set, list):
            for j, feature in enumerate(rule.feature_set):
                if feature not in self.columns.features:
                    raise _error_at(
                        (*at, "feature_set", j), f"{feature!r} is not in columns.features"
                    )
        if rule.segment == "top" and not self.columns.segments:
            raise _error_at(
                (*at, "segment"), "segment: top needs segment columns (segments.columns)"
            )
        if isinstance(rule.segment, list):
            for j, segment in enumerate(rule.segment):
                column, sep, _ = segment.partition("=")
                if not sep or column not in self.columns.segments:
                    raise _error_at(
                        (*at, "segment", j),
                        f"expected column=value with a column from columns.segments, got "
                        f"{segment!r}",
                    )
        for field, length in (("window", rule.window), ("baseline", rule.baseline_length())):
            if length is None:
                continue
            if length < self.window or length % self.window:
                raise _error_at(
                    (*at, field),
                    f"{format_duration(length)} is not a whole number of "
                    f"{format_duration(self.window)} windows",
                )
        if rule.route is not None and rule.route not in self.routes:
            raise _error_at((*at, "route"), f"unknown route {rule.route!r}")

    def route_for(self, rule: AlertRule) -> str:
        """The route a rule's messages take: its own, else its severity's."""
        return rule.route or self.severity_routes[rule.severity]

    @property
    def source(self) -> Path | None:
        """The file this config was loaded from, if any."""
        return self._source

    def resolve_path(self, p: str) -> Path:
        """Resolve a path written in the config against the config file's directory.

        >>> parse_config(_MINIMAL).resolve_path("/data/ref.parquet")
        PosixPath('/data/ref.parquet')
        """
        path = Path(p).expanduser()
        if path.is_absolute() or self._source is None:
            return path
        return self._source.parent / path

    def resolve_importance(self) -> dict[str, float]:
        """Importance of every feature, in ``columns.features`` order; missing ones are 0.0.

        ``importance`` may be a mapping or the path of a CSV with columns
        ``feature,importance``. Without it the mapping is empty: every feature weighs the same.
        """
        if self.importance is None:
            return {}
        if isinstance(self.importance, str):
            given: dict[str, float] = _read_importance_csv(self.resolve_path(self.importance))
        else:
            given = dict(self.importance)
        unknown = sorted(set(given) - set(self.columns.features))
        if unknown:
            where = self.importance if isinstance(self.importance, str) else "importance"
            raise ConfigError(
                f"{where}: features not in columns.features: {', '.join(map(repr, unknown))}"
            )
        return {feature: given.get(feature, 0.0) for feature in self.columns.features}

    def to_yaml(self) -> str:
        """The config as YAML, with durations as strings and unset fields left out.

        >>> print(parse_config(_MINIMAL).to_yaml(), end="")
        name: m
        task: regression
        columns:
          features:
            x: numeric
          prediction: p
          segments: []
          ok_status:
          - ok
          - success
          - '200'
        decision_threshold: 0.5
        label_lag: 0d
        window: 1d
        owners: []
        performance:
          min_labels: 100
          min_coverage: 0.3
          confidence: 0.95
        segments:
          columns: []
          top: 5
          pinned: []
          min_rows: 100
        proxies: []
        alerts: []
        routes:
          console:
          - type: console
        severity_routes:
          page: console
          ticket: console
          digest: console
        """
        data = self.model_dump(mode="json", exclude_none=True, by_alias=True)
        return yaml.safe_dump(data, sort_keys=False, allow_unicode=True)


_MINIMAL = "{name: m, task: regression, columns: {features: {x: numeric}, prediction: p}}"


def _class_text(value: Any) -> Any:
    """A class name as text: numbers as Arrow writes them (``2.0`` as ``"2"``).

    >>> [_class_text(v) for v in (2, 2.0, 0.5, True, "cat")]
    ['2', '2', '0.5', 'true', 'cat']
    """
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, int | float):
        return str(value)
    return value


def _read_importance_csv(path: Path) -> dict[str, float]:
    try:
        with path.open(newline="", encoding="utf-8") as handle:
            reader = csv.DictReader(handle)
            header = [name.strip() for name in reader.fieldnames or []]
            if "feature" not in header or "importance" not in header:
                raise ConfigError(
                    f"{path}:1: expected a header with columns feature,importance, "
                    f"got {','.join(header) or 'nothing'}"
                )
            reader.fieldnames = header
            result: dict[str, float] = {}
            for row in reader:
                where = f"{path}:{reader.line_num}"
                feature = (row["feature"] or "").strip()
                text = (row["importance"] or "").strip()
                try:
                    value = float(text)
                except ValueError:
                    value = math.nan
                if not feature:
                    raise ConfigError(f"{where}: empty feature name")
                if not (math.isfinite(value) and value >= 0):
                    raise ConfigError(
                        f"{where}: importance of {feature!r}: expected a number >= 0, got {text!r}"
                    )
                if feature in result:
                    raise ConfigError(f"{where}: feature {feature!r} listed twice")
                result[feature] = value
            return result
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read importance file: {exc.strerror}") from exc


def load_config(path: str | Path) -> ModelConfig:
    """Read and validate a ``tripwire.yaml``; relative paths in it resolve against its folder."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) else "not UTF-8 text"
        raise ConfigError(f"{path}: cannot read config file: {reason}") from exc
    config = parse_config(text, source=str(path))
    config._source = Path(path).absolute()
    return config


def parse_config(text: str, source: str = "<string>") -> ModelConfig:
    """Validate config text; ``source`` names it in error messages."""
    root, data = _compose(text, source)
    try:
        return ModelConfig.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(_describe(exc, root, source)) from None


def load_rules(path: str | Path, config: ModelConfig) -> ModelConfig:
    """``config`` with its ``alerts`` replaced by those of a rules file (``alerts:`` at the
    top), validated against the rest of the config; errors name the rules file's lines."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read rules file") from exc
    root, data = _compose(text, str(path))
    if set(data) != {"alerts"}:
        raise ConfigError(f"{path}:1: expected a mapping with only 'alerts' at the top level")
    merged = config.model_dump(mode="json", exclude_none=True, by_alias=True) | {
        "alerts": data["alerts"]
    }
    try:
        replaced = ModelConfig.model_validate(merged)
    except ValidationError as exc:
        raise ConfigError(_describe(exc, root, str(path))) from None
    replaced._source = config._source
    return replaced


def _compose(text: str, source: str) -> tuple[yaml.MappingNode, Any]:
    # Composing first keeps every node's position, which plain yaml.safe_load throws away.
    loader = yaml.SafeLoader(text)
    try:
        node = loader.get_single_node()
        data = loader.construct_document(node) if node is not None else None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = f":{mark.line + 1}" if mark is not None else ""
        detail = ": ".join(part for part in (exc.context, exc.problem) if part)
        raise ConfigError(f"{source}{line}: invalid YAML: {detail}") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{source}: invalid YAML: {exc}") from None
    finally:
        loader.dispose()
    if not isinstance(node, yaml.MappingNode) or not isinstance(data, dict):
        top = node.start_mark.line + 1 if node is not None else 1
        raise ConfigError(
            f"{source}:{top}: expected a mapping with name, task and columns at the top level"
        )
    _reject_duplicate_keys(node, source)
    return node, data


def _reject_duplicate_keys(node: yaml.Node, source: str) -> None:
    # PyYAML silently keeps the last of two equal keys; in a config that hides a typo.
    if isinstance(node, yaml.MappingNode):
        seen: set[str] = set()
        for key, value in node.value:
            if isinstance(key, yaml.ScalarNode):
                if key.value in seen:
                    raise ConfigError(
                        f"{source}:{key.start_mark.line + 1}: key {key.value!r} appears twice"
                    )
                seen.add(key.value)
            _reject_duplicate_keys(value, source)
    elif isinstance(node, yaml.SequenceNode):
        for item in node.value:
            _reject_duplicate_keys(item, source)


def _describe(exc: ValidationError, root: yaml.Node, source: str) -> list[str]:
    """One ``file:line: path: message`` line per problem, union branches merged."""
    by_path: dict[Loc, tuple[int, list[ErrorDetails], bool]] = {}
    for error in exc.errors():
        loc = tuple(error["loc"]) + tuple((error.get("ctx") or {}).get(_AT, ()))
        line, path, skipped = _locate(root, loc, error["type"] == "missing")
        _, errors, was_skipped = by_path.setdefault(path, (line, [], False))
        errors.append(error)
        by_path[path] = (line, errors, was_skipped or skipped)

    problems: list[tuple[int, str]] = []
    for path, (line, errors, from_union) in by_path.items():
        # A union branch that failed at the top while another branch got further inside
        # is noise: the deeper error says what is really wrong.
        deeper = any(other[: len(path)] == path and len(other) > len(path) for other in by_path)
        if from_union and deeper:
            continue
        where = f"{_dotted(path)}: " if path else ""
        problems.append((line, f"{source}:{line}: {where}{_message(path, errors)}"))
    return [text for _, text in sorted(problems, key=lambda item: item[0])]


def _locate(root: yaml.Node, loc: Loc, missing: bool) -> tuple[int, Loc, bool]:
    """Follow ``loc`` through the YAML nodes: (line, path as written, skipped a union tag)."""
    node, line, path, skipped = root, root.start_mark.line + 1, [], False
    for part in loc:
        child = _child(node, part)
        if child is None:
            skipped = True  # a union branch name such as 'TopK', or a missing key
            continue
        key_node, node = child
        line = key_node.start_mark.line + 1
        path.append(part)
    if missing and (not path or path[-1] != loc[-1]):
        path.append(loc[-1])
    return line, tuple(path), skipped


def _child(node: yaml.Node, part: str | int) -> tuple[yaml.Node, yaml.Node] | None:
    if isinstance(node, yaml.MappingNode) and isinstance(part, str):
        for key, value in node.value:
            if isinstance(key, yaml.ScalarNode) and key.value == part:
                return key, value
    if (
        isinstance(node, yaml.SequenceNode)
        and isinstance(part, int)
        and 0 <= part < len(node.value)
    ):
        return node.value[part], node.value[part]
    return None


def _dotted(path: Loc) -> str:
    text = ""
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else f".{part}"
    return text.lstrip(".")


def _message(path: Loc, errors: list[ErrorDetails]) -> str:
    kinds = {error["type"] for error in errors}
    if "missing" in kinds:
        return "required field missing"
    if "extra_forbidden" in kinds:
        return _unknown_field(path)
    if len(errors) == 1 and errors[0]["type"] in ("value_error", "tripwire"):
        return str(errors[0]["msg"]).removeprefix("Value error, ")
    expected = ", or ".join(dict.fromkeys(_expected(error) for error in errors))
    return f"expected {expected}, got {_show(errors[0]['input'])}"


def _expected(error: ErrorDetails) -> str:
    kind, ctx = error["type"], error.get("ctx") or {}
    if kind == "literal_error":
        options = str(ctx["expected"]).replace(" or ", ", ")
        return f"one of {options}" if "," in options else options
    simple = {
        "model_type": "a mapping",
        "model_attributes_type": "a mapping",
        "dict_type": "a mapping",
        "list_type": "a list",
        "string_type": "a string",
        "float_parsing": "a number",
        "float_type": "a number",
        "int_parsing": "a whole number",
        "int_type": "a whole number",
        "int_from_float": "a whole number",
        "bool_type": "true or false",
        "bool_parsing": "true or false",
    }
    if kind in simple:
        return simple[kind]
    for key, symbol in (("gt", ">"), ("ge", ">="), ("lt", "<"), ("le", "<=")):
        if key in ctx:
            return f"a number {symbol} {ctx[key]}"
    if kind == "too_short":
        return f"at least {ctx.get('min_length', 1)} item(s)"
    return str(error["msg"]).removeprefix("Value error, ")


def _show(value: Any) -> str:
    text = repr(value)
    if len(text) <= 60:
        return text
    return (
        "a mapping"
        if isinstance(value, dict)
        else "a list"
        if isinstance(value, list)
        else text[:57] + "..."
    )


def _unknown_field(path: Loc) -> str:
    allowed = _fields_at(path[:-1])
    message = f"unknown field {path[-1]!r}"
    guess = difflib.get_close_matches(str(path[-1]), allowed, n=1)
    if guess:
        return f"{message}; did you mean {guess[0]!r}?"
    if allowed:
        return f"{message}; expected one of {', '.join(allowed)}"
    return message


def _fields_at(path: Loc) -> list[str]:
    """Field names of the model(s) found at ``path`` below :class:`ModelConfig`."""
    candidates: list[Any] = [ModelConfig]
    for part in path:
        following: list[Any] = []
        for tp in _alternatives(candidates):
            if isinstance(tp, type) and issubclass(tp, BaseModel):
                if isinstance(part, str) and part in tp.model_fields:
                    following.append(tp.model_fields[part].annotation)
            elif get_origin(tp) is list and isinstance(part, int):
                following.append(get_args(tp)[0])
            elif get_origin(tp) is dict and isinstance(part, str):
                following.append(get_args(tp)[1])
        candidates = following
    fields: list[str] = []
    for tp in _alternatives(candidates):
        if isinstance(tp, type) and issubclass(tp, BaseModel):
            fields.extend(tp.model_fields)
    return fields


def _alternatives(types_: list[Any]) -> list[Any]:
    # Looks through `X | Y` and `Annotated[X, ...]` to the concrete alternatives.
    result: list[Any] = []
    for tp in types_:
        origin = get_origin(tp)
        if origin in (Union, types.UnionType):
            result.extend(_alternatives(list(get_args(tp))))
        elif origin is Annotated:
            result.extend(_alternatives([get_args(tp)[0]]))
        else:
            result.append(tp)
    return result
