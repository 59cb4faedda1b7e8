//! Durable queue state in SQLite: agents, contacts with their context,
//! recent handle times, wrap-ups, desktop sessions and the audit log of
//! reveals. The domain types are stored as JSON rows and the context as
//! its protobuf encoding, so the store stays a thin translation at the
//! edge. Every record of a customer carries its tenant: contacts and
//! agents in their JSON, the other tables in a `tenant` column.

use std::collections::HashMap;
use std::path::Path;

use baton_proto::connector::v1::ContextEnvelope;
use baton_service_kit::sqlite_file::{self, QUEUE_STORE};
use prost::Message;
use rusqlite::{Connection, OptionalExtension, params};
use tokio::sync::watch;

use crate::domain::{
    Agent, Contact, Millis, QueueKey, WITHDRAWALS_KEPT, Withdrawal, WithdrawalReason,
};
use crate::session::Session;

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
CREATE TABLE IF NOT EXISTS desk_sessions (token_hash TEXT PRIMARY KEY, body TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS audit (
    id INTEGER PRIMARY KEY AUTOINCREMENT, at INTEGER NOT NULL, agent TEXT NOT NULL,
    handoff_id TEXT NOT NULL, action TEXT NOT NULL, subject TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS withdrawals (
    handoff_id TEXT PRIMARY KEY, attempt INTEGER NOT NULL, reason TEXT NOT NULL, at INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS store_probe (
    id INTEGER PRIMARY KEY CHECK (id = 1), written_at INTEGER NOT NULL);
";

/// The schema's version (`PRAGMA user_version`), one step per migration
/// in [`MIGRATIONS`].
pub const SCHEMA_VERSION: i32 = 1;

/// What turns a file of version `i` into version `i + 1`, in order.
const MIGRATIONS: [&str; SCHEMA_VERSION as usize] = [
    // 1: tenants. Sessions signed in by name alone end (every sign-in
    // needs an account since); the records kept beside contacts carry the
    // tenant, empty for those written before.
    "DELETE FROM sessions;
     ALTER TABLE handle_times ADD COLUMN tenant TEXT NOT NULL DEFAULT '';
     ALTER TABLE wrap_ups ADD COLUMN tenant TEXT NOT NULL DEFAULT '';
     ALTER TABLE audit ADD COLUMN tenant TEXT NOT NULL DEFAULT '';",
];

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
    /// The tenant whose customer's value it was.
    pub tenant: String,
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
    pub handle_times: Vec<(QueueKey, u64)>,
    /// Desktop sessions by the hash of their id.
    pub sessions: Vec<(String, Session)>,
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
    /// The agents' and contacts' rows as the file holds them, by id: a save
    /// writes only the rows that changed and deletes the ones gone, so that
    /// its cost follows the change, not the length of the line.
    written: Written,
}

#[derive(Debug, Default)]
struct Written {
    agents: HashMap<String, String>,
    contacts: HashMap<String, String>,
}

impl Written {
    fn read(db: &Connection) -> Result<Self, StoreError> {
        let rows = |sql: &str| -> Result<HashMap<String, String>, StoreError> {
            let mut statement = db.prepare(sql)?;
            let rows = statement.query_map([], |row| Ok((row.get(0)?, row.get(1)?)))?;
            Ok(rows.collect::<Result<_, _>>()?)
        };
        Ok(Self {
            agents: rows("SELECT id, body FROM agents")?,
            contacts: rows("SELECT handoff_id, body FROM contacts")?,
        })
    }
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
        migrate(&db).map_err(|e| match e {
            StoreError::Refused(problem) => refused(&problem),
            other => other,
        })?;
        let written = Written::read(&db)?;
        Ok(Self {
            db,
            failing: watch::channel(None).0,
            written,
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
    /// Also drops the envelopes of contacts that left before a save
    /// wrote them (admitted and failed at once).
    pub fn probe(&self) -> Result<(), StoreError> {
        let written = self.db.execute_batch(
            "INSERT INTO store_probe (id, written_at) VALUES (1, strftime('%s', 'now')) \
             ON CONFLICT (id) DO UPDATE SET written_at = excluded.written_at; \
             DELETE FROM envelopes WHERE handoff_id NOT IN (SELECT handoff_id FROM contacts);",
        );
        self.noted(written.map_err(StoreError::from))
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
            "SELECT tenant, queue, millis FROM (SELECT id, tenant, queue, millis FROM handle_times \
             ORDER BY id DESC LIMIT ?1) ORDER BY id",
        )?;
        for row in times.query_map([HANDLE_TIMES_LOADED], |row| {
            Ok((
                row.get::<_, String>(0)?,
                row.get::<_, String>(1)?,
                row.get::<_, i64>(2)?,
            ))
        })? {
            let (tenant, queue, millis) = row?;
            saved
                .handle_times
                .push((QueueKey::new(&tenant, &queue), millis.max(0) as u64));
        }
        let mut sessions = self
            .db
            .prepare("SELECT token_hash, body FROM desk_sessions")?;
        for row in sessions.query_map([], |row| {
            Ok((row.get::<_, String>(0)?, row.get::<_, String>(1)?))
        })? {
            let (hash, body) = row?;
            let session =
                serde_json::from_str(&body).map_err(|e| StoreError::Corrupt(e.to_string()))?;
            saved.sessions.push((hash, session));
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

    /// Sessions are kept (by the hash of their id) so that an open
    /// desktop reconnects by itself after a restart of the connector.
    pub fn save_session(&self, token_hash: &str, session: &Session) -> Result<(), StoreError> {
        let body =
            serde_json::to_string(session).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        self.write(|db| {
            db.execute(
                "INSERT OR REPLACE INTO desk_sessions (token_hash, body) VALUES (?1, ?2)",
                params![token_hash, body],
            )?;
            Ok(())
        })
    }

    pub fn delete_sessions(&self, token_hashes: &[String]) -> Result<(), StoreError> {
        self.write(|db| {
            for hash in token_hashes {
                db.execute("DELETE FROM desk_sessions WHERE token_hash = ?1", [hash])?;
            }
            Ok(())
        })
    }

    /// Makes the saved agents and contacts the current ones, in one
    /// transaction: rows whose body changed are written, rows gone are
    /// deleted (with their contact's context envelope), the rest untouched.
    pub fn save<'a>(
        &mut self,
        agents: impl Iterator<Item = &'a Agent>,
        contacts: impl Iterator<Item = &'a Contact>,
    ) -> Result<(), StoreError> {
        let now = Written {
            agents: agents
                .map(|a| Ok((a.id.clone(), Self::body(a)?)))
                .collect::<Result<_, StoreError>>()?,
            contacts: contacts
                .map(|c| Ok((c.handoff_id.clone(), Self::body(c)?)))
                .collect::<Result<_, StoreError>>()?,
        };
        let saved = Self::write_changes(&mut self.db, &self.written, &now);
        if saved.is_ok() {
            self.written = now;
        }
        self.noted(saved)
    }

    /// A row's body.
    fn body(value: &impl serde::Serialize) -> Result<String, StoreError> {
        serde_json::to_string(value).map_err(|e| StoreError::Corrupt(e.to_string()))
    }

    fn write_changes(
        db: &mut Connection,
        before: &Written,
        now: &Written,
    ) -> Result<(), StoreError> {
        let tx = db.transaction()?;
        for (table, key, before, now) in [
            ("agents", "id", &before.agents, &now.agents),
            ("contacts", "handoff_id", &before.contacts, &now.contacts),
        ] {
            let mut upsert = tx.prepare_cached(&format!(
                "INSERT OR REPLACE INTO {table} ({key}, body) VALUES (?1, ?2)"
            ))?;
            for (id, body) in now {
                if before.get(id) != Some(body) {
                    upsert.execute(params![id, body])?;
                }
            }
            let mut delete = tx.prepare_cached(&format!("DELETE FROM {table} WHERE {key} = ?1"))?;
            let mut forget = tx.prepare_cached("DELETE FROM envelopes WHERE handoff_id = ?1")?;
            for id in before.keys().filter(|id| !now.contains_key(*id)) {
                delete.execute([id])?;
                if table == "contacts" {
                    forget.execute([id])?;
                }
            }
        }
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

    pub fn record_handle_time(&self, queue: &QueueKey, millis: u64) -> Result<(), StoreError> {
        self.write(|db| {
            db.execute(
                "INSERT INTO handle_times (tenant, queue, millis) VALUES (?1, ?2, ?3)",
                params![queue.tenant, queue.name, millis as i64],
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
                "INSERT INTO wrap_ups (handoff_id, attempt, tenant, agent, disposition, notes, at) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                params![
                    contact.handoff_id,
                    contact.attempt,
                    contact.tenant,
                    agent,
                    disposition,
                    notes,
                    at as i64
                ],
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
                "INSERT INTO audit (at, tenant, agent, handoff_id, action, subject) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                params![
                    entry.at as i64,
                    entry.tenant,
                    entry.agent,
                    entry.handoff_id,
                    entry.action,
                    entry.subject
                ],
            )?;
            Ok(())
        })
    }

    /// The most recent audit entries of the tenants `sees` accepts, newest
    /// first.
    pub fn recent_audit(
        &self,
        limit: usize,
        sees: impl Fn(&str) -> bool,
    ) -> Result<Vec<AuditEntry>, StoreError> {
        let mut statement = self.db.prepare(
            "SELECT at, tenant, agent, handoff_id, action, subject FROM audit ORDER BY id DESC",
        )?;
        let rows = statement.query_map([], |row| {
            Ok(AuditEntry {
                at: row.get::<_, i64>(0)?.max(0) as u64,
                tenant: row.get(1)?,
                agent: row.get(2)?,
                handoff_id: row.get(3)?,
                action: row.get(4)?,
                subject: row.get(5)?,
            })
        })?;
        let mut entries = Vec::new();
        for row in rows {
            let entry = row?;
            if sees(&entry.tenant) {
                entries.push(entry);
                if entries.len() == limit {
                    break;
                }
            }
        }
        Ok(entries)
    }
}

/// Brings the file to [`SCHEMA_VERSION`], one migration at a time, each
/// in its own transaction with the version it reaches; refuses a file of
/// a newer version (written by a newer connector) rather than guess.
fn migrate(db: &Connection) -> Result<(), StoreError> {
    let version: i32 = db.query_row("PRAGMA user_version", [], |row| row.get(0))?;
    if version > SCHEMA_VERSION {
        return Err(StoreError::Refused(format!(
            "schema version {version} is newer than this connector's ({SCHEMA_VERSION})"
        )));
    }
    for (from, migration) in MIGRATIONS.iter().enumerate().skip(version.max(0) as usize) {
        let to = from as i32 + 1;
        db.execute_batch(&format!(
            "BEGIN; {migration} PRAGMA user_version = {to}; COMMIT;"
        ))?;
        tracing::info!(version = to, "queue store migrated");
    }
    Ok(())
}

#[cfg(test)]
#[test]
fn a_store_of_the_first_schema_is_migrated_and_a_newer_one_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join(FILE_NAME);
    sqlite_file::create(&path, QUEUE_STORE, |db| db.execute_batch(SCHEMA)).expect("version 0");
    {
        let db = Connection::open(&path).expect("open");
        db.execute(
            "INSERT INTO audit (at, agent, handoff_id, action, subject) VALUES (1, 'ann', 'h1', 'reveal', 'x')",
            [],
        )
        .expect("an old row");
        db.execute("INSERT INTO sessions VALUES ('hash', 'ann')", [])
            .expect("a name-only session");
    }
    let store = Store::open(dir.path()).expect("migrated");
    let audit = store.recent_audit(10, |_| true).expect("audit");
    assert_eq!(audit[0].tenant, "", "written before tenants");
    assert!(
        store
            .recent_audit(10, |t| t == "acme")
            .expect("audit")
            .is_empty()
    );
    let sessions: i64 = store
        .db
        .query_row("SELECT count(*) FROM sessions", [], |row| row.get(0))
        .expect("count");
    assert_eq!(sessions, 0, "name-only sessions end");
    drop(store);
    Store::open(dir.path()).expect("opened again at the same version");

    Connection::open(&path)
        .expect("open")
        .pragma_update(None, "user_version", SCHEMA_VERSION + 1)
        .expect("newer");
    let error = Store::open(dir.path()).expect_err("refused");
    assert!(error.to_string().contains("newer"), "{error}");
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
            tenant: "acme".into(),
            skills: ["support".to_owned()].into(),
            contact: "sip:ann@example.com".into(),
            state: AgentState::Available,
            state_since: 5,
            chat_capacity: Some(2),
        };
        let contact = Contact {
            handoff_id: "h1".into(),
            attempt: 1,
            tenant: "acme".into(),
            queue: "support".into(),
            media: crate::domain::Media::Chat,
            skills: ["support".to_owned()].into(),
            priority: 3,
            enqueued_at: 7,
            phase: Phase::Waiting,
            passed: Default::default(),
            last_pass: None,
            callback: None,
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
                .record_handle_time(&QueueKey::new("acme", "support"), 90_000)
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
        assert_eq!(
            saved.handle_times,
            vec![(QueueKey::new("acme", "support"), 90_000)]
        );
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
