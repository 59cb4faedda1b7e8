//! The embedded store: SQLite in WAL mode with `synchronous = FULL`, so that
//! an acknowledged write is on disk.
//!
//! Writes go to one writer thread that owns the write connection and commits
//! them in groups: it takes every write waiting in its queue, runs each in
//! its own savepoint inside one transaction (a failing write rolls back
//! alone, as if it had been its own transaction), commits once, and only
//! then answers each caller. A burst of concurrent writes costs one fsync
//! instead of one each, and nothing is acknowledged before it is durable.
//! A group of only [`Durability::Written`] events commits with
//! `synchronous = NORMAL`: no fsync, but in the WAL's order, so the next
//! synced commit makes it durable with itself (checkpoints still sync).
//! Reads use a second connection on the blocking pool; WAL lets them run
//! while the writer commits, and they see every acknowledged write.

use std::collections::HashMap;
use std::path::Path;
use std::sync::mpsc;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use baton_service_kit::sqlite_file::{self, CONTROL_STORE};
use prost::Message;
use rusqlite::{Connection, OptionalExtension, Row, TransactionBehavior, params};

use super::rows::{
    EVENT_COLUMNS, EventRow, HANDOFF_COLUMNS, HandoffRow, apply, created, name_of, next_record,
    now_ms, wait_ms,
};
use super::{
    AuditAction, AuditEntry, AuditRecord, ContextAccess, CreateOutcome, HandoffStore, NewLease,
    StoreError,
};
use crate::domain::{ConnectorPosition, Durability, EventRecord, Handoff, HandoffState, NewEvent};

/// The store's file in `store.data_dir`.
pub const FILE_NAME: &str = "handoffs.db";

/// Schema migrations, applied in order; `PRAGMA user_version` records how
/// many have run.
const MIGRATIONS: &[&str] = &[
    r#"
CREATE TABLE handoffs (
    id TEXT PRIMARY KEY,
    tenant TEXT NOT NULL,
    request_id TEXT NOT NULL,
    request_fingerprint TEXT NOT NULL,
    state TEXT NOT NULL,
    conversation BLOB NOT NULL,
    context BLOB NOT NULL,
    requested_target BLOB NOT NULL,
    mode TEXT NOT NULL,
    plan TEXT NOT NULL,
    customer_message TEXT NOT NULL,
    customer_message_language TEXT NOT NULL,
    created_at_ms INTEGER NOT NULL,
    updated_at_ms INTEGER NOT NULL,
    deadline_ms INTEGER NOT NULL,
    current_attempt INTEGER,
    queue_position INTEGER,
    queue_wait_ms INTEGER,
    failure_reason INTEGER,
    failure_detail TEXT,
    last_sequence INTEGER NOT NULL,
    UNIQUE (tenant, request_id)
);
CREATE INDEX handoffs_by_tenant ON handoffs (tenant, id);
CREATE INDEX handoffs_in_flight ON handoffs (state)
    WHERE state NOT IN ('completed', 'failed', 'cancelled');
CREATE TABLE handoff_events (
    handoff_id TEXT NOT NULL REFERENCES handoffs (id),
    sequence INTEGER NOT NULL,
    kind TEXT NOT NULL,
    state TEXT NOT NULL,
    time_ms INTEGER NOT NULL,
    attempt INTEGER,
    queue_position INTEGER,
    queue_wait_ms INTEGER,
    failure_reason INTEGER,
    failure_detail TEXT,
    detail TEXT NOT NULL,
    connector_sequence INTEGER,
    PRIMARY KEY (handoff_id, sequence)
) WITHOUT ROWID;
CREATE UNIQUE INDEX handoff_events_by_connector_sequence
    ON handoff_events (handoff_id, attempt, connector_sequence)
    WHERE connector_sequence IS NOT NULL;
"#,
    r#"
ALTER TABLE handoffs ADD COLUMN decision BLOB;
"#,
    r#"
ALTER TABLE handoffs ADD COLUMN wrap_up BLOB;
ALTER TABLE handoff_events ADD COLUMN wrap_up BLOB;
"#,
    r#"
ALTER TABLE handoff_events ADD COLUMN connector_run TEXT NOT NULL DEFAULT '';
DROP INDEX handoff_events_by_connector_sequence;
CREATE UNIQUE INDEX handoff_events_by_connector_position
    ON handoff_events (handoff_id, attempt, connector_run, connector_sequence)
    WHERE connector_sequence IS NOT NULL;
"#,
    r#"
ALTER TABLE handoffs ADD COLUMN tokens_revoked_at_ms INTEGER;
ALTER TABLE handoffs ADD COLUMN context_purged_at_ms INTEGER;
CREATE INDEX handoffs_to_purge ON handoffs (updated_at_ms)
    WHERE context_purged_at_ms IS NULL AND state IN ('completed', 'failed', 'cancelled');
CREATE TABLE audit_log (
    sequence INTEGER PRIMARY KEY AUTOINCREMENT,
    tenant TEXT NOT NULL,
    handoff_id TEXT NOT NULL,
    action TEXT NOT NULL,
    actor TEXT NOT NULL,
    credential TEXT NOT NULL,
    time_ms INTEGER NOT NULL,
    detail TEXT NOT NULL
);
CREATE INDEX audit_log_by_tenant ON audit_log (tenant, sequence);
CREATE INDEX audit_log_by_handoff ON audit_log (handoff_id, sequence);
"#,
    // The health check's write: a store that answers reads but cannot
    // write (a full disk) is not serving.
    r#"
CREATE TABLE store_probe (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    written_at_ms INTEGER NOT NULL
);
"#,
    // Repeated context reads counted on one record (record_view).
    r#"
ALTER TABLE audit_log ADD COLUMN count INTEGER NOT NULL DEFAULT 1;
ALTER TABLE audit_log ADD COLUMN last_ms INTEGER;
"#,
];

