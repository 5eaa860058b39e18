"""What every store shares: the tables' logical layout, the Arrow shapes rows go in and come out
as, and the conversions between them.

Each backend keeps its own frozen migrations in its own SQL dialect (a migration that has run
must never change); the layout here is what those migrations add up to, and the store tests
check every backend's tables against it. Reads build Arrow tables from these schemas, so a
caller gets the same column names and types whichever store it talks to.
"""

from __future__ import annotations

import hashlib
import json
import numbers
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, overload

import msgspec
import pyarrow as pa

from tripwire.errors import TripwireError
from tripwire.events import Event, Label, Rejected
from tripwire.layers.rows import MetricRow

PRODUCTION = "production"

TIMESTAMP = pa.timestamp("us")  # naive UTC, as TIMESTAMP (WITHOUT TIME ZONE) columns hold it

# A window's key columns, which every metric row of the window repeats.
WINDOW_KEY = ("model", "namespace", "window_start", "window_seconds")

METRIC_COLUMNS = (
    "segment",
    "feature",
    "layer",
    "metric",
    "value",
    "status",
    "threshold",
    "reference",
    "n",
    "importance",
    "bound",
    "reason",
    "ci_low",
    "ci_high",
    "coverage",
)


class DuplicateEventsError(Exception):
    """``Store.insert_events`` found an event whose (model, event_id) is stored already or
    repeated in its batch, and stored none of them. In DuckDB the caller's transaction, if
    any, must then be rolled back: DuckDB refuses the rest of it."""


def _table(*columns: tuple[str, pa.DataType, bool]) -> pa.Schema:
    """A table's columns in order: name, the Arrow type it reads back as, whether it may be NULL."""
    return pa.schema([pa.field(name, kind, nullable=nullable) for name, kind, nullable in columns])


_S, _F, _I = pa.string(), pa.float64(), pa.int64()

