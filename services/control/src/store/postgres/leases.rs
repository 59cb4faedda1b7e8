//! Dispatch leases of the shared store: two columns of the handoff's row
//! (`lease_owner`, `lease_expires_ms`), timed by the database's clock.
//!
//! Every handoff a replica dispatches renews its lease every third of the
//! lease's time to live: thousands of handoffs held in queues would be
//! thousands of commits a second. Renewals are gathered for a moment and
//! made in one statement instead ([`Renewals`]).

use std::collections::HashMap;
use std::time::Duration;

use async_trait::async_trait;
use sqlx::postgres::PgPool;
use tokio::sync::{mpsc, oneshot};

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
        self.renewals.renew(tenant, id, owner, ttl).await
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

/// How long the first renewal of a batch waits for others to join it. Far
/// below a lease's time to live (at least 300 ms, renewed every third).
const RENEWAL_GATHER: Duration = Duration::from_millis(20);

/// The most renewals in one statement.
const MAX_RENEWALS: usize = 1000;

/// The most renewals waiting.
const RENEWAL_QUEUE: usize = 8192;

/// One handoff's lease renewal and who waits for its outcome.
struct Renewal {
    tenant: String,
    id: String,
    owner: String,
    ttl_ms: i64,
    reply: oneshot::Sender<Result<bool, StoreError>>,
}

/// The queue of the task that renews leases in batches; the task ends
/// when every clone is gone.
#[derive(Clone)]
pub(super) struct Renewals {
    queue: mpsc::Sender<Renewal>,
}

impl Renewals {
    pub(super) fn start(pool: PgPool) -> Self {
        let (queue, waiting) = mpsc::channel(RENEWAL_QUEUE);
        tokio::spawn(renew_batches(pool, waiting));
        Self { queue }
    }

    /// Extends `owner`'s lease on the handoff; false when `owner` does not
    /// hold it.
    async fn renew(
        &self,
        tenant: &str,
        id: &str,
        owner: &str,
        ttl: Duration,
    ) -> Result<bool, StoreError> {
        let (reply, answer) = oneshot::channel();
        let renewal = Renewal {
            tenant: tenant.to_owned(),
            id: id.to_owned(),
            owner: owner.to_owned(),
            ttl_ms: ttl_ms(ttl),
            reply,
        };
        let stopped = || StoreError::Unavailable("lease renewals stopped".into());
        self.queue.try_send(renewal).map_err(|error| match error {
            mpsc::error::TrySendError::Full(_) => {
                StoreError::Unavailable("too many lease renewals waiting".into())
            }
            mpsc::error::TrySendError::Closed(_) => stopped(),
        })?;
        answer.await.map_err(|_| stopped())?
    }
}

/// Gathers renewals for [`RENEWAL_GATHER`] and renews each batch.
async fn renew_batches(pool: PgPool, mut waiting: mpsc::Receiver<Renewal>) {
    while let Some(first) = waiting.recv().await {
        let mut batch = vec![first];
        let until = tokio::time::Instant::now() + RENEWAL_GATHER;
        while batch.len() < MAX_RENEWALS {
            match tokio::time::timeout_at(until, waiting.recv()).await {
                Ok(Some(renewal)) => batch.push(renewal),
                Ok(None) | Err(_) => break,
            }
        }
        renew_batch(&pool, batch).await;
    }
}

/// Renews a batch in one statement that skips the rows another
/// transaction has locked (a group commit appending to the handoff), so
/// that it never waits while holding the locks of the others; those few
/// are renewed one by one, each waiting for its row alone.
async fn renew_batch(pool: &PgPool, batch: Vec<Renewal>) {
    let column = |field: fn(&Renewal) -> String| batch.iter().map(field).collect::<Vec<_>>();
    let outcome: Result<Vec<(String, String, bool)>, sqlx::Error> = sqlx::query_as(own(format!(
        "WITH wanted AS ( \
             SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::bigint[]) \
                 AS w(tenant, id, owner, ttl)), \
         free AS ( \
             SELECT h.tenant, h.id FROM handoffs h \
                 JOIN wanted w ON h.tenant = w.tenant AND h.id = w.id \
                 FOR UPDATE OF h SKIP LOCKED), \
         renewed AS ( \
             UPDATE handoffs h SET lease_expires_ms = {NOW_MS} + w.ttl \
                 FROM wanted w, free f \
                 WHERE h.tenant = f.tenant AND h.id = f.id \
                     AND w.tenant = f.tenant AND w.id = f.id AND h.lease_owner = w.owner \
                 RETURNING h.tenant, h.id) \
         SELECT f.tenant, f.id, \
             EXISTS (SELECT 1 FROM renewed r WHERE r.tenant = f.tenant AND r.id = f.id) \
         FROM free f"
    )))
    .bind(column(|r| r.tenant.clone()))
    .bind(column(|r| r.id.clone()))
    .bind(column(|r| r.owner.clone()))
    .bind(batch.iter().map(|r| r.ttl_ms).collect::<Vec<_>>())
    .fetch_all(pool)
    .await;
    let renewed: HashMap<(String, String), bool> = match outcome {
        Ok(rows) => rows
            .into_iter()
            .map(|(tenant, id, renewed)| ((tenant, id), renewed))
            .collect(),
        Err(error) => {
            let error = error.to_string();
            for renewal in batch {
                let _ = renewal
                    .reply
                    .send(Err(StoreError::Unavailable(error.clone())));
            }
            return;
        }
    };
    let mut locked = Vec::new();
    for renewal in batch {
        match renewed.get(&(renewal.tenant.clone(), renewal.id.clone())) {
            Some(renewed) => {
                let _ = renewal.reply.send(Ok(*renewed));
            }
            // Locked by another transaction, or gone.
            None => locked.push(renewal),
        }
    }
    for renewal in locked {
        let outcome = renew_one(pool, &renewal).await;
        let _ = renewal.reply.send(outcome);
    }
}

async fn renew_one(pool: &PgPool, renewal: &Renewal) -> Result<bool, StoreError> {
    let renewed = sqlx::query(own(format!(
        "UPDATE handoffs SET lease_expires_ms = {NOW_MS} + $4 \
         WHERE tenant = $1 AND id = $2 AND lease_owner = $3"
    )))
    .bind(&renewal.tenant)
    .bind(&renewal.id)
    .bind(&renewal.owner)
    .bind(renewal.ttl_ms)
    .execute(pool)
    .await
    .map_err(unavailable)?
    .rows_affected();
    Ok(renewed == 1)
}
