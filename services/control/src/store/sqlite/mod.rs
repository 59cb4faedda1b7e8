//! The embedded store: SQLite in WAL mode with `synchronous = FULL`, so that
//! an acknowledged write is on disk. Writes go through one writer thread
//! that commits them in groups (`writer`); reads use a second connection
//! on the blocking pool, which WAL lets run while the writer commits and
//! which sees every acknowledged write. One process owns the file, so
//! dispatch leases live in memory. The schema comes from the SQL files of
//! `migrations/sqlite` (`migrations`).
//!
//! One file per role: `handoff_log`, `leases`, `audit`, `retention`; the
//! store's health check is here.

mod audit;
mod chat_log;
mod handoff_log;
mod leases;
mod migrations;
mod outcomes;
mod retention;
mod writer;

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use baton_service_kit::sqlite_file::{self, CONTROL_STORE};
use rusqlite::{Connection, OptionalExtension, Params, Row, params};

pub use migrations::SCHEMA_VERSION;

use super::leases::LeaseTable;
use super::rows::{columns_by, read_handoff};
use super::values::{EventValues, StateValues, now_ms};
use super::{AuditEntry, StoreError, StoreHealth, sql};
use crate::domain::{Durability, Handoff};
use writer::Writer;

/// The store's file in `store.data_dir`.
pub const FILE_NAME: &str = "handoffs.db";

/// The embedded SQLite store.
#[derive(Clone)]
pub struct SqliteStore {
    /// The connection for reads.
    reader: Arc<Mutex<Connection>>,
    writer: Writer,
    leases: Arc<LeaseTable>,
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
    /// marker existed (its tables, no marker) gets it stamped; one of an
    /// older schema is migrated.
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
            sqlite_file::create(&path, CONTROL_STORE, migrations::migrate)
                .map_err(|e| refused(&e))?;
        }
        let open = || -> Result<Connection, StoreError> {
            let connection = sqlite_file::open_existing(&path).map_err(|e| refused(&e))?;
            connection
                .busy_timeout(Duration::from_secs(5))
                .map_err(unavailable)?;
            // Every statement is prepared once per connection (parsing
            // was an eighth of the CPU time of a CreateHandoff burst).
            connection.set_prepared_statement_cache_capacity(64);
            Ok(connection)
        };
        let configure = |connection: &Connection| -> Result<(), StoreError> {
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
        if usize::try_from(version).map_or(true, |v| v > SCHEMA_VERSION) {
            return Err(refused(&format_args!(
                "schema version {version}, newer than this baton-control's {SCHEMA_VERSION}"
            )));
        }
        configure(&write_connection)?;
        migrations::migrate(&mut write_connection).map_err(unavailable)?;
        let reader = open()?;
        configure(&reader)?;
        Ok(Self {
            reader: Arc::new(Mutex::new(reader)),
            writer: Writer::start(write_connection)?,
            leases: Arc::default(),
        })
    }

    /// Runs `work` in the next group commit, answering once it is on disk.
    async fn write<T: Send + 'static>(
        &self,
        work: impl FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        self.writer.write(Durability::Synced, work).await
    }

    /// Runs `work` on the read connection, on the blocking pool.
    async fn read<T: Send + 'static>(
        &self,
        work: impl FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        let reader = self.reader.clone();
        tokio::task::spawn_blocking(move || {
            let connection = reader
                .lock()
                .map_err(|_| StoreError::Unavailable("store lock poisoned".into()))?;
            work(&connection)
        })
        .await
        .map_err(|e| StoreError::Unavailable(format!("store task failed: {e}")))?
    }
}

