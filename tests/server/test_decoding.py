"""The collector's one-pass decoding (``tripwire.server.decoding``) against the long way
(``parse_batch`` and pydantic's ``Event``), which stays the definition of a valid event.

Whatever the one-pass decoder accepts, the long way must accept too, with the same rows; what
it declines goes the long way, which says why. Checked on thousands of items made by mutating
valid events field by field with odd values, and on the edge cases found while writing it.
"""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

import msgspec
import numpy as np
import pytest

from tripwire.config import ModelConfig
from tripwire.events import Event, Rejected
from tripwire.server.body import JSON, NDJSON, Batch, BodyError, parse_batch
from tripwire.server.collector import Collector
from tripwire.server.decoding import _Event, decode_events, decode_lines
from tripwire.server.parsing import read_events, validate_batch
from tripwire.store import DuckDBStore
from tripwire.store.common import EventRows, _json

ODD_VALUES: list[Any] = [
    None,
    "",
    "x",
    "1.5",
    "true",
    0,
    1,
    -1,
    1.5,
    -0.0,
    1e308,
    2**63,
    2**64 + 1,
    2**80,
    True,
    False,
    [],
    [1, 2],
    {},
    {"a": 1},
    {"a": {"b": [1, None]}},
    "é\u2028\x00",
    "a" * 200,
    "a" * 201,
    "production",
    "shadow",
    "2026-10-01T00:00:02Z",
    "2026-10-01T00:00:02.1234567Z",
    "2026-10-01T00:00:02.9999995+00:00",
    "2026-10-01T00:00:02",
    "2026-10-01 00:00:02+05:30",
    "2026-10-01T00:00Z",
    "2026-10-01",
    "2026-10-01T00:00:02,5Z",
    "1700000000",
    1700000000,
    "2026-02-30T00:00:00Z",
]


def _mutate(event: dict[str, Any], rng: random.Random) -> dict[str, Any]:
    item = json.loads(json.dumps(event))
    for _ in range(rng.choice((1, 1, 2))):
        kind = rng.random()
        field = rng.choice([*Event.model_fields, "features", "features", "segments", "extra"])
        if kind < 0.15 and field in item:
            del item[field]
        elif field == "features" and kind < 0.6 and isinstance(item.get("features"), dict):
            name = rng.choice([*item["features"], "new_feature"])
            item["features"][name] = rng.choice(ODD_VALUES)
        elif field == "segments" and kind < 0.6:
            item["segments"] = {"user_type": rng.choice(ODD_VALUES)}
        else:
            item[field] = rng.choice(ODD_VALUES)
    return item


def _long_way(configs: dict[str, ModelConfig], content_type: str, raw: bytes) -> Any:
    return validate_batch(configs, parse_batch(content_type, raw, "events"))


def _assert_subset(configs: dict[str, ModelConfig], content_type: str, raw: bytes) -> bool:
    """When the decoder takes ``raw``, the long way takes every item too, with the same rows.
    Returns whether the decoder took it."""
    rows = decode_events(configs, content_type, raw)
    if rows is None:
        return False
    long = _long_way(configs, content_type, raw)
    assert long.rejected == {}, (raw[:300], long.rejected)
    assert isinstance(long.accepted, EventRows)
    assert rows.table.equals(long.accepted.table), raw[:300]
    return True


def test_the_struct_has_events_fields_and_defaults() -> None:
    assert set(_Event.__struct_fields__) == set(Event.model_fields)
    required = {"event_id": "1", "model": "m", "timestamp": "2026-01-01T00:00:00Z"}
    required |= {"features": {}, "prediction": 0.5}
    assert {n for n, f in Event.model_fields.items() if f.is_required()} == required.keys()
    decoded = msgspec.json.decode(json.dumps(required), type=_Event)
    for name, field in Event.model_fields.items():
        if not field.is_required():
            assert getattr(decoded, name) == field.get_default(call_default_factory=True), name


def test_valid_batches_take_one_pass_and_store_what_the_long_way_does(
    config: ModelConfig, events: list[dict[str, Any]]
) -> None:
    configs = {config.name: config}
    body = json.dumps({"events": events}).encode()
    assert _assert_subset(configs, JSON, body)
    # msgspec would round sub-microseconds; the timestamps are pydantic's, which truncates.
    events[1]["timestamp"] = "2026-10-01T00:00:02.9999995+00:00"
    assert _assert_subset(configs, JSON, json.dumps({"events": events}).encode())
    lines = "\n\n".join(json.dumps(e) for e in events) + "\r\n"
    assert _assert_subset(configs, NDJSON, lines.encode())
    # read_events, which the collector calls, answers with the decoder's rows.
    result = read_events(configs, JSON, body)
    assert result.rejected == {}
    assert isinstance(result.accepted, EventRows) and len(result.accepted) == len(events)
    assert result.accepted.table.equals(decode_events(configs, JSON, body).table)  # type: ignore[union-attr]


