"""Reading a batch from a request body: a JSON object holding a list, or NDJSON lines.

A body that cannot be read at all is refused whole (``BodyError``, answered 400). In NDJSON each
line stands alone, so a line that is not JSON is rejected with its line index and the other lines
go on.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from pydantic_core import from_json

from tripwire.events import Rejected

JSON = "application/json"
NDJSON = "application/x-ndjson"
# Names other clients use for the same line-delimited format.
NDJSON_TYPES = frozenset({NDJSON, "application/ndjson", "application/jsonl", "application/x-jsonl"})
PAYLOAD_CHARS = 10_000  # as much of a bad line as the quarantine keeps (as validation does)


class BodyError(ValueError):
    """The body is not a batch at all (malformed JSON, wrong shape); nothing in it is used."""


class MediaTypeError(ValueError):
    """The body is in a format the collector does not read."""


@dataclass
class Batch:
    """The items of a body with their positions, and the NDJSON lines that were not JSON."""

    items: list[Any] = field(default_factory=list)
    indices: list[int] = field(default_factory=list)
    unreadable: list[Rejected] = field(default_factory=list)
    # Per batch index, the item's name in its stream when it has one (queue consumers).
    origins: list[str] = field(default_factory=list)


def media_type(content_type: str | None) -> str:
    """``application/json; charset=utf-8`` -> ``application/json``."""
    return (content_type or "").split(";", 1)[0].strip().lower()


def parse_batch(content_type: str | None, raw: bytes, key: str) -> Batch:
    """The batch in ``raw``: ``{key: [...]}`` as JSON, or one item per NDJSON line."""
    kind = media_type(content_type)
    if kind == JSON:
        return _json_batch(raw, key)
    if kind in NDJSON_TYPES:
        return _ndjson_batch(raw)
    raise MediaTypeError(
        f"Content-Type {kind or '(none)'!r} is not supported: send {JSON} "
        f'({{"{key}": [...]}}) or {NDJSON} (one item per line)'
    )


def _json_batch(raw: bytes, key: str) -> Batch:
    # pydantic-core's parser (which pydantic and FastAPI already ship) is several times faster
    # than the json module, and parsing is a large share of the time spent on a batch.
    try:
        body = from_json(raw, cache_strings="keys")
    except ValueError as exc:
        raise BodyError(f"the body is not valid JSON: {exc}") from None
    items = body.get(key) if isinstance(body, dict) else None
    if not isinstance(items, list):
        raise BodyError(f'the body must be a JSON object with an "{key}" list')
    return Batch(items=items, indices=list(range(len(items))))


def _ndjson_batch(raw: bytes) -> Batch:
    batch = Batch()
    for index, line in enumerate(raw.split(b"\n")):
        if not line.strip():
            continue  # blank lines (a trailing newline, say) hold no item
        try:
            batch.items.append(from_json(line, cache_strings="keys"))
        except ValueError as exc:
            text = line.decode("utf-8", errors="replace")[:PAYLOAD_CHARS]
            batch.unreadable.append(Rejected(index=index, reason=f"not JSON: {exc}", payload=text))
            continue
        batch.indices.append(index)
    return batch
