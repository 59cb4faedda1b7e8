//! Durable storage of handoffs and their event logs, behind a trait so that
//! the embedded SQLite store and a shared PostgreSQL store are
//! interchangeable. Every method takes the tenant: no query can reach
//! another tenant's rows.

mod sqlite;

use async_trait::async_trait;

pub use sqlite::SqliteStore;

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
}

#[async_trait]
pub trait HandoffStore: Send + Sync + 'static {
    /// Stores a new handoff and its CREATED event in one durable commit, or
    /// returns the existing handoff with the same tenant and request id.
    async fn create(&self, handoff: Handoff) -> Result<CreateOutcome, StoreError>;

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
    /// handoff's log in one durable commit.
    async fn append(
        &self,
        tenant: &str,
        id: &str,
        event: NewEvent,
    ) -> Result<(Handoff, EventRecord), StoreError>;

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
}
