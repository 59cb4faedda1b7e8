-- Context-token revocation, retention purges and the audit log.
ALTER TABLE handoffs ADD COLUMN tokens_revoked_at_ms INTEGER;
ALTER TABLE handoffs ADD COLUMN context_purged_at_ms INTEGER;
CREATE INDEX handoffs_to_purge ON handoffs (updated_at_ms)
    WHERE context_purged_at_ms IS NULL AND state IN ('completed', 'failed', 'cancelled');
CREATE TABLE audit_log (
    sequence INTEGER PRIMARY KEY AUTOINCREMENT,
    tenant TEXT NOT NULL,
    handoff_id TEXT NOT NULL,
    action TEXT NOT NULL,
    actor TEXT NOT NULL,
    credential TEXT NOT NULL,
    time_ms INTEGER NOT NULL,
    detail TEXT NOT NULL
);
CREATE INDEX audit_log_by_tenant ON audit_log (tenant, sequence);
CREATE INDEX audit_log_by_handoff ON audit_log (handoff_id, sequence);
