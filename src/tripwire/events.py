"""The prediction log: one event per prediction, and labels that arrive later by event id.

Events are validated against the model's config at the edge (collector, consumers, files). A
malformed event is quarantined with its reason; it never stops the batch it came in.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError, field_validator
from pydantic.fields import FieldInfo

from tripwire.config import ModelConfig

Scalar = float | int | str | bool | None
EVENT_ID_MAX_LENGTH = 200


class Event(BaseModel):
    """One logged prediction."""

    model_config = ConfigDict(extra="forbid")

    event_id: str = Field(min_length=1, max_length=EVENT_ID_MAX_LENGTH)
    model: str
    model_version: str | None = None
    role: Literal["production", "shadow"] = "production"
    timestamp: datetime
    features: dict[str, Scalar]
    prediction: float
    latency_ms: float | None = None
    status: str | None = None
    cost: float | None = None
    segments: dict[str, str] = Field(default_factory=dict)
    metadata: dict[str, Any] = Field(default_factory=dict)

    @field_validator("timestamp")
    @classmethod
    def _utc(cls, value: datetime) -> datetime:
        # Naive timestamps are taken as UTC; everything is stored in UTC.
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class Label(BaseModel):
    """The outcome of one prediction, joined to its event by id."""

    model_config = ConfigDict(extra="forbid")

    event_id: str = Field(min_length=1, max_length=EVENT_ID_MAX_LENGTH)
    model: str
    label: float
    labelled_at: datetime | None = None


class Rejected(BaseModel):
    """An item that failed validation, with where it was in its batch and why."""

    index: int
    reason: str
    payload: str
    # Where the item came from when its source names each one (a stream entry id, a topic
    # partition and offset): quarantining it again from there (a redelivery) is a no-op.
    origin: str | None = None


def _reason(exc: ValidationError) -> str:
    parts = []
    for error in exc.errors():
        field = ".".join(str(p) for p in error["loc"]) or "event"
        parts.append(f"{field}: {error['msg']}")
    return "; ".join(parts)


def _payload(item: Any) -> str:
    try:
        return json.dumps(item, default=str)[:10_000]
    except (TypeError, ValueError):
        return repr(item)[:10_000]


def validate_events(
    config: ModelConfig, items: Iterable[Any]
) -> tuple[list[Event], list[Rejected]]:
    """Events that match the model, and the rejected items with their reasons.

    Besides the schema, an event must be for this model and carry every configured feature
    (a value may be null); features the config does not know are kept, and reported as schema
    changes when the window is checked.
    """
    accepted: list[Event] = []
    rejected: list[Rejected] = []
    expected = set(config.columns.features)
    for index, item in enumerate(items):
        try:
            event = Event.model_validate(item)
        except ValidationError as exc:
            rejected.append(Rejected(index=index, reason=_reason(exc), payload=_payload(item)))
            continue
        problem = None
        if event.model != config.name:
            problem = f"model: expected {config.name!r}, got {event.model!r}"
        elif missing := sorted(expected - set(event.features)):
            problem = f"features: missing {', '.join(missing)}"
        if problem:
            rejected.append(Rejected(index=index, reason=problem, payload=_payload(item)))
        else:
            accepted.append(event)
    return accepted, rejected


def _list_of(field: FieldInfo) -> TypeAdapter[list[Any]]:
    """A validator of a list of ``field``'s values: the field's type and constraints, and the
    model's config, so each value validates exactly as that field of an ``Event`` would."""
    item = Annotated[(field.annotation, *field.metadata)] if field.metadata else field.annotation
    return TypeAdapter(list[item], config=Event.model_config)  # type: ignore[valid-type]


_FIELDS = Event.model_fields
_COLUMNS = {name: _list_of(field) for name, field in _FIELDS.items()}


def column_validator(name: str) -> TypeAdapter[list[Any]]:
    """The validator of a list of ``Event`` field ``name``'s values: each value validates
    exactly as that field of an ``Event`` would."""
    return _COLUMNS[name]


# What a missing optional field becomes (validated like a sent value, which gives the same).
_DEFAULTS = {
    name: field.get_default(call_default_factory=True)
    for name, field in _FIELDS.items()
    if not field.is_required()
}


