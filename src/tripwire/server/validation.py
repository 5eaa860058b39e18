"""Routing a batch's items to their models and validating them per model.

Each model's items are validated with ``tripwire.events.validate_events`` (or
``validate_labels``), so the collector accepts and rejects exactly what every other entry point
does. Because those check one item at a time, a whole model's items are first validated in bulk
(events a field at a time with ``validate_event_columns``, labels through a ``TypeAdapter`` over
the list): when all of them pass (the usual case) that is the answer; when any fails, the
per-item validation runs to say which and why.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from pydantic import TypeAdapter, ValidationError

from tripwire.config import ModelConfig
from tripwire.events import (
    Event,
    Label,
    Rejected,
    validate_event_columns,
    validate_events,
    validate_labels,
)
from tripwire.server.body import PAYLOAD_CHARS, Batch
from tripwire.store.common import EventRows, event_rows

# Where items that name no model the collector knows are quarantined, when they name none.
UNKNOWN_MODEL = "(unknown)"

Item = TypeVar("Item", Event, Label)
Validator = Callable[[ModelConfig, list[Any]], tuple[Sequence[Item], list[Rejected]]]

_LABELS = TypeAdapter(list[Label])


@dataclass
class Validated(Generic[Item]):
    """Valid items of a batch, and rejected ones by the model they are quarantined under."""

    accepted: Sequence[Item] = ()
    rejected: dict[str, list[Rejected]] = field(default_factory=dict)

    def reject(self, model: str, rejected: Rejected) -> None:
        self.rejected.setdefault(model, []).append(rejected)


def validate_event_batch(
    configs: Mapping[str, ModelConfig], items: Sequence[Any], indices: Sequence[int]
) -> Validated[Event]:
    """Events of known models that validate, and the rest with their batch index and reason."""
    return _validate(configs, items, indices, _events_of_model, EventRows.concat)


def validate_label_batch(
    configs: Mapping[str, ModelConfig], items: Sequence[Any], indices: Sequence[int]
) -> Validated[Label]:
    """Labels of known models that validate, and the rest with their batch index and reason."""
    return _validate(configs, items, indices, _labels_of_model, _flatten)


def _events_of_model(
    config: ModelConfig, items: list[Any]
) -> tuple[Sequence[Event], list[Rejected]]:
    columns = validate_event_columns(config, items)
    if columns is None:
        return validate_events(config, items)
    # Laid out for the store here, in parallel with other requests, not in the store's lock.
    return event_rows(columns), []


def _labels_of_model(config: ModelConfig, items: list[Any]) -> tuple[list[Label], list[Rejected]]:
    try:
        labels = _LABELS.validate_python(items)
    except ValidationError:
        return validate_labels(config, items)
    if any(x.model != config.name for x in labels):
        return validate_labels(config, items)
    return labels, []


def _validate(
    configs: Mapping[str, ModelConfig],
    items: Sequence[Any],
    indices: Sequence[int],
    validate: Validator[Item],
    combine: Callable[[list[Sequence[Item]]], Sequence[Item]],
) -> Validated[Item]:
    result: Validated[Item] = Validated()
    accepted: list[Sequence[Item]] = []
    groups: dict[str, tuple[list[Any], list[int]]] = {}
    for item, index in zip(items, indices, strict=True):
        model = item.get("model") if isinstance(item, dict) else None
        if isinstance(model, str) and model in configs:
            group = groups.setdefault(model, ([], []))
            group[0].append(item)
            group[1].append(index)
            continue
        quarantine_as = model if isinstance(model, str) and model else UNKNOWN_MODEL
        reason = _unroutable(item, model, configs)
        result.reject(quarantine_as, Rejected(index=index, reason=reason, payload=_text(item)))
    for model, (group_items, group_indices) in groups.items():
        valid, rejected = validate(configs[model], group_items)
        accepted.append(valid)
        for r in rejected:
            # validate_* number items within the model's group; report the batch's index.
            result.reject(model, r.model_copy(update={"index": group_indices[r.index]}))
    result.accepted = combine(accepted)
    return result


def add_unreadable(rejected: dict[str, list[Rejected]], batch: Batch) -> None:
    """Quarantine the batch's NDJSON lines that were not JSON with the items that failed."""
    if batch.unreadable:
        rejected.setdefault(UNKNOWN_MODEL, []).extend(batch.unreadable)


def _flatten(parts: Iterable[Sequence[Label]]) -> list[Label]:
    return [x for part in parts for x in part]


def _unroutable(item: Any, model: Any, configs: Mapping[str, ModelConfig]) -> str:
    known = ", ".join(repr(name) for name in sorted(configs))
    if not isinstance(item, dict):
        return f"not a JSON object (got {type(item).__name__})"
    if model is None:
        return f"model: missing; this collector accepts {known}"
    return f"model: unknown model {model!r}; this collector accepts {known}"


def _text(item: Any) -> str:
    # Rendered as validate_events renders the payloads it rejects.
    try:
        return json.dumps(item, default=str)[:PAYLOAD_CHARS]
    except (TypeError, ValueError):
        return repr(item)[:PAYLOAD_CHARS]
