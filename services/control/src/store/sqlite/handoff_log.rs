//! The handoff log in SQLite. Every write runs in the writer thread's
//! group commit, so writes are serialised: `create` needs no lock to see
//! a concurrent create of the same request, nor `append` one to see the
//! latest state.

use std::time::Instant;

use async_trait::async_trait;
use rusqlite::params;

use super::{
    SqliteStore, execute, exists, insert_audit, insert_event, load, query_all, query_one,
    update_state,
};
use crate::domain::{EventRecord, Handoff, HandoffState, NewEvent};
use crate::store::appending::{Appending, apply, created};
use crate::store::context_update;
use crate::store::rows::{Columns, read_event, read_handoff};
use crate::store::values::{EventValues, NewHandoffValues, StateValues, state_names, to_i64};
use crate::store::{
    AuditEntry, ContextUpdate, ContextUpdateOutcome, CreateOutcome, HandoffLog, NewLease,
    StoreError, sql,
};

#[async_trait]
impl HandoffLog for SqliteStore {
    async fn create(
        &self,
        handoff: Handoff,
        audit: Option<AuditEntry>,
        lease: Option<NewLease<'_>>,
    ) -> Result<CreateOutcome, StoreError> {
        let values = NewHandoffValues::of(&handoff)?;
        let outcome = self
            .write(move |tx| {
                let v = &values;
                let inserted = execute(
                    tx,
                    sql::INSERT_HANDOFF,
                    params![
                        v.id,
                        v.tenant,
                        v.request_id,
                        v.request_fingerprint,
                        v.state,
                        v.conversation,
                        v.context,
                        v.requested_target,
                        v.mode,
                        v.plan,
                        v.customer_message,
                        v.customer_message_language,
                        v.created_at_ms,
                        v.updated_at_ms,
                        v.deadline_ms,
                        v.decision,
                        v.callback,
                    ],
                )?;
                if inserted == 0 {
                    let existing = query_one(
                        tx,
                        sql::HANDOFF_BY_REQUEST,
                        params![handoff.tenant, handoff.request_id],
                        |row| read_handoff(row),
                    )?
                    .ok_or(StoreError::NotFound)?;
                    return Ok(CreateOutcome {
                        handoff: existing,
                        created_event: None,
                    });
                }
                let (stored, event) = created(handoff);
                insert_event(tx, &EventValues::of(&stored.tenant, &event, None))?;
                if let Some(audit) = &audit {
                    insert_audit(tx, audit)?;
                }
                Ok(CreateOutcome {
                    handoff: stored,
                    created_event: Some(event),
                })
            })
            .await?;
        if let Some(lease) = lease
            && outcome.created_event.is_some()
        {
            let handoff = &outcome.handoff;
            self.leases.grant(
                &handoff.tenant,
                &handoff.id,
                lease.owner,
                lease.ttl,
                Instant::now(),
            );
        }
        Ok(outcome)
    }

    async fn get(&self, tenant: &str, id: &str) -> Result<Handoff, StoreError> {
        let (tenant, id) = (tenant.to_owned(), id.to_owned());
        self.read(move |connection| load(connection, &tenant, &id))
            .await
    }

    async fn find_by_id(&self, id: &str) -> Result<Handoff, StoreError> {
        let id = id.to_owned();
        self.read(move |connection| {
            query_one(connection, sql::HANDOFF_BY_ID, params![id], |row| {
                read_handoff(row)
            })?
            .ok_or(StoreError::NotFound)
        })
        .await
    }

    async fn list(
        &self,
        tenant: &str,
        states: &[HandoffState],
        limit: usize,
        after_id: Option<&str>,
    ) -> Result<Vec<Handoff>, StoreError> {
        let tenant = tenant.to_owned();
        let states = state_names(states);
        let after_id = after_id.map(str::to_owned);
        self.read(move |connection| {
            // Ids are UUIDv7, so ordering by id is ordering by creation
            // time. The states come as one JSON array, so that the
            // statement is the same for any number of them.
            let states = serde_json::to_string(&states)
                .map_err(|e| StoreError::Unavailable(e.to_string()))?;
            query_all(
                connection,
                LIST,
                params![tenant, after_id, states, to_i64(limit)],
                |row| read_handoff(row),
            )
        })
        .await
    }

