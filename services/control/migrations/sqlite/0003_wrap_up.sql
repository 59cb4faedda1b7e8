-- The agent's wrap-up, on the handoff and on the event that carried it.
ALTER TABLE handoffs ADD COLUMN wrap_up BLOB;
ALTER TABLE handoff_events ADD COLUMN wrap_up BLOB;
