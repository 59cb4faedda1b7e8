-- The health check's write: a store that answers reads but cannot write
-- (a full disk, a read-only replica after a failover) is not serving.
-- One row, updated by every replica's check.
CREATE TABLE store_probe (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    written_at TIMESTAMPTZ NOT NULL
);