/// The schema version this build writes (`user_version`): a file with a
/// newer one is refused.
pub const SCHEMA_VERSION: usize = MIGRATIONS.len();

/// The most writes committed in one transaction: bounds how long the first
/// write of a burst waits for the others to run.
const MAX_GROUP: usize = 256;

/// A write for the writer thread, and how durable its commit must be.
struct WriteJob {
    durability: Durability,
    run: Write,
}

/// A write run by the writer thread inside the group's transaction, given
/// the connection (or why the group could not begin). It returns whether it
/// succeeded, so its savepoint is released or rolled back, and what to tell
/// its caller once the group's commit is known.
type Write = Box<dyn FnOnce(Result<&Connection, &str>) -> (bool, Completion) + Send>;

/// Answers a write's caller, given the group commit's error if it failed.
type Completion = Box<dyn FnOnce(Option<&str>) + Send>;

/// The embedded SQLite store.
#[derive(Clone)]
pub struct SqliteStore {
    /// The connection for reads.
    connection: Arc<Mutex<Connection>>,
    /// The writer thread's queue; the thread ends when every clone is gone.
    writer: mpsc::SyncSender<WriteJob>,
    /// Dispatch leases by handoff id. One process owns an SQLite store, so
    /// leases live in memory: after a restart every in-flight handoff is
    /// an orphan, claimed at once.
    leases: Arc<Mutex<HashMap<String, Lease>>>,
}

struct Lease {
    tenant: String,
    owner: String,
    expires: Instant,
}

impl Lease {
    fn new(tenant: &str, owner: &str, ttl: Duration) -> Self {
        Self {
            tenant: tenant.to_owned(),
            owner: owner.to_owned(),
            expires: Instant::now() + ttl,
        }
    }
}

impl std::fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SqliteStore")
    }
}

impl SqliteStore {
    /// Opens `handoffs.db` under `data_dir`, creating it only where no
    /// file exists; refuses (`Refused`, naming the file and what is wrong,
    /// leaving it untouched) a file that is empty, damaged (`quick_check`),
    /// of another kind or of a newer schema. A store written before the
    /// marker existed (its tables, no marker) gets it stamped.
    pub fn open(data_dir: &Path) -> Result<Self, StoreError> {
        std::fs::create_dir_all(data_dir).map_err(|e| {
            StoreError::Unavailable(format!("cannot create {}: {e}", data_dir.display()))
        })?;
        let path = data_dir.join(FILE_NAME);
        let refused = |problem: &dyn std::fmt::Display| {
            StoreError::Refused(format!(
                "{} {}: {problem}; it is left untouched: restore a backup (baton store \
                 backup makes one) or move it away to start with an empty store",
                CONTROL_STORE.name,
                path.display()
            ))
        };
        if !sqlite_file::exists(&path).map_err(|e| refused(&e))? {
            sqlite_file::create(&path, CONTROL_STORE, migrate).map_err(|e| refused(&e))?;
        }
        let open = || -> Result<Connection, StoreError> {
            let connection = sqlite_file::open_existing(&path).map_err(|e| refused(&e))?;
            connection
                .busy_timeout(Duration::from_secs(5))
                .map_err(unavailable)?;
            Ok(connection)
        };
        let configure = |connection: &Connection| -> Result<(), StoreError> {
            // Every statement is prepared once per connection (parsing
            // was an eighth of the CPU time of a CreateHandoff burst).
            connection.set_prepared_statement_cache_capacity(64);
            connection
                .execute_batch(
                    "PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL; \
                     PRAGMA foreign_keys = ON;",
                )
                .map_err(unavailable)
        };
        let mut write_connection = open()?;
        // Nothing is written to the file before it passed.
        sqlite_file::verify(&write_connection, CONTROL_STORE, Some("handoffs"))
            .map_err(|e| refused(&e))?;
        let (_, version) = sqlite_file::header(&write_connection).map_err(|e| refused(&e))?;
        if usize::try_from(version).map_or(true, |v| v > MIGRATIONS.len()) {
            return Err(refused(&format_args!(
                "schema version {version}, newer than this baton-control's {}",
                MIGRATIONS.len()
            )));
        }
        configure(&write_connection)?;
        migrate(&mut write_connection).map_err(unavailable)?;
        let connection = open()?;
        configure(&connection)?;
        let (writer, jobs) = mpsc::sync_channel(WRITE_QUEUE);
        std::thread::Builder::new()
            .name("baton-store-writer".into())
            .spawn(move || write_groups(write_connection, jobs))
            .map_err(|e| StoreError::Unavailable(format!("cannot start the writer: {e}")))?;
        Ok(Self {
            connection: Arc::new(Mutex::new(connection)),
            writer,
            leases: Arc::default(),
        })
    }