# The layout every backend's migrations produce, table by table, columns in order. JSON
# columns are strings here: they are written by json.dumps and read back as text.
TABLES: dict[str, pa.Schema] = {
    "windows": _table(
        ("model", _S, False),
        ("namespace", _S, False),
        ("window_start", TIMESTAMP, False),
        ("window_seconds", _I, False),
        ("n_rows", _I, False),
        ("profile", pa.binary(), False),
        ("computed_at", TIMESTAMP, False),
    ),
    # Each model's fitted reference (the bytes Monitor.to_bytes gives), by namespace.
    "reference_profiles": _table(
        ("model", _S, False),
        ("namespace", _S, False),
        ("digest", _S, False),  # SHA-256 of state, hex
        ("state", pa.binary(), False),
        ("stored_at", TIMESTAMP, False),
    ),
    "metrics": _table(
        ("model", _S, False),
        ("namespace", _S, False),
        ("window_start", TIMESTAMP, False),
        ("window_seconds", _I, False),
        ("segment", _S, False),
        ("feature", _S, False),  # '' for metrics of the model's outputs
        ("layer", _S, False),
        ("metric", _S, False),
        ("value", _F, True),
        ("status", _S, False),
        ("threshold", _F, True),
        ("reference", _F, True),
        ("n", _I, False),
        ("importance", _F, True),
        ("bound", _F, True),
        ("reason", _S, True),
        ("ci_low", _F, True),
        ("ci_high", _F, True),
        ("coverage", _F, True),
    ),
    # Earlier versions of a window's performance rows, which change as labels arrive: when a
    # window is written again, each row that moved is kept here with when it was computed.
    "metric_revisions": _table(
        ("model", _S, False),
        ("namespace", _S, False),
        ("window_start", TIMESTAMP, False),
        ("window_seconds", _I, False),
        ("computed_at", TIMESTAMP, False),
        ("segment", _S, False),
        ("feature", _S, False),
        ("metric", _S, False),
        ("value", _F, True),
        ("status", _S, False),
        ("n", _I, False),
        ("coverage", _F, True),
        ("ci_low", _F, True),
        ("ci_high", _F, True),
    ),
    "incidents": _table(
        ("dedup_key", _S, False),
        ("model", _S, False),
        ("namespace", _S, False),
        ("rule", _S, False),
        ("metric", _S, False),
        ("feature", _S, False),
        ("segment", _S, False),
        ("severity", _S, False),
        ("route", _S, False),
        ("evidence_start", TIMESTAMP, False),
        ("opened_at", TIMESTAMP, False),
        ("last_breach_at", TIMESTAMP, False),
        ("resolved_at", TIMESTAMP, True),
        ("value", _F, True),
        ("threshold", _F, True),
        ("reopened", pa.int32(), False),
        ("updated_at", TIMESTAMP, False),
        # When the job first derived the incident (its clock's now); null where not recorded.
        ("detected_at", TIMESTAMP, True),
    ),
    "calibrations": _table(
        ("model", _S, False),
        ("metric", _S, False),
        ("feature", _S, False),
        ("segment", _S, False),
        ("threshold", _F, False),
        ("quantile", _F, False),
        ("floor", _F, False),
        ("windows_used", _S, False),  # JSON list of window starts
        ("computed_at", TIMESTAMP, False),
    ),
    "abnormal_windows": _table(
        ("model", _S, False),
        ("window_start", TIMESTAMP, False),
        ("reason", _S, False),
    ),
    "events": _table(
        ("model", _S, False),
        ("event_id", _S, False),
        ("model_version", _S, True),
        ("role", _S, False),
        ("ts", TIMESTAMP, False),
        ("features", _S, False),  # JSON
        ("prediction", _F, False),
        ("latency_ms", _F, True),
        ("status", _S, True),
        ("cost", _F, True),
        ("segments", _S, False),  # JSON
        ("metadata", _S, False),  # JSON
        ("received_at", TIMESTAMP, False),
    ),
    "labels": _table(
        ("model", _S, False),
        ("event_id", _S, False),
        ("label", _F, False),
        ("labelled_at", TIMESTAMP, True),
        ("received_at", TIMESTAMP, False),
    ),
    "quarantine": _table(
        ("id", _I, False),
        ("received_at", TIMESTAMP, False),
        ("model", _S, False),
        ("source", _S, False),
        ("reason", _S, False),
        ("payload", _S, False),
    ),
    "outbox": _table(
        ("id", _I, False),
        ("created_at", TIMESTAMP, False),
        ("route", _S, False),
        ("channel_index", pa.int32(), False),
        ("channel_type", _S, False),
        ("dedup_key", _S, False),
        ("event", _S, False),
        ("payload", _S, False),  # JSON: the AlertMessage
        ("attempts", pa.int32(), False),
        ("next_attempt_at", TIMESTAMP, False),
        ("delivered_at", TIMESTAMP, True),
        ("last_error", _S, True),
    ),
    # The queue consumers (tripwire consume kafka|redis), one row per source, stream and group.
    "consumers": _table(
        ("source", _S, False),  # kafka or redis
        ("stream", _S, False),  # the topic or the stream's key
        ("group_id", _S, False),
        ("lag", _I, True),  # events in the stream the group has not stored yet; null: unknown
        ("events_stored", _I, False),  # events new to the store, by all the group's consumers
        ("updated_at", TIMESTAMP, False),
    ),
}


def _column(qualified: str) -> pa.Field:
    """``table.column`` from the layout, nullable: query results never promise NOT NULL."""
    table, column = qualified.split(".")
    return TABLES[table].field(column).with_nullable(True)


def _result(*columns: str) -> pa.Schema:
    return pa.schema([_column(c) for c in columns])


def _whole(table: str) -> pa.Schema:
    return _result(*(f"{table}.{name}" for name in TABLES[table].names))


