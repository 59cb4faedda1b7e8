//! Dispatch leases of the shared store: two columns of the handoff's row
//! (`lease_owner`, `lease_expires_ms`), timed by the database's clock.

use std::time::Duration;

use async_trait::async_trait;

use super::{NOW_MS, PgStore, own, shared, unavailable};
use crate::domain::Handoff;
use crate::store::leases::ttl_ms;
use crate::store::rows::{read_connector_position, read_handoff};
use crate::store::values::to_i64;
use crate::store::{DispatchLeases, StoreError, sql};

#[async_trait]
impl DispatchLeases for PgStore {
    async fn renew_lease(
        &self,
        tenant: &str,
        id: &str,
        owner: &str,
        ttl: Duration,
    ) -> Result<bool, StoreError> {
        let renewed = sqlx::query(own(format!(
            "UPDATE handoffs SET lease_expires_ms = {NOW_MS} + $4 \
             WHERE tenant = $1 AND id = $2 AND lease_owner = $3"
        )))
        .bind(tenant)
        .bind(id)
        .bind(owner)
        .bind(ttl_ms(ttl))
        .execute(&self.pool)
        .await
        .map_err(unavailable)?
        .rows_affected();
        Ok(renewed == 1)
    }

    async fn release_lease(&self, tenant: &str, id: &str, owner: &str) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE handoffs SET lease_owner = NULL, lease_expires_ms = NULL \
             WHERE tenant = $1 AND id = $2 AND lease_owner = $3",
        )
        .bind(tenant)
        .bind(id)
        .bind(owner)
        .execute(&self.pool)
        .await
        .map_err(unavailable)?;
        Ok(())
    }

    async fn claim_orphans(
        &self,
        owner: &str,
        ttl: Duration,
        limit: usize,
    ) -> Result<Vec<Handoff>, StoreError> {
        // SKIP LOCKED: rows another replica is claiming (or appending to)
        // right now are left to it.
        let rows = sqlx::query(own(format!(
            "UPDATE handoffs SET lease_owner = $1, lease_expires_ms = {NOW_MS} + $2 \
             WHERE id IN (SELECT id FROM handoffs WHERE {} \
                 AND (lease_expires_ms IS NULL OR lease_expires_ms < {NOW_MS}) \
                 ORDER BY id LIMIT $3 FOR UPDATE SKIP LOCKED) \
             RETURNING {}",
            sql::live!(),
            sql::handoff_columns!()
        )))
        .bind(owner)
        .bind(ttl_ms(ttl))
        .bind(to_i64(limit))
        .fetch_all(&self.pool)
        .await
        .map_err(unavailable)?;
        let mut claimed = rows
            .iter()
            .map(read_handoff)
            .collect::<Result<Vec<_>, _>>()?;
        claimed.sort_by(|a, b| a.id.cmp(&b.id));
        Ok(claimed)
    }

    async fn last_connector_position(
        &self,
        id: &str,
        attempt: u32,
    ) -> Result<Option<(String, u64)>, StoreError> {
        sqlx::query(shared(sql::LAST_CONNECTOR_POSITION))
            .bind(id)
            .bind(i64::from(attempt))
            .fetch_optional(&self.pool)
            .await
            .map_err(unavailable)?
            .map(|row| read_connector_position(&row))
            .transpose()
    }
}
