"""The embedded store: one DuckDB file, no server.

DuckDB allows one writing process per file; the monitoring job (or, later, the server) owns it.
Rows go in and come out as Arrow tables, so history is never looped over in Python.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

import duckdb
import pyarrow as pa

from tripwire.errors import TripwireError
from tripwire.events import Event, Label, Rejected
from tripwire.layers.rows import MetricRow
from tripwire.store.schema import MIGRATIONS

PRODUCTION = "production"

_METRIC_COLUMNS = (
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
)


def _naive_utc(moment: datetime) -> datetime:
    # TIMESTAMP columns hold UTC without a zone; aware datetimes are converted first.
    return moment.astimezone(UTC).replace(tzinfo=None) if moment.tzinfo else moment


class DuckDBStore:
    """Metric history, window profiles, incidents and calibrations in one DuckDB file.

    Parameters
    ----------
    path
        The database file (created with its tables when missing), or ``":memory:"``.
    """

    def __init__(self, path: str | Path) -> None:
        self.path = str(path)
        try:
            self.connection = duckdb.connect(self.path)
        except duckdb.Error as exc:
            raise TripwireError(f"{self.path}: cannot open the store: {exc}") from exc
        self._migrate()

    def close(self) -> None:
        self.connection.close()

    def __enter__(self) -> DuckDBStore:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def _migrate(self) -> None:
        db = self.connection
        db.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")
        # fetchall, not fetchone: DuckDB refuses a relation query while a result is unfinished.
        ((latest,),) = db.execute("SELECT max(version) FROM schema_version").fetchall()
        current = latest or 0
        if current > len(MIGRATIONS):
            db.close()
            raise TripwireError(
                f"{self.path}: store schema version {current} is newer than this tripwire "
                f"({len(MIGRATIONS)}); upgrade tripwire"
            )
        for version in range(current + 1, len(MIGRATIONS) + 1):
            db.execute("BEGIN")
            db.execute(MIGRATIONS[version - 1])
            db.execute("INSERT INTO schema_version VALUES (?)", [version])
            db.execute("COMMIT")

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
        """Store one window's profile and metric rows, replacing what it had (idempotent)."""
        key = [model, namespace, _naive_utc(start), int(length.total_seconds())]
        table = pa.table(
            {
                "segment": [r.segment for r in rows],
                "feature": [r.feature or "" for r in rows],
                "layer": [r.layer for r in rows],
                "metric": [r.metric for r in rows],
                "value": pa.array([r.value for r in rows], pa.float64()),
                "status": [r.status for r in rows],
                "threshold": pa.array([r.threshold for r in rows], pa.float64()),
                "reference": pa.array([r.reference for r in rows], pa.float64()),
                "n": pa.array([r.n for r in rows], pa.int64()),
                "importance": pa.array([r.importance for r in rows], pa.float64()),
                "bound": pa.array([r.bound for r in rows], pa.float64()),
                "reason": pa.array([r.reason for r in rows], pa.string()),
            }
        )
        db = self.connection
        where = "model = ? AND namespace = ? AND window_start = ? AND window_seconds = ?"
        db.execute("BEGIN")
        try:
            db.execute(f"DELETE FROM metrics WHERE {where}", key)
            db.execute(f"DELETE FROM windows WHERE {where}", key)
            db.execute(
                "INSERT INTO windows VALUES (?, ?, ?, ?, ?, ?, ?)",
                [*key, n_rows, profile, _naive_utc(datetime.now(UTC))],
            )
            db.register("new_rows", table)
            db.execute(
                f"INSERT INTO metrics SELECT ?, ?, ?, ?, {', '.join(_METRIC_COLUMNS)} "
                "FROM new_rows",
                key,
            )
            db.unregister("new_rows")
            db.execute("COMMIT")
        except Exception:
            db.execute("ROLLBACK")
            raise

    def history(
        self,
        model: str,
        length: timedelta,
        metrics: Sequence[str] | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        namespace: str = PRODUCTION,
    ) -> pa.Table:
        """Metric rows of windows of ``length`` starting in ``[since, until)``, oldest first."""
        query = (
            "SELECT window_start, segment, feature, layer, metric, value, status, threshold, "
            "reference, n, importance FROM metrics "
            "WHERE model = ? AND namespace = ? AND window_seconds = ?"
        )
        params: list[object] = [model, namespace, int(length.total_seconds())]
        if metrics is not None:
            query += f" AND metric IN ({', '.join('?' for _ in metrics)})"
            params += list(metrics)
        if since is not None:
            query += " AND window_start >= ?"
            params.append(_naive_utc(since))
        if until is not None:
            query += " AND window_start < ?"
            params.append(_naive_utc(until))
        query += " ORDER BY window_start, segment, feature, metric"
        return self.connection.sql(query, params=params).to_arrow_table()

    def window_starts(
        self, model: str, length: timedelta, namespace: str = PRODUCTION
    ) -> list[datetime]:
        rows = self.connection.execute(
            "SELECT window_start FROM windows WHERE model = ? AND namespace = ? "
            "AND window_seconds = ? ORDER BY window_start",
            [model, namespace, int(length.total_seconds())],
        ).fetchall()
        return [r[0] for r in rows]

    def profiles(
        self,
        model: str,
        length: timedelta,
        since: datetime,
        until: datetime,
        namespace: str = PRODUCTION,
    ) -> list[tuple[datetime, bytes]]:
        """Stored window profiles in ``[since, until)``, to merge into a longer window."""
        rows = self.connection.execute(
            "SELECT window_start, profile FROM windows WHERE model = ? AND namespace = ? "
            "AND window_seconds = ? AND window_start >= ? AND window_start < ? "
            "ORDER BY window_start",
            [model, namespace, int(length.total_seconds()), _naive_utc(since), _naive_utc(until)],
        ).fetchall()
        return [(start, bytes(blob)) for start, blob in rows]

    # -- the prediction log --------------------------------------------------------------

    def write_events(self, events: Sequence[Event]) -> int:
        """Store events; one whose (model, event_id) is already stored is ignored, so a
        redelivered event is harmless. Returns how many were new."""
        if not events:
            return 0
        now = _naive_utc(datetime.now(UTC))
        table = pa.table(
            {
                "model": [e.model for e in events],
                "event_id": [e.event_id for e in events],
                "model_version": pa.array([e.model_version for e in events], pa.string()),
                "role": [e.role for e in events],
                "ts": pa.array([_naive_utc(e.timestamp) for e in events], pa.timestamp("us")),
                "features": [json.dumps(e.features) for e in events],
                "prediction": pa.array([e.prediction for e in events], pa.float64()),
                "latency_ms": pa.array([e.latency_ms for e in events], pa.float64()),
                "status": pa.array([e.status for e in events], pa.string()),
                "cost": pa.array([e.cost for e in events], pa.float64()),
                "segments": [json.dumps(e.segments) for e in events],
                "metadata": [json.dumps(e.metadata, default=str) for e in events],
                "received_at": pa.array([now] * len(events), pa.timestamp("us")),
            }
        )
        db = self.connection
        db.register("new_events", table)
        try:
            inserted = db.execute(
                "INSERT INTO events SELECT * FROM new_events ON CONFLICT DO NOTHING "
                "RETURNING event_id"
            ).fetchall()
        finally:
            db.unregister("new_events")
        return len(inserted)

    def write_labels(self, labels: Sequence[Label]) -> int:
        """Store labels; a later label for the same event replaces the earlier one."""
        if not labels:
            return 0
        now = _naive_utc(datetime.now(UTC))
        table = pa.table(
            {
                "model": [x.model for x in labels],
                "event_id": [x.event_id for x in labels],
                "label": pa.array([x.label for x in labels], pa.float64()),
                "labelled_at": pa.array(
                    [_naive_utc(x.labelled_at) if x.labelled_at else None for x in labels],
                    pa.timestamp("us"),
                ),
                "received_at": pa.array([now] * len(labels), pa.timestamp("us")),
            }
        )
        db = self.connection
        db.register("new_labels", table)
        try:
            db.execute("INSERT OR REPLACE INTO labels SELECT * FROM new_labels")
        finally:
            db.unregister("new_labels")
        return len(labels)

    def quarantine(self, model: str, source: str, rejected: Sequence[Rejected]) -> None:
        """Keep what failed validation, with the reason, so nothing is dropped silently."""
        now = _naive_utc(datetime.now(UTC))
        self.connection.executemany(
            "INSERT INTO quarantine (received_at, model, source, reason, payload) "
            "VALUES (?, ?, ?, ?, ?)",
            [[now, model, f"{source}[{r.index}]", r.reason, r.payload] for r in rejected],
        )

    def quarantined(self, model: str) -> pa.Table:
        return self.connection.sql(
            "SELECT received_at, source, reason, payload FROM quarantine WHERE model = ? "
            "ORDER BY id",
            params=[model],
        ).to_arrow_table()

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
            "e.features, e.segments, l.label FROM events e LEFT JOIN labels l "
            "ON l.model = e.model AND l.event_id = e.event_id "
            "WHERE e.model = ? AND e.role = ?"
        )
        params: list[object] = [model, role]
        if since is not None:
            query += " AND e.ts >= ?"
            params.append(_naive_utc(since))
        if until is not None:
            query += " AND e.ts < ?"
            params.append(_naive_utc(until))
        return self.connection.sql(query + " ORDER BY e.ts", params=params).to_arrow_table()

    def expire_events(self, model: str, before: datetime) -> int:
        """Delete raw events (and their labels) older than ``before``; returns how many."""
        db = self.connection
        ((count,),) = db.execute(
            "SELECT count(*) FROM events WHERE model = ? AND ts < ?", [model, _naive_utc(before)]
        ).fetchall()
        db.execute("BEGIN")
        try:
            db.execute(
                "DELETE FROM labels WHERE model = ? AND event_id IN "
                "(SELECT event_id FROM events WHERE model = ? AND ts < ?)",
                [model, model, _naive_utc(before)],
            )
            db.execute("DELETE FROM events WHERE model = ? AND ts < ?", [model, _naive_utc(before)])
            db.execute("COMMIT")
        except Exception:
            db.execute("ROLLBACK")
            raise
        return int(count)

    # -- abnormal windows and calibrations -----------------------------------------------

    def mark_abnormal(self, model: str, start: datetime, reason: str) -> None:
        """Keep a window out of calibration (a known outage, a holiday, a test)."""
        self.connection.execute(
            "INSERT OR REPLACE INTO abnormal_windows VALUES (?, ?, ?)",
            [model, _naive_utc(start), reason],
        )

    def abnormal_windows(self, model: str) -> set[datetime]:
        rows = self.connection.execute(
            "SELECT window_start FROM abnormal_windows WHERE model = ?", [model]
        ).fetchall()
        return {r[0] for r in rows}

    def save_calibration(
        self,
        model: str,
        metric: str,
        feature: str,
        segment: str,
        threshold: float,
        quantile: float,
        floor: float,
        windows_used: Sequence[datetime],
    ) -> None:
        self.connection.execute(
            "INSERT OR REPLACE INTO calibrations VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [
                model,
                metric,
                feature,
                segment,
                threshold,
                quantile,
                floor,
                json.dumps([w.isoformat() for w in windows_used]),
                _naive_utc(datetime.now(UTC)),
            ],
        )

    def calibrations(self, model: str) -> pa.Table:
        return self.connection.sql(
            "SELECT * FROM calibrations WHERE model = ? ORDER BY metric, feature, segment",
            params=[model],
        ).to_arrow_table()

    # -- incidents ------------------------------------------------------------------------

    def incidents(self, model: str, namespace: str = PRODUCTION) -> pa.Table:
        return self.connection.sql(
            "SELECT * FROM incidents WHERE model = ? AND namespace = ? ORDER BY opened_at, rule",
            params=[model, namespace],
        ).to_arrow_table()

    def save_incidents(self, model: str, incidents: pa.Table, namespace: str = PRODUCTION) -> None:
        """Replace the model's incidents with the ones derived from its history."""
        db = self.connection
        db.execute("BEGIN")
        try:
            db.execute(
                "DELETE FROM incidents WHERE model = ? AND namespace = ?", [model, namespace]
            )
            if incidents.num_rows:
                db.register("new_incidents", incidents)
                db.execute("INSERT INTO incidents BY NAME SELECT * FROM new_incidents")
                db.unregister("new_incidents")
            db.execute("COMMIT")
        except Exception:
            db.execute("ROLLBACK")
            raise
