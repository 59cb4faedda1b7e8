//! Durable queue state in SQLite: agents, contacts with their context,
//! recent handle times, wrap-ups and the audit log of reveals. The domain
//! types are stored as JSON rows and the context as its protobuf encoding,
//! so the store stays a thin translation at the edge.

use std::path::Path;

use baton_proto::connector::v1::ContextEnvelope;
use baton_service_kit::sqlite_file::{self, QUEUE_STORE};
use prost::Message;
use rusqlite::{Connection, OptionalExtension, params};
use tokio::sync::watch;

use crate::domain::{Agent, Contact, Millis, WITHDRAWALS_KEPT, Withdrawal, WithdrawalReason};

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS agents (id TEXT PRIMARY KEY, body TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS contacts (handoff_id TEXT PRIMARY KEY, body TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS envelopes (handoff_id TEXT PRIMARY KEY, body BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS handle_times (
    id INTEGER PRIMARY KEY AUTOINCREMENT, queue TEXT NOT NULL, millis INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS wrap_ups (
    id INTEGER PRIMARY KEY AUTOINCREMENT, handoff_id TEXT NOT NULL, attempt INTEGER NOT NULL,
    agent TEXT NOT NULL, disposition TEXT NOT NULL, notes TEXT NOT NULL, at INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS sessions (token_hash TEXT PRIMARY KEY, agent TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS audit (
    id INTEGER PRIMARY KEY AUTOINCREMENT, at INTEGER NOT NULL, agent TEXT NOT NULL,
    handoff_id TEXT NOT NULL, action TEXT NOT NULL, subject TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS withdrawals (
    handoff_id TEXT PRIMARY KEY, attempt INTEGER NOT NULL, reason TEXT NOT NULL, at INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS store_probe (
    id INTEGER PRIMARY KEY CHECK (id = 1), written_at INTEGER NOT NULL);
";

/// The store's file in `data_dir`.
pub const FILE_NAME: &str = "queue.sqlite3";

/// How many handle times per queue are loaded back; older ones only
/// matter as history.
const HANDLE_TIMES_LOADED: i64 = 200;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("queue store: {0}")]
    Sql(#[from] rusqlite::Error),
    #[error("queue store: corrupt row: {0}")]
    Corrupt(String),
    #[error("queue store: {0}")]
    Io(#[from] std::io::Error),
    /// The file was refused at open: the message names it and what is wrong.
    #[error("{0}")]
    Refused(String),
}

/// One entry of the audit log.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct AuditEntry {
    pub at: Millis,
    pub agent: String,
    pub handoff_id: String,
    pub action: String,
    pub subject: String,
}

/// What was saved, loaded at start.
#[derive(Debug, Default)]
pub struct Saved {
    pub agents: Vec<Agent>,
    pub contacts: Vec<(Contact, ContextEnvelope)>,
    pub handle_times: Vec<(String, u64)>,
    /// Desktop sessions: token hash → agent id.
    pub sessions: Vec<(String, String)>,
    /// Transfers withdrawn in the last [`WITHDRAWALS_KEPT`], by handoff.
    pub withdrawals: Vec<(String, Withdrawal)>,
}

#[derive(Debug)]
pub struct Store {
    db: Connection,
    /// Why the last write failed, `None` once one succeeds again: the
    /// connector is not serving meanwhile (a change it cannot save would be
    /// lost with the next restart).
    failing: watch::Sender<Option<String>>,
}

impl Store {
    /// Opens `queue.sqlite3` under `data_dir`, creating it only where no
    /// file exists; refuses (naming the file and what is wrong, leaving it
    /// untouched) one that is empty, damaged or not a queue store. A store
    /// written before the marker existed gets it stamped.
    pub fn open(data_dir: &Path) -> Result<Self, StoreError> {
        std::fs::create_dir_all(data_dir)?;
        let path = data_dir.join(FILE_NAME);
        let refused = |problem: &dyn std::fmt::Display| {
            StoreError::Refused(format!(
                "{} {}: {problem}; it is left untouched: restore a backup (baton store \
                 backup makes one) or move it away to start with an empty queue",
                QUEUE_STORE.name,
                path.display()
            ))
        };
        if !sqlite_file::exists(&path).map_err(|e| refused(&e))? {
            sqlite_file::create(&path, QUEUE_STORE, |db| db.execute_batch(SCHEMA))
                .map_err(|e| refused(&e))?;
        }
        let db = sqlite_file::open_existing(&path).map_err(|e| refused(&e))?;
        sqlite_file::verify(&db, QUEUE_STORE, Some("agents")).map_err(|e| refused(&e))?;
        db.pragma_update(None, "journal_mode", "WAL")?;
        db.pragma_update(None, "synchronous", "NORMAL")?;
        // Tables added since the file was made.
        db.execute_batch(SCHEMA)?;
        Ok(Self {
            db,
            failing: watch::channel(None).0,
        })
    }

    /// `None` while writes succeed, else why the last one failed.
    pub fn failing(&self) -> watch::Receiver<Option<String>> {
        self.failing.subscribe()
    }

    pub fn is_failing(&self) -> bool {
        self.failing.borrow().is_some()
    }

    /// Records whether a write succeeded (see [`Self::failing`]).
    fn noted<T>(&self, result: Result<T, StoreError>) -> Result<T, StoreError> {
        let now = result.as_ref().err().map(ToString::to_string);
        self.failing.send_if_modified(|failing| {
            let changed = failing.is_some() != now.is_some();
            match &now {
                Some(error) if changed => {
                    tracing::error!(%error, "the queue store cannot write; not serving")
                }
                None if changed => tracing::info!("the queue store writes again; serving"),
                _ => {}
            }
            *failing = now;
            changed
        });
        result
    }

    /// Runs one write and records whether it succeeded.
    fn write(
        &self,
        work: impl FnOnce(&Connection) -> Result<(), StoreError>,
    ) -> Result<(), StoreError> {
        let written = work(&self.db);
        self.noted(written)
    }

    /// A small committed write, so that a store that cannot write (a full
    /// disk) is noticed while nothing else is written.
    pub fn probe(&self) -> Result<(), StoreError> {
        let written = self.db.execute(
            "INSERT INTO store_probe (id, written_at) VALUES (1, strftime('%s', 'now')) \
             ON CONFLICT (id) DO UPDATE SET written_at = excluded.written_at",
            [],
        );
        self.noted(written.map(drop).map_err(StoreError::from))
    }

    pub fn load(&self) -> Result<Saved, StoreError> {
        let mut saved = Saved::default();
        let mut agents = self.db.prepare("SELECT body FROM agents ORDER BY id")?;
        for body in agents.query_map([], |row| row.get::<_, String>(0))? {
            saved.agents.push(
                serde_json::from_str(&body?).map_err(|e| StoreError::Corrupt(e.to_string()))?,
            );
        }
        let mut contacts = self.db.prepare(
            "SELECT c.body, e.body FROM contacts c LEFT JOIN envelopes e USING (handoff_id)",
        )?;
        let rows = contacts.query_map([], |row| {
            Ok((row.get::<_, String>(0)?, row.get::<_, Option<Vec<u8>>>(1)?))
        })?;
        for row in rows {
            let (contact, envelope) = row?;
            let contact: Contact =
                serde_json::from_str(&contact).map_err(|e| StoreError::Corrupt(e.to_string()))?;
            let envelope = ContextEnvelope::decode(envelope.unwrap_or_default().as_slice())
                .map_err(|e| StoreError::Corrupt(e.to_string()))?;
            saved.contacts.push((contact, envelope));
        }
        let mut times = self.db.prepare(
            "SELECT queue, millis FROM (SELECT id, queue, millis FROM handle_times ORDER BY id DESC LIMIT ?1) ORDER BY id",
        )?;
        for row in times.query_map([HANDLE_TIMES_LOADED], |row| {
            Ok((row.get::<_, String>(0)?, row.get::<_, i64>(1)?))
        })? {
            let (queue, millis) = row?;
            saved.handle_times.push((queue, millis.max(0) as u64));
        }
        let mut sessions = self.db.prepare("SELECT token_hash, agent FROM sessions")?;
        for row in sessions.query_map([], |row| Ok((row.get(0)?, row.get(1)?)))? {
            saved.sessions.push(row?);
        }
        let mut withdrawals = self
            .db
            .prepare("SELECT handoff_id, attempt, reason, at FROM withdrawals")?;
        let rows = withdrawals.query_map([], |row| {
            Ok((
                row.get::<_, String>(0)?,
                row.get::<_, u32>(1)?,
                row.get::<_, String>(2)?,
                row.get::<_, i64>(3)?,
            ))
        })?;
        for row in rows {
            let (handoff_id, attempt, reason, at) = row?;
            let reason = serde_json::from_value(serde_json::Value::String(reason))
                .map_err(|e| StoreError::Corrupt(e.to_string()))?;
            let at = at.max(0) as u64;
            saved.withdrawals.push((
                handoff_id,
                Withdrawal {
                    attempt,
                    reason,
                    at,
                },
            ));
        }
        Ok(saved)
    }

    /// Sessions are kept (as hashes) so that an open desktop reconnects by
    /// itself after a restart of the connector.
    pub fn save_session(&self, token_hash: &str, agent: &str) -> Result<(), StoreError> {
        self.write(|db| {
            db.execute(
                "INSERT OR REPLACE INTO sessions (token_hash, agent) VALUES (?1, ?2)",
                params![token_hash, agent],
            )?;
            Ok(())
        })
    }

    pub fn delete_session(&self, token_hash: &str) -> Result<(), StoreError> {
        self.write(|db| {
            db.execute("DELETE FROM sessions WHERE token_hash = ?1", [token_hash])?;
            Ok(())
        })
    }

    /// Replaces the saved agents and contacts with the current ones, in one
    /// transaction (the state is small: a few agents and waiting contacts).
    pub fn save<'a>(
        &mut self,
        agents: impl Iterator<Item = &'a Agent>,
        contacts: impl Iterator<Item = &'a Contact>,
    ) -> Result<(), StoreError> {
        let saved = Self::replace_all(&mut self.db, agents, contacts);
        self.noted(saved)
    }

    fn replace_all<'a>(
        db: &mut Connection,
        agents: impl Iterator<Item = &'a Agent>,
        contacts: impl Iterator<Item = &'a Contact>,
    ) -> Result<(), StoreError> {
        let tx = db.transaction()?;
        tx.execute("DELETE FROM agents", [])?;
        tx.execute("DELETE FROM contacts", [])?;
        for agent in agents {
            let body =
                serde_json::to_string(agent).map_err(|e| StoreError::Corrupt(e.to_string()))?;
            tx.execute(
                "INSERT INTO agents (id, body) VALUES (?1, ?2)",
                params![agent.id, body],
            )?;
        }
        for contact in contacts {
            let body =
                serde_json::to_string(contact).map_err(|e| StoreError::Corrupt(e.to_string()))?;
            tx.execute(
                "INSERT INTO contacts (handoff_id, body) VALUES (?1, ?2)",
                params![contact.handoff_id, body],
            )?;
        }
        tx.execute(
            "DELETE FROM envelopes WHERE handoff_id NOT IN (SELECT handoff_id FROM contacts)",
            [],
        )?;
        tx.commit()?;
        Ok(())
    }

    /// Remembers a withdrawn transfer (the highest attempt per handoff) and
    /// forgets those older than [`WITHDRAWALS_KEPT`].
    pub fn record_withdrawal(
        &self,
        handoff_id: &str,
        withdrawal: &Withdrawal,
    ) -> Result<(), StoreError> {
        self.write(|db| {
            let reason = match withdrawal.reason {
                WithdrawalReason::Cancelled => "cancelled",
                WithdrawalReason::NotReattached => "not_reattached",
            };
            db.execute(
                "INSERT INTO withdrawals (handoff_id, attempt, reason, at) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT (handoff_id) DO UPDATE SET attempt = excluded.attempt,
                     reason = excluded.reason, at = excluded.at
                 WHERE excluded.attempt >= withdrawals.attempt",
                params![handoff_id, withdrawal.attempt, reason, withdrawal.at as i64],
            )?;
            let oldest = withdrawal
                .at
                .saturating_sub(WITHDRAWALS_KEPT.as_millis() as u64);
            db.execute("DELETE FROM withdrawals WHERE at < ?1", [oldest as i64])?;
            Ok(())
        })
    }

    pub fn save_envelope(
        &self,
        handoff_id: &str,
        envelope: &ContextEnvelope,
    ) -> Result<(), StoreError> {
        self.write(|db| {
            db.execute(
                "INSERT OR REPLACE INTO envelopes (handoff_id, body) VALUES (?1, ?2)",
                params![handoff_id, envelope.encode_to_vec()],
            )?;
            Ok(())
        })
    }

    pub fn record_handle_time(&self, queue: &str, millis: u64) -> Result<(), StoreError> {
        self.write(|db| {
            db.execute(
                "INSERT INTO handle_times (queue, millis) VALUES (?1, ?2)",
                params![queue, millis as i64],
            )?;
            Ok(())
        })
    }

    pub fn record_wrap_up(
        &self,
        contact: &Contact,
        agent: &str,
        disposition: &str,
        notes: &str,
        at: Millis,
    ) -> Result<(), StoreError> {
        self.write(|db| {
            db.execute(
                "INSERT INTO wrap_ups (handoff_id, attempt, agent, disposition, notes, at) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                params![contact.handoff_id, contact.attempt, agent, disposition, notes, at as i64],
            )?;
            Ok(())
        })
    }

    /// The disposition and notes of a handoff's wrap-up, if any.
    pub fn wrap_up(&self, handoff_id: &str) -> Result<Option<(String, String)>, StoreError> {
        Ok(self
            .db
            .query_row(
                "SELECT disposition, notes FROM wrap_ups WHERE handoff_id = ?1 ORDER BY id DESC LIMIT 1",
                [handoff_id],
                |row| Ok((row.get(0)?, row.get(1)?)),
            )
            .optional()?)
    }

    pub fn audit(&self, entry: &AuditEntry) -> Result<(), StoreError> {
        self.write(|db| {
            db.execute(
                "INSERT INTO audit (at, agent, handoff_id, action, subject) VALUES (?1, ?2, ?3, ?4, ?5)",
                params![entry.at as i64, entry.agent, entry.handoff_id, entry.action, entry.subject],
            )?;
            Ok(())
        })
    }

    /// The most recent audit entries, newest first.
    pub fn recent_audit(&self, limit: u32) -> Result<Vec<AuditEntry>, StoreError> {
        let mut statement = self.db.prepare(
            "SELECT at, agent, handoff_id, action, subject FROM audit ORDER BY id DESC LIMIT ?1",
        )?;
        let rows = statement.query_map([limit], |row| {
            Ok(AuditEntry {
                at: row.get::<_, i64>(0)?.max(0) as u64,
                agent: row.get(1)?,
                handoff_id: row.get(2)?,
                action: row.get(3)?,
                subject: row.get(4)?,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{AgentState, Phase};

    #[test]
    fn state_survives_reopening() {
        let dir = tempfile::tempdir().expect("tempdir");
        let agent = Agent {
            id: "ann".into(),
            name: "Ann".into(),
            skills: ["support".to_owned()].into(),
            contact: "sip:ann@example.com".into(),
            state: AgentState::Available,
            state_since: 5,
        };
        let contact = Contact {
            handoff_id: "h1".into(),
            attempt: 1,
            queue: "support".into(),
            skills: ["support".to_owned()].into(),
            priority: 3,
            enqueued_at: 7,
            phase: Phase::Waiting,
            passed: Default::default(),
            last_pass: None,
            callback: false,
            held: None,
        };
        let envelope = ContextEnvelope {
            omitted_fields: vec!["transcript".into()],
            ..Default::default()
        };
        {
            let mut store = Store::open(dir.path()).expect("open");
            store.save_envelope("h1", &envelope).expect("envelope");
            store
                .save([&agent].into_iter(), [&contact].into_iter())
                .expect("save");
            store
                .record_handle_time("support", 90_000)
                .expect("handle time");
            let withdrawal = |attempt, at| Withdrawal {
                attempt,
                reason: WithdrawalReason::Cancelled,
                at,
            };
            store
                .record_withdrawal("h0", &withdrawal(2, 10))
                .expect("withdrawal");
            // An earlier attempt withdrawn later does not lower it.
            store
                .record_withdrawal("h0", &withdrawal(1, 11))
                .expect("withdrawal");
        }
        let saved = Store::open(dir.path())
            .expect("reopen")
            .load()
            .expect("load");
        assert_eq!(saved.agents, vec![agent]);
        assert_eq!(saved.contacts, vec![(contact, envelope)]);
        assert_eq!(saved.handle_times, vec![("support".to_owned(), 90_000)]);
        assert_eq!(
            saved.withdrawals,
            vec![(
                "h0".to_owned(),
                Withdrawal {
                    attempt: 2,
                    reason: WithdrawalReason::Cancelled,
                    at: 10
                }
            )]
        );
    }
}
