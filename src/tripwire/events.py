"""The prediction log: one event per prediction, and labels that arrive later by event id.

Events are validated against the model's config at the edge (collector, consumers, files). A
malformed event is quarantined with its reason; it never stops the batch it came in.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from tripwire.config import ModelConfig

Scalar = float | int | str | bool | None


class Event(BaseModel):
    """One logged prediction."""

    model_config = ConfigDict(extra="forbid")

    event_id: str = Field(min_length=1, max_length=200)
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

    event_id: str = Field(min_length=1, max_length=200)
    model: str
    label: float
    labelled_at: datetime | None = None


class Rejected(BaseModel):
    """An item that failed validation, with where it was in its batch and why."""

    index: int
    reason: str
    payload: str


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


def table_to_events(config: ModelConfig, table: Any) -> list[dict[str, Any]]:
    """Rows of a logged table (columns named as in the config) as event payloads: what a
    serving process would have sent. Used to load files into the log and by tests."""
    columns = config.columns
    if columns.timestamp is None or columns.id is None:
        raise ValueError("turning rows into events needs columns.timestamp and columns.id")
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
            "features": {name: row.get(name) for name in columns.features},
            "prediction": row[columns.prediction],
            "segments": {name: str(row[name]) for name in columns.segments if row.get(name)},
        }
        for field, name in roles.items():
            if name is not None and row.get(name) is not None:
                event[field] = row[name]
        out.append(event)
    return out
