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

A multiclass model shows itself by one probability column per class, named for the class
(``p_cat``, ``proba_cat``, ``cat_prob``, ...), whose rows sum to 1 or whose classes are the
label's, beside a column that holds the predicted class:

>>> table = pa.table({
...     "amount": [10.0, 25.5, 3.2],
...     "p_cat": [0.7, 0.1, 0.2], "p_dog": [0.2, 0.6, 0.3], "p_bird": [0.1, 0.3, 0.5],
...     "predicted": ["cat", "dog", "bird"],
... })
>>> config = parse_config(infer_config(table, name="pets", reference_path="reference.parquet"))
>>> config.task, config.columns.prediction, config.columns.probabilities
('multiclass', 'predicted', {'cat': 'p_cat', 'dog': 'p_dog', 'bird': 'p_bird'})
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import yaml

from tripwire.alerts.starter import starter_rules
from tripwire.config import FeatureType, Task, parse_config
from tripwire.profile.multiclass import UNKNOWN, class_index
from tripwire.tabular import numeric_values

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
LABEL_NAMES = ("label", "target", "y", "y_true", "outcome", "actual", "true_class", "actual_class")
# A multiclass model's class probabilities: a column per class, named for the class with one of
# these before or after it (p_cat, proba_0, cat_prob); at least MIN_CLASSES of them, in [0, 1].
PROBABILITY_AFFIXES = ("p", "prob", "proba", "probability", "score")
MIN_CLASSES = 3
# Its rows sum to 1 where this share of the complete rows is within SUM_TOLERANCE of 1.
SUM_SHARE = 0.99
SUM_TOLERANCE = 0.01
# A multiclass model's predicted class, by name; else the column of classes that most often
# agrees with the highest probability.
CLASS_PREDICTION_NAMES = (
    "predicted_class",
    "pred_class",
    "predicted",
    "prediction",
    "y_pred",
    "pred",
    "class",
    "output",
)

# Integer columns with this few distinct values are usually codes, not quantities.
MAX_CATEGORICAL_INTEGER_LEVELS = 20