def validate_event_columns(
    config: ModelConfig, items: Sequence[Any]
) -> dict[str, list[Any]] | None:
    """When every one of ``items`` is an event that :func:`validate_events` accepts, their
    validated values field by field (``columns[name][i]`` is item ``i``'s field ``name``),
    else ``None`` (then ``validate_events`` says which are not, and why).

    Validating a field's values across the batch in one call, with no ``Event`` object per
    item, is several times faster than validating each item. ``Event`` has one field
    validator, which moves timestamps to UTC; here they keep their offset (naive ones are UTC)
    until the store converts them.
    """
    # The model forbids unknown fields and only takes dicts here (from JSON, that is all).
    if not all(type(item) is dict and item.keys() <= _FIELDS.keys() for item in items):
        return None
    columns: dict[str, list[Any]] = {}
    try:
        for name, adapter in _COLUMNS.items():
            if name in _DEFAULTS:
                default = _DEFAULTS[name]
                values = [item.get(name, default) for item in items]
            else:
                values = [item[name] for item in items]
            columns[name] = adapter.validate_python(values)
    except (KeyError, ValidationError):
        return None
    expected = set(config.columns.features)
    if any(model != config.name for model in columns["model"]) or not all(
        expected <= features.keys() for features in columns["features"]
    ):
        return None
    return columns


def validate_labels(
    config: ModelConfig, items: Iterable[Any]
) -> tuple[list[Label], list[Rejected]]:
    accepted: list[Label] = []
    rejected: list[Rejected] = []
    for index, item in enumerate(items):
        try:
            label = Label.model_validate(item)
        except ValidationError as exc:
            rejected.append(Rejected(index=index, reason=_reason(exc), payload=_payload(item)))
            continue
        if label.model != config.name:
            reason = f"model: expected {config.name!r}, got {label.model!r}"
            rejected.append(Rejected(index=index, reason=reason, payload=_payload(item)))
        else:
            accepted.append(label)
    return accepted, rejected


def metadata_columns(config: ModelConfig, present: Iterable[str]) -> list[str]:
    """The columns of a logged table (``present``) that its events carry in their metadata:
    those the config's proxies read, where they are no other role, feature or segment."""
    columns = config.columns
    taken = {
        *columns.features,
        *(columns.probabilities or {}).values(),
        *columns.segments,
        *columns.roles().values(),
    }
    present = set(present)
    return [
        column
        for column in dict.fromkeys(proxy.column for proxy in config.proxies)
        if column in present and column not in taken
    ]


def table_to_events(config: ModelConfig, table: Any) -> list[dict[str, Any]]:
    """Rows of a logged table (columns named as in the config) as event payloads: what a
    serving process would have sent. Used to load files into the log and by tests.

    Besides the roles, features and segments, an event carries what the stored pipeline reads
    back (see :func:`tripwire.store.events.to_monitor_table`), so that a file checks the same
    loaded into the log as it does read directly: a multiclass model's class probabilities
    among the features, and the columns the config's proxies read, where they are no other
    role, feature or segment, in its metadata (a null kept, as serving logs it). Events carry
    the prediction as a number, so a multiclass model's classes must be named by number.
    """
    columns = config.columns
    if columns.timestamp is None or columns.id is None:
        raise ValueError("turning rows into events needs columns.timestamp and columns.id")
    present = set(table.column_names)
    features = [
        *columns.features,
        *(c for c in (columns.probabilities or {}).values() if c in present),
    ]
    metadata = metadata_columns(config, present)
    rows = table.to_pylist()
    roles = {
        "latency_ms": columns.latency_ms,
        "status": columns.status,
        "cost": columns.cost,
    }
    out = []
    for row in rows:
        event: dict[str, Any] = {
            "event_id": str(row[columns.id]),
            "model": config.name,
            "timestamp": row[columns.timestamp],
            "features": {name: row.get(name) for name in features},
            "prediction": row[columns.prediction],
            "segments": {name: str(row[name]) for name in columns.segments if row.get(name)},
        }
        for field, name in roles.items():
            if name is not None and row.get(name) is not None:
                event[field] = row[name]
        if metadata:
            event["metadata"] = {name: row[name] for name in metadata}
        out.append(event)
    return out
