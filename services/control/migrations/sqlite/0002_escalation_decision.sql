-- The escalation decision a handoff was created with.
ALTER TABLE handoffs ADD COLUMN decision BLOB;