# What the read methods return. The queries select exactly these columns, in this order.
HISTORY = _result(
    "metrics.window_start",
    *(f"metrics.{c}" for c in METRIC_COLUMNS if c not in ("bound", "reason")),
)
QUARANTINED = _result(
    "quarantine.received_at", "quarantine.source", "quarantine.reason", "quarantine.payload"
)
EVENTS = _result(
    "events.event_id",
    "events.ts",
    "events.prediction",
    "events.latency_ms",
    "events.status",
    "events.cost",
    "events.features",
    "events.segments",
    "events.metadata",
    "labels.label",
    "labels.labelled_at",
)
REVISIONS = _result(
    *(
        f"metric_revisions.{c}"
        for c in TABLES["metric_revisions"].names
        if c not in ("model", "namespace", "window_start", "window_seconds")
    )
)
CALIBRATIONS = _whole("calibrations")
INCIDENTS = _whole("incidents")
CONSUMERS = _whole("consumers")

# What the write methods build from their arguments, in table column order.
_METRIC_ROWS = _result(*(f"metrics.{c}" for c in METRIC_COLUMNS))
_EVENT_ROWS = _whole("events")
_EVENT_COLUMNS = _EVENT_ROWS.remove(_EVENT_ROWS.get_field_index("received_at"))
_LABEL_ROWS = _whole("labels")


# Both dialects, with ? placeholders for the window's key (model, namespace, start, seconds).
_KEY = "model = ? AND namespace = ? AND window_start = ? AND window_seconds = ?"
_REVISED = ", ".join(REVISIONS.names[1:])  # the columns after computed_at
COMPUTED_AT = f"SELECT computed_at FROM windows WHERE {_KEY}"
# Before a window is written again: keep its performance rows with when they were computed
# (the first parameter, then the key).
KEEP_REVISIONS = (
    "INSERT INTO metric_revisions SELECT model, namespace, window_start, window_seconds, ?, "
    f"{_REVISED} FROM metrics WHERE {_KEY} AND layer = 'performance'"
)
# After it is written: drop the kept rows that did not move (a rerun, or labels that changed
# some segments only), so that a revision is a value that changed (the key, then when the
# kept rows were computed).
DROP_UNMOVED = (
    f"DELETE FROM metric_revisions WHERE {_KEY} AND computed_at = ? AND EXISTS ("
    "SELECT 1 FROM metrics m WHERE m.model = metric_revisions.model "
    "AND m.namespace = metric_revisions.namespace "
    "AND m.window_start = metric_revisions.window_start "
    "AND m.window_seconds = metric_revisions.window_seconds "
    "AND m.segment = metric_revisions.segment AND m.feature = metric_revisions.feature "
    "AND m.metric = metric_revisions.metric AND m.status = metric_revisions.status "
    "AND m.n = metric_revisions.n "
    "AND m.value IS NOT DISTINCT FROM metric_revisions.value)"
)
# A window's performance rows, earlier versions and the current one (its computed_at is the
# window's); the caller orders them.
REVISIONS_QUERY = (
    f"SELECT * FROM (SELECT computed_at, {_REVISED} FROM metric_revisions WHERE {_KEY} UNION ALL "
    f"SELECT w.computed_at, {', '.join('m.' + c for c in REVISIONS.names[1:])} "
    "FROM metrics m JOIN windows w ON w.model = m.model AND w.namespace = m.namespace "
    "AND w.window_start = m.window_start AND w.window_seconds = m.window_seconds "
    f"WHERE {' AND '.join('m.' + part for part in _KEY.split(' AND '))} "
    "AND m.layer = 'performance') AS revisions"
)


