//! The handoff log in PostgreSQL: a create that races another with the
//! same request waits on the unique key and inserts nothing; an append
//! holds the handoff's row lock from reading its state to the commit.

use async_trait::async_trait;
use tokio::sync::mpsc;

use super::{
    NOW_MS, PgStore, finish, insert_audit, insert_event, load, notices, own, shared, unavailable,
    update_state,
};
use crate::domain::{EventRecord, Handoff, HandoffState, NewEvent};
use crate::store::appending::{Appending, apply, created};
use crate::store::context_update;
use crate::store::leases::ttl_ms;
use crate::store::rows::{read_event, read_handoff};
use crate::store::values::{EventValues, NewHandoffValues, StateValues, state_names, to_i64};
use crate::store::{
    AuditEntry, ContextUpdate, ContextUpdateOutcome, CreateOutcome, HandoffLog, NewLease, Notice,
    StoreError, sql,
};

#[async_trait]
impl HandoffLog for PgStore {
    async fn create(
        &self,
        handoff: Handoff,
        audit: Option<AuditEntry>,
        lease: Option<NewLease<'_>>,
    ) -> Result<CreateOutcome, StoreError> {
        let v = NewHandoffValues::of(&handoff)?;
        let mut tx = self.pool.begin().await.map_err(unavailable)?;
        // A concurrent create with the same key waits here for the other
        // transaction and then inserts nothing.
        let inserted = sqlx::query(shared(sql::INSERT_HANDOFF))
            .bind(v.id)
            .bind(v.tenant)
            .bind(v.request_id)
            .bind(v.request_fingerprint)
            .bind(v.state)
            .bind(v.conversation)
            .bind(v.context)
            .bind(v.requested_target)
            .bind(v.mode)
            .bind(v.plan)
            .bind(v.customer_message)
            .bind(v.customer_message_language)
            .bind(v.created_at_ms)
            .bind(v.updated_at_ms)
            .bind(v.deadline_ms)
            .bind(v.decision)
            .bind(v.callback)
            .execute(&mut *tx)
            .await
            .map_err(unavailable)?
            .rows_affected();
        if inserted == 0 {
            let row = sqlx::query(shared(sql::HANDOFF_BY_REQUEST))
                .bind(&handoff.tenant)
                .bind(&handoff.request_id)
                .fetch_optional(&mut *tx)
                .await
                .map_err(unavailable)?
                .ok_or(StoreError::NotFound)?;
            let existing = read_handoff(&row)?;
            tx.commit().await.map_err(unavailable)?;
            return Ok(CreateOutcome {
                handoff: existing,
                created_event: None,
            });
        }
        let (stored, event) = created(handoff);
        insert_event(&mut tx, EventValues::of(&stored.tenant, &event, None)).await?;
        if let Some(audit) = &audit {
            insert_audit(&mut tx, audit).await?;
        }
        if let Some(lease) = lease {
            sqlx::query(own(format!(
                "UPDATE handoffs SET lease_owner = $3, lease_expires_ms = {NOW_MS} + $4 \
                 WHERE tenant = $1 AND id = $2"
            )))
            .bind(&stored.tenant)
            .bind(&stored.id)
            .bind(lease.owner)
            .bind(ttl_ms(lease.ttl))
            .execute(&mut *tx)
            .await
            .map_err(unavailable)?;
        }
        notices::notify(&mut tx, &stored.tenant, &stored.id, 1).await?;
        tx.commit().await.map_err(unavailable)?;
        Ok(CreateOutcome {
            handoff: stored,
            created_event: Some(event),
        })
    }

    async fn get(&self, tenant: &str, id: &str) -> Result<Handoff, StoreError> {
        load(&mut *self.connection().await?, tenant, id, false).await
    }

    async fn find_by_id(&self, id: &str) -> Result<Handoff, StoreError> {
        let row = sqlx::query(shared(sql::HANDOFF_BY_ID))
            .bind(id)
            .fetch_optional(&self.pool)
            .await
            .map_err(unavailable)?
            .ok_or(StoreError::NotFound)?;
        read_handoff(&row)
    }

    async fn list(
        &self,
        tenant: &str,
        states: &[HandoffState],
        limit: usize,
        after_id: Option<&str>,
    ) -> Result<Vec<Handoff>, StoreError> {
        // Ids are UUIDv7, so ordering by id is ordering by creation time.
        let rows = sqlx::query(own(format!(
            "SELECT {} FROM handoffs WHERE tenant = $1 \
             AND ($2::text IS NULL OR id < $2) \
             AND (cardinality($3::text[]) = 0 OR state = ANY($3)) \
             ORDER BY id DESC LIMIT $4",
            sql::handoff_columns!()
        )))
        .bind(tenant)
        .bind(after_id)
        .bind(state_names(states))
        .bind(to_i64(limit))
        .fetch_all(&self.pool)
        .await
        .map_err(unavailable)?;
        rows.iter().map(read_handoff).collect()
    }

