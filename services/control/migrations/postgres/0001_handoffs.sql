-- Handoffs and their event logs, shared by every control-service replica.
-- The same columns as the embedded SQLite store, plus the tenant on every
-- event row and each handoff's dispatch lease.

CREATE TABLE handoffs (
    id TEXT PRIMARY KEY,
    tenant TEXT NOT NULL,
    request_id TEXT NOT NULL,
    request_fingerprint TEXT NOT NULL,
    state TEXT NOT NULL,
    conversation BYTEA NOT NULL,
    context BYTEA NOT NULL,
    requested_target BYTEA NOT NULL,
    mode TEXT NOT NULL,
    plan TEXT NOT NULL,
    customer_message TEXT NOT NULL,
    customer_message_language TEXT NOT NULL,
    created_at_ms BIGINT NOT NULL,
    updated_at_ms BIGINT NOT NULL,
    deadline_ms BIGINT NOT NULL,
    current_attempt BIGINT,
    queue_position BIGINT,
    queue_wait_ms BIGINT,
    failure_reason INTEGER,
    failure_detail TEXT,
    last_sequence BIGINT NOT NULL,
    decision BYTEA,
    wrap_up BYTEA,
    -- The replica dispatching the handoff, until lease_expires_ms (Unix
    -- milliseconds of the database's clock); both NULL when nobody is.
    lease_owner TEXT,
    lease_expires_ms BIGINT,
    UNIQUE (tenant, request_id)
);

CREATE INDEX handoffs_by_tenant ON handoffs (tenant, id);

-- Orphan scans read only in-flight handoffs.
CREATE INDEX handoffs_in_flight ON handoffs (id)
    WHERE state NOT IN ('completed', 'failed', 'cancelled');

CREATE TABLE handoff_events (
    tenant TEXT NOT NULL,
    handoff_id TEXT NOT NULL REFERENCES handoffs (id),
    sequence BIGINT NOT NULL,
    kind TEXT NOT NULL,
    state TEXT NOT NULL,
    time_ms BIGINT NOT NULL,
    attempt BIGINT,
    queue_position BIGINT,
    queue_wait_ms BIGINT,
    failure_reason INTEGER,
    failure_detail TEXT,
    detail TEXT NOT NULL,
    wrap_up BYTEA,
    connector_run TEXT NOT NULL DEFAULT '',
    connector_sequence BIGINT,
    PRIMARY KEY (handoff_id, sequence)
);

-- A connector event is recorded once per (attempt, connector run, sequence).
CREATE UNIQUE INDEX handoff_events_by_connector_position
    ON handoff_events (handoff_id, attempt, connector_run, connector_sequence)
    WHERE connector_sequence IS NOT NULL;
