//! The audit log of the embedded store.

use async_trait::async_trait;
use rusqlite::params;

use super::{SqliteStore, execute, insert_audit, query_all, query_one};
use crate::store::rows::{read_audit, read_context_access};
use crate::store::values::to_i64;
use crate::store::{
    AuditEntry, AuditFilter, AuditLog, AuditRecord, ContextAccess, StoreError, sql,
};

#[async_trait]
impl AuditLog for SqliteStore {
    async fn record_audit(&self, entry: AuditEntry) -> Result<(), StoreError> {
        self.write(move |tx| insert_audit(tx, &entry)).await
    }

    async fn record_view(&self, entry: AuditEntry, since_ms: i64) -> Result<(), StoreError> {
        self.write(move |tx| {
            let counted = execute(
                tx,
                sql::COUNT_VIEW,
                params![
                    entry.time_ms,
                    entry.tenant,
                    entry.handoff_id,
                    entry.action.name(),
                    entry.actor,
                    entry.credential,
                    since_ms,
                ],
            )?;
            if counted == 0 {
                insert_audit(tx, &entry)?;
            }
            Ok(())
        })
        .await
    }

    async fn audit_records(
        &self,
        tenant: &str,
        filter: &AuditFilter,
        limit: usize,
        before: Option<i64>,
    ) -> Result<Vec<AuditRecord>, StoreError> {
        let (tenant, filter) = (tenant.to_owned(), filter.clone());
        self.read(move |connection| {
            query_all(
                connection,
                sql::AUDIT_LOG,
                params![
                    tenant,
                    filter.handoff_id,
                    filter.connector,
                    filter.action.map(|a| a.name()),
                    before,
                    to_i64(limit)
                ],
                |row| read_audit(row),
            )
        })
        .await
    }

    async fn revoke_context_tokens(
        &self,
        tenant: &str,
        id: &str,
        audit: AuditEntry,
    ) -> Result<(), StoreError> {
        let (tenant, id) = (tenant.to_owned(), id.to_owned());
        self.write(move |tx| {
            let updated = execute(tx, sql::REVOKE_TOKENS, params![audit.time_ms, tenant, id])?;
            if updated == 0 {
                return Err(StoreError::NotFound);
            }
            insert_audit(tx, &audit)
        })
        .await
    }

    async fn context_access(&self, id: &str) -> Result<ContextAccess, StoreError> {
        let id = id.to_owned();
        self.read(move |connection| {
            query_one(connection, sql::CONTEXT_ACCESS, params![id], |row| {
                read_context_access(row)
            })?
            .ok_or(StoreError::NotFound)
        })
        .await
    }
}