    async fn append_as(
        &self,
        tenant: &str,
        id: &str,
        event: NewEvent,
        owner: Option<&str>,
        audit: Option<AuditEntry>,
    ) -> Result<(Handoff, EventRecord), StoreError> {
        let (tenant, id) = (tenant.to_owned(), id.to_owned());
        let owner = owner.map(str::to_owned);
        let leases = self.leases.clone();
        let (handoff, record) = self
            .writer
            .write(event.durability(), move |tx| {
                let mut handoff = load(tx, &tenant, &id)?;
                // Checked in the writer thread, where no other append to
                // this handoff can run between the check and the commit.
                if let Some(owner) = &owner
                    && !leases.held_by(&id, owner)
                {
                    return Err(StoreError::LeaseLost);
                }
                let appending = Appending::next(&handoff, event)?;
                if let Some(check) = appending.connector_check(&tenant) {
                    let seen = exists(
                        tx,
                        sql::CONNECTOR_EVENT_SEEN,
                        params![
                            check.tenant,
                            check.handoff_id,
                            check.attempt,
                            check.run,
                            check.sequence
                        ],
                    )?;
                    if seen {
                        return Err(StoreError::Duplicate);
                    }
                }
                insert_event(tx, &appending.values(&tenant))?;
                apply(&mut handoff, &appending.record);
                update_state(tx, &tenant, &id, &StateValues::of(&handoff)?)?;
                if let Some(audit) = &audit {
                    insert_audit(tx, audit)?;
                }
                Ok((handoff, appending.record))
            })
            .await?;
        if handoff.state.is_terminal() {
            self.leases.end(&handoff.id);
        }
        Ok((handoff, record))
    }

    async fn update_context(
        &self,
        tenant: &str,
        id: &str,
        update: ContextUpdate,
    ) -> Result<ContextUpdateOutcome, StoreError> {
        let (tenant, id) = (tenant.to_owned(), id.to_owned());
        // In the writer thread: no other write to the handoff runs between
        // reading its version and the commit.
        self.write(move |tx| {
            let seen = query_one(
                tx,
                context_update::SEEN,
                params![tenant, id, update.request_id],
                |row| Ok((row.text(0)?, row.integer(1)?)),
            )?;
            let mut handoff = load(tx, &tenant, &id)?;
            if let Some(seen) = seen {
                return context_update::retried(handoff, seen, &update);
            }
            let (request_id, fingerprint) = (update.request_id.clone(), update.fingerprint.clone());
            let record = context_update::applied(&mut handoff, update)?;
            insert_event(tx, &EventValues::of(&tenant, &record, None))?;
            update_state(tx, &tenant, &id, &StateValues::of(&handoff)?)?;
            execute(
                tx,
                context_update::UPDATE_CONTEXT,
                params![
                    handoff.context.as_bytes(),
                    to_i64(handoff.context_version),
                    tenant,
                    id
                ],
            )?;
            execute(
                tx,
                context_update::INSERT,
                params![
                    tenant,
                    id,
                    request_id,
                    fingerprint,
                    to_i64(handoff.context_version)
                ],
            )?;
            Ok(ContextUpdateOutcome::Applied {
                handoff,
                event: Box::new(record),
            })
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
        let (tenant, id) = (tenant.to_owned(), id.to_owned());
        self.read(move |connection| {
            let handoff = load(connection, &tenant, &id)?;
            query_all(
                connection,
                sql::EVENTS_AFTER,
                params![tenant, id, to_i64(after), to_i64(limit)],
                |row| read_event(row, &handoff.plan),
            )
        })
        .await
    }

    async fn in_flight(&self) -> Result<Vec<Handoff>, StoreError> {
        self.read(|connection| query_all(connection, sql::IN_FLIGHT, [], |row| read_handoff(row)))
            .await
    }
}

/// `tenant`, `after_id` (or NULL), the states as a JSON array (empty for
/// all), `limit`.
const LIST: &str = concat!(
    "SELECT ",
    sql::handoff_columns!(),
    " FROM handoffs WHERE tenant = ?1 AND (?2 IS NULL OR id < ?2) \
     AND (json_array_length(?3) = 0 OR state IN (SELECT value FROM json_each(?3))) \
     ORDER BY id DESC LIMIT ?4"
);