# Windows of a model's production log with a row received after the window's rows were
# computed: a label (relabelled) or an event (late). {recent} narrows it to the rows received
# since a moment.
_CHANGED_SINCE_COMPUTED = (
    "SELECT DISTINCT w.window_start FROM windows w "
    "JOIN events e ON e.model = w.model AND e.role = 'production' "
    "AND e.ts >= w.window_start AND e.ts < w.window_start + {length} {join} "
    "WHERE w.model = ? AND w.namespace = ? AND w.window_seconds = ? "
    "AND {received} > w.computed_at {recent}ORDER BY 1"
)
_WINDOW_LENGTH = {
    "duckdb": "to_seconds(w.window_seconds)",
    "postgres": "make_interval(secs => w.window_seconds)",
}
RELABELLED = {
    "join": "JOIN labels l ON l.model = e.model AND l.event_id = e.event_id",
    "received": "l.received_at",
}
LATE = {"join": "", "received": "e.received_at"}

# Windows of a model's production log holding events but no rows of their own, before its
# latest window with rows: found empty when they were due and passed over, their events came
# after that. Nothing later starts from them, so they count as late (never computed at all).
_UNCHECKED = (
    "SELECT b.window_start FROM (SELECT DISTINCT {start} AS window_start FROM events e "
    "WHERE e.model = ? AND e.role = 'production' {recent}AND e.ts < (SELECT max(window_start) "
    "FROM windows WHERE model = ? AND namespace = ? AND window_seconds = ?)) b "
    "WHERE NOT EXISTS (SELECT 1 FROM windows w WHERE w.model = ? AND w.namespace = ? "
    "AND w.window_seconds = ? AND w.window_start = b.window_start)"
)
# The start of the window of {seconds} holding e.ts, aligned to the epoch as the job aligns it.
_WINDOW_START = {
    "duckdb": "time_bucket(to_seconds({seconds}), e.ts, TIMESTAMP '1970-01-01')",
    "postgres": "date_bin(make_interval(secs => {seconds}), e.ts, TIMESTAMP '1970-01-01')",
}


def changed_since_computed(
    sql: Callable[[str, Sequence[object]], list[tuple[Any, ...]]],
    dialect: str,
    model: str,
    length: timedelta,
    changed: Mapping[str, str],
    since: datetime | None = None,
) -> list[datetime]:
    """Starts of ``model``'s production windows of ``length`` with a row (:data:`RELABELLED`
    or :data:`LATE`) received after the window was computed, in order; ``sql`` runs a
    statement written with ``?`` placeholders in ``dialect``. Late windows include those
    holding events but no rows, before the latest window with rows.

    With ``since``, only the rows received at or after it are looked at: what the scheduler
    has not seen yet. The stores find those by ``received_at`` (DuckDB skips the row groups
    received before it, PostgreSQL has indexes), instead of reading the whole log."""
    seconds = int(length.total_seconds())
    key = [model, PRODUCTION, seconds]
    recent, after = "", list[object]()
    if since is not None:
        recent, after = f"AND {changed['received']} >= ? ", [naive_utc(since)]
    query = _CHANGED_SINCE_COMPUTED.format(length=_WINDOW_LENGTH[dialect], recent=recent, **changed)
    starts = {r[0] for r in sql(query, key + after)}
    if changed is LATE:
        start = _WINDOW_START[dialect].format(seconds=seconds)
        query = _UNCHECKED.format(start=start, recent=recent)
        starts |= {r[0] for r in sql(query, [model, *after, *key, *key])}
    return sorted(starts)


# An item named by its origin (a stream position) is kept once; others (an HTTP batch's items,
# named by their index) every time they come.
QUARANTINE_INSERT = (
    "INSERT INTO quarantine (received_at, model, source, reason, payload) "
    "SELECT ?, ?, ?, ?, ? WHERE NOT ? OR NOT EXISTS "
    "(SELECT 1 FROM quarantine WHERE model = ? AND source = ?)"
)


def quarantine_rows(model: str, source: str, rejected: Sequence[Rejected]) -> list[tuple[Any, ...]]:
    """Parameters of :data:`QUARANTINE_INSERT`, one tuple per rejected item."""
    now = now_utc()
    rows = []
    for r in rejected:
        where = r.origin or f"{source}[{r.index}]"
        rows.append((now, model, where, r.reason, r.payload, r.origin is not None, model, where))
    return rows