    /// Runs `work` in the next group commit and answers once that commit is
    /// durable (or has failed, in which case nothing of `work` is stored).
    async fn write<T: Send + 'static>(
        &self,
        work: impl FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        self.write_as(Durability::Synced, work).await
    }

    /// [`Self::write`], answering once the commit is as durable as asked.
    async fn write_as<T: Send + 'static>(
        &self,
        durability: Durability,
        work: impl FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        let (reply, answer) = tokio::sync::oneshot::channel();
        let run: Write = Box::new(move |connection: Result<&Connection, &str>| {
            let result = match connection {
                Ok(connection) => work(connection),
                Err(error) => Err(StoreError::Unavailable(error.to_owned())),
            };
            let succeeded = result.is_ok();
            let completion: Completion = Box::new(move |commit_error: Option<&str>| {
                let result = match (result, commit_error) {
                    (Ok(_), Some(error)) => Err(StoreError::Unavailable(error.to_owned())),
                    (result, _) => result,
                };
                // The caller may have gone away; the write stands regardless.
                let _ = reply.send(result);
            });
            (succeeded, completion)
        });
        let stopped = || StoreError::Unavailable("store writer stopped".into());
        // Full: more writes wait than a group commit can take soon; the
        // caller gets UNAVAILABLE with RetryInfo instead of a queue that
        // grows without end.
        let job = WriteJob { durability, run };
        self.writer.try_send(job).map_err(|error| match error {
            mpsc::TrySendError::Full(_) => {
                StoreError::Unavailable("the store's write queue is full".into())
            }
            mpsc::TrySendError::Disconnected(_) => stopped(),
        })?;
        answer.await.map_err(|_| stopped())?
    }

    async fn with<T: Send + 'static>(
        &self,
        work: impl FnOnce(&mut Connection) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        let connection = self.connection.clone();
        tokio::task::spawn_blocking(move || {
            let mut connection = connection
                .lock()
                .map_err(|_| StoreError::Unavailable("store lock poisoned".into()))?;
            work(&mut connection)
        })
        .await
        .map_err(|e| StoreError::Unavailable(format!("store task failed: {e}")))?
    }
}

