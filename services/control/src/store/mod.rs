//! Durable storage of handoffs, split by role: the handoff log
//! ([`HandoffLog`]), dispatch leases ([`DispatchLeases`]), the audit log and
//! context-token access ([`AuditLog`]), retention ([`Retention`]), outcomes
//! ([`OutcomeLog`]) and the store's own health ([`StoreHealth`]). [`HandoffStore`] is all of them at
//! once, what the service holds; a part of the service that needs one role
//! can ask for that role alone.
//!
//! Two backends implement every role: the embedded SQLite store (one
//! replica) and a shared PostgreSQL store (several replicas). Each keeps
//! one file per role under its directory and only what differs between the
//! two; reading rows (`rows`), the values writes bind (`values`), the
//! bookkeeping of appending to a log (`appending`) and the statements both
//! run alike (`sql`) are shared. Every method takes the tenant: no query
//! can reach another tenant's rows.
//!
//! Several control-service replicas may share one store (PostgreSQL). Each
//! in-flight handoff is then dispatched by exactly one replica at a time,
//! the holder of its *dispatch lease* (an owner and an expiry, renewed
//! while the replica works, cleared when the handoff ends, taken over by
//! another replica once it expires), and every recorded event is announced
//! to every replica ([`HandoffLog::listen`]) so that `WatchHandoff` on any
//! replica sees it.
//!
//! A new backend goes in a directory of its own beside `sqlite/` and
//! `postgres/`, implements every role trait, and joins the contract
//! suites of `tests/store_contract.rs`.

mod appending;
mod audit;
mod chat_log;
mod context_update;
mod handoff_log;
mod health;
mod leases;
mod outcomes;
mod postgres;
mod retention;
mod rows;
mod sql;
mod sqlite;
mod values;

use std::sync::Arc;

use anyhow::Context;

pub use audit::{AuditAction, AuditEntry, AuditFilter, AuditLog, AuditRecord, ContextAccess};
pub use chat_log::ChatLog;
pub use handoff_log::{
    ContextUpdate, ContextUpdateOutcome, CreateOutcome, EventNotice, HandoffLog, NewLease, Notice,
};
pub use health::{StoreHealth, report_store_health};
pub use leases::DispatchLeases;
pub use outcomes::{OutcomeLog, OutcomeWindow};
pub use postgres::PgStore;
pub use retention::Retention;
pub use sqlite::{
    FILE_NAME as SQLITE_FILE_NAME, SCHEMA_VERSION as SQLITE_SCHEMA_VERSION, SqliteStore,
};

use crate::config::{StoreBackend, StoreConfig};
use crate::domain::IllegalTransition;

/// Why a store operation failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("handoff not found")]
    NotFound,
    #[error(transparent)]
    IllegalTransition(#[from] IllegalTransition),
    /// The connector event was already recorded (a replayed stream).
    #[error("event already recorded")]
    Duplicate,
    #[error("store unavailable: {0}")]
    Unavailable(String),
    #[error("stored data is corrupt: {0}")]
    Corrupt(String),
    /// The store's file was refused at open (empty, damaged, of another
    /// kind): the message names it and what is wrong.
    #[error("{0}")]
    Refused(String),
    /// `append_leased` by a replica that no longer holds the handoff's
    /// dispatch lease: another replica dispatches it now.
    #[error("the dispatch lease is held by another replica")]
    LeaseLost,
    /// `update_context` against a version of the context that is no longer
    /// the handoff's: `current` is.
    #[error("the context is at version {current}")]
    ContextVersionConflict { current: u64 },
}

/// Every role of a store: what the control service opens and shares
/// between its parts. Implemented for anything that implements the roles.
pub trait HandoffStore:
    HandoffLog + DispatchLeases + AuditLog + Retention + StoreHealth + ChatLog + OutcomeLog
{
}

impl<T> HandoffStore for T where
    T: HandoffLog
        + DispatchLeases
        + AuditLog
        + Retention
        + StoreHealth
        + ChatLog
        + OutcomeLog
        + ?Sized
{
}

/// Opens the store `config` chooses. Every error names its key.
pub async fn open(config: &StoreConfig) -> anyhow::Result<Arc<dyn HandoffStore>> {
    Ok(match config.backend {
        StoreBackend::Sqlite => {
            Arc::new(SqliteStore::open(&config.data_dir).with_context(|| {
                format!("store.data_dir: cannot open {}", config.data_dir.display())
            })?)
        }
        StoreBackend::Postgres => {
            let url = config.postgres_url()?;
            Arc::new(
                PgStore::connect(&url, config.max_connections, config.connect_timeout)
                    .await
                    .context("store.url: cannot open the PostgreSQL store")?,
            )
        }
    })
}
