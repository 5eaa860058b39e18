"""``tripwire init``: guess a starting ``tripwire.yaml`` from a reference table.

The guess is meant to be read and edited, so the text says what was inferred and why.

>>> import pyarrow as pa
>>> table = pa.table({
...     "ts": pa.array([1, 2, 3], pa.timestamp("s")),
...     "amount": [10.0, 25.5, 3.2],
...     "score": [0.1, 0.8, 0.4],
...     "label": [0, 1, 0],
... })
>>> text = infer_config(table, name="fraud", reference_path="reference.parquet")
>>> from tripwire.config import parse_config
>>> config = parse_config(text)
>>> config.task, config.columns.prediction, config.columns.features
('binary', 'score', {'amount': 'numeric'})
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import yaml

from tripwire.alerts.starter import starter_rules
from tripwire.config import FeatureType, Task, parse_config

__all__ = ["infer_config"]

# Names are compared lower-cased; earlier names win when several columns match.
TIMESTAMP_NAMES = ("timestamp", "ts", "event_time", "created_at", "event_timestamp", "datetime")
ID_NAMES = ("id", "event_id", "request_id", "prediction_id")
PREDICTION_NAMES = (
    "score",
    "proba",
    "probability",
    "y_pred",
    "prediction",
    "pred",
    "output",
)
LABEL_NAMES = ("label", "target", "y", "y_true", "outcome", "actual")

# Integer columns with this few distinct values are usually codes, not quantities.
MAX_CATEGORICAL_INTEGER_LEVELS = 20

_HEADER = """\
# tripwire.yaml for {name}, inferred by `tripwire init` from {reference}.
# It is a guess: read it before trusting any alert built on it. Check that
#   - each column's role is right (timestamp, id, prediction, label, latency, cost, status),
#   - every feature's type is right: integer codes with few values were made categorical,
#   - task and decision_threshold match how the model is used,
#   - label_lag says how long labels take to arrive after a prediction.
# What was inferred, and from what:
{reasons}"""

_IMPORTANCE = """
# Importance decides which features may page (feature_set: top_quartile_shap). Until you
# replace these equal weights with mean |SHAP| per feature, every feature counts as important:
#   tripwire importance --config tripwire.yaml --model model.pkl   (then importance: importance.csv)
"""

_FOOTER = """
# Realized performance gets a verdict once enough of a window is labelled (status
# insufficient_labels until then). Segments: per column, the top values by the summed value
# column (else by rows), chosen at fit, plus pinned ones. Proxies move within hours where
# labels take weeks; rules and the retraining gate use them as proxy_<name>.
# performance: {min_labels: 100, min_coverage: 0.3}
# segments:
#   columns: [country]
#   value: amount
#   top: 5
#   pinned: ["country=DE"]
#   min_rows: 100
# proxies:
#   - {name: blocked_share, column: decision, equals: block, direction: above}
#   - {name: review_share, column: decision, in: [review, manual], direction: above}
#   - {name: engaged_7d, column: clicked, mean: true, direction: below}
# owners:
#   - name: Your team
#     contact: team@example.com
# Alerts go to the console until you add routes (slack, pagerduty, webhook, email,
# alertmanager) and map severities to them with severity_routes.
# Every rule needs its runbook: replace each TODO.
"""


@dataclass
class _Roles:
    single: dict[str, str] = field(default_factory=dict)
    features: dict[str, FeatureType] = field(default_factory=dict)
    skipped: list[str] = field(default_factory=list)
    reasons: list[str] = field(default_factory=list)


def infer_config(table: pa.Table, name: str, reference_path: str) -> str:
    """YAML text of a config for ``table``; ``reference_path`` is written as given.

    Raises :class:`ValueError` when no column looks like the model's prediction.
    """
    roles = _infer_roles(table)
    columns: dict[str, Any] = {}
    for role in ("timestamp", "id"):
        if role in roles.single:
            columns[role] = roles.single[role]
    columns["features"] = roles.features
    for role in ("prediction", "label", "latency_ms", "cost", "status"):
        if role in roles.single:
            columns[role] = roles.single[role]

    task, why = _infer_task(table, roles.single["prediction"], roles.single.get("label"))
    roles.reasons.append(f"task {task} ({why})")
    data: dict[str, Any] = {"name": name, "task": task, "columns": columns}
    if task == "binary":
        data["decision_threshold"] = 0.5
    data |= {"label_lag": "0d", "window": "1d", "reference": reference_path}

    header = _HEADER.format(
        name=name, reference=reference_path, reasons="".join(f"#   - {r}\n" for r in roles.reasons)
    )
    if roles.skipped:
        header += f"# Left out, type not supported: {', '.join(roles.skipped)}\n"
    importance = {"importance": {feature: 1.0 for feature in roles.features}}
    text = (
        header
        + yaml.safe_dump(data, sort_keys=False, allow_unicode=True)
        + _IMPORTANCE
        + yaml.safe_dump(importance, sort_keys=False, allow_unicode=True)
        + _FOOTER
        + starter_rules(task)
    )
    # The output must load as is; failing here beats handing the user a broken file.
    parse_config(text, source="<inferred config>")
    return text


def _infer_roles(table: pa.Table) -> _Roles:
    roles = _Roles()
    by_lower = {column.lower(): column for column in reversed(table.column_names)}

    def claim(role: str, column: str | None, why: str) -> None:
        if column is not None and column not in roles.single.values():
            roles.single[role] = column
            roles.reasons.append(f"{role} '{column}' ({why})")

    temporal = [f.name for f in table.schema if _is_temporal(f.type)]
    if temporal:
        claim("timestamp", temporal[0], "timestamp type")
    else:
        claim("timestamp", _first_named(by_lower, TIMESTAMP_NAMES), "name")
    claim("prediction", _first_named(by_lower, PREDICTION_NAMES), "name")
    if "prediction" not in roles.single:
        raise ValueError(
            f"cannot tell which column is the model's prediction among "
            f"{', '.join(table.column_names)}; rename it to one of "
            f"{', '.join(PREDICTION_NAMES)} or write the config by hand"
        )
    claim("label", _first_named(by_lower, LABEL_NAMES), "name")
    if "label" not in roles.single:
        # Binary targets are often named for the event: is_fraud, is_churned, has_defaulted.
        claim("label", _event_flag(table), "0/1 column named is_* or has_*")
    named_id = _first_named(by_lower, ID_NAMES)
    claim("id", named_id or _unique_string_column(table, roles), "name" if named_id else "unique")
    for role, part in (("latency_ms", "latency"), ("cost", "cost")):
        claim(role, next((c for c in table.column_names if part in c.lower()), None), "name")
    claim("status", by_lower.get("status"), "name")

    taken = set(roles.single.values())
    for f in table.schema:
        if f.name in taken:
            continue
        kind = _feature_type(f.type, table.column(f.name))
        if kind is None:
            roles.skipped.append(f"{f.name} ({f.type})")
        else:
            roles.features[f.name] = kind
    if not roles.features:
        raise ValueError(
            f"no feature columns among {', '.join(table.column_names)}: every column was taken "
            "by a role or has an unsupported type"
        )
    return roles


def _first_named(by_lower: dict[str, str], names: tuple[str, ...]) -> str | None:
    return next((by_lower[n] for n in names if n in by_lower), None)


def _unique_string_column(table: pa.Table, roles: _Roles) -> str | None:
    # On a handful of rows every text column looks unique; two rows is the least evidence.
    if table.num_rows < 2:
        return None
    for f in table.schema:
        if f.name in roles.single.values() or not pa.types.is_string(f.type):
            continue
        column = table.column(f.name)
        if column.null_count == 0 and pc.count_distinct(column).as_py() == table.num_rows:
            return str(f.name)
    return None


def _is_temporal(dtype: pa.DataType) -> bool:
    return bool(pa.types.is_timestamp(dtype) or pa.types.is_date(dtype))


def _feature_type(dtype: pa.DataType, column: pa.ChunkedArray) -> FeatureType | None:
    if pa.types.is_boolean(dtype):
        return "categorical"
    if pa.types.is_integer(dtype):
        levels = pc.count_distinct(column).as_py()
        return "categorical" if levels <= MAX_CATEGORICAL_INTEGER_LEVELS else "numeric"
    if pa.types.is_floating(dtype) or pa.types.is_decimal(dtype):
        return "numeric"
    if (
        pa.types.is_string(dtype)
        or pa.types.is_large_string(dtype)
        or pa.types.is_dictionary(dtype)
    ):
        return "categorical"
    return None


def _event_flag(table: pa.Table) -> str | None:
    for f in table.schema:
        if not f.name.lower().startswith(("is_", "has_")):
            continue
        if pa.types.is_boolean(f.type):
            return str(f.name)
        if pa.types.is_integer(f.type):
            values = set(pc.unique(table.column(f.name).drop_null()).to_pylist())
            if values and values <= {0, 1}:
                return str(f.name)
    return None


def _infer_task(table: pa.Table, prediction: str, label: str | None) -> tuple[Task, str]:
    scores = table.column(prediction)
    in_unit = False
    if _is_number(scores.type) and scores.length() > scores.null_count:
        low_high = pc.min_max(scores)
        in_unit = low_high["min"].as_py() >= 0 and low_high["max"].as_py() <= 1
    if label is None:
        # Without labels a score bounded by [0, 1] is almost always a probability.
        if in_unit:
            return "binary", "prediction within [0, 1], no label"
        return "regression", "no label and prediction outside [0, 1]"
    values = set(pc.unique(table.column(label).drop_null()).to_pylist())
    if len(values) == 2:
        return "binary", "label has 2 distinct values"
    if in_unit and values <= {0, 1}:
        return "binary", "prediction within [0, 1] and label 0/1"
    return "regression", "label is not binary"


def _is_number(dtype: pa.DataType) -> bool:
    return bool(pa.types.is_integer(dtype) or pa.types.is_floating(dtype))