impl SqliteStore {
    fn leases(&self) -> MutexGuard<'_, HashMap<String, Lease>> {
        self.leases.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// The most writes waiting for the writer thread.
const WRITE_QUEUE: usize = 4096;

/// The writer thread: waits for a write, takes every other write already
/// queued (up to MAX_GROUP), and commits them together, with an fsync
/// unless every write of the group is [`Durability::Written`].
fn write_groups(mut connection: Connection, jobs: mpsc::Receiver<WriteJob>) {
    let mut synced = true;
    while let Ok(first) = jobs.recv() {
        let mut group = vec![first];
        while group.len() < MAX_GROUP {
            match jobs.try_recv() {
                Ok(job) => group.push(job),
                Err(_) => break,
            }
        }
        let sync = group.iter().any(|job| job.durability == Durability::Synced);
        if sync != synced {
            let pragma = if sync {
                "PRAGMA synchronous = FULL"
            } else {
                "PRAGMA synchronous = NORMAL"
            };
            if let Err(error) = connection.execute_batch(pragma) {
                // Nothing of a group that cannot get its durability runs.
                refuse(group, &format!("store unavailable: {error}"));
                continue;
            }
            synced = sync;
        }
        commit_group(&mut connection, group);
    }
}

fn commit_group(connection: &mut Connection, group: Vec<WriteJob>) {
    let mut tx = match connection.transaction_with_behavior(TransactionBehavior::Immediate) {
        Ok(tx) => tx,
        Err(error) => return refuse(group, &format!("store unavailable: {error}")),
    };
    let mut completions = Vec::with_capacity(group.len());
    let mut failure: Option<String> = None;
    for job in group {
        if let Some(error) = &failure {
            completions.push((job.run)(Err(error)).1);
            continue;
        }
        match tx.savepoint() {
            Ok(savepoint) => {
                let (succeeded, completion) = (job.run)(Ok(&savepoint));
                completions.push(completion);
                // A failed write's savepoint rolls back when dropped.
                if succeeded && let Err(error) = savepoint.commit() {
                    failure = Some(format!("store unavailable: {error}"));
                }
            }
            Err(error) => {
                let error = format!("store unavailable: {error}");
                completions.push((job.run)(Err(&error)).1);
                failure = Some(error);
            }
        }
    }
    let outcome = match failure {
        // Rolls back the whole group: nothing of it was acknowledged.
        Some(error) => Some(error),
        None => tx
            .commit()
            .err()
            .map(|error| format!("store unavailable: {error}")),
    };
    for completion in completions {
        completion(outcome.as_deref());
    }
}

/// Answers every write of a group that cannot begin with `error`.
fn refuse(group: Vec<WriteJob>, error: &str) {
    for job in group {
        let (_, completion) = (job.run)(Err(error));
        completion(Some(error));
    }
}

fn migrate(connection: &mut Connection) -> rusqlite::Result<()> {
    let applied: usize = connection.query_row("PRAGMA user_version", [], |row| row.get(0))?;
    for (index, migration) in MIGRATIONS.iter().enumerate().skip(applied) {
        let tx = connection.transaction()?;
        tx.execute_batch(migration)?;
        tx.pragma_update(None, "user_version", index + 1)?;
        tx.commit()?;
    }
    Ok(())
}

fn unavailable(error: rusqlite::Error) -> StoreError {
    StoreError::Unavailable(error.to_string())
}

impl HandoffRow {
    pub(super) fn read(row: &Row<'_>) -> rusqlite::Result<Self> {
        Ok(Self {
            id: row.get(0)?,
            tenant: row.get(1)?,
            request_id: row.get(2)?,
            request_fingerprint: row.get(3)?,
            state: row.get(4)?,
            conversation: row.get(5)?,
            context: row.get(6)?,
            requested_target: row.get(7)?,
            mode: row.get(8)?,
            plan: row.get(9)?,
            customer_message: row.get(10)?,
            customer_message_language: row.get(11)?,
            created_at_ms: row.get(12)?,
            updated_at_ms: row.get(13)?,
            deadline_ms: row.get(14)?,
            current_attempt: row.get(15)?,
            queue_position: row.get(16)?,
            queue_wait_ms: row.get(17)?,
            failure_reason: row.get(18)?,
            failure_detail: row.get(19)?,
            last_sequence: row.get(20)?,
            decision: row.get(21)?,
            wrap_up: row.get(22)?,
        })
    }
}

impl EventRow {
    pub(super) fn read(row: &Row<'_>) -> rusqlite::Result<Self> {
        Ok(Self {
            handoff_id: row.get(0)?,
            sequence: row.get(1)?,
            kind: row.get(2)?,
            state: row.get(3)?,
            time_ms: row.get(4)?,
            attempt: row.get(5)?,
            queue_position: row.get(6)?,
            queue_wait_ms: row.get(7)?,
            failure_reason: row.get(8)?,
            failure_detail: row.get(9)?,
            detail: row.get(10)?,
            wrap_up: row.get(11)?,
        })
    }
}

fn load(connection: &Connection, tenant: &str, id: &str) -> Result<Handoff, StoreError> {
    connection
        .prepare_cached(&format!(
            "SELECT {HANDOFF_COLUMNS} FROM handoffs WHERE tenant = ?1 AND id = ?2"
        ))
        .map_err(unavailable)?
        .query_row(params![tenant, id], HandoffRow::read)
        .optional()
        .map_err(unavailable)?
        .ok_or(StoreError::NotFound)?
        .into_handoff()
}

fn insert_event(
    connection: &Connection,
    record: &EventRecord,
    connector_position: Option<&ConnectorPosition>,
) -> Result<(), StoreError> {
    connection
        .prepare_cached(
            "INSERT INTO handoff_events (handoff_id, sequence, kind, state, time_ms, attempt, \
             queue_position, queue_wait_ms, failure_reason, failure_detail, detail, connector_sequence, \
             wrap_up, connector_run) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)",
        )
        .map_err(unavailable)?
        .execute(params![
            record.handoff_id,
            record.sequence,
            name_of(&record.kind),
            name_of(&record.state),
            record.time_ms,
            record.attempt.as_ref().map(|a| a.number),
            record.queue_status.map(|q| q.position),
            wait_ms(&record.queue_status),
            record.failure.as_ref().map(|f| f.reason as i32),
            record.failure.as_ref().map(|f| f.detail.clone()),
            record.detail,
            connector_position.map(|p| p.sequence),
            record.wrap_up.as_ref().map(Message::encode_to_vec),
            connector_position.map(|p| p.run_id.as_str()).unwrap_or_default(),
        ])
        .map_err(unavailable)?;
    Ok(())
}

fn insert_audit(connection: &Connection, entry: &AuditEntry) -> Result<(), StoreError> {
    connection
        .prepare_cached(
            "INSERT INTO audit_log (tenant, handoff_id, action, actor, credential, time_ms, detail) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        )
        .map_err(unavailable)?
        .execute(params![
            entry.tenant,
            entry.handoff_id,
            entry.action.name(),
            entry.actor,
            entry.credential,
            entry.time_ms,
            entry.detail,
        ])
        .map_err(unavailable)?;
    Ok(())
}

/// Counts a read on the newest matching record since `since_ms`, or
/// appends `entry` (see `HandoffStore::record_view`).
fn count_view(
    connection: &Connection,
    entry: &AuditEntry,
    since_ms: i64,
) -> Result<(), StoreError> {
    let counted = connection
        .prepare_cached(
            "UPDATE audit_log SET count = count + 1, last_ms = ?1 WHERE sequence = (\
             SELECT sequence FROM audit_log WHERE handoff_id = ?2 AND tenant = ?3 AND action = ?4 \
             AND actor = ?5 AND credential = ?6 AND time_ms >= ?7 ORDER BY sequence DESC LIMIT 1)",
        )
        .map_err(unavailable)?
        .execute(params![
            entry.time_ms,
            entry.handoff_id,
            entry.tenant,
            entry.action.name(),
            entry.actor,
            entry.credential,
            since_ms,
        ])
        .map_err(unavailable)?;
    if counted == 0 {
        insert_audit(connection, entry)?;
    }
    Ok(())
}

fn read_audit(row: &Row<'_>) -> rusqlite::Result<(AuditRecord, String)> {
    let action: String = row.get(3)?;
    let time_ms: i64 = row.get(6)?;
    Ok((
        AuditRecord {
            sequence: row.get(0)?,
            entry: AuditEntry {
                tenant: row.get(1)?,
                handoff_id: row.get(2)?,
                // Replaced below once the name is checked.
                action: AuditAction::Created,
                actor: row.get(4)?,
                credential: row.get(5)?,
                time_ms,
                detail: row.get(7)?,
            },
            count: row.get(8)?,
            last_ms: row.get::<_, Option<i64>>(9)?.unwrap_or(time_ms),
        },
        action,
    ))
}

#[async_trait]
impl HandoffStore for SqliteStore {
    async fn record_audit(&self, entry: AuditEntry) -> Result<(), StoreError> {
        self.write(move |tx| insert_audit(tx, &entry)).await
    }

    async fn record_view(&self, entry: AuditEntry, since_ms: i64) -> Result<(), StoreError> {
        self.write(move |tx| count_view(tx, &entry, since_ms)).await
    }

    async fn audit_log(
        &self,
        tenant: &str,
        handoff_id: Option<&str>,
        limit: usize,
        before: Option<i64>,
    ) -> Result<Vec<AuditRecord>, StoreError> {
        let (tenant, handoff_id) = (tenant.to_owned(), handoff_id.map(str::to_owned));
        self.with(move |connection| {
            let mut statement = connection
                .prepare_cached(
                    "SELECT sequence, tenant, handoff_id, action, actor, credential, time_ms, detail, \
                     count, last_ms FROM audit_log WHERE tenant = ?1 AND (?2 IS NULL OR handoff_id = ?2) \
                     AND (?3 IS NULL OR sequence < ?3) ORDER BY sequence DESC LIMIT ?4",
                )
                .map_err(unavailable)?;
            let rows = statement
                .query_map(
                    params![
                        tenant,
                        handoff_id,
                        before,
                        i64::try_from(limit).unwrap_or(i64::MAX)
                    ],
                    read_audit,
                )
                .map_err(unavailable)?;
            rows.map(|row| {
                let (mut record, action) = row.map_err(unavailable)?;
                record.entry.action = AuditAction::from_name(&action)
                    .ok_or_else(|| StoreError::Corrupt(format!("audit action {action:?}")))?;
                Ok(record)
            })
            .collect()
        })
        .await
    }

    async fn revoke_context_tokens(
        &self,
        tenant: &str,
        id: &str,
        audit: AuditEntry,
    ) -> Result<(), StoreError> {
        let (tenant, id) = (tenant.to_owned(), id.to_owned());
        self.write(move |tx| {
            let updated = tx
                .prepare_cached(
                    "UPDATE handoffs SET tokens_revoked_at_ms = COALESCE(tokens_revoked_at_ms, ?1) \
                     WHERE tenant = ?2 AND id = ?3",
                )
                .map_err(unavailable)?
                .execute(params![audit.time_ms, tenant, id])
                .map_err(unavailable)?;
            if updated == 0 {
                return Err(StoreError::NotFound);
            }
            insert_audit(tx, &audit)
        })
        .await
    }

    async fn context_access(&self, id: &str) -> Result<ContextAccess, StoreError> {
        let id = id.to_owned();
        self.with(move |connection| {
            connection
                .prepare_cached(
                    "SELECT tokens_revoked_at_ms, context_purged_at_ms FROM handoffs WHERE id = ?1",
                )
                .map_err(unavailable)?
                .query_row(params![id], |row| {
                    Ok(ContextAccess {
                        tokens_revoked_at_ms: row.get(0)?,
                        context_purged_at_ms: row.get(1)?,
                    })
                })
                .optional()
                .map_err(unavailable)?
                .ok_or(StoreError::NotFound)
        })
        .await
    }

    async fn purge_contexts(
        &self,
        ended_before_ms: i64,
        limit: usize,
    ) -> Result<usize, StoreError> {
        self.write(move |tx| {
            let ended: Vec<(String, String)> = {
                let mut statement = tx
                    .prepare_cached(
                        "SELECT tenant, id FROM handoffs WHERE context_purged_at_ms IS NULL \
                         AND state IN ('completed', 'failed', 'cancelled') AND updated_at_ms < ?1 \
                         ORDER BY updated_at_ms LIMIT ?2",
                    )
                    .map_err(unavailable)?;
                let rows = statement
                    .query_map(
                        params![ended_before_ms, i64::try_from(limit).unwrap_or(i64::MAX)],
                        |row| Ok((row.get(0)?, row.get(1)?)),
                    )
                    .map_err(unavailable)?;
                rows.collect::<Result<_, _>>().map_err(unavailable)?
            };
            let now = now_ms();
            for (tenant, id) in &ended {
                tx.prepare_cached(
                    "UPDATE handoffs SET conversation = X'', context = X'', decision = NULL, \
                     wrap_up = NULL, context_purged_at_ms = ?1 WHERE id = ?2",
                )
                .map_err(unavailable)?
                .execute(params![now, id])
                .map_err(unavailable)?;
                tx.prepare_cached("UPDATE handoff_events SET wrap_up = NULL WHERE handoff_id = ?1")
                    .map_err(unavailable)?
                    .execute(params![id])
                    .map_err(unavailable)?;
                insert_audit(
                    tx,
                    &AuditEntry {
                        tenant: tenant.clone(),
                        handoff_id: id.clone(),
                        action: AuditAction::Purged,
                        actor: "retention".into(),
                        credential: String::new(),
                        time_ms: now,
                        detail: "transcript and context deleted".into(),
                    },
                )?;
            }
            Ok(ended.len())
        })
        .await
    }

    async fn create(
        &self,
        handoff: Handoff,
        audit: Option<AuditEntry>,
        lease: Option<NewLease<'_>>,
    ) -> Result<CreateOutcome, StoreError> {
        let outcome = self.write(move |tx| {
            let existing: Option<String> = tx
                .prepare_cached(
                    "SELECT id FROM handoffs WHERE tenant = ?1 AND request_id = ?2").map_err(unavailable)?.query_row(
                    params![handoff.tenant, handoff.request_id],
                    |row| row.get(0))
                .optional()
                .map_err(unavailable)?;
            if let Some(id) = existing {
                return Ok(CreateOutcome {
                    handoff: load(tx, &handoff.tenant, &id)?,
                    created_event: None,
                });
            }
            let plan = serde_json::to_string(&handoff.plan)
                .map_err(|e| StoreError::Corrupt(e.to_string()))?;
            tx.prepare_cached(
                &format!(
                    "INSERT INTO handoffs ({HANDOFF_COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, \
                     ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, NULL, NULL, NULL, NULL, NULL, 1, ?16, NULL)"
                )).map_err(unavailable)?.execute(
                params![
                    handoff.id,
                    handoff.tenant,
                    handoff.request_id,
                    handoff.request_fingerprint,
                    name_of(&HandoffState::INITIAL),
                    handoff.conversation.encode_to_vec(),
                    handoff.context.encode_to_vec(),
                    handoff.requested_target.encode_to_vec(),
                    name_of(&handoff.mode),
                    plan,
                    handoff.customer_message,
                    handoff.customer_message_language,
                    handoff.created_at_ms,
                    handoff.created_at_ms,
                    handoff.deadline_ms,
                    handoff.decision.as_ref().map(Message::encode_to_vec),
                ])
            .map_err(unavailable)?;
            let (stored, event) = created(handoff);
            insert_event(tx, &event, None)?;
            if let Some(audit) = &audit {
                insert_audit(tx, audit)?;
            }
            Ok(CreateOutcome {
                handoff: stored,
                created_event: Some(event),
            })
        })
        .await?;
        if let Some(lease) = lease
            && outcome.created_event.is_some()
        {
            let handoff = &outcome.handoff;
            self.leases().insert(
                handoff.id.clone(),
                Lease::new(&handoff.tenant, lease.owner, lease.ttl),
            );
        }
        Ok(outcome)
    }

    async fn get(&self, tenant: &str, id: &str) -> Result<Handoff, StoreError> {
        let (tenant, id) = (tenant.to_owned(), id.to_owned());
        self.with(move |connection| load(connection, &tenant, &id))
            .await
    }

    async fn find_by_id(&self, id: &str) -> Result<Handoff, StoreError> {
        let id = id.to_owned();
        self.with(move |connection| {
            let tenant: String = connection
                .prepare_cached("SELECT tenant FROM handoffs WHERE id = ?1")
                .map_err(unavailable)?
                .query_row(params![id], |row| row.get(0))
                .optional()
                .map_err(unavailable)?
                .ok_or(StoreError::NotFound)?;
            load(connection, &tenant, &id)
        })
        .await
    }

    async fn list(
        &self,
        tenant: &str,
        states: &[HandoffState],
        limit: usize,
        after_id: Option<&str>,
    ) -> Result<Vec<Handoff>, StoreError> {
        let tenant = tenant.to_owned();
        let states: Vec<String> = states.iter().map(name_of).collect();
        let after_id = after_id.map(str::to_owned);
        self.with(move |connection| {
            // Ids are UUIDv7, so ordering by id is ordering by creation time.
            let mut sql = format!("SELECT {HANDOFF_COLUMNS} FROM handoffs WHERE tenant = ?1");
            let mut values: Vec<rusqlite::types::Value> = vec![tenant.into()];
            if let Some(after_id) = after_id {
                values.push(after_id.into());
                sql.push_str(&format!(" AND id < ?{}", values.len()));
            }
            if !states.is_empty() {
                let mut placeholders = Vec::new();
                for state in states {
                    values.push(state.into());
                    placeholders.push(format!("?{}", values.len()));
                }
                sql.push_str(&format!(" AND state IN ({})", placeholders.join(", ")));
            }
            values.push(i64::try_from(limit).unwrap_or(i64::MAX).into());
            sql.push_str(&format!(" ORDER BY id DESC LIMIT ?{}", values.len()));
            let mut statement = connection.prepare(&sql).map_err(unavailable)?;
            let rows = statement
                .query_map(rusqlite::params_from_iter(values), HandoffRow::read)
                .map_err(unavailable)?;
            rows.map(|row| row.map_err(unavailable)?.into_handoff())
                .collect()
        })
        .await
    }

    async fn append_as(
        &self,
        tenant: &str,
        id: &str,
        event: NewEvent,
        owner: Option<&str>,
        audit: Option<AuditEntry>,
    ) -> Result<(Handoff, EventRecord), StoreError> {
        let (tenant, id) = (tenant.to_owned(), id.to_owned());
        let owner = owner.map(str::to_owned);
        let leases = self.leases.clone();
        self.write_as(event.durability(), move |tx| {
            let mut handoff = load(tx, &tenant, &id)?;
            if let Some(owner) = &owner {
                let leases = leases.lock().unwrap_or_else(|e| e.into_inner());
                if leases.get(&id).is_none_or(|lease| lease.owner != *owner) {
                    return Err(StoreError::LeaseLost);
                }
            }
            let (record, position) = next_record(&handoff, event)?;
            if let (Some(position), Some(attempt)) = (&position, &record.attempt) {
                let seen: bool = tx
                    .prepare_cached(
                        "SELECT EXISTS (SELECT 1 FROM handoff_events WHERE handoff_id = ?1 \
                         AND attempt = ?2 AND connector_run = ?3 AND connector_sequence >= ?4)",
                    )
                    .map_err(unavailable)?
                    .query_row(
                        params![id, attempt.number, position.run_id, position.sequence],
                        |row| row.get(0),
                    )
                    .map_err(unavailable)?;
                if seen {
                    return Err(StoreError::Duplicate);
                }
            }
            insert_event(tx, &record, position.as_ref())?;
            apply(&mut handoff, &record);
            tx.prepare_cached(
                "UPDATE handoffs SET state = ?1, updated_at_ms = ?2, last_sequence = ?3, \
                 current_attempt = ?4, queue_position = ?5, queue_wait_ms = ?6, \
                 failure_reason = ?7, failure_detail = ?8, wrap_up = ?9 \
                 WHERE tenant = ?10 AND id = ?11",
            )
            .map_err(unavailable)?
            .execute(params![
                name_of(&handoff.state),
                handoff.updated_at_ms,
                handoff.last_sequence,
                handoff.current_attempt.as_ref().map(|a| a.number),
                handoff.queue_status.map(|q| q.position),
                wait_ms(&handoff.queue_status),
                handoff.failure.as_ref().map(|f| f.reason as i32),
                handoff.failure.as_ref().map(|f| f.detail.as_str()),
                handoff.wrap_up.as_ref().map(Message::encode_to_vec),
                tenant,
                id,
            ])
            .map_err(unavailable)?;
            if let Some(audit) = &audit {
                insert_audit(tx, audit)?;
            }
            Ok((handoff, record))
        })
        .await
        .inspect(|(updated, _)| {
            if updated.state.is_terminal() {
                self.leases().remove(&updated.id);
            }
        })
    }

    async fn events_after(
        &self,
        tenant: &str,
        id: &str,
        after: u64,
        limit: usize,
    ) -> Result<Vec<EventRecord>, StoreError> {
        let (tenant, id) = (tenant.to_owned(), id.to_owned());
        self.with(move |connection| {
            let handoff = load(connection, &tenant, &id)?;
            let mut statement = connection
                .prepare_cached(&format!(
                    "SELECT {EVENT_COLUMNS} FROM handoff_events WHERE handoff_id = ?1 \
                     AND sequence > ?2 ORDER BY sequence LIMIT ?3"
                ))
                .map_err(unavailable)?;
            let rows = statement
                .query_map(
                    params![id, after, i64::try_from(limit).unwrap_or(i64::MAX)],
                    EventRow::read,
                )
                .map_err(unavailable)?;
            rows.map(|row| row.map_err(unavailable)?.into_record(&handoff.plan))
                .collect()
        })
        .await
    }

    async fn in_flight(&self) -> Result<Vec<Handoff>, StoreError> {
        self.with(|connection| {
            let mut statement = connection
                .prepare_cached(&format!(
                    "SELECT {HANDOFF_COLUMNS} FROM handoffs \
                     WHERE state NOT IN ('completed', 'failed', 'cancelled') ORDER BY id"
                ))
                .map_err(unavailable)?;
            let rows = statement
                .query_map([], HandoffRow::read)
                .map_err(unavailable)?;
            rows.map(|row| row.map_err(unavailable)?.into_handoff())
                .collect()
        })
        .await
    }

    async fn last_connector_position(
        &self,
        id: &str,
        attempt: u32,
    ) -> Result<Option<(String, u64)>, StoreError> {
        let id = id.to_owned();
        self.with(move |connection| {
            connection
                .prepare_cached(
                    "SELECT connector_run, connector_sequence FROM handoff_events \
                     WHERE handoff_id = ?1 AND attempt = ?2 AND connector_sequence IS NOT NULL \
                     ORDER BY sequence DESC LIMIT 1",
                )
                .map_err(unavailable)?
                .query_row(params![id, attempt], |row| Ok((row.get(0)?, row.get(1)?)))
                .optional()
                .map_err(unavailable)
        })
        .await
    }

    async fn ping(&self) -> Result<(), StoreError> {
        // A committed write, as a handoff's would be (without its fsync):
        // `SELECT 1` still answers when the disk is full.
        self.write_as(Durability::Written, |connection| {
            connection
                .execute(
                    "INSERT INTO store_probe (id, written_at_ms) VALUES (1, ?1) \
                     ON CONFLICT (id) DO UPDATE SET written_at_ms = excluded.written_at_ms",
                    [now_ms()],
                )
                .map(drop)
                .map_err(unavailable)
        })
        .await?;
        self.with(|connection| {
            connection
                .query_row("SELECT written_at_ms FROM store_probe", [], |_| Ok(()))
                .map_err(unavailable)
        })
        .await
    }

    async fn renew_lease(
        &self,
        tenant: &str,
        id: &str,
        owner: &str,
        ttl: Duration,
    ) -> Result<bool, StoreError> {
        // A lease exists only for an in-flight handoff, in its tenant.
        let mut leases = self.leases();
        Ok(match leases.get_mut(id) {
            Some(lease) if lease.owner == owner && lease.tenant == tenant => {
                lease.expires = Instant::now() + ttl;
                true
            }
            _ => false,
        })
    }

    async fn release_lease(&self, tenant: &str, id: &str, owner: &str) -> Result<(), StoreError> {
        let mut leases = self.leases();
        if leases
            .get(id)
            .is_some_and(|lease| lease.owner == owner && lease.tenant == tenant)
        {
            leases.remove(id);
        }
        Ok(())
    }

    async fn claim_orphans(
        &self,
        owner: &str,
        ttl: Duration,
        limit: usize,
    ) -> Result<Vec<Handoff>, StoreError> {
        let in_flight = self.in_flight().await?;
        let now = Instant::now();
        let mut leases = self.leases();
        let mut claimed = Vec::new();
        for handoff in in_flight {
            if claimed.len() >= limit {
                break;
            }
            if leases
                .get(&handoff.id)
                .is_some_and(|lease| lease.expires > now)
            {
                continue;
            }
            leases.insert(handoff.id.clone(), Lease::new(&handoff.tenant, owner, ttl));
            claimed.push(handoff);
        }
        Ok(claimed)
    }
}
