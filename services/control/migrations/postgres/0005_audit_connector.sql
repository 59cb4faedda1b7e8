-- Disclosures (issue 20): an audit record names the connector a handoff's
-- context was sent to, so that the log can be listed by connector. Empty
-- for every other action, and for every record written before.
ALTER TABLE audit_log ADD COLUMN connector TEXT NOT NULL DEFAULT '';
CREATE INDEX audit_log_by_connector ON audit_log (tenant, connector, sequence);
