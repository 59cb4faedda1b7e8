//! Durable storage of handoffs and their event logs, behind a trait so that
//! the embedded SQLite store and a shared PostgreSQL store are
//! interchangeable. Every method takes the tenant: no query can reach
//! another tenant's rows.
//!
//! Several control-service replicas may share one store (PostgreSQL). Each
//! in-flight handoff is then dispatched by exactly one replica at a time,
//! the holder of its *dispatch lease* (an owner and an expiry, renewed
//! while the replica works, cleared when the handoff ends, taken over by
//! another replica once it expires), and every recorded event is announced
//! to every replica (`listen`) so that `WatchHandoff` on any replica sees it.

mod audit;
mod health;
mod postgres;
mod rows;
mod sqlite;

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use async_trait::async_trait;

pub use audit::{AuditAction, AuditEntry, AuditRecord, ContextAccess};
pub use health::report_store_health;
pub use postgres::PgStore;
pub use sqlite::{
    FILE_NAME as SQLITE_FILE_NAME, SCHEMA_VERSION as SQLITE_SCHEMA_VERSION, SqliteStore,
};

use crate::config::{StoreBackend, StoreConfig};

use crate::domain::{EventRecord, Handoff, HandoffState, IllegalTransition, NewEvent};

/// What `create` did.
#[derive(Debug, Clone)]
pub struct CreateOutcome {
    /// The stored handoff: the new one, or the one that already had the
    /// same tenant and request id.
    pub handoff: Handoff,
    /// The CREATED event when this call stored the handoff; `None` when it
    /// already existed.
    pub created_event: Option<EventRecord>,
}

/// The dispatch lease a new handoff is created with: its creator
/// dispatches it from the create's commit on, with no second write.
#[derive(Debug, Clone, Copy)]
pub struct NewLease<'a> {
    pub owner: &'a str,
    pub ttl: Duration,
}

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
}

/// A store's announcement that an event was recorded, possibly by another
/// replica.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventNotice {
    pub tenant: String,
    pub handoff_id: String,
    /// The sequence of the recorded event.
    pub sequence: u64,
}

/// What a store's announcement feed (`HandoffStore::listen`) carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Notice {
    Recorded(EventNotice),
    /// Announcements may have been lost (the feed reconnected or fell
    /// behind): whoever follows the feed must re-read what it watches.
    Missed,
}