#[async_trait]
impl StoreHealth for SqliteStore {
    async fn ping(&self) -> Result<(), StoreError> {
        // A committed write, as a handoff's would be (without its fsync):
        // `SELECT 1` still answers when the disk is full.
        self.writer
            .write(Durability::Written, |connection| {
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
        self.read(|connection| {
            connection
                .query_row("SELECT written_at_ms FROM store_probe", [], |_| Ok(()))
                .map_err(unavailable)
        })
        .await
    }
}

fn unavailable(error: rusqlite::Error) -> StoreError {
    StoreError::Unavailable(error.to_string())
}

columns_by!(Row<'_>, get);

/// Every row `statement` returns, read by `read`.
fn query_all<T>(
    connection: &Connection,
    statement: &str,
    params: impl Params,
    mut read: impl FnMut(&Row<'_>) -> Result<T, StoreError>,
) -> Result<Vec<T>, StoreError> {
    let mut statement = connection.prepare_cached(statement).map_err(unavailable)?;
    let mut rows = statement.query(params).map_err(unavailable)?;
    let mut all = Vec::new();
    while let Some(row) = rows.next().map_err(unavailable)? {
        all.push(read(row)?);
    }
    Ok(all)
}

/// The first row `statement` returns, if any, read by `read`.
fn query_one<T>(
    connection: &Connection,
    statement: &str,
    params: impl Params,
    read: impl FnOnce(&Row<'_>) -> Result<T, StoreError>,
) -> Result<Option<T>, StoreError> {
    let mut statement = connection.prepare_cached(statement).map_err(unavailable)?;
    let mut rows = statement.query(params).map_err(unavailable)?;
    rows.next().map_err(unavailable)?.map(read).transpose()
}

/// Runs a write statement; how many rows it changed.
fn execute(
    connection: &Connection,
    statement: &str,
    params: impl Params,
) -> Result<usize, StoreError> {
    connection
        .prepare_cached(statement)
        .map_err(unavailable)?
        .execute(params)
        .map_err(unavailable)
}

fn load(connection: &Connection, tenant: &str, id: &str) -> Result<Handoff, StoreError> {
    query_one(connection, sql::HANDOFF, params![tenant, id], |row| {
        read_handoff(row)
    })?
    .ok_or(StoreError::NotFound)
}

fn insert_event(connection: &Connection, event: &EventValues) -> Result<(), StoreError> {
    execute(
        connection,
        sql::INSERT_EVENT,
        params![
            event.tenant,
            event.handoff_id,
            event.sequence,
            event.kind,
            event.state,
            event.time_ms,
            event.attempt,
            event.queue_position,
            event.queue_wait_ms,
            event.failure_reason,
            event.failure_detail,
            event.detail,
            event.connector_sequence,
            event.wrap_up,
            event.connector_run,
            event.context_version,
        ],
    )
    .map(drop)
}

fn update_state(
    connection: &Connection,
    tenant: &str,
    id: &str,
    state: &StateValues,
) -> Result<(), StoreError> {
    execute(
        connection,
        sql::UPDATE_STATE,
        params![
            state.state,
            state.updated_at_ms,
            state.last_sequence,
            state.current_attempt,
            state.queue_position,
            state.queue_wait_ms,
            state.failure_reason,
            state.failure_detail,
            state.wrap_up,
            tenant,
            id,
            state.outcome,
            state.callback,
        ],
    )
    .map(drop)
}

fn insert_audit(connection: &Connection, entry: &AuditEntry) -> Result<(), StoreError> {
    execute(
        connection,
        sql::INSERT_AUDIT,
        params![
            entry.tenant,
            entry.handoff_id,
            entry.action.name(),
            entry.actor,
            entry.credential,
            entry.time_ms,
            entry.detail,
            entry.connector,
        ],
    )
    .map(drop)
}

/// Whether a row of `statement` exists (`SELECT EXISTS …`).
fn exists(
    connection: &Connection,
    statement: &str,
    params: impl Params,
) -> Result<bool, StoreError> {
    connection
        .prepare_cached(statement)
        .map_err(unavailable)?
        .query_row(params, |row| row.get(0))
        .optional()
        .map_err(unavailable)
        .map(|found| found.unwrap_or(false))
}
