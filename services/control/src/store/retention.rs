//! Retention: a handoff's conversation and context are deleted some time
//! after it ended, while its record, its events and the audit log stay.

use async_trait::async_trait;

use super::{AuditAction, AuditEntry, StoreError};

#[async_trait]
pub trait Retention: Send + Sync + 'static {
    /// Deletes the conversation, context, escalation decision and wrap-up
    /// of up to `limit` handoffs that ended before `ended_before_ms` and
    /// are not purged yet, keeping the handoff record and its events, and
    /// records a `purged` audit entry for each, in one commit. The
    /// outcome (the humans' judgements) stays. Returns how
    /// many were purged.
    async fn purge_contexts(&self, ended_before_ms: i64, limit: usize)
    -> Result<usize, StoreError>;
}

/// The audit entry each backend records for a handoff it purged at `now_ms`.
pub(super) fn purged(tenant: String, handoff_id: String, now_ms: i64) -> AuditEntry {
    AuditEntry {
        tenant,
        handoff_id,
        action: AuditAction::Purged,
        actor: "retention".into(),
        credential: String::new(),
        time_ms: now_ms,
        detail: "transcript and context deleted".into(),
        connector: String::new(),
    }
}
