-- The health check's write: a store that answers reads but cannot write
-- (a full disk) is not serving.
CREATE TABLE store_probe (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    written_at_ms INTEGER NOT NULL
);