def naive_utc(moment: datetime) -> datetime:
    """``moment`` as the store holds it: UTC without a zone (aware datetimes are converted)."""
    return moment.astimezone(UTC).replace(tzinfo=None) if moment.tzinfo else moment


# A consumer's report: its lag replaces the group's, the events it stored since its last report
# add to the group's count. Parameters: source, stream, group, lag, stored, now.
CONSUMER_UPSERT = (
    "INSERT INTO consumers VALUES (?, ?, ?, ?, ?, ?) "
    "ON CONFLICT (source, stream, group_id) DO UPDATE SET lag = excluded.lag, "
    "events_stored = consumers.events_stored + excluded.events_stored, "
    "updated_at = excluded.updated_at"
)
CONSUMERS_QUERY = f"SELECT {', '.join(CONSUMERS.names)} FROM consumers"


def now_utc() -> datetime:
    return naive_utc(datetime.now(UTC))


def newer_schema(where: str, version: int, supported: int) -> TripwireError:
    """The error for a store that a newer tripwire has migrated past this one's migrations."""
    return TripwireError(
        f"{where}: store schema version {version} is newer than this tripwire "
        f"({supported}); upgrade tripwire"
    )


def metric_table(rows: Sequence[MetricRow]) -> pa.Table:
    """A window's metric rows, :data:`METRIC_COLUMNS` in order (the window key left out)."""
    return pa.Table.from_pydict(
        {
            "segment": [r.segment for r in rows],
            "feature": [r.feature or "" for r in rows],
            "layer": [r.layer for r in rows],
            "metric": [r.metric for r in rows],
            "value": [r.value for r in rows],
            "status": [r.status for r in rows],
            "threshold": [r.threshold for r in rows],
            "reference": [r.reference for r in rows],
            "n": [r.n for r in rows],
            "importance": [r.importance for r in rows],
            "bound": [r.bound for r in rows],
            "reason": [r.reason for r in rows],
            "ci_low": [r.ci_low for r in rows],
            "ci_high": [r.ci_high for r in rows],
            "coverage": [r.coverage for r in rows],
        },
        schema=_METRIC_ROWS,
    )


def _json(value: Any) -> str:
    """JSON text; NaN and infinities become null, which is what NaN means in tripwire, and
    values JSON cannot hold become their text. msgspec's encoder is several times faster than
    the standard library's (and twice pydantic-core's), and the collector spends its time here."""
    return _ENCODER.encode(value).decode()


def _plain(value: Any) -> Any:
    # What msgspec cannot encode: numbers of other types (numpy's, which a caller's features
    # often are) as numbers, anything else as its text.
    if isinstance(value, numbers.Integral):
        return int(value)
    if isinstance(value, numbers.Real):
        return float(value)
    return str(value)


_ENCODER = msgspec.json.Encoder(enc_hook=_plain)


class EventRows(Sequence[Event]):
    """Events laid out as rows of table ``events``: every column but ``received_at``, which
    is filled in when they are written.

    The collector builds these as it validates a batch, outside the store's lock, and joins
    the batches it commits together without copying them; the stores' ``write_events`` take
    them like any sequence of events, with nothing left to convert. Indexing gives ``Event``
    objects, for any other reader.
    """

    __slots__ = ("table",)

    def __init__(self, table: pa.Table) -> None:
        self.table = table

    @classmethod
    def of(cls, events: Sequence[Event]) -> EventRows:
        if isinstance(events, EventRows):
            return events
        return event_rows({name: [getattr(e, name) for e in events] for name in Event.model_fields})

    @classmethod
    def concat(cls, parts: Iterable[Sequence[Event]]) -> EventRows:
        """The events of ``parts``, in order."""
        tables = [cls.of(part).table for part in parts]
        if len(tables) == 1:
            return cls(tables[0])
        return cls(pa.concat_tables(tables) if tables else _EVENT_COLUMNS.empty_table())

    def __len__(self) -> int:
        return int(self.table.num_rows)

    @overload
    def __getitem__(self, index: int) -> Event: ...

    @overload
    def __getitem__(self, index: slice) -> EventRows: ...

    def __getitem__(self, index: int | slice) -> Event | EventRows:
        positions = range(len(self))[index]  # IndexError, negative indices and steps as lists
        if isinstance(positions, range):
            return EventRows(self.table.take(pa.array(positions, pa.int64())))
        row = self.table.slice(positions, 1).to_pylist()[0]
        row["timestamp"] = row.pop("ts")
        for name in ("features", "segments", "metadata"):
            row[name] = json.loads(row[name])
        return Event.model_validate(row)


