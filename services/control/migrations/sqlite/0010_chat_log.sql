-- Chat (issue 21): a chat handoff's conversation log, one row per entry in
-- the order stored. A writer's message id is unique per handoff and author,
-- so that a message re-sent after a reconnect is stored once; the ENDED
-- entry (author 3, Baton, with an empty id) is therefore stored once too.
CREATE TABLE chat_entries (
    tenant TEXT NOT NULL,
    handoff_id TEXT NOT NULL,
    sequence INTEGER NOT NULL,
    author INTEGER NOT NULL,
    message_id TEXT NOT NULL,
    text TEXT NOT NULL,
    attachments TEXT NOT NULL,
    author_name TEXT NOT NULL,
    end_reason INTEGER,
    created_at_ms INTEGER NOT NULL,
    PRIMARY KEY (handoff_id, sequence)
);
CREATE UNIQUE INDEX chat_entries_by_message ON chat_entries (handoff_id, author, message_id);
