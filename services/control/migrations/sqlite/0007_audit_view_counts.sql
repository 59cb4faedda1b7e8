-- Repeated context reads counted on one audit record (record_view).
ALTER TABLE audit_log ADD COLUMN count INTEGER NOT NULL DEFAULT 1;
ALTER TABLE audit_log ADD COLUMN last_ms INTEGER;
