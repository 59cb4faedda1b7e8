//! What the connector keeps of each chat conversation, in the delivery
//! log's SQLite file, so that a restart neither sends the platform an entry
//! twice nor loses a message the human wrote: per transfer, the last entry
//! the platform accepted and whether the human ended the chat; the human's
//! messages until they come back as entries of the log (then marked
//! acknowledged, so that a re-POST of one is recognised).

use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard};

use rusqlite::{Connection, OptionalExtension, params};

use super::wire::HumanMessage;

/// The most messages of the human a conversation holds unacknowledged
/// (posted while no relay was open, or not yet stored by the control
/// service); more are refused until the relay catches up.
pub const MAX_PENDING: usize = 256;

/// One transfer's conversation as kept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Conversation {
    pub tenant: String,
    /// The endpoint the chat is relayed to.
    pub endpoint: String,
    /// The sequence of the last entry the platform accepted.
    pub delivered_through: u64,
    /// The platform posted `end`.
    pub human_ended: bool,
    /// The ENDED entry reached the platform.
    pub ended: bool,
}

/// What became of a message of the human handed to [`ChatStore::queue`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Queued {
    /// New: to be sent to the control service.
    New,
    /// Its id was posted before: nothing to do.
    Known,
    /// [`MAX_PENDING`] wait already.
    Full,
}

#[derive(Debug, Clone)]
pub struct ChatStore {
    connection: Arc<Mutex<Connection>>,
}

