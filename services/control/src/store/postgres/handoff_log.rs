//! The handoff log in PostgreSQL: a create that races another with the
//! same request waits on the unique key and inserts nothing; an append
//! holds the handoff's row lock from reading its state to the commit.
//! Writes run in the writer's group commits (`writer`), each given the
//! writer's connection inside its own savepoint.

use async_trait::async_trait;
use sqlx::{PgConnection, Row};
use tokio::sync::mpsc;

use super::{
    NOW_MS, PgStore, insert_audit, insert_event, load, notices, own, shared, unavailable,
    update_state,
};
use crate::domain::{EventRecord, Handoff, HandoffState, NewEvent};
use crate::store::appending::{Appending, apply, created};
use crate::store::context_update;
use crate::store::leases::ttl_ms;
use crate::store::rows::{read_event, read_handoff};
use crate::store::sql::numbered_for_postgres;
use crate::store::values::{EventValues, NewHandoffValues, StateValues, state_names, to_i64};
use crate::store::{
    AuditEntry, ContextUpdate, ContextUpdateOutcome, CreateOutcome, EventNotice, HandoffLog,
    NewLease, Notice, StoreError, sql,
};

#[async_trait]
impl HandoffLog for PgStore {
    async fn create(
        &self,
        handoff: Handoff,
        audit: Option<AuditEntry>,
        lease: Option<NewLease<'_>>,
    ) -> Result<CreateOutcome, StoreError> {
        let lease = lease.map(|lease| (lease.owner.to_owned(), ttl_ms(lease.ttl)));
        let handoff_id = handoff.id.clone();
        self.writer
            .write(&handoff_id, move |mut connection| async move {
                let created = create(&mut connection, handoff, audit, lease).await;
                (connection, created)
            })
            .await
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

    // The lease is checked under the row lock, so a replica that lost its
    // lease cannot record after the one that took over.
    async fn append_as(
        &self,
        tenant: &str,
        id: &str,
        event: NewEvent,
        owner: Option<&str>,
        audit: Option<AuditEntry>,
    ) -> Result<(Handoff, EventRecord), StoreError> {
        let handoff_id = id;
        let (tenant, id, owner) = (tenant.to_owned(), id.to_owned(), owner.map(str::to_owned));
        self.writer
            .write(handoff_id, move |mut connection| async move {
                let appending = Append {
                    tenant: &tenant,
                    id: &id,
                    owner: owner.as_deref(),
                };
                let appended = appending.run(&mut connection, event, audit).await;
                (connection, appended)
            })
            .await
    }

    // The handoff's row lock is held from reading its version to the
    // commit, so two updates against one version cannot both be made.
    async fn update_context(
        &self,
        tenant: &str,
        id: &str,
        update: ContextUpdate,
    ) -> Result<ContextUpdateOutcome, StoreError> {
        let handoff_id = id;
        let (tenant, id) = (tenant.to_owned(), id.to_owned());
        self.writer
            .write(handoff_id, move |mut connection| async move {
                let updated = update_context(&mut connection, &tenant, &id, update).await;
                (connection, updated)
            })
            .await
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

fn notice(tenant: &str, id: &str, sequence: u64) -> Option<EventNotice> {
    Some(EventNotice {
        tenant: tenant.to_owned(),
        handoff_id: id.to_owned(),
        sequence,
    })
}

/// Stores a new handoff, its CREATED event, its audit entry and its
/// creator's lease (owner, ttl in ms), in the writer's transaction.
async fn create(
    connection: &mut PgConnection,
    handoff: Handoff,
    audit: Option<AuditEntry>,
    lease: Option<(String, i64)>,
) -> Result<(CreateOutcome, Option<EventNotice>), StoreError> {
    let v = NewHandoffValues::of(&handoff)?;
    // A concurrent create with the same key waits here for the other
    // transaction and then inserts nothing. The creator's lease goes in
    // the same statement.
    let statement = match &lease {
        Some(_) => own(insert_leased()),
        None => shared(sql::INSERT_HANDOFF),
    };
    let mut insert = sqlx::query(statement)
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
        .bind(v.callback);
    if let Some((owner, lease_ms)) = lease {
        insert = insert.bind(owner).bind(lease_ms);
    }
    let inserted = insert
        .execute(&mut *connection)
        .await
        .map_err(unavailable)?
        .rows_affected();
    if inserted == 0 {
        let row = sqlx::query(shared(sql::HANDOFF_BY_REQUEST))
            .bind(&handoff.tenant)
            .bind(&handoff.request_id)
            .fetch_optional(&mut *connection)
            .await
            .map_err(unavailable)?
            .ok_or(StoreError::NotFound)?;
        let existing = CreateOutcome {
            handoff: read_handoff(&row)?,
            created_event: None,
        };
        return Ok((existing, None));
    }
    let (stored, event) = created(handoff);
    insert_event(connection, EventValues::of(&stored.tenant, &event, None)).await?;
    if let Some(audit) = &audit {
        insert_audit(connection, audit).await?;
    }
    let announced = notice(&stored.tenant, &stored.id, event.sequence);
    Ok((
        CreateOutcome {
            handoff: stored,
            created_event: Some(event),
        },
        announced,
    ))
}

/// The shared insert of a new handoff, with its creator's dispatch lease
/// as two more values (`$18` the owner, `$19` the time to live in ms).
fn insert_leased() -> String {
    numbered_for_postgres(sql::INSERT_HANDOFF)
        .replacen(") VALUES (", ", lease_owner, lease_expires_ms) VALUES (", 1)
        .replacen(
            ") ON CONFLICT",
            &format!(", $18, {NOW_MS} + $19) ON CONFLICT"),
            1,
        )
}

/// An append to `tenant`'s handoff `id`, by the holder of its dispatch
/// lease when `owner` is set.
struct Append<'a> {
    tenant: &'a str,
    id: &'a str,
    owner: Option<&'a str>,
}

impl Append<'_> {
    async fn run(
        &self,
        connection: &mut PgConnection,
        event: NewEvent,
        audit: Option<AuditEntry>,
    ) -> Result<((Handoff, EventRecord), Option<EventNotice>), StoreError> {
        let (tenant, id) = (self.tenant, self.id);
        // The handoff and its lease's holder, its row locked until the
        // group commits.
        let row = sqlx::query(own(format!(
            "SELECT {}, lease_owner FROM handoffs WHERE tenant = $1 AND id = $2 FOR UPDATE",
            sql::handoff_columns!()
        )))
        .bind(tenant)
        .bind(id)
        .fetch_optional(&mut *connection)
        .await
        .map_err(unavailable)?
        .ok_or(StoreError::NotFound)?;
        let mut handoff = read_handoff(&row)?;
        if let Some(owner) = self.owner {
            let holder: Option<String> = row.try_get("lease_owner").map_err(unavailable)?;
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
                .fetch_one(&mut *connection)
                .await
                .map_err(unavailable)?;
            if seen {
                return Err(StoreError::Duplicate);
            }
        }
        insert_event(connection, appending.values(tenant)).await?;
        apply(&mut handoff, &appending.record);
        update_state(connection, tenant, id, StateValues::of(&handoff)?).await?;
        if handoff.state.is_terminal() {
            // A handoff that has ended is nobody's to dispatch.
            sqlx::query(
                "UPDATE handoffs SET lease_owner = NULL, lease_expires_ms = NULL \
                 WHERE tenant = $1 AND id = $2",
            )
            .bind(tenant)
            .bind(id)
            .execute(&mut *connection)
            .await
            .map_err(unavailable)?;
        }
        if let Some(audit) = &audit {
            insert_audit(connection, audit).await?;
        }
        let announced = notice(tenant, id, appending.record.sequence);
        Ok(((handoff, appending.record), announced))
    }
}

async fn update_context(
    connection: &mut PgConnection,
    tenant: &str,
    id: &str,
    update: ContextUpdate,
) -> Result<(ContextUpdateOutcome, Option<EventNotice>), StoreError> {
    let mut handoff = load(connection, tenant, id, true).await?;
    let seen: Option<(String, i64)> = sqlx::query_as(shared(context_update::SEEN))
        .bind(tenant)
        .bind(id)
        .bind(&update.request_id)
        .fetch_optional(&mut *connection)
        .await
        .map_err(unavailable)?;
    if let Some(seen) = seen {
        return context_update::retried(handoff, seen, &update).map(|outcome| (outcome, None));
    }
    let (request_id, fingerprint) = (update.request_id.clone(), update.fingerprint.clone());
    let record = context_update::applied(&mut handoff, update)?;
    insert_event(connection, EventValues::of(tenant, &record, None)).await?;
    update_state(connection, tenant, id, StateValues::of(&handoff)?).await?;
    sqlx::query(shared(context_update::UPDATE_CONTEXT))
        .bind(handoff.context.as_bytes())
        .bind(to_i64(handoff.context_version))
        .bind(tenant)
        .bind(id)
        .execute(&mut *connection)
        .await
        .map_err(unavailable)?;
    sqlx::query(shared(context_update::INSERT))
        .bind(tenant)
        .bind(id)
        .bind(request_id)
        .bind(fingerprint)
        .bind(to_i64(handoff.context_version))
        .execute(&mut *connection)
        .await
        .map_err(unavailable)?;
    let announced = notice(tenant, id, record.sequence);
    Ok((
        ContextUpdateOutcome::Applied {
            handoff,
            event: Box::new(record),
        },
        announced,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_leased_insert_adds_the_lease_to_the_shared_insert() {
        let statement = insert_leased();
        assert!(
            statement.contains(", lease_owner, lease_expires_ms) VALUES ("),
            "{statement}"
        );
        assert!(statement.contains(", $18, "), "{statement}");
        assert!(statement.contains(" + $19) ON CONFLICT"), "{statement}");
    }
}
