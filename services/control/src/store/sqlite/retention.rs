//! Retention in the embedded store: one group-commit write per purge, so
//! nothing else writes between choosing the handoffs and purging them.

use async_trait::async_trait;
use rusqlite::params;

use super::{SqliteStore, execute, insert_audit, query_all};
use crate::store::retention::purged;
use crate::store::rows::Columns;
use crate::store::values::{now_ms, to_i64};
use crate::store::{Retention, StoreError, sql};

#[async_trait]
impl Retention for SqliteStore {
    async fn purge_contexts(
        &self,
        ended_before_ms: i64,
        limit: usize,
    ) -> Result<usize, StoreError> {
        self.write(move |tx| {
            let ended = query_all(
                tx,
                sql::TO_PURGE,
                params![ended_before_ms, to_i64(limit)],
                |row| Ok((row.text(0)?, row.text(1)?)),
            )?;
            let now = now_ms();
            for (tenant, id) in &ended {
                execute(tx, sql::PURGE_HANDOFF, params![now, Vec::<u8>::new(), id])?;
                execute(tx, sql::PURGE_EVENTS, params![id])?;
                insert_audit(tx, &purged(tenant.clone(), id.clone(), now))?;
            }
            Ok(ended.len())
        })
        .await
    }
}
