//! Outcomes in the shared store.

use async_trait::async_trait;

use super::{PgStore, shared, unavailable};
use crate::domain::Handoff;
use crate::domain::outcome::RecordedOutcome;
use crate::store::outcomes::{OutcomeLog, OutcomeWindow};
use crate::store::rows::read_outcome_row;
use crate::store::values::{outcome, to_i64};
use crate::store::{StoreError, sql};

#[async_trait]
impl OutcomeLog for PgStore {
    async fn record_outcome(
        &self,
        tenant: &str,
        id: &str,
        recorded: &RecordedOutcome,
    ) -> Result<bool, StoreError> {
        // One statement: its condition is the check, so two replicas
        // recording at once store one outcome.
        let stored = sqlx::query(shared(sql::SET_OUTCOME))
            .bind(outcome(recorded))
            .bind(tenant)
            .bind(id)
            .execute(&self.pool)
            .await
            .map_err(unavailable)?
            .rows_affected();
        Ok(stored == 1)
    }

    async fn outcome_page(
        &self,
        window: &OutcomeWindow,
        limit: usize,
    ) -> Result<Vec<(Handoff, Option<i64>)>, StoreError> {
        let (after_ms, after_id) = window.after.clone().unzip();
        let rows = sqlx::query(shared(sql::OUTCOME_FACTS))
            .bind(&window.tenant)
            .bind(window.since_ms)
            .bind(window.until_ms)
            .bind(after_ms)
            .bind(after_id)
            .bind(to_i64(limit))
            .fetch_all(&self.pool)
            .await
            .map_err(unavailable)?;
        rows.iter().map(read_outcome_row).collect()
    }
}
