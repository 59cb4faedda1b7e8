-- Handoffs and their event logs: the embedded store's first schema.
-- Applied migrations are never edited: a store that ran one keeps its
-- schema, so a change is a new file.
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
    last_sequence INTEGER NOT NULL,
    UNIQUE (tenant, request_id)
);
CREATE INDEX handoffs_by_tenant ON handoffs (tenant, id);
CREATE INDEX handoffs_in_flight ON handoffs (state)
    WHERE state NOT IN ('completed', 'failed', 'cancelled');
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
    connector_sequence INTEGER,
    PRIMARY KEY (handoff_id, sequence)
) WITHOUT ROWID;
CREATE UNIQUE INDEX handoff_events_by_connector_sequence
    ON handoff_events (handoff_id, attempt, connector_sequence)
    WHERE connector_sequence IS NOT NULL;
