//! Dispatch leases of the embedded store: in memory ([`LeaseTable`]), since
//! one process owns the file; the resume positions come from its events.

use std::time::{Duration, Instant};

use async_trait::async_trait;
use rusqlite::params;

use super::{SqliteStore, query_one};
use crate::domain::Handoff;
use crate::store::leases::Claim;
use crate::store::rows::read_connector_position;
use crate::store::{DispatchLeases, HandoffLog, StoreError, sql};

#[async_trait]
impl DispatchLeases for SqliteStore {
    async fn renew_lease(
        &self,
        tenant: &str,
        id: &str,
        owner: &str,
        ttl: Duration,
    ) -> Result<bool, StoreError> {
        Ok(self.leases.renew(tenant, id, owner, ttl, Instant::now()))
    }

    async fn release_lease(&self, tenant: &str, id: &str, owner: &str) -> Result<(), StoreError> {
        self.leases.release(tenant, id, owner);
        Ok(())
    }

    async fn claim_orphans(
        &self,
        owner: &str,
        ttl: Duration,
        limit: usize,
    ) -> Result<Vec<Handoff>, StoreError> {
        let in_flight = self.in_flight().await?;
        let claim = Claim {
            owner,
            ttl,
            limit,
            now: Instant::now(),
        };
        Ok(self
            .leases
            .claim(in_flight, |h| (h.tenant.as_str(), h.id.as_str()), claim))
    }

    async fn last_connector_position(
        &self,
        id: &str,
        attempt: u32,
    ) -> Result<Option<(String, u64)>, StoreError> {
        let id = id.to_owned();
        self.read(move |connection| {
            query_one(
                connection,
                sql::LAST_CONNECTOR_POSITION,
                params![id, attempt],
                |row| read_connector_position(row),
            )
        })
        .await
    }
}