_HEADER = """\
# tripwire.yaml for {name}, inferred by `tripwire init` from {reference}.
# It is a guess: read it before trusting any alert built on it. Check that
#   - each column's role is right (timestamp, id, prediction, label, latency, cost, status,
#     a multiclass model's probability column per class),
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
    probabilities: dict[str, str] = field(default_factory=dict)  # {class: column}


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
    if roles.probabilities:
        columns["probabilities"] = roles.probabilities
        task: Task = "multiclass"
        why = f"one probability column for each of {len(roles.probabilities)} classes"
    else:
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
    named_label = _first_named(by_lower, LABEL_NAMES)
    found = _probability_columns(table, named_label)
    if found is not None:
        roles.probabilities, why = found
        shown = ", ".join(roles.probabilities.values())
        roles.reasons.append(f"probabilities {shown} (named for their classes; {why})")
        taken = {*roles.probabilities.values(), *roles.single.values(), named_label}
        predicted = _predicted_class(table, roles.probabilities, taken)
        if predicted is None:
            raise ValueError(
                f"columns {shown} look like a multiclass model's class probabilities, but no "
                f"column holds only their classes ({', '.join(roles.probabilities)}) as the "
                "predicted class; add it (named predicted_class) or write the config by hand"
            )
        claim("prediction", *predicted)
    else:
        claim("prediction", _first_named(by_lower, PREDICTION_NAMES), "name")
    if "prediction" not in roles.single:
        raise ValueError(
            f"cannot tell which column is the model's prediction among "
            f"{', '.join(table.column_names)}; rename it to one of "
            f"{', '.join(PREDICTION_NAMES)} or write the config by hand"
        )
    claim("label", named_label, "name")
    if "label" not in roles.single:
        # Binary targets are often named for the event: is_fraud, is_churned, has_defaulted.
        claim("label", _event_flag(table), "0/1 column named is_* or has_*")
    named_id = _first_named(by_lower, ID_NAMES)
    claim("id", named_id or _unique_string_column(table, roles), "name" if named_id else "unique")
    for role, part in (("latency_ms", "latency"), ("cost", "cost")):
        claim(role, next((c for c in table.column_names if part in c.lower()), None), "name")
    claim("status", by_lower.get("status"), "name")

    taken = {*roles.single.values(), *roles.probabilities.values()}
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


def _class_of(column: str) -> tuple[str, str] | None:
    """The class a probability column is named for, and how it is named (the affix and its
    side), or None.

    >>> _class_of("p_cat"), _class_of("Dog_Proba"), _class_of("amount")
    (('cat', 'p_'), ('Dog', '_proba'), None)
    """
    lower = column.lower()
    for affix in PROBABILITY_AFFIXES:
        if lower.startswith(f"{affix}_") and len(column) > len(affix) + 1:
            return column[len(affix) + 1 :], f"{affix}_"
        if lower.endswith(f"_{affix}") and len(column) > len(affix) + 1:
            return column[: -len(affix) - 1], f"_{affix}"
    return None


def _probability_columns(table: pa.Table, label: str | None) -> tuple[dict[str, str], str] | None:
    """A multiclass model's ``{class: column}`` and the evidence for it, or None.

    Numeric columns in [0, 1] named for a class alike (``p_<class>``, ``<class>_proba``, ...)
    form a group; a group of at least :data:`MIN_CLASSES` counts when its complete rows sum to
    1 or the label has more than two values, all among its classes. The largest such wins.
    """
    groups: dict[str, dict[str, str]] = {}
    for f in table.schema:
        named = _class_of(f.name)
        if named is None or not _is_number(f.type):
            continue
        column = table.column(f.name)
        if column.length() == column.null_count:
            continue
        low_high = pc.min_max(column)
        if low_high["min"].as_py() >= 0 and low_high["max"].as_py() <= 1:
            groups.setdefault(named[1], {}).setdefault(named[0], f.name)
    labels = None
    if label is not None:
        labels = table.column(label)
        if len(pc.unique(labels.drop_null())) <= 2:
            labels = None
    best: tuple[dict[str, str], str] | None = None
    for group in groups.values():
        if len(group) < MIN_CLASSES or (best is not None and len(group) <= len(best[0])):
            continue
        p = np.vstack([numeric_values(table.column(c))[0] for c in group.values()])
        complete = p[:, ~np.isnan(p).any(axis=0)]
        sums = np.abs(complete.sum(axis=0) - 1.0) <= SUM_TOLERANCE
        if complete.shape[1] and sums.mean() >= SUM_SHARE:
            best = group, "each row sums to 1"
        elif labels is not None and (class_index(labels, list(group)) != UNKNOWN).sum() == (
            labels.length() - labels.null_count
        ):
            best = group, f"the classes of label '{label}'"
    return best


def _predicted_class(
    table: pa.Table, probabilities: dict[str, str], taken: set[str | None]
) -> tuple[str, str] | None:
    """The column holding a multiclass model's predicted class, and why: among the columns
    that hold only the classes, the first named as a prediction, else the one that most often
    names the class of highest probability (in at least half of the rows)."""
    classes = list(probabilities)
    held: dict[str, np.ndarray] = {}
    for name in table.column_names:
        if name in taken:
            continue
        column = table.column(name)
        if column.length() == column.null_count:
            continue
        index = class_index(column, classes)
        if (index != UNKNOWN).sum() == column.length() - column.null_count:
            held[name] = index
    if not held:
        return None
    by_lower = {name.lower(): name for name in reversed(list(held))}
    named = _first_named(by_lower, CLASS_PREDICTION_NAMES)
    if named is not None:
        return named, "name; it holds the classes"
    p = np.vstack([numeric_values(table.column(c))[0] for c in probabilities.values()])
    top = np.where(np.isnan(p).any(axis=0), UNKNOWN, np.nan_to_num(p, nan=-1.0).argmax(axis=0))
    agree = {name: float(np.mean(index == top)) for name, index in held.items()}
    name = max(agree, key=lambda n: agree[n])
    if agree[name] < 0.5:
        return None
    return name, f"it holds the class of highest probability in {agree[name]:.0%} of rows"


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
    if not _is_number(table.column(label).type):
        # Classes, not quantities: a multiclass model, whose config needs its probabilities.
        raise ValueError(
            f"label '{label}' has {len(values)} classes, so the model is multiclass, but no "
            "columns look like its class probabilities; name one per class p_<class> (with "
            "the predicted class in predicted_class) or write the config by hand"
        )
    return "regression", "label is not binary"


def _is_number(dtype: pa.DataType) -> bool:
    return bool(pa.types.is_integer(dtype) or pa.types.is_floating(dtype))
