//! The audit log: who did what to a handoff, when, and whether its context
//! may still be opened (tokens revoked, context purged), since a context
//! token's use is what the log mostly records.

use async_trait::async_trait;

use super::StoreError;

#[async_trait]
pub trait AuditLog: Send + Sync + 'static {
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
    ) -> Result<Vec<AuditRecord>, StoreError> {
        let filter = AuditFilter {
            handoff_id: handoff_id.map(str::to_owned),
            ..AuditFilter::default()
        };
        self.audit_records(tenant, &filter, limit, before).await
    }

    /// `tenant`'s audit records that `filter` lets through, newest first,
    /// with a sequence below `before` when given, at most `limit`.
    async fn audit_records(
        &self,
        tenant: &str,
        filter: &AuditFilter,
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
}

/// What an audit record says was done.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuditAction {
    Created,
    /// The context was read with a context token.
    Viewed,
    /// A sensitive entity was revealed.
    Revealed,
    Cancelled,
    TokensRevoked,
    /// The retention policy deleted the transcript and context.
    Purged,
    /// The context was sent to a connector, in the forms its data policy
    /// says (the entry's `connector` and `detail`).
    Disclosed,
}

impl AuditAction {
    pub const ALL: [AuditAction; 7] = [
        AuditAction::Created,
        AuditAction::Viewed,
        AuditAction::Revealed,
        AuditAction::Cancelled,
        AuditAction::TokensRevoked,
        AuditAction::Purged,
        AuditAction::Disclosed,
    ];

    /// The name stored in the database.
    pub fn name(self) -> &'static str {
        match self {
            AuditAction::Created => "created",
            AuditAction::Viewed => "viewed",
            AuditAction::Revealed => "revealed",
            AuditAction::Cancelled => "cancelled",
            AuditAction::TokensRevoked => "tokens_revoked",
            AuditAction::Purged => "purged",
            AuditAction::Disclosed => "disclosed",
        }
    }

    pub fn from_name(name: &str) -> Option<AuditAction> {
        AuditAction::ALL.into_iter().find(|a| a.name() == name)
    }
}

/// One thing done to a handoff, by whom, when.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditEntry {
    pub tenant: String,
    pub handoff_id: String,
    pub action: AuditAction,
    /// Who: a principal's subject, `context-token`, or `retention`.
    pub actor: String,
    /// Which credential, without its secret (`key:<id>`, `jwt:<kid>`), or
    /// which page a token opened.
    pub credential: String,
    pub time_ms: i64,
    /// E.g. the entity revealed; never a sensitive value.
    pub detail: String,
    /// The connector the context went to (`Disclosed`); empty otherwise.
    pub connector: String,
}

/// Which audit records a listing returns; `None` lets any through.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuditFilter {
    pub handoff_id: Option<String>,
    pub connector: Option<String>,
    pub action: Option<AuditAction>,
}

/// A stored [`AuditEntry`] and its place in the log (increasing).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditRecord {
    pub sequence: i64,
    pub entry: AuditEntry,
    /// How many times it was done: repeated context reads are counted on
    /// one record ([`AuditLog::record_view`]). 1 for everything else.
    pub count: i64,
    /// When it was last done (`entry.time_ms` when `count` is 1).
    pub last_ms: i64,
}

/// Why a handoff's context tokens may no longer open anything, beyond the
/// token's own expiry and the handoff's state.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ContextAccess {
    /// When its tokens were revoked explicitly.
    pub tokens_revoked_at_ms: Option<i64>,
    /// When its transcript and context were purged.
    pub context_purged_at_ms: Option<i64>,
}

impl ContextAccess {
    pub fn closed(&self) -> bool {
        self.tokens_revoked_at_ms.is_some() || self.context_purged_at_ms.is_some()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn action_names_round_trip() {
        for action in AuditAction::ALL {
            assert_eq!(AuditAction::from_name(action.name()), Some(action));
        }
        assert_eq!(AuditAction::from_name("deleted"), None);
    }
}