impl ChatStore {
    /// Opens the chat tables in the SQLite file at `path` (the delivery
    /// log's, which [`crate::DeliveryLog::open`] created).
    pub fn open(path: &Path) -> anyhow::Result<Self> {
        let connection = Connection::open(path)
            .map_err(|e| anyhow::anyhow!("delivery_log: cannot open {}: {e}", path.display()))?;
        // The delivery log writes to the same file from its own connection.
        connection.busy_timeout(std::time::Duration::from_secs(5))?;
        connection.execute_batch(
            "CREATE TABLE IF NOT EXISTS webhook_chats (
                 handoff_id TEXT NOT NULL,
                 attempt INTEGER NOT NULL,
                 tenant TEXT NOT NULL,
                 endpoint TEXT NOT NULL,
                 delivered_through INTEGER NOT NULL DEFAULT 0,
                 human_ended INTEGER NOT NULL DEFAULT 0,
                 ended INTEGER NOT NULL DEFAULT 0,
                 PRIMARY KEY (handoff_id, attempt)
             );
             CREATE TABLE IF NOT EXISTS webhook_chat_messages (
                 handoff_id TEXT NOT NULL,
                 attempt INTEGER NOT NULL,
                 message_id TEXT NOT NULL,
                 message TEXT NOT NULL,
                 acknowledged INTEGER NOT NULL DEFAULT 0,
                 PRIMARY KEY (handoff_id, attempt, message_id)
             );",
        )?;
        Ok(Self {
            connection: Arc::new(Mutex::new(connection)),
        })
    }

    fn lock(&self) -> MutexGuard<'_, Connection> {
        self.connection.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Starts keeping a transfer's conversation; a resumed transfer keeps
    /// what was kept.
    pub fn register(
        &self,
        handoff_id: &str,
        attempt: u32,
        tenant: &str,
        endpoint: &str,
    ) -> anyhow::Result<()> {
        self.lock().execute(
            "INSERT OR IGNORE INTO webhook_chats (handoff_id, attempt, tenant, endpoint)
             VALUES (?1, ?2, ?3, ?4)",
            params![handoff_id, attempt, tenant, endpoint],
        )?;
        Ok(())
    }

    pub fn conversation(
        &self,
        handoff_id: &str,
        attempt: u32,
    ) -> anyhow::Result<Option<Conversation>> {
        Ok(self
            .lock()
            .query_row(
                "SELECT tenant, endpoint, delivered_through, human_ended, ended
                 FROM webhook_chats WHERE handoff_id = ?1 AND attempt = ?2",
                params![handoff_id, attempt],
                |row| {
                    Ok(Conversation {
                        tenant: row.get(0)?,
                        endpoint: row.get(1)?,
                        delivered_through: row.get(2)?,
                        human_ended: row.get(3)?,
                        ended: row.get(4)?,
                    })
                },
            )
            .optional()?)
    }

    /// The platform accepted the entry `sequence` (the ENDED one when
    /// `ended`).
    pub fn delivered(
        &self,
        handoff_id: &str,
        attempt: u32,
        sequence: u64,
        ended: bool,
    ) -> anyhow::Result<()> {
        self.lock().execute(
            "UPDATE webhook_chats
             SET delivered_through = MAX(delivered_through, ?3), ended = ended OR ?4
             WHERE handoff_id = ?1 AND attempt = ?2",
            params![handoff_id, attempt, sequence, ended],
        )?;
        Ok(())
    }

    pub fn end_by_human(&self, handoff_id: &str, attempt: u32) -> anyhow::Result<()> {
        self.lock().execute(
            "UPDATE webhook_chats SET human_ended = 1 WHERE handoff_id = ?1 AND attempt = ?2",
            params![handoff_id, attempt],
        )?;
        Ok(())
    }

    /// Keeps a message of the human until it comes back as an entry.
    pub fn queue(
        &self,
        handoff_id: &str,
        attempt: u32,
        message: &HumanMessage,
    ) -> anyhow::Result<Queued> {
        let connection = self.lock();
        let known: bool = connection.query_row(
            "SELECT EXISTS (SELECT 1 FROM webhook_chat_messages
             WHERE handoff_id = ?1 AND attempt = ?2 AND message_id = ?3)",
            params![handoff_id, attempt, message.id],
            |row| row.get(0),
        )?;
        if known {
            return Ok(Queued::Known);
        }
        let pending: usize = connection.query_row(
            "SELECT COUNT(*) FROM webhook_chat_messages
             WHERE handoff_id = ?1 AND attempt = ?2 AND acknowledged = 0",
            params![handoff_id, attempt],
            |row| row.get(0),
        )?;
        if pending >= MAX_PENDING {
            return Ok(Queued::Full);
        }
        connection.execute(
            "INSERT INTO webhook_chat_messages (handoff_id, attempt, message_id, message)
             VALUES (?1, ?2, ?3, ?4)",
            params![
                handoff_id,
                attempt,
                message.id,
                serde_json::to_string(message)?
            ],
        )?;
        Ok(Queued::New)
    }

    /// The human's message `message_id` is in the log: not sent again.
    pub fn acknowledge(
        &self,
        handoff_id: &str,
        attempt: u32,
        message_id: &str,
    ) -> anyhow::Result<()> {
        self.lock().execute(
            "UPDATE webhook_chat_messages SET acknowledged = 1
             WHERE handoff_id = ?1 AND attempt = ?2 AND message_id = ?3",
            params![handoff_id, attempt, message_id],
        )?;
        Ok(())
    }

    /// The human's messages not yet in the log, in the order posted.
    pub fn pending(&self, handoff_id: &str, attempt: u32) -> anyhow::Result<Vec<HumanMessage>> {
        let connection = self.lock();
        let mut statement = connection.prepare(
            "SELECT message FROM webhook_chat_messages
             WHERE handoff_id = ?1 AND attempt = ?2 AND acknowledged = 0 ORDER BY rowid",
        )?;
        let rows =
            statement.query_map(params![handoff_id, attempt], |row| row.get::<_, String>(0))?;
        rows.map(|row| Ok(serde_json::from_str(&row?)?)).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(id: &str) -> HumanMessage {
        HumanMessage {
            id: id.into(),
            text: format!("text of {id}"),
            attachments: Vec::new(),
        }
    }

    #[test]
    fn a_conversation_survives_a_reopen_with_its_position_and_unacknowledged_messages() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("deliveries.sqlite3");
        let store = ChatStore::open(&path).expect("opens");
        store.register("h1", 1, "acme", "crm").expect("registers");
        store.delivered("h1", 1, 3, false).expect("delivered");
        store.delivered("h1", 1, 2, false).expect("an older one");
        assert_eq!(
            store.queue("h1", 1, &message("p-1")).expect("queues"),
            Queued::New
        );
        assert_eq!(
            store.queue("h1", 1, &message("p-2")).expect("queues"),
            Queued::New
        );
        assert_eq!(
            store.queue("h1", 1, &message("p-1")).expect("queues"),
            Queued::Known
        );
        store.acknowledge("h1", 1, "p-1").expect("acknowledges");
        assert_eq!(
            store.queue("h1", 1, &message("p-1")).expect("queues"),
            Queued::Known
        );
        store.register("h1", 1, "acme", "crm").expect("again");
        drop(store);

        let store = ChatStore::open(&path).expect("reopens");
        let kept = store.conversation("h1", 1).expect("reads").expect("kept");
        assert_eq!(kept.delivered_through, 3, "never moves back");
        assert!(!kept.ended && !kept.human_ended);
        assert_eq!(store.pending("h1", 1).expect("reads"), [message("p-2")]);
        assert_eq!(store.conversation("h1", 2).expect("reads"), None);
    }

    #[test]
    fn the_human_s_unacknowledged_messages_are_bounded() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = ChatStore::open(&dir.path().join("d.sqlite3")).expect("opens");
        store.register("h1", 1, "acme", "crm").expect("registers");
        for n in 0..MAX_PENDING {
            assert_eq!(
                store
                    .queue("h1", 1, &message(&format!("p-{n}")))
                    .expect("queues"),
                Queued::New
            );
        }
        assert_eq!(
            store.queue("h1", 1, &message("one-more")).expect("queues"),
            Queued::Full
        );
        store.acknowledge("h1", 1, "p-0").expect("acknowledges");
        assert_eq!(
            store.queue("h1", 1, &message("one-more")).expect("queues"),
            Queued::New
        );
    }
}
