-- Handoff outcomes (issue 22): the judgements a runtime or an integration
-- recorded with RecordOutcome (an encoded baton.handoff.v1.Outcome), and
-- the index GetOutcomeMetrics reads a tenant's window through.
ALTER TABLE handoffs ADD COLUMN outcome BLOB;
CREATE INDEX handoffs_by_creation ON handoffs (tenant, created_at_ms, id);
