-- Every event carries its handoff's tenant, as in the PostgreSQL store, so
-- that reading a log names the tenant allowed to read it in both backends.
-- Events written before this migration take their handoff's tenant (the
-- COALESCE only keeps an event whose handoff row is gone from failing the
-- upgrade; foreign keys keep that from happening).
ALTER TABLE handoff_events ADD COLUMN tenant TEXT NOT NULL DEFAULT '';
UPDATE handoff_events SET tenant = COALESCE(
    (SELECT handoffs.tenant FROM handoffs WHERE handoffs.id = handoff_events.handoff_id),
    ''
);
