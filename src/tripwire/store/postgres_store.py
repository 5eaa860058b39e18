"""The server store: the same tables as :class:`~tripwire.store.DuckDBStore`, in PostgreSQL.

For deployments where several processes (jobs, the collector, a dashboard) share one store,
which a DuckDB file cannot offer. The methods, their semantics and the Arrow tables they
return are the DuckDB store's; :mod:`tripwire.store.common` holds what the two share, and
:class:`~tripwire.store.sql_store.SQLStore` the methods whose SQL is the same in both.

Needs the ``postgres`` extra (``pip install 'tripwire[postgres]'``): psycopg 3, and Apache
Arrow's ADBC driver for PostgreSQL, which reads query results straight into Arrow.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime, timedelta
from typing import Any, Literal

import adbc_driver_manager
import adbc_driver_postgresql
import psycopg
import pyarrow as pa
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo
from psycopg.pq import TransactionStatus

from tripwire.errors import TripwireError
from tripwire.events import Event, Label, Rejected
from tripwire.layers.rows import MetricRow
from tripwire.store.common import (
    COMPUTED_AT,
    DROP_UNMOVED,
    EVENTS,
    KEEP_REVISIONS,
    METRIC_COLUMNS,
    PRODUCTION,
    QUARANTINE_INSERT,
    WINDOW_KEY,
    DuplicateEventsError,
    event_table,
    label_table,
    metric_table,
    naive_utc,
    newer_schema,
    now_utc,
    quarantine_rows,
    rows_to_table,
    table_rows,
)
from tripwire.store.sql_store import SQLStore

__all__ = ["MIGRATIONS", "PostgresStore"]

# The PostgreSQL dialect of tripwire.store.schema.MIGRATIONS: the same numbering and, once all
# have run, the layout in tripwire.store.common.TABLES. A migration that has run somewhere must
# never change; a change to the tables is a new migration here and in schema.py.
#
# JSON columns are TEXT rather than JSON/JSONB: json.dumps writes NaN and Infinity, which
# PostgreSQL's JSON types reject and DuckDB's accepts, and a feature that is NaN must not fail
# a whole batch of events here when it would not in DuckDB.
MIGRATIONS: tuple[str, ...] = (
    # 1: metric history, window profiles, incidents, calibrations, abnormal windows.
    """
    CREATE TABLE windows (
        model TEXT NOT NULL,
        namespace TEXT NOT NULL,
        window_start TIMESTAMP NOT NULL,
        window_seconds BIGINT NOT NULL,
        n_rows BIGINT NOT NULL,
        profile BYTEA NOT NULL,
        computed_at TIMESTAMP NOT NULL,
        PRIMARY KEY (model, namespace, window_start, window_seconds)
    );
    CREATE TABLE metrics (
        model TEXT NOT NULL,
        namespace TEXT NOT NULL,
        window_start TIMESTAMP NOT NULL,
        window_seconds BIGINT NOT NULL,
        segment TEXT NOT NULL,
        feature TEXT NOT NULL,  -- '' for metrics of the model's outputs
        layer TEXT NOT NULL,
        metric TEXT NOT NULL,
        value DOUBLE PRECISION,
        status TEXT NOT NULL,
        threshold DOUBLE PRECISION,
        reference DOUBLE PRECISION,
        n BIGINT NOT NULL,
        importance DOUBLE PRECISION,
        bound DOUBLE PRECISION,
        reason TEXT,
        PRIMARY KEY (model, namespace, window_start, window_seconds, segment, feature, metric)
    );
    CREATE TABLE incidents (
        dedup_key TEXT NOT NULL,
        model TEXT NOT NULL,
        namespace TEXT NOT NULL,
        rule TEXT NOT NULL,
        metric TEXT NOT NULL,
        feature TEXT NOT NULL,
        segment TEXT NOT NULL,
        severity TEXT NOT NULL,
        route TEXT NOT NULL,
        evidence_start TIMESTAMP NOT NULL,
        opened_at TIMESTAMP NOT NULL,
        last_breach_at TIMESTAMP NOT NULL,
        resolved_at TIMESTAMP,
        value DOUBLE PRECISION,
        threshold DOUBLE PRECISION,
        reopened INTEGER NOT NULL,
        updated_at TIMESTAMP NOT NULL,
        PRIMARY KEY (dedup_key, namespace)
    );
    -- incidents are read and replaced per model, which the key above does not lead with.
    CREATE INDEX incidents_model ON incidents (model, namespace);
    CREATE TABLE calibrations (
        model TEXT NOT NULL,
        metric TEXT NOT NULL,
        feature TEXT NOT NULL,
        segment TEXT NOT NULL,
        threshold DOUBLE PRECISION NOT NULL,
        quantile DOUBLE PRECISION NOT NULL,
        floor DOUBLE PRECISION NOT NULL,
        windows_used TEXT NOT NULL,  -- JSON list of window starts
        computed_at TIMESTAMP NOT NULL,
        PRIMARY KEY (model, metric, feature, segment)
    );
    CREATE TABLE abnormal_windows (
        model TEXT NOT NULL,
        window_start TIMESTAMP NOT NULL,
        reason TEXT NOT NULL,
        PRIMARY KEY (model, window_start)
    );
    """,
    # 2: the prediction log, delayed labels and quarantined input.
    """
    CREATE TABLE events (
        model TEXT NOT NULL,
        event_id TEXT NOT NULL,
        model_version TEXT,
        role TEXT NOT NULL,
        ts TIMESTAMP NOT NULL,
        features TEXT NOT NULL,  -- JSON
        prediction DOUBLE PRECISION NOT NULL,
        latency_ms DOUBLE PRECISION,
        status TEXT,
        cost DOUBLE PRECISION,
        segments TEXT NOT NULL,  -- JSON
        metadata TEXT NOT NULL,  -- JSON
        received_at TIMESTAMP NOT NULL,
        PRIMARY KEY (model, event_id)
    );
    -- Windows of events are read by model and time, not by id.
    CREATE INDEX events_model_ts ON events (model, ts);
    CREATE TABLE labels (
        model TEXT NOT NULL,
        event_id TEXT NOT NULL,
        label DOUBLE PRECISION NOT NULL,
        labelled_at TIMESTAMP,
        received_at TIMESTAMP NOT NULL,
        PRIMARY KEY (model, event_id)
    );
    CREATE TABLE quarantine (
        id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        received_at TIMESTAMP NOT NULL,
        model TEXT NOT NULL,
        source TEXT NOT NULL,
        reason TEXT NOT NULL,
        payload TEXT NOT NULL
    );
    CREATE INDEX quarantine_model ON quarantine (model, id);
    """,
    # 3: the alert outbox.
    """
    CREATE TABLE outbox (
        id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        created_at TIMESTAMP NOT NULL,
        route TEXT NOT NULL,
        channel_index INTEGER NOT NULL,
        channel_type TEXT NOT NULL,
        dedup_key TEXT NOT NULL,
        event TEXT NOT NULL,
        payload TEXT NOT NULL,  -- JSON
        attempts INTEGER NOT NULL DEFAULT 0,
        next_attempt_at TIMESTAMP NOT NULL,
        delivered_at TIMESTAMP,
        last_error TEXT,
        UNIQUE (dedup_key, event, route, channel_index)
    );
    -- Every delivery pass looks for the rows not delivered yet: few among all ever sent.
    CREATE INDEX outbox_undelivered ON outbox (id) WHERE delivered_at IS NULL;
    """,
    # 4: confidence intervals and label coverage on metric rows; earlier versions of a
    # window's performance rows, as labels arrive.
    """
    ALTER TABLE metrics ADD COLUMN ci_low DOUBLE PRECISION;
    ALTER TABLE metrics ADD COLUMN ci_high DOUBLE PRECISION;
    ALTER TABLE metrics ADD COLUMN coverage DOUBLE PRECISION;
    CREATE TABLE metric_revisions (
        model TEXT NOT NULL,
        namespace TEXT NOT NULL,
        window_start TIMESTAMP NOT NULL,
        window_seconds BIGINT NOT NULL,
        computed_at TIMESTAMP NOT NULL,
        segment TEXT NOT NULL,
        feature TEXT NOT NULL,
        metric TEXT NOT NULL,
        value DOUBLE PRECISION,
        status TEXT NOT NULL,
        n BIGINT NOT NULL,
        coverage DOUBLE PRECISION,
        ci_low DOUBLE PRECISION,
        ci_high DOUBLE PRECISION
    );
    CREATE INDEX metric_revisions_window
        ON metric_revisions (model, namespace, window_start, window_seconds);
    """,
    # 5: quarantined items looked up by source, so that one redelivered from its stream
    # (same entry id, same partition and offset) is not kept twice.
    """
    CREATE INDEX quarantine_source ON quarantine (model, source);
    """,
    # 6: window profiles stored uncompressed. PostgreSQL keeps a large value out of line
    # (TOAST) on its own, so reading one profile never touches another; EXTERNAL only stops it
    # trying to compress what is a compressed archive already (new rows; old ones stay).
    """
    ALTER TABLE windows ALTER COLUMN profile SET STORAGE EXTERNAL;
    """,
    # 7: each model's fitted reference, stored by the job beside the windows it judged.
    """
    CREATE TABLE reference_profiles (
        model TEXT NOT NULL,
        namespace TEXT NOT NULL,
        digest TEXT NOT NULL,  -- SHA-256 of state: stored again only when it changed
        state BYTEA NOT NULL,
        stored_at TIMESTAMP NOT NULL,
        PRIMARY KEY (model, namespace)
    );
    ALTER TABLE reference_profiles ALTER COLUMN state SET STORAGE EXTERNAL;
    """,
    # 8: the queue consumers' state, one row per source, stream and consumer group.
    """
    CREATE TABLE consumers (
        source TEXT NOT NULL,  -- kafka or redis
        stream TEXT NOT NULL,  -- the topic or the stream's key
        group_id TEXT NOT NULL,
        lag BIGINT,  -- events in the stream the group has not stored yet; NULL: unknown
        events_stored BIGINT NOT NULL,  -- events new to the store, all the group's consumers
        updated_at TIMESTAMP NOT NULL,
        PRIMARY KEY (source, stream, group_id)
    );
    """,
    # 9: when the job first derived each incident (its clock's now); NULL for those before.
    """
    ALTER TABLE incidents ADD COLUMN detected_at TIMESTAMP;
    """,
    # 10: events and labels by when they were received: the scheduler looks for windows to
    # check again among the rows received since its look before, every pass.
    """
    CREATE INDEX events_received ON events (model, received_at);
    CREATE INDEX labels_received ON labels (model, received_at);
    """,
)

# Any fixed number, the same in every tripwire process: it serialises concurrent migrations.
_MIGRATION_LOCK = 0x7472_6970_7769_7265  # "tripwire"

_WHERE_WINDOW = "model = %s AND namespace = %s AND window_start = %s AND window_seconds = %s"


def _dialect(statement: str) -> str:
    """A statement shared with DuckDB (``?`` placeholders) in psycopg's style."""
    # psycopg's placeholders are %s, so a literal % must be doubled first.
    return statement.replace("%", "%%").replace("?", "%s")


