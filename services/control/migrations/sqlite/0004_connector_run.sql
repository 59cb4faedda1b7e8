-- A connector event is recorded once per (attempt, connector run,
-- sequence): a restarted connector numbers its events from 1 again.
ALTER TABLE handoff_events ADD COLUMN connector_run TEXT NOT NULL DEFAULT '';
DROP INDEX handoff_events_by_connector_sequence;
CREATE UNIQUE INDEX handoff_events_by_connector_position
    ON handoff_events (handoff_id, attempt, connector_run, connector_sequence)
    WHERE connector_sequence IS NOT NULL;
