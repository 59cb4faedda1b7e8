//! The handoff log: each handoff and the ordered log of its events, every
//! event applied through the state machine before it is stored.

use std::time::Duration;

use async_trait::async_trait;

use super::{AuditEntry, StoreError};
use crate::domain::{EncodedContext, EventRecord, Handoff, HandoffState, NewEvent};

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

/// A store's announcement that an event was recorded, possibly by another
/// replica.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventNotice {
    pub tenant: String,
    pub handoff_id: String,
    /// The sequence of the recorded event.
    pub sequence: u64,
}

/// What a store's announcement feed ([`HandoffLog::listen`]) carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Notice {
    Recorded(EventNotice),
    /// Announcements may have been lost (the feed reconnected or fell
    /// behind): whoever follows the feed must re-read what it watches.
    Missed,
}

/// A change of a handoff's context (UpdateHandoff), made against the
/// version the caller read.
#[derive(Debug, Clone)]
pub struct ContextUpdate {
    /// The caller's idempotency key, unique per handoff.
    pub request_id: String,
    /// SHA-256 of the update request, to tell a retry from a reused key.
    pub fingerprint: String,
    /// The version the caller read; the update is made only while the
    /// handoff's context is still at it.
    pub expected_version: u64,
    /// The whole context after the update, built from the context at
    /// `expected_version`; `None` when the caller's version was already
    /// stale when it was read (the store then answers with the conflict,
    /// or with the earlier outcome of a retry).
    pub context: Option<EncodedContext>,
}

/// What `update_context` did.
#[derive(Debug, Clone)]
pub enum ContextUpdateOutcome {
    /// The context is at a new version; `event` is its CONTEXT_UPDATED.
    /// The event is boxed: it is by far the largest field and the outcome
    /// travels by value.
    Applied {
        handoff: Handoff,
        event: Box<EventRecord>,
    },
    /// The request id was used before on this handoff: nothing changed.
    /// `version` is the one that update made; `same_request` says whether
    /// it was the same update (a retry) or another (a reused key).
    Retried {
        handoff: Handoff,
        version: u64,
        same_request: bool,
    },
}

#[async_trait]
pub trait HandoffLog: Send + Sync + 'static {
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
    /// An event that ends the handoff clears its lease in the same commit.
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

    /// Replaces a handoff's context by `update.context` and appends its
    /// CONTEXT_UPDATED event (carrying the new version), in one durable
    /// commit, when the context is still at `update.expected_version`
    /// (`ContextVersionConflict` otherwise) and the state machine allows it
    /// (`IllegalTransition` once a human has the customer or it ended). A
    /// request id already used on the handoff changes nothing and says so.
    async fn update_context(
        &self,
        tenant: &str,
        id: &str,
        update: ContextUpdate,
    ) -> Result<ContextUpdateOutcome, StoreError>;

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

    /// Announcements of events recorded by every replica sharing this
    /// store, or `None` when this process is the store's only writer (every
    /// event is then published in-process).
    async fn listen(&self) -> Result<Option<tokio::sync::mpsc::Receiver<Notice>>, StoreError> {
        Ok(None)
    }
}