def _names(columns: Sequence[str]) -> sql.Composable:
    return sql.SQL(", ").join(map(sql.Identifier, columns))


def _redacted(dsn: str) -> str:
    """The DSN fit for an error message: the password, if any, replaced."""
    try:
        params = conninfo_to_dict(dsn)
    except psycopg.ProgrammingError:
        return "<unparseable PostgreSQL DSN>"
    if "password" in params:
        params["password"] = "***"
    return make_conninfo("", **params)


class PostgresStore(SQLStore):
    """Metric history, window profiles, incidents, calibrations and the prediction log in a
    PostgreSQL database.

    Parameters
    ----------
    dsn
        A libpq connection string or URI (``"postgresql://user@host/db"``); the tables are
        created, or brought up to date, on connecting.
    """

    dialect: Literal["postgres"] = "postgres"
    text_order = ' COLLATE "C"'  # DuckDB's order: by byte value, not the database's collation

    def __init__(self, dsn: str) -> None:
        self.dsn = dsn
        # Error messages name the database, never the password that may be in the DSN.
        self.where = _redacted(dsn)
        # The reads that return tables go through a second connection, opened by the first
        # of them (see _table), that hands results over as Arrow; one read at a time.
        self._reader: adbc_driver_manager.AdbcConnection | None = None
        self._reader_database: adbc_driver_manager.AdbcDatabase | None = None
        self._reader_lock = threading.Lock()
        try:
            # Autocommit, with explicit transactions where several statements must hold
            # together: a bare read then never leaves a transaction open on the server.
            self.connection: psycopg.Connection[tuple[Any, ...]] = psycopg.connect(
                dsn, autocommit=True
            )
        except psycopg.Error as exc:
            raise TripwireError(f"{self.where}: cannot open the store: {exc}") from exc
        try:
            # Timestamps are naive UTC; should an aware value ever reach a TIMESTAMP column,
            # PostgreSQL converts it with the session's zone, which must then be UTC.
            self.connection.execute("SET TIME ZONE 'UTC'")
            self._migrate()
        except BaseException:
            self.connection.close()
            raise

    def close(self) -> None:
        with self._reader_lock:
            reader, database = self._reader, self._reader_database
            self._reader = self._reader_database = None
        try:
            if reader is not None:
                reader.close()
            if database is not None:
                database.close()
        finally:
            self.connection.close()

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """Hold the statements inside together: all committed, or (on an error) none.
        Nested uses become savepoints of the outer transaction."""
        with self.connection.transaction():
            yield

    def sql(self, statement: str, params: Sequence[object] = ()) -> list[tuple[Any, ...]]:
        """Run one statement written with ``?`` placeholders (DuckDB's); the rows it returns,
        if any."""
        cursor = self.connection.execute(_dialect(statement), list(params))
        return cursor.fetchall() if cursor.description is not None else []

    def table(self, statement: str, params: Sequence[object], schema: pa.Schema) -> pa.Table:
        """The rows of one query written with ``?`` placeholders, as a table of ``schema``,
        whose columns the query selects in order (see :meth:`_table`)."""
        return self._table(_dialect(statement), params, schema)

    def _one_of(self, column: str, values: Sequence[object]) -> tuple[str, list[object]]:
        # One array parameter, however many values.
        return f"{column} = ANY(?)", [list(values)]

    def __enter__(self) -> PostgresStore:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def _migrate(self) -> None:
        db = self.connection
        with db.transaction():
            # Two processes opening a new database at once would both run migration 1.
            db.execute("SELECT pg_advisory_xact_lock(%s)", [_MIGRATION_LOCK])
            db.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")
            row = db.execute("SELECT max(version) FROM schema_version").fetchone()
            current = (row[0] if row else None) or 0
            if current > len(MIGRATIONS):
                raise newer_schema(self.where, current, len(MIGRATIONS))
            # One transaction for all that is missing: DDL is transactional in PostgreSQL, so
            # a failure leaves the database at the version it had.
            for version in range(current + 1, len(MIGRATIONS) + 1):
                db.execute(MIGRATIONS[version - 1].encode())
                db.execute("INSERT INTO schema_version VALUES (%s)", [version])

    def _table(self, query: str, params: Sequence[Any], schema: pa.Schema) -> pa.Table:
        """The rows of ``query`` (psycopg's placeholders, for ``params``) as a table of
        ``schema``, whose columns the query selects in order."""
        if self.connection.info.transaction_status != TransactionStatus.IDLE:
            # Inside a caller's transaction: what it wrote so far is seen by this connection
            # only. Binary results: numbers and timestamps arrive without text parsing.
            with self.connection.cursor(binary=True) as cursor:
                rows = cursor.execute(query, params).fetchall()
            return rows_to_table(rows, schema)
        # Through psycopg each value of each row became a Python object on its way to Arrow
        # (over half the CPU time of `tripwire run` over PostgreSQL). ADBC's driver runs
        # the query as COPY ... TO STDOUT (FORMAT binary) and decodes the rows into Arrow in
        # C. It does that for a query without parameters: psycopg binds them here, as
        # literals, escaped as it escapes them for this server.
        statement = psycopg.ClientCursor(self.connection).mogrify(query, params)
        with self._reader_lock:
            reader = self._reader or self._open_reader()
            read = adbc_driver_manager.AdbcStatement(reader)
            try:
                read.set_sql_query(statement)
                stream, _ = read.execute_query()
                table = pa.RecordBatchReader._import_from_c(stream.address).read_all()
            finally:
                read.close()
        if table.num_rows == 0:
            return schema.empty_table()
        # Each column is copied out of the driver's batches (a few ms for a window of 100 MB):
        # Arrow frees an imported batch only once none of its columns is referenced, so a
        # caller who kept one column of each window read (say the labels) would keep every
        # read whole. The driver types the columns from PostgreSQL's (TEXT as string, BIGINT
        # as int64, TIMESTAMP as timestamp[us], ...): the schema's types already.
        columns = [
            pa.concat_arrays(column.chunks).cast(field.type)
            for column, field in zip(table.columns, schema, strict=True)
        ]
        return pa.Table.from_arrays(columns, schema=schema)

    def _open_reader(self) -> adbc_driver_manager.AdbcConnection:
        """The connection :meth:`_table` reads through (autocommit, as the store's own)."""
        try:
            database = adbc_driver_postgresql.connect(self.dsn)
            try:
                reader = adbc_driver_manager.AdbcConnection(database)
            except BaseException:
                database.close()
                raise
        except adbc_driver_manager.Error as exc:
            raise TripwireError(f"{self.where}: cannot open the store's reader: {exc}") from exc
        self._reader, self._reader_database = reader, database
        return reader

    @staticmethod
    def _copy(
        cursor: psycopg.Cursor[Any],
        table: str,
        columns: Sequence[str],
        rows: Iterable[Sequence[Any]],
    ) -> None:
        """Bulk-load ``rows`` (tuples in ``columns`` order) with COPY."""
        statement = sql.SQL("COPY {} ({}) FROM STDIN").format(
            sql.Identifier(table), _names(columns)
        )
        with cursor.copy(statement) as copy:
            for row in rows:
                copy.write_row(row)

    # -- windows and metric rows ---------------------------------------------------------

    def write_window(
        self,
        model: str,
        start: datetime,
        length: timedelta,
        rows: Sequence[MetricRow],
        profile: bytes,
        n_rows: int,
        namespace: str = PRODUCTION,
    ) -> None:
        """Store one window's profile and metric rows, replacing what it had (idempotent); the
        performance rows it replaces that moved are kept (see :meth:`revisions`)."""
        key = (model, namespace, naive_utc(start), int(length.total_seconds()))
        table = metric_table(rows)
        db = self.connection
        with db.transaction(), db.cursor() as cursor:
            earlier = cursor.execute(_dialect(COMPUTED_AT), key).fetchall()
            if earlier:
                cursor.execute(_dialect(KEEP_REVISIONS), [earlier[0][0], *key])
            cursor.execute(f"DELETE FROM metrics WHERE {_WHERE_WINDOW}", key)
            cursor.execute(f"DELETE FROM windows WHERE {_WHERE_WINDOW}", key)
            cursor.execute(
                "INSERT INTO windows VALUES (%s, %s, %s, %s, %s, %s, %s)",
                [*key, n_rows, profile, now_utc()],
            )
            self._copy(
                cursor,
                "metrics",
                WINDOW_KEY + METRIC_COLUMNS,
                ((*key, *row) for row in table_rows(table)),
            )
            if earlier:
                cursor.execute(_dialect(DROP_UNMOVED), [*key, earlier[0][0]])

    # -- the prediction log --------------------------------------------------------------

    def write_events(self, events: Sequence[Event]) -> int:
        """Store events; one whose (model, event_id) is already stored is ignored, so a
        redelivered event is harmless. Returns how many were new."""
        if not events:
            return 0
        table = event_table(events, now_utc())
        db = self.connection
        # COPY cannot skip conflicts, so the batch goes to a scratch table first and from
        # there into events in one INSERT that can.
        with db.transaction(), db.cursor() as cursor:
            cursor.execute("CREATE TEMP TABLE new_events (LIKE events) ON COMMIT DROP")
            self._copy(cursor, "new_events", table.column_names, table_rows(table))
            cursor.execute(
                f"INSERT INTO events ({', '.join(table.column_names)}) "
                f"SELECT {', '.join(table.column_names)} FROM new_events ON CONFLICT DO NOTHING"
            )
            inserted = cursor.rowcount
            # Dropped now, not only on commit: inside a caller's transaction a second batch
            # would otherwise find the first one's scratch table.
            cursor.execute("DROP TABLE new_events")
            return inserted

    def insert_events(self, events: Sequence[Event]) -> None:
        """Store events none of which is stored yet, or raise ``DuplicateEventsError`` (see
        ``Store.insert_events``): COPY straight into ``events``, with no scratch table. The
        failed COPY is rolled back to a savepoint, so a caller's transaction goes on."""
        if not events:
            return
        table = event_table(events, now_utc())
        db = self.connection
        try:
            with db.transaction(), db.cursor() as cursor:
                self._copy(cursor, "events", table.column_names, table_rows(table))
        except psycopg.errors.UniqueViolation as exc:
            raise DuplicateEventsError(str(exc).strip()) from exc

    def write_labels(self, labels: Sequence[Label]) -> int:
        """Store labels; a later label for the same event replaces the earlier one."""
        if not labels:
            return 0
        # One row per event, the batch's last: PostgreSQL refuses to upsert a row twice in
        # one statement.
        latest = {(x.model, x.event_id): x for x in labels}
        table = label_table(list(latest.values()), now_utc())
        columns = ", ".join(table.column_names)
        db = self.connection
        with db.transaction(), db.cursor() as cursor:
            cursor.execute("CREATE TEMP TABLE new_labels (LIKE labels) ON COMMIT DROP")
            self._copy(cursor, "new_labels", table.column_names, table_rows(table))
            cursor.execute(
                f"INSERT INTO labels ({columns}) SELECT {columns} FROM new_labels "
                "ON CONFLICT (model, event_id) DO UPDATE SET label = excluded.label, "
                "labelled_at = excluded.labelled_at, received_at = excluded.received_at"
            )
            cursor.execute("DROP TABLE new_labels")
        return len(labels)

    def quarantine(self, model: str, source: str, rejected: Sequence[Rejected]) -> None:
        """Keep what failed validation, with the reason, so nothing is dropped silently."""
        with self.connection.cursor() as cursor:
            cursor.executemany(
                QUARANTINE_INSERT.replace("?", "%s"), quarantine_rows(model, source, rejected)
            )

    def events(
        self,
        model: str,
        since: datetime | None = None,
        until: datetime | None = None,
        role: str = "production",
    ) -> pa.Table:
        """Stored events in ``[since, until)`` with their labels (null until one arrives)."""
        query = (
            "SELECT e.event_id, e.ts, e.prediction, e.latency_ms, e.status, e.cost, "
            "e.features, e.segments, e.metadata, l.label, "
            # When the label became known: as its sender said, else when it reached us.
            "coalesce(l.labelled_at, l.received_at) AS labelled_at "
            "FROM events e LEFT JOIN labels l "
            "ON l.model = e.model AND l.event_id = e.event_id "
            "WHERE e.model = %s AND e.role = %s"
        )
        params: list[object] = [model, role]
        if since is not None:
            query += " AND e.ts >= %s"
            params.append(naive_utc(since))
        if until is not None:
            query += " AND e.ts < %s"
            params.append(naive_utc(until))
        # Ties by id as in DuckDB (bytes, not the database's collation): one order every read.
        order = f" ORDER BY e.ts, e.event_id{self.text_order}"
        return self._table(query + order, params, EVENTS)

    def expire_events(self, model: str, before: datetime) -> int:
        """Delete raw events (and their labels) older than ``before``; returns how many."""
        cutoff = naive_utc(before)
        with self.transaction():
            self.connection.execute(
                "DELETE FROM labels l USING events e WHERE l.model = %s "
                "AND e.model = l.model AND e.event_id = l.event_id AND e.ts < %s",
                [model, cutoff],
            )
            deleted = self.connection.execute(
                "DELETE FROM events WHERE model = %s AND ts < %s", [model, cutoff]
            )
            return deleted.rowcount

    # -- incidents ------------------------------------------------------------------------

    def save_incidents(self, model: str, incidents: pa.Table, namespace: str = PRODUCTION) -> None:
        """Replace the model's incidents with the ones derived from its history."""
        db = self.connection
        with db.transaction(), db.cursor() as cursor:
            cursor.execute(
                "DELETE FROM incidents WHERE model = %s AND namespace = %s", [model, namespace]
            )
            if incidents.num_rows:
                # By name, as DuckDB's INSERT BY NAME: the caller's column order is its own.
                # COPY would drop the zone of an aware time, not convert it: convert first.
                rows = (
                    tuple(naive_utc(v) if isinstance(v, datetime) else v for v in row)
                    for row in table_rows(incidents)
                )
                self._copy(cursor, "incidents", incidents.column_names, rows)
