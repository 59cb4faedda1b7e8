//! Outcomes in the embedded store.

use async_trait::async_trait;
use rusqlite::params;

use super::{SqliteStore, execute, query_all};
use crate::domain::Handoff;
use crate::domain::outcome::RecordedOutcome;
use crate::store::outcomes::{OutcomeLog, OutcomeWindow};
use crate::store::rows::read_outcome_row;
use crate::store::values::{outcome, to_i64};
use crate::store::{StoreError, sql};

#[async_trait]
impl OutcomeLog for SqliteStore {
    async fn record_outcome(
        &self,
        tenant: &str,
        id: &str,
        recorded: &RecordedOutcome,
    ) -> Result<bool, StoreError> {
        let (tenant, id, encoded) = (tenant.to_owned(), id.to_owned(), outcome(recorded));
        self.write(move |tx| Ok(execute(tx, sql::SET_OUTCOME, params![encoded, tenant, id])? == 1))
            .await
    }

    async fn outcome_page(
        &self,
        window: &OutcomeWindow,
        limit: usize,
    ) -> Result<Vec<(Handoff, Option<i64>)>, StoreError> {
        let window = window.clone();
        self.read(move |connection| {
            let (after_ms, after_id) = window.after.unzip();
            query_all(
                connection,
                sql::OUTCOME_FACTS,
                params![
                    window.tenant,
                    window.since_ms,
                    window.until_ms,
                    after_ms,
                    after_id,
                    to_i64(limit)
                ],
                |row| read_outcome_row(row),
            )
        })
        .await
    }
}
