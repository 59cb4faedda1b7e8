//! Retention in the shared store: replicas purging at once take different
//! handoffs (`SKIP LOCKED`), each purge one transaction.

use async_trait::async_trait;

use super::{PgStore, insert_audit, shared, unavailable};
use crate::store::retention::purged;
use crate::store::rows::Columns;
use crate::store::values::{now_ms, to_i64};
use crate::store::{Retention, StoreError, sql};

#[async_trait]
impl Retention for PgStore {
    async fn purge_contexts(
        &self,
        ended_before_ms: i64,
        limit: usize,
    ) -> Result<usize, StoreError> {
        let mut tx = self.pool.begin().await.map_err(unavailable)?;
        let ended = sqlx::query(shared(&format!("{} FOR UPDATE SKIP LOCKED", sql::TO_PURGE)))
            .bind(ended_before_ms)
            .bind(to_i64(limit))
            .fetch_all(&mut *tx)
            .await
            .map_err(unavailable)?;
        let now = now_ms();
        for row in &ended {
            let (tenant, id) = (row.text(0)?, row.text(1)?);
            sqlx::query(shared(sql::PURGE_HANDOFF))
                .bind(now)
                .bind(Vec::<u8>::new())
                .bind(&id)
                .execute(&mut *tx)
                .await
                .map_err(unavailable)?;
            sqlx::query(shared(sql::PURGE_EVENTS))
                .bind(&id)
                .execute(&mut *tx)
                .await
                .map_err(unavailable)?;
            insert_audit(&mut tx, &purged(tenant, id, now)).await?;
        }
        tx.commit().await.map_err(unavailable)?;
        Ok(ended.len())
    }
}
