-- The embedded store's schema at version 7, as the migrations written as
-- Rust strings before version 8 left it (sqlite_master, by type and name).
-- A test checks that migrations/sqlite/0001..0007 still produce it.

-- index audit_log_by_handoff on audit_log
CREATE INDEX audit_log_by_handoff ON audit_log (handoff_id, sequence);

-- index audit_log_by_tenant on audit_log
CREATE INDEX audit_log_by_tenant ON audit_log (tenant, sequence);

-- index handoff_events_by_connector_position on handoff_events
CREATE UNIQUE INDEX handoff_events_by_connector_position
    ON handoff_events (handoff_id, attempt, connector_run, connector_sequence)
    WHERE connector_sequence IS NOT NULL;

-- index handoffs_by_tenant on handoffs
CREATE INDEX handoffs_by_tenant ON handoffs (tenant, id);

-- index handoffs_in_flight on handoffs
CREATE INDEX handoffs_in_flight ON handoffs (state)
    WHERE state NOT IN ('completed', 'failed', 'cancelled');

-- index handoffs_to_purge on handoffs
CREATE INDEX handoffs_to_purge ON handoffs (updated_at_ms)
    WHERE context_purged_at_ms IS NULL AND state IN ('completed', 'failed', 'cancelled');

-- table audit_log on audit_log
CREATE TABLE audit_log (
    sequence INTEGER PRIMARY KEY AUTOINCREMENT,
    tenant TEXT NOT NULL,
    handoff_id TEXT NOT NULL,
    action TEXT NOT NULL,
    actor TEXT NOT NULL,
    credential TEXT NOT NULL,
    time_ms INTEGER NOT NULL,
    detail TEXT NOT NULL
, count INTEGER NOT NULL DEFAULT 1, last_ms INTEGER);

-- table handoff_events on handoff_events
CREATE TABLE handoff_events (
    handoff_id TEXT NOT NULL REFERENCES handoffs (id),
    sequence INTEGER NOT NULL,
    kind TEXT NOT NULL,
    state TEXT NOT NULL,
    time_ms INTEGER NOT NULL,
    attempt INTEGER,
    queue_position INTEGER,
    queue_wait_ms INTEGER,
    failure_reason INTEGER,
    failure_detail TEXT,
    detail TEXT NOT NULL,
    connector_sequence INTEGER, wrap_up BLOB, connector_run TEXT NOT NULL DEFAULT '',
    PRIMARY KEY (handoff_id, sequence)
) WITHOUT ROWID;

-- table handoffs on handoffs
CREATE TABLE handoffs (
    id TEXT PRIMARY KEY,
    tenant TEXT NOT NULL,
    request_id TEXT NOT NULL,
    request_fingerprint TEXT NOT NULL,
    state TEXT NOT NULL,
    conversation BLOB NOT NULL,
    context BLOB NOT NULL,
    requested_target BLOB NOT NULL,
    mode TEXT NOT NULL,
    plan TEXT NOT NULL,
    customer_message TEXT NOT NULL,
    customer_message_language TEXT NOT NULL,
    created_at_ms INTEGER NOT NULL,
    updated_at_ms INTEGER NOT NULL,
    deadline_ms INTEGER NOT NULL,
    current_attempt INTEGER,
    queue_position INTEGER,
    queue_wait_ms INTEGER,
    failure_reason INTEGER,
    failure_detail TEXT,
    last_sequence INTEGER NOT NULL, decision BLOB, wrap_up BLOB, tokens_revoked_at_ms INTEGER, context_purged_at_ms INTEGER,
    UNIQUE (tenant, request_id)
);

-- table sqlite_sequence on sqlite_sequence
CREATE TABLE sqlite_sequence(name,seq);

-- table store_probe on store_probe
CREATE TABLE store_probe (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    written_at_ms INTEGER NOT NULL
);
