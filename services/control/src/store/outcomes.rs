//! Outcomes: the judgements recorded on an ended handoff
//! (`RecordOutcome`), and the window of handoffs `GetOutcomeMetrics`
//! counts. The judgements of a human's wrap-up are stored by the handoff
//! log as the wrap-up arrives; both stay after the retention purge.

use async_trait::async_trait;

use super::StoreError;
use crate::domain::Handoff;
use crate::domain::outcome::RecordedOutcome;

/// Which handoffs a page of the outcome window holds: `tenant`'s created
/// in `[since_ms, until_ms)`, after `after` (the `created_at_ms` and id of
/// the previous page's last), oldest first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutcomeWindow {
    pub tenant: String,
    pub since_ms: i64,
    pub until_ms: i64,
    pub after: Option<(i64, String)>,
}

#[async_trait]
pub trait OutcomeLog: Send + Sync + 'static {
    /// Stores `outcome` on the handoff unless it has one already or has
    /// not ended after a human had the customer. True when stored; false
    /// leaves the decision to a read of the handoff.
    async fn record_outcome(
        &self,
        tenant: &str,
        id: &str,
        outcome: &RecordedOutcome,
    ) -> Result<bool, StoreError>;

    /// Up to `limit` handoffs of `window`, each with the time of its first
    /// CONNECTED.
    async fn outcome_page(
        &self,
        window: &OutcomeWindow,
        limit: usize,
    ) -> Result<Vec<(Handoff, Option<i64>)>, StoreError>;
}