def test_mutated_items_are_taken_only_when_the_long_way_takes_them(
    config: ModelConfig, events: list[dict[str, Any]]
) -> None:
    configs = {config.name: config}
    rng = random.Random(20261126)
    taken = declined = 0
    for n in range(4000):
        item = _mutate(events[n % len(events)], rng)
        try:
            line = json.dumps(item)
        except ValueError:
            continue
        for content_type, raw in ((JSON, f'{{"events": [{line}]}}'), (NDJSON, line + "\n")):
            if _assert_subset(configs, content_type, raw.encode()):
                taken += 1
            else:
                declined += 1
                # Declined items are still read: the long way takes or rejects each with a reason.
                long = _long_way(configs, content_type, raw.encode())
                assert len(long.accepted) + sum(map(len, long.rejected.values())) == 1
    # Both branches are exercised: many mutations (a new feature, a null latency) stay valid.
    assert taken > 500 and declined > 2000, (taken, declined)


@pytest.mark.parametrize(
    ("change", "why"),
    [
        ({"timestamp": 1700000000}, "a Unix time only pydantic reads"),
        ({"prediction": "0.5"}, "a number as text, which lax pydantic takes"),
        ({"model": "no-such-model"}, "a model the collector does not know"),
        ({"features": {"amount": 1.0}}, "missing features"),
        ({"unknown_field": 1}, "a field Event forbids"),
        ({"event_id": ""}, "an empty id"),
        ({"event_id": "x" * 201}, "an id past the limit"),
    ],
)
def test_declined_items_go_the_long_way(
    config: ModelConfig, events: list[dict[str, Any]], change: dict[str, Any], why: str
) -> None:
    configs = {config.name: config}
    body = json.dumps({"events": [*events[:5], {**events[5], **change}]}).encode()
    assert decode_events(configs, JSON, body) is None, why
    result = read_events(configs, JSON, body)
    long = _long_way(configs, JSON, body)
    assert len(result.accepted) == len(long.accepted)
    assert result.rejected == long.rejected


def test_bodies_the_long_way_refuses_are_not_taken(
    config: ModelConfig, events: list[dict[str, Any]]
) -> None:
    configs = {config.name: config}
    line = json.dumps(events[0])
    bodies = [
        (JSON, f'{{"events": [{line}]}} trailing'),
        (JSON, f"[{line}]"),
        (JSON, '{"events": {}}'),
        (JSON, '{"events": []}'),
        (NDJSON, f"{line} {line}\n"),  # two values on one line
        (NDJSON, f"{line}, {line}\n"),
        (NDJSON, line[:40] + "\n" + line[40:] + "\n"),  # one value over two lines
        (NDJSON, ""),
        ("text/plain", line),
    ]
    for content_type, text in bodies:
        assert decode_events(configs, content_type, text.encode()) is None, text[:80]
    with pytest.raises(BodyError):
        parse_batch(JSON, f'{{"events": [{line}]}} trailing'.encode(), "events")


def test_several_models_in_one_body_are_decoded_in_order(
    config: ModelConfig, events: list[dict[str, Any]]
) -> None:
    other = config.model_copy(update={"name": "other-model"})
    configs = {config.name: config, other.name: other}
    items = [{**e, "model": other.name} if i % 3 == 0 else e for i, e in enumerate(events[:30])]
    rows = decode_events(configs, JSON, json.dumps({"events": items}).encode())
    assert rows is not None
    assert rows.table["model"].to_pylist() == [e["model"] for e in items]
    assert rows.table["event_id"].to_pylist() == [e["event_id"] for e in items]


def test_stored_json_keeps_numbers_of_other_types_as_numbers() -> None:
    value = {"a": np.float64(0.5), "b": np.int64(3), "c": float("nan"), "d": np.float32(0.25)}
    assert json.loads(_json(value)) == {"a": 0.5, "b": 3, "c": None, "d": 0.25}
    assert json.loads(_json({"when": np.datetime64("2026-01-01")})) == {"when": "2026-01-01"}
    assert msgspec.json.decode(_json({"x": [1, "y"]})) == {"x": [1, "y"]}


def test_a_queues_messages_are_decoded_in_one_pass_when_all_are_events(
    config: ModelConfig, events: list[dict[str, Any]], tmp_path: Path
) -> None:
    configs = {config.name: config}
    lines = [json.dumps(e).encode() for e in events[:50]]
    rows = decode_lines(configs, lines)
    assert rows is not None
    long = _long_way(configs, NDJSON, b"\n".join(lines))
    assert rows.table.equals(long.accepted.table)
    assert decode_lines(configs, [*lines[:3], None]) is None  # a message with no value
    assert decode_lines(configs, []) is None

    with DuckDBStore(tmp_path / "s.duckdb") as store:
        collector = Collector(configs, store)

        def never() -> Batch:
            raise AssertionError("valid messages must not be read the long way")

        answer = collector.ingest_lines(lines, never, "queue")
        assert (answer.accepted, answer.duplicates, answer.rejected) == (50, 0, [])
        # A bad message: the consumer's own reading names it, and the rest are stored.
        bad = [*(json.dumps(e).encode() for e in events[50:60]), b"{not json"]
        read = [Batch(items=[json.loads(x) for x in bad[:10]], indices=list(range(10)))]
        read[0].unreadable.append(Rejected(index=10, reason="message 10: not JSON", payload=""))
        answer = collector.ingest_lines(bad, lambda: read[0], "queue")
        assert (answer.accepted, [r.index for r in answer.rejected]) == (10, [10])
        assert store.events(config.name).num_rows == 60
