//! The audit log of the shared store.

use async_trait::async_trait;

use super::{PgStore, insert_audit, shared, unavailable};
use crate::store::rows::{read_audit, read_context_access};
use crate::store::values::to_i64;
use crate::store::{
    AuditEntry, AuditFilter, AuditLog, AuditRecord, ContextAccess, StoreError, sql,
};

#[async_trait]
impl AuditLog for PgStore {
    async fn record_audit(&self, entry: AuditEntry) -> Result<(), StoreError> {
        let mut connection = self.connection().await?;
        insert_audit(&mut connection, &entry).await
    }

    async fn record_view(&self, entry: AuditEntry, since_ms: i64) -> Result<(), StoreError> {
        let mut connection = self.connection().await?;
        // One statement at a time: two replicas counting the same read at
        // once may each append a record, which is still bounded.
        let counted = sqlx::query(shared(sql::COUNT_VIEW))
            .bind(entry.time_ms)
            .bind(&entry.tenant)
            .bind(&entry.handoff_id)
            .bind(entry.action.name())
            .bind(&entry.actor)
            .bind(&entry.credential)
            .bind(since_ms)
            .execute(&mut *connection)
            .await
            .map_err(unavailable)?
            .rows_affected();
        if counted == 0 {
            insert_audit(&mut connection, &entry).await?;
        }
        Ok(())
    }

    async fn audit_records(
        &self,
        tenant: &str,
        filter: &AuditFilter,
        limit: usize,
        before: Option<i64>,
    ) -> Result<Vec<AuditRecord>, StoreError> {
        let rows = sqlx::query(shared(sql::AUDIT_LOG))
            .bind(tenant)
            .bind(filter.handoff_id.as_deref())
            .bind(filter.connector.as_deref())
            .bind(filter.action.map(|a| a.name()))
            .bind(before)
            .bind(to_i64(limit))
            .fetch_all(&self.pool)
            .await
            .map_err(unavailable)?;
        rows.iter().map(read_audit).collect()
    }

    async fn revoke_context_tokens(
        &self,
        tenant: &str,
        id: &str,
        audit: AuditEntry,
    ) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await.map_err(unavailable)?;
        let updated = sqlx::query(shared(sql::REVOKE_TOKENS))
            .bind(audit.time_ms)
            .bind(tenant)
            .bind(id)
            .execute(&mut *tx)
            .await
            .map_err(unavailable)?;
        if updated.rows_affected() == 0 {
            return Err(StoreError::NotFound);
        }
        insert_audit(&mut tx, &audit).await?;
        tx.commit().await.map_err(unavailable)
    }

    async fn context_access(&self, id: &str) -> Result<ContextAccess, StoreError> {
        let row = sqlx::query(shared(sql::CONTEXT_ACCESS))
            .bind(id)
            .fetch_optional(&self.pool)
            .await
            .map_err(unavailable)?
            .ok_or(StoreError::NotFound)?;
        read_context_access(&row)
    }
}