#[async_trait]
pub trait HandoffStore: Send + Sync + 'static {
    /// Stores a new handoff, its CREATED event, `audit` and `lease` (when
    /// given) in one durable commit, or returns the existing handoff with
    /// the same tenant and request id (and records nothing, leases
    /// nothing).
    async fn create(
        &self,
        handoff: Handoff,
        audit: Option<AuditEntry>,
        lease: Option<NewLease<'_>>,
    ) -> Result<CreateOutcome, StoreError>;

    async fn get(&self, tenant: &str, id: &str) -> Result<Handoff, StoreError>;

    /// A handoff by id alone, whatever its tenant. Only for callers that
    /// have already proved access to this very handoff (a verified context
    /// token), never for API requests.
    async fn find_by_id(&self, id: &str) -> Result<Handoff, StoreError>;

    /// Handoffs newest first, after `after_id` (exclusive) when given.
    async fn list(
        &self,
        tenant: &str,
        states: &[HandoffState],
        limit: usize,
        after_id: Option<&str>,
    ) -> Result<Vec<Handoff>, StoreError>;

    /// Applies `event` through the state machine and appends it to the
    /// handoff's log, with `audit` when given, in one durable commit. With
    /// an `owner` (the dispatcher of that replica), it is recorded only
    /// while `owner` holds the handoff's dispatch lease (`LeaseLost`
    /// otherwise), so that a replica that lost its lease (paused past its
    /// expiry, taken over) cannot record over the replica that took over.
    async fn append_as(
        &self,
        tenant: &str,
        id: &str,
        event: NewEvent,
        owner: Option<&str>,
        audit: Option<AuditEntry>,
    ) -> Result<(Handoff, EventRecord), StoreError>;

    /// `append_as` with no lease to check and nothing to audit.
    async fn append(
        &self,
        tenant: &str,
        id: &str,
        event: NewEvent,
    ) -> Result<(Handoff, EventRecord), StoreError> {
        self.append_as(tenant, id, event, None, None).await
    }

    /// `append_as` fenced by `owner`'s dispatch lease.
    async fn append_leased(
        &self,
        tenant: &str,
        id: &str,
        event: NewEvent,
        owner: &str,
    ) -> Result<(Handoff, EventRecord), StoreError> {
        self.append_as(tenant, id, event, Some(owner), None).await
    }

    /// Events with a sequence greater than `after`, in order, at most `limit`.
    async fn events_after(
        &self,
        tenant: &str,
        id: &str,
        after: u64,
        limit: usize,
    ) -> Result<Vec<EventRecord>, StoreError>;

    /// Every handoff, of every tenant, that has not reached a terminal state.
    async fn in_flight(&self) -> Result<Vec<Handoff>, StoreError>;

    /// The run id and sequence of the last connector event recorded for an
    /// attempt, if any.
    async fn last_connector_position(
        &self,
        id: &str,
        attempt: u32,
    ) -> Result<Option<(String, u64)>, StoreError>;

    /// Checks that the store answers (readiness).
    async fn ping(&self) -> Result<(), StoreError>;

    /// Extends `owner`'s lease to `ttl` from now. Returns false when
    /// `owner` no longer holds it (taken over, or the handoff ended): the
    /// owner must stop dispatching the handoff.
    async fn renew_lease(
        &self,
        tenant: &str,
        id: &str,
        owner: &str,
        ttl: Duration,
    ) -> Result<bool, StoreError>;

    /// Gives up `owner`'s lease, so that another replica may take the
    /// handoff at once. Nothing happens when `owner` does not hold it.
    /// `append` clears the lease itself when a handoff reaches a terminal
    /// state.
    async fn release_lease(&self, tenant: &str, id: &str, owner: &str) -> Result<(), StoreError>;

    /// Leases to `owner`, until `ttl` from now, up to `limit` in-flight
    /// handoffs whose lease is free or expired (orphans: never leased, or
    /// left by a replica that stopped or died), and returns them as they
    /// are now. Two replicas claiming at once never get the same handoff.
    async fn claim_orphans(
        &self,
        owner: &str,
        ttl: Duration,
        limit: usize,
    ) -> Result<Vec<Handoff>, StoreError>;

    /// Appends `entry` to the audit log, durably.
    async fn record_audit(&self, entry: AuditEntry) -> Result<(), StoreError>;

    /// Records a context read, durably: counted on the newest record of
    /// the same tenant, handoff, action, actor and credential whose first
    /// read was at or after `since_ms` (its count incremented, its last
    /// time set to `entry.time_ms`), else appended as a new record. Bounds
    /// the rows a token holder who reads again and again can add.
    async fn record_view(&self, entry: AuditEntry, since_ms: i64) -> Result<(), StoreError>;

    /// `tenant`'s audit records, newest first, only of `handoff_id` when
    /// given, with a sequence below `before` when given, at most `limit`.
    async fn audit_log(
        &self,
        tenant: &str,
        handoff_id: Option<&str>,
        limit: usize,
        before: Option<i64>,
    ) -> Result<Vec<AuditRecord>, StoreError>;

    /// Revokes every context token of `tenant`'s handoff `id` (`NotFound`
    /// for another tenant's) and records `audit`, in one commit. Revoking
    /// again keeps the first time.
    async fn revoke_context_tokens(
        &self,
        tenant: &str,
        id: &str,
        audit: AuditEntry,
    ) -> Result<(), StoreError>;

    /// Whether handoff `id`'s tokens were revoked or its context purged.
    /// Only for callers holding a verified token of this very handoff.
    async fn context_access(&self, id: &str) -> Result<ContextAccess, StoreError>;

    /// Deletes the conversation, context, escalation decision and wrap-up
    /// of up to `limit` handoffs that ended before `ended_before_ms` and
    /// are not purged yet, keeping the handoff record and its events, and
    /// records a `purged` audit entry for each, in one commit. Returns how
    /// many were purged.
    async fn purge_contexts(&self, ended_before_ms: i64, limit: usize)
    -> Result<usize, StoreError>;

    /// Announcements of events recorded by every replica sharing this
    /// store, or `None` when this process is the store's only writer (every
    /// event is then published in-process).
    async fn listen(&self) -> Result<Option<tokio::sync::mpsc::Receiver<Notice>>, StoreError> {
        Ok(None)
    }
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