    // The lease is checked under the row lock (`load(…, true)`), so a
    // replica that lost its lease cannot record after the one that took over.
    async fn append_as(
        &self,
        tenant: &str,
        id: &str,
        event: NewEvent,
        owner: Option<&str>,
        audit: Option<AuditEntry>,
    ) -> Result<(Handoff, EventRecord), StoreError> {
        let mut tx = self.pool.begin().await.map_err(unavailable)?;
        let appended: Result<_, StoreError> = async {
            let mut handoff = load(&mut tx, tenant, id, true).await?;
            if let Some(owner) = owner {
                let holder: Option<String> = sqlx::query_scalar(
                    "SELECT lease_owner FROM handoffs WHERE tenant = $1 AND id = $2",
                )
                .bind(tenant)
                .bind(id)
                .fetch_one(&mut *tx)
                .await
                .map_err(unavailable)?;
                if holder.as_deref() != Some(owner) {
                    return Err(StoreError::LeaseLost);
                }
            }
            let appending = Appending::next(&handoff, event)?;
            if let Some(check) = appending.connector_check(tenant) {
                let seen: bool = sqlx::query_scalar(shared(sql::CONNECTOR_EVENT_SEEN))
                    .bind(check.tenant)
                    .bind(check.handoff_id)
                    .bind(check.attempt)
                    .bind(check.run)
                    .bind(check.sequence)
                    .fetch_one(&mut *tx)
                    .await
                    .map_err(unavailable)?;
                if seen {
                    return Err(StoreError::Duplicate);
                }
            }
            insert_event(&mut tx, appending.values(tenant)).await?;
            apply(&mut handoff, &appending.record);
            update_state(&mut tx, tenant, id, StateValues::of(&handoff)?).await?;
            if handoff.state.is_terminal() {
                // A handoff that has ended is nobody's to dispatch.
                sqlx::query(
                    "UPDATE handoffs SET lease_owner = NULL, lease_expires_ms = NULL \
                 WHERE tenant = $1 AND id = $2",
                )
                .bind(tenant)
                .bind(id)
                .execute(&mut *tx)
                .await
                .map_err(unavailable)?;
            }
            if let Some(audit) = &audit {
                insert_audit(&mut tx, audit).await?;
            }
            notices::notify(&mut tx, tenant, id, appending.record.sequence).await?;
            Ok((handoff, appending.record))
        }
        .await;
        finish(tx, appended).await
    }

    // The handoff's row lock is held from reading its version to the
    // commit, so two updates against one version cannot both be made.
    async fn update_context(
        &self,
        tenant: &str,
        id: &str,
        update: ContextUpdate,
    ) -> Result<ContextUpdateOutcome, StoreError> {
        let mut tx = self.pool.begin().await.map_err(unavailable)?;
        let updated: Result<_, StoreError> = async {
            let mut handoff = load(&mut tx, tenant, id, true).await?;
            let seen: Option<(String, i64)> = sqlx::query_as(shared(context_update::SEEN))
                .bind(tenant)
                .bind(id)
                .bind(&update.request_id)
                .fetch_optional(&mut *tx)
                .await
                .map_err(unavailable)?;
            if let Some(seen) = seen {
                return context_update::retried(handoff, seen, &update);
            }
            let (request_id, fingerprint) = (update.request_id.clone(), update.fingerprint.clone());
            let record = context_update::applied(&mut handoff, update)?;
            insert_event(&mut tx, EventValues::of(tenant, &record, None)).await?;
            update_state(&mut tx, tenant, id, StateValues::of(&handoff)?).await?;
            sqlx::query(shared(context_update::UPDATE_CONTEXT))
                .bind(handoff.context.as_bytes())
                .bind(to_i64(handoff.context_version))
                .bind(tenant)
                .bind(id)
                .execute(&mut *tx)
                .await
                .map_err(unavailable)?;
            sqlx::query(shared(context_update::INSERT))
                .bind(tenant)
                .bind(id)
                .bind(request_id)
                .bind(fingerprint)
                .bind(to_i64(handoff.context_version))
                .execute(&mut *tx)
                .await
                .map_err(unavailable)?;
            notices::notify(&mut tx, tenant, id, record.sequence).await?;
            Ok(ContextUpdateOutcome::Applied {
                handoff,
                event: Box::new(record),
            })
        }
        .await;
        finish(tx, updated).await
    }

    async fn events_after(
        &self,
        tenant: &str,
        id: &str,
        after: u64,
        limit: usize,
    ) -> Result<Vec<EventRecord>, StoreError> {
        let mut connection = self.connection().await?;
        let handoff = load(&mut connection, tenant, id, false).await?;
        let rows = sqlx::query(shared(sql::EVENTS_AFTER))
            .bind(tenant)
            .bind(id)
            .bind(to_i64(after))
            .bind(to_i64(limit))
            .fetch_all(&mut *connection)
            .await
            .map_err(unavailable)?;
        rows.iter()
            .map(|row| read_event(row, &handoff.plan))
            .collect()
    }

    async fn in_flight(&self) -> Result<Vec<Handoff>, StoreError> {
        let rows = sqlx::query(shared(sql::IN_FLIGHT))
            .fetch_all(&self.pool)
            .await
            .map_err(unavailable)?;
        rows.iter().map(read_handoff).collect()
    }

    async fn listen(&self) -> Result<Option<mpsc::Receiver<Notice>>, StoreError> {
        notices::listen(&self.pool).await.map(Some)
    }
}
