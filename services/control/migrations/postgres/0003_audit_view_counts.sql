-- Repeated context reads counted on one audit record (record_view), so
-- that a token holder reading again and again adds no row per read.
ALTER TABLE audit_log ADD COLUMN count BIGINT NOT NULL DEFAULT 1;
ALTER TABLE audit_log ADD COLUMN last_ms BIGINT;
