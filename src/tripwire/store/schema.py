"""The store's tables, as numbered migrations: a store is upgraded by running the ones it lacks."""

from __future__ import annotations

MIGRATIONS: tuple[str, ...] = (
    # 1: metric history, window profiles, incidents, calibrations, abnormal windows.
    """
    CREATE TABLE windows (
        model TEXT NOT NULL,
        namespace TEXT NOT NULL,
        window_start TIMESTAMP NOT NULL,
        window_seconds BIGINT NOT NULL,
        n_rows BIGINT NOT NULL,
        profile BLOB NOT NULL,
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
        value DOUBLE,
        status TEXT NOT NULL,
        threshold DOUBLE,
        reference DOUBLE,
        n BIGINT NOT NULL,
        importance DOUBLE,
        bound DOUBLE,
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
        value DOUBLE,
        threshold DOUBLE,
        reopened INTEGER NOT NULL,
        updated_at TIMESTAMP NOT NULL,
        PRIMARY KEY (dedup_key, namespace)
    );
    CREATE TABLE calibrations (
        model TEXT NOT NULL,
        metric TEXT NOT NULL,
        feature TEXT NOT NULL,
        segment TEXT NOT NULL,
        threshold DOUBLE NOT NULL,
        quantile DOUBLE NOT NULL,
        floor DOUBLE NOT NULL,
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
        features JSON NOT NULL,
        prediction DOUBLE NOT NULL,
        latency_ms DOUBLE,
        status TEXT,
        cost DOUBLE,
        segments JSON NOT NULL,
        metadata JSON NOT NULL,
        received_at TIMESTAMP NOT NULL,
        PRIMARY KEY (model, event_id)
    );
    CREATE TABLE labels (
        model TEXT NOT NULL,
        event_id TEXT NOT NULL,
        label DOUBLE NOT NULL,
        labelled_at TIMESTAMP,
        received_at TIMESTAMP NOT NULL,
        PRIMARY KEY (model, event_id)
    );
    CREATE SEQUENCE quarantine_id;
    CREATE TABLE quarantine (
        id BIGINT PRIMARY KEY DEFAULT nextval('quarantine_id'),
        received_at TIMESTAMP NOT NULL,
        model TEXT NOT NULL,
        source TEXT NOT NULL,
        reason TEXT NOT NULL,
        payload TEXT NOT NULL
    );
    """,
    # 3: the alert outbox. Before it was a migration the outbox created this same table
    # itself on first use, hence IF NOT EXISTS: such a store keeps its table and its rows.
    """
    CREATE SEQUENCE IF NOT EXISTS outbox_id;
    CREATE TABLE IF NOT EXISTS outbox (
        id BIGINT PRIMARY KEY DEFAULT nextval('outbox_id'),
        created_at TIMESTAMP NOT NULL,
        route TEXT NOT NULL,
        channel_index INTEGER NOT NULL,
        channel_type TEXT NOT NULL,
        dedup_key TEXT NOT NULL,
        event TEXT NOT NULL,
        payload JSON NOT NULL,
        attempts INTEGER NOT NULL DEFAULT 0,
        next_attempt_at TIMESTAMP NOT NULL,
        delivered_at TIMESTAMP,
        last_error TEXT,
        UNIQUE (dedup_key, event, route, channel_index)
    );
    """,
    # 4: confidence intervals and label coverage on metric rows; earlier versions of a
    # window's performance rows, as labels arrive.
    """
    ALTER TABLE metrics ADD COLUMN ci_low DOUBLE;
    ALTER TABLE metrics ADD COLUMN ci_high DOUBLE;
    ALTER TABLE metrics ADD COLUMN coverage DOUBLE;
    CREATE TABLE metric_revisions (
        model TEXT NOT NULL,
        namespace TEXT NOT NULL,
        window_start TIMESTAMP NOT NULL,
        window_seconds BIGINT NOT NULL,
        computed_at TIMESTAMP NOT NULL,
        segment TEXT NOT NULL,
        feature TEXT NOT NULL,
        metric TEXT NOT NULL,
        value DOUBLE,
        status TEXT NOT NULL,
        n BIGINT NOT NULL,
        coverage DOUBLE,
        ci_low DOUBLE,
        ci_high DOUBLE
    );
    """,
    # 5: quarantined items looked up by source, so that one redelivered from its stream
    # (same entry id, same partition and offset) is not kept twice.
    """
    CREATE INDEX quarantine_source ON quarantine (model, source);
    """,
    # 6: window profiles stored uncompressed. They are compressed archives already, and DuckDB
    # keeps a compressed column's values in shared segments: reading one window's profile
    # decompressed its neighbours too (a year of 10 MB profiles: 4.5 s a read, 10x slower
    # than uncompressed), holding the store meanwhile. DuckDB cannot change a column's
    # compression in place, so the table is rebuilt with its rows.
    """
    CREATE TABLE windows_uncompressed (
        model TEXT NOT NULL,
        namespace TEXT NOT NULL,
        window_start TIMESTAMP NOT NULL,
        window_seconds BIGINT NOT NULL,
        n_rows BIGINT NOT NULL,
        profile BLOB NOT NULL USING COMPRESSION uncompressed,
        computed_at TIMESTAMP NOT NULL,
        PRIMARY KEY (model, namespace, window_start, window_seconds)
    );
    INSERT INTO windows_uncompressed
        SELECT * FROM windows ORDER BY model, namespace, window_seconds, window_start;
    DROP TABLE windows;
    ALTER TABLE windows_uncompressed RENAME TO windows;
    """,
    # 7: each model's fitted reference (Monitor.to_bytes: its bins, the reference's profile,
    # importance and config), stored by the job beside the windows it judged against it, so
    # that readers (the dashboard's histograms) need no fitted monitor of their own.
    """
    CREATE TABLE reference_profiles (
        model TEXT NOT NULL,
        namespace TEXT NOT NULL,
        digest TEXT NOT NULL,  -- SHA-256 of state: stored again only when it changed
        state BLOB NOT NULL USING COMPRESSION uncompressed,
        stored_at TIMESTAMP NOT NULL,
        PRIMARY KEY (model, namespace)
    );
    """,
    # 8: the queue consumers' state (tripwire consume kafka|redis run as processes of their
    # own): one row per source, stream and consumer group, written after the group's batches.
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
    # 9: when the job first derived each incident (its clock's now), beside its evidence
    # windows: a realized-performance incident is raised when the labels land, days after the
    # windows it is about. NULL for the incidents saved before.
    """
    ALTER TABLE incidents ADD COLUMN detected_at TIMESTAMP;
    """,
    # 10: nothing here. PostgreSQL's migration 10 indexes events and labels by when they were
    # received, for the scheduler's looks at what came since its look before; DuckDB finds
    # those rows by each row group's least and greatest received_at (rows are written in about
    # that order) and needs no index.
    """
    -- nothing to do in DuckDB
    """,
)