def event_rows(columns: Mapping[str, Sequence[Any]]) -> EventRows:
    """Events given field by field (``columns[name]`` holds every event's value of ``Event``
    field ``name``), already valid, as rows of table ``events``."""
    # Arrow stores an aware timestamp as UTC and a naive one as it is, as naive_utc does.
    return EventRows(
        pa.Table.from_pydict(
            {
                "model": columns["model"],
                "event_id": columns["event_id"],
                "model_version": columns["model_version"],
                "role": columns["role"],
                "ts": columns["timestamp"],
                "features": [_json(x) for x in columns["features"]],
                "prediction": columns["prediction"],
                "latency_ms": columns["latency_ms"],
                "status": columns["status"],
                "cost": columns["cost"],
                # Mostly empty: skip the encoder for those.
                "segments": [_json(x) if x else "{}" for x in columns["segments"]],
                "metadata": [_json(x) if x else "{}" for x in columns["metadata"]],
            },
            schema=_EVENT_COLUMNS,
        )
    )


def event_table(events: Sequence[Event], received_at: datetime) -> pa.Table:
    """Events as rows of table ``events``, every column in table order."""
    rows = EventRows.of(events).table
    received = pa.repeat(pa.scalar(received_at, TIMESTAMP), rows.num_rows)
    return rows.append_column(_EVENT_ROWS.field("received_at"), received)


def label_table(labels: Sequence[Label], received_at: datetime) -> pa.Table:
    """Labels as rows of table ``labels``, every column in table order; when a batch holds
    several labels for one event, the last one wins, as a later batch's would."""
    labels = list({(x.model, x.event_id): x for x in labels}.values())
    return pa.Table.from_pydict(
        {
            "model": [x.model for x in labels],
            "event_id": [x.event_id for x in labels],
            "label": [x.label for x in labels],
            "labelled_at": [naive_utc(x.labelled_at) if x.labelled_at else None for x in labels],
            "received_at": [received_at] * len(labels),
        },
        schema=_LABEL_ROWS,
    )


def state_digest(state: bytes) -> str:
    """What ``reference_profiles.digest`` holds for ``state``."""
    return hashlib.sha256(state).hexdigest()


def windows_used_json(windows: Iterable[datetime]) -> str:
    """A calibration's window starts, as stored in ``calibrations.windows_used``."""
    return json.dumps([w.isoformat() for w in windows])


def table_rows(table: pa.Table) -> Iterator[tuple[Any, ...]]:
    """An Arrow table's rows as tuples of Python values, for drivers that take rows."""
    return zip(*(column.to_pylist() for column in table.columns), strict=True)


def rows_to_table(rows: Sequence[Sequence[Any]], schema: pa.Schema) -> pa.Table:
    """Fetched rows as an Arrow table of ``schema``, built a column at a time."""
    columns: list[Sequence[Any]] = (
        list(zip(*rows, strict=True)) if rows else [() for _ in schema.names]
    )
    return pa.Table.from_arrays(
        [pa.array(values, type=field.type) for values, field in zip(columns, schema, strict=True)],
        schema=schema,
    )
