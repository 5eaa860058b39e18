"""Decoding a body whose events are all valid straight into the store's rows, in one pass.

Reading a body into Python objects and then validating them with pydantic was most of the
collector's CPU per event, all of it under the interpreter lock. msgspec decodes JSON into typed
structs and checks the types in the same pass, in C, several times faster. It is used only to
*accept*: :func:`decode_events` answers ``None`` as soon as anything in the body is off (a field
of another type, a missing feature, an unknown model, a line that is not JSON), and then the body
takes the long way (:mod:`tripwire.server.validation`), which says which item failed and why.

So :class:`tripwire.events.Event` stays the one definition of a valid event. For that to hold,
what ``_Event`` accepts must be a subset of what ``Event`` accepts, with the same values:

* types are strict (a number is not taken for a string, nor a string for a number), where
  pydantic's lax mode takes more; what only pydantic takes goes the long way;
* the timestamp is decoded as text and validated by the same pydantic validator as the long
  way's, because the two libraries round sub-microsecond digits differently;
* the length limits on ``event_id`` are ``Event``'s.

``tests/server/test_decoding.py`` checks the subset item by item against ``Event`` over many
generated items, and that both ways store the same rows.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Annotated, Any, Literal

import msgspec

from tripwire.config import ModelConfig
from tripwire.events import EVENT_ID_MAX_LENGTH, column_validator
from tripwire.server.body import JSON, NDJSON_TYPES, media_type
from tripwire.store.common import EventRows, event_rows

_Scalar = float | int | str | bool | None


class _Event(msgspec.Struct, forbid_unknown_fields=True):
    """``Event``'s fields, strictly typed; the optional ones with ``Event``'s defaults (the
    tests compare the two)."""

    event_id: Annotated[str, msgspec.Meta(min_length=1, max_length=EVENT_ID_MAX_LENGTH)]
    model: str
    timestamp: str
    features: dict[str, _Scalar]
    prediction: float
    model_version: str | None = None
    role: Literal["production", "shadow"] = "production"
    latency_ms: float | None = None
    status: str | None = None
    cost: float | None = None
    segments: dict[str, str] = {}
    metadata: dict[str, Any] = {}


class _Batch(msgspec.Struct):
    # Like the long way, other keys of the body are ignored.
    events: list[_Event]


_BATCH = msgspec.json.Decoder(_Batch)
_LINE = msgspec.json.Decoder(_Event)
_TIMESTAMPS = column_validator("timestamp")
_FIELDS = tuple(_Event.__struct_fields__)


def decode_events(
    configs: Mapping[str, ModelConfig], content_type: str | None, raw: bytes
) -> EventRows | None:
    """The body's events as rows of table ``events`` when every one of them is valid for a
    model in ``configs`` (and there is at least one), else ``None``."""
    kind = media_type(content_type)
    if kind in NDJSON_TYPES:
        return decode_lines(configs, [line for line in raw.split(b"\n") if line.strip()])
    if kind != JSON:
        return None
    try:
        events = _BATCH.decode(raw).events
    except (msgspec.ValidationError, msgspec.DecodeError):
        return None
    return _rows(configs, events)


def decode_lines(
    configs: Mapping[str, ModelConfig], lines: Sequence[bytes | None]
) -> EventRows | None:
    """Events given as one JSON text each (an NDJSON body's lines, a queue's messages; None
    for a message with none) as rows of table ``events``, when every one of them is valid for
    a model in ``configs`` (and there is at least one), else ``None``."""
    texts = [line for line in lines if line is not None]
    if len(texts) != len(lines):
        return None
    try:
        events = [_LINE.decode(text) for text in texts]
    except (msgspec.ValidationError, msgspec.DecodeError):
        return None
    return _rows(configs, events)


def _rows(configs: Mapping[str, ModelConfig], events: list[_Event]) -> EventRows | None:
    if not events or not _have_features(configs, events):
        return None
    columns = {name: [getattr(e, name) for e in events] for name in _FIELDS}
    try:
        columns["timestamp"] = _TIMESTAMPS.validate_python(columns["timestamp"])
    except ValueError:  # pydantic's ValidationError
        return None
    return event_rows(columns)


def _have_features(configs: Mapping[str, ModelConfig], events: list[_Event]) -> bool:
    """Whether every event is for a model in ``configs`` and carries its features."""
    expected: dict[str, set[str]] = {}
    for event in events:
        features = expected.get(event.model)
        if features is None:
            config = configs.get(event.model)
            if config is None:
                return False
            features = expected[event.model] = set(config.columns.features)
        if not features <= event.features.keys():
            return False
    return True
