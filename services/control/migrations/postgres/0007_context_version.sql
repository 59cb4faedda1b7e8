-- Live context (issue 21): a handoff's context changes while nobody has the
-- customer yet (UpdateHandoff). Its version counts the changes (1 as
-- created, so every handoff stored before is at version 1); a
-- CONTEXT_UPDATED event names the version it made; and each update's
-- request id is kept with the version it made, so that a retried update is
-- applied once.
ALTER TABLE handoffs ADD COLUMN context_version BIGINT NOT NULL DEFAULT 1;
ALTER TABLE handoff_events ADD COLUMN context_version BIGINT;
CREATE TABLE context_updates (
    tenant TEXT NOT NULL,
    handoff_id TEXT NOT NULL,
    request_id TEXT NOT NULL,
    fingerprint TEXT NOT NULL,
    context_version BIGINT NOT NULL,
    PRIMARY KEY (tenant, handoff_id, request_id)
);
