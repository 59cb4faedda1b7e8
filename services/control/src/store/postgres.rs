//! The shared store: PostgreSQL, for several control-service replicas.
//!
//! Every write is one transaction, committed (with PostgreSQL's default
//! `synchronous_commit = on`, so on disk) before the caller is answered.
//! `append` locks the handoff's row (`SELECT … FOR UPDATE`), so that two
//! replicas appending to one handoff are serialised and the state machine
//! sees the latest state. Each commit that records an event also sends a
//! notification on [`CHANNEL`] (delivered only if the commit succeeds),
//! which every replica's event hub follows. Lease times use the database's
//! clock, so replicas' clocks need not agree.

use std::time::Duration;

use async_trait::async_trait;
use prost::Message;
use sqlx::postgres::{PgConnectOptions, PgListener, PgPool, PgPoolOptions, PgRow};
use sqlx::{AssertSqlSafe, PgConnection, Row};
use tokio::sync::mpsc;

use super::rows::{
    EVENT_COLUMNS, EventRow, HANDOFF_COLUMNS, HandoffRow, apply, created, name_of, next_record,
    now_ms, wait_ms,
};
use super::{
    AuditAction, AuditEntry, AuditRecord, ContextAccess, CreateOutcome, EventNotice, HandoffStore,
    NewLease, Notice, StoreError,
};
use crate::domain::{ConnectorPosition, EventRecord, Handoff, HandoffState, NewEvent};

/// The notification channel of recorded events (one per database).
pub const CHANNEL: &str = "baton_handoff_events";

/// The database's clock in Unix milliseconds.
const NOW_MS: &str = "(extract(epoch from clock_timestamp()) * 1000)::bigint";

/// Terminal states, as stored.
const ENDED: &str = "('completed', 'failed', 'cancelled')";

/// Notices buffered for the event hub; past this, notices are dropped and
/// the hub is told to re-read instead of memory growing.
const NOTICE_BUFFER: usize = 4096;

/// The PostgreSQL store.
#[derive(Clone)]
pub struct PgStore {
    pool: PgPool,
}

impl std::fmt::Debug for PgStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PgStore")
    }
}

/// SQL put together from this module's constants; every value is bound.
fn sql(text: String) -> AssertSqlSafe<String> {
    AssertSqlSafe(text)
}

fn unavailable(error: sqlx::Error) -> StoreError {
    StoreError::Unavailable(error.to_string())
}

fn to_i64(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

fn millis(duration: Duration) -> i64 {
    i64::try_from(duration.as_millis()).unwrap_or(i64::MAX)
}

fn column<'r, T: sqlx::Decode<'r, sqlx::Postgres> + sqlx::Type<sqlx::Postgres>>(
    row: &'r PgRow,
    index: usize,
) -> Result<T, StoreError> {
    row.try_get(index)
        .map_err(|e| StoreError::Corrupt(e.to_string()))
}

/// A BIGINT column that holds an unsigned number.
fn unsigned<T: TryFrom<i64>>(value: Option<i64>) -> Result<Option<T>, StoreError> {
    value
        .map(|v| T::try_from(v).map_err(|_| StoreError::Corrupt(format!("{v} is out of range"))))
        .transpose()
}

impl HandoffRow {
    fn from_pg(row: &PgRow) -> Result<Self, StoreError> {
        Ok(Self {
            id: column(row, 0)?,
            tenant: column(row, 1)?,
            request_id: column(row, 2)?,
            request_fingerprint: column(row, 3)?,
            state: column(row, 4)?,
            conversation: column(row, 5)?,
            context: column(row, 6)?,
            requested_target: column(row, 7)?,
            mode: column(row, 8)?,
            plan: column(row, 9)?,
            customer_message: column(row, 10)?,
            customer_message_language: column(row, 11)?,
            created_at_ms: column(row, 12)?,
            updated_at_ms: column(row, 13)?,
            deadline_ms: column(row, 14)?,
            current_attempt: unsigned(column(row, 15)?)?,
            queue_position: unsigned(column(row, 16)?)?,
            queue_wait_ms: column(row, 17)?,
            failure_reason: column(row, 18)?,
            failure_detail: column(row, 19)?,
            last_sequence: unsigned(Some(column(row, 20)?))?.unwrap_or_default(),
            decision: column(row, 21)?,
            wrap_up: column(row, 22)?,
        })
    }
}

impl EventRow {
    fn from_pg(row: &PgRow) -> Result<Self, StoreError> {
        Ok(Self {
            handoff_id: column(row, 0)?,
            sequence: unsigned(Some(column(row, 1)?))?.unwrap_or_default(),
            kind: column(row, 2)?,
            state: column(row, 3)?,
            time_ms: column(row, 4)?,
            attempt: unsigned(column(row, 5)?)?,
            queue_position: unsigned(column(row, 6)?)?,
            queue_wait_ms: column(row, 7)?,
            failure_reason: column(row, 8)?,
            failure_detail: column(row, 9)?,
            detail: column(row, 10)?,
            wrap_up: column(row, 11)?,
        })
    }
}

fn handoff_of(row: &PgRow) -> Result<Handoff, StoreError> {
    HandoffRow::from_pg(row)?.into_handoff()
}

async fn load(
    connection: &mut PgConnection,
    tenant: &str,
    id: &str,
    lock: bool,
) -> Result<Handoff, StoreError> {
    let row = sqlx::query(sql(format!(
        "SELECT {HANDOFF_COLUMNS} FROM handoffs WHERE tenant = $1 AND id = $2{}",
        if lock { " FOR UPDATE" } else { "" }
    )))
    .bind(tenant)
    .bind(id)
    .fetch_optional(&mut *connection)
    .await
    .map_err(unavailable)?
    .ok_or(StoreError::NotFound)?;
    handoff_of(&row)
}

async fn insert_event(
    connection: &mut PgConnection,
    tenant: &str,
    record: &EventRecord,
    connector_position: Option<&ConnectorPosition>,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO handoff_events (tenant, handoff_id, sequence, kind, state, time_ms, attempt, \
         queue_position, queue_wait_ms, failure_reason, failure_detail, detail, connector_sequence, \
         wrap_up, connector_run) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)",
    )
    .bind(tenant)
    .bind(&record.handoff_id)
    .bind(to_i64(record.sequence))
    .bind(name_of(&record.kind))
    .bind(name_of(&record.state))
    .bind(record.time_ms)
    .bind(record.attempt.as_ref().map(|a| i64::from(a.number)))
    .bind(record.queue_status.map(|q| i64::from(q.position)))
    .bind(wait_ms(&record.queue_status))
    .bind(record.failure.as_ref().map(|f| f.reason as i32))
    .bind(record.failure.as_ref().map(|f| f.detail.clone()))
    .bind(&record.detail)
    .bind(connector_position.map(|p| to_i64(p.sequence)))
    .bind(record.wrap_up.as_ref().map(Message::encode_to_vec))
    .bind(connector_position.map(|p| p.run_id.as_str()).unwrap_or_default())
    .execute(&mut *connection)
    .await
    .map_err(|error| match &error {
        // The unique index caught a connector event recorded concurrently.
        sqlx::Error::Database(db) if db.is_unique_violation() => StoreError::Duplicate,
        _ => unavailable(error),
    })?;
    Ok(())
}

/// Announces a recorded event; delivered when the transaction commits.
async fn notify(
    connection: &mut PgConnection,
    tenant: &str,
    id: &str,
    sequence: u64,
) -> Result<(), StoreError> {
    let payload = serde_json::json!({ "tenant": tenant, "handoff_id": id, "sequence": sequence });
    sqlx::query("SELECT pg_notify($1, $2)")
        .bind(CHANNEL)
        .bind(payload.to_string())
        .execute(&mut *connection)
        .await
        .map_err(unavailable)?;
    Ok(())
}

fn parse_notice(payload: &str) -> Option<EventNotice> {
    let value: serde_json::Value = serde_json::from_str(payload).ok()?;
    Some(EventNotice {
        tenant: value.get("tenant")?.as_str()?.to_owned(),
        handoff_id: value.get("handoff_id")?.as_str()?.to_owned(),
        sequence: value.get("sequence")?.as_u64()?,
    })
}

impl PgStore {
    /// Connects to `url` with up to `max_connections` connections, a call
    /// waiting at most `connect_timeout` for one, and applies the schema
    /// migrations (under PostgreSQL's advisory lock, so that replicas
    /// starting together apply each once).
    pub async fn connect(
        url: &str,
        max_connections: u32,
        connect_timeout: Duration,
    ) -> Result<Self, StoreError> {
        let options: PgConnectOptions = url
            .parse()
            .map_err(|e: sqlx::Error| StoreError::Unavailable(format!("invalid URL: {e}")))?;
        let pool = PgPoolOptions::new()
            .max_connections(max_connections)
            .acquire_timeout(connect_timeout)
            .connect_with(options)
            .await
            .map_err(unavailable)?;
        sqlx::migrate!("migrations/postgres")
            .run(&pool)
            .await
            .map_err(|e| StoreError::Unavailable(format!("migrations: {e}")))?;
        Ok(Self { pool })
    }

    async fn connection(&self) -> Result<sqlx::pool::PoolConnection<sqlx::Postgres>, StoreError> {
        self.pool.acquire().await.map_err(unavailable)
    }
}

async fn insert_audit(connection: &mut PgConnection, entry: &AuditEntry) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO audit_log (tenant, handoff_id, action, actor, credential, time_ms, detail) \
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(&entry.tenant)
    .bind(&entry.handoff_id)
    .bind(entry.action.name())
    .bind(&entry.actor)
    .bind(&entry.credential)
    .bind(entry.time_ms)
    .bind(&entry.detail)
    .execute(&mut *connection)
    .await
    .map_err(unavailable)?;
    Ok(())
}

/// Counts a read on the newest matching record since `since_ms`, or
/// appends `entry` (see `HandoffStore::record_view`).
async fn count_view(
    connection: &mut PgConnection,
    entry: &AuditEntry,
    since_ms: i64,
) -> Result<(), StoreError> {
    let counted = sqlx::query(
        "UPDATE audit_log SET count = count + 1, last_ms = $1 WHERE sequence = (\
         SELECT sequence FROM audit_log WHERE handoff_id = $2 AND tenant = $3 AND action = $4 \
         AND actor = $5 AND credential = $6 AND time_ms >= $7 ORDER BY sequence DESC LIMIT 1)",
    )
    .bind(entry.time_ms)
    .bind(&entry.handoff_id)
    .bind(&entry.tenant)
    .bind(entry.action.name())
    .bind(&entry.actor)
    .bind(&entry.credential)
    .bind(since_ms)
    .execute(&mut *connection)
    .await
    .map_err(unavailable)?
    .rows_affected();
    if counted == 0 {
        insert_audit(connection, entry).await?;
    }
    Ok(())
}

fn audit_of(row: &PgRow) -> Result<AuditRecord, StoreError> {
    let action: String = column(row, 3)?;
    let time_ms: i64 = column(row, 6)?;
    let last_ms: Option<i64> = column(row, 9)?;
    Ok(AuditRecord {
        count: column(row, 8)?,
        last_ms: last_ms.unwrap_or(time_ms),
        sequence: column(row, 0)?,
        entry: AuditEntry {
            tenant: column(row, 1)?,
            handoff_id: column(row, 2)?,
            action: AuditAction::from_name(&action)
                .ok_or_else(|| StoreError::Corrupt(format!("audit action {action:?}")))?,
            actor: column(row, 4)?,
            credential: column(row, 5)?,
            time_ms,
            detail: column(row, 7)?,
        },
    })
}

#[async_trait]
impl HandoffStore for PgStore {
    async fn record_audit(&self, entry: AuditEntry) -> Result<(), StoreError> {
        let mut connection = self.connection().await?;
        insert_audit(&mut connection, &entry).await
    }

    async fn record_view(&self, entry: AuditEntry, since_ms: i64) -> Result<(), StoreError> {
        let mut connection = self.connection().await?;
        // One statement at a time: two replicas counting the same read at
        // once may each append a record, which is still bounded.
        count_view(&mut connection, &entry, since_ms).await
    }

    async fn audit_log(
        &self,
        tenant: &str,
        handoff_id: Option<&str>,
        limit: usize,
        before: Option<i64>,
    ) -> Result<Vec<AuditRecord>, StoreError> {
        let rows = sqlx::query(
            "SELECT sequence, tenant, handoff_id, action, actor, credential, time_ms, detail, \
             count, last_ms FROM audit_log WHERE tenant = $1 AND ($2::text IS NULL OR handoff_id = $2) \
             AND ($3::bigint IS NULL OR sequence < $3) ORDER BY sequence DESC LIMIT $4",
        )
        .bind(tenant)
        .bind(handoff_id)
        .bind(before)
        .bind(i64::try_from(limit).unwrap_or(i64::MAX))
        .fetch_all(&self.pool)
        .await
        .map_err(unavailable)?;
        rows.iter().map(audit_of).collect()
    }

    async fn revoke_context_tokens(
        &self,
        tenant: &str,
        id: &str,
        audit: AuditEntry,
    ) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await.map_err(unavailable)?;
        let updated = sqlx::query(
            "UPDATE handoffs SET tokens_revoked_at_ms = COALESCE(tokens_revoked_at_ms, $1) \
             WHERE tenant = $2 AND id = $3",
        )
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
        let row = sqlx::query(
            "SELECT tokens_revoked_at_ms, context_purged_at_ms FROM handoffs WHERE id = $1",
        )
        .bind(id)
        .fetch_optional(&self.pool)
        .await
        .map_err(unavailable)?
        .ok_or(StoreError::NotFound)?;
        Ok(ContextAccess {
            tokens_revoked_at_ms: column(&row, 0)?,
            context_purged_at_ms: column(&row, 1)?,
        })
    }

    async fn purge_contexts(
        &self,
        ended_before_ms: i64,
        limit: usize,
    ) -> Result<usize, StoreError> {
        let mut tx = self.pool.begin().await.map_err(unavailable)?;
        // SKIP LOCKED: replicas purging at once take different handoffs.
        let ended = sqlx::query(
            "SELECT tenant, id FROM handoffs WHERE context_purged_at_ms IS NULL \
             AND state IN ('completed', 'failed', 'cancelled') AND updated_at_ms < $1 \
             ORDER BY updated_at_ms LIMIT $2 FOR UPDATE SKIP LOCKED",
        )
        .bind(ended_before_ms)
        .bind(i64::try_from(limit).unwrap_or(i64::MAX))
        .fetch_all(&mut *tx)
        .await
        .map_err(unavailable)?;
        let now = now_ms();
        for row in &ended {
            let tenant: String = column(row, 0)?;
            let id: String = column(row, 1)?;
            sqlx::query(
                "UPDATE handoffs SET conversation = '', context = '', decision = NULL, \
                 wrap_up = NULL, context_purged_at_ms = $1 WHERE id = $2",
            )
            .bind(now)
            .bind(&id)
            .execute(&mut *tx)
            .await
            .map_err(unavailable)?;
            sqlx::query("UPDATE handoff_events SET wrap_up = NULL WHERE handoff_id = $1")
                .bind(&id)
                .execute(&mut *tx)
                .await
                .map_err(unavailable)?;
            insert_audit(
                &mut tx,
                &AuditEntry {
                    tenant,
                    handoff_id: id,
                    action: AuditAction::Purged,
                    actor: "retention".into(),
                    credential: String::new(),
                    time_ms: now,
                    detail: "transcript and context deleted".into(),
                },
            )
            .await?;
        }
        tx.commit().await.map_err(unavailable)?;
        Ok(ended.len())
    }

    async fn create(
        &self,
        handoff: Handoff,
        audit: Option<AuditEntry>,
        lease: Option<NewLease<'_>>,
    ) -> Result<CreateOutcome, StoreError> {
        let plan =
            serde_json::to_string(&handoff.plan).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        let mut tx = self.pool.begin().await.map_err(unavailable)?;
        // A concurrent create with the same key waits here for the other
        // transaction and then inserts nothing.
        let inserted = sqlx::query(sql(format!(
            "INSERT INTO handoffs ({HANDOFF_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, \
             $10, $11, $12, $13, $14, $15, NULL, NULL, NULL, NULL, NULL, 1, $16, NULL) \
             ON CONFLICT (tenant, request_id) DO NOTHING"
        )))
        .bind(&handoff.id)
        .bind(&handoff.tenant)
        .bind(&handoff.request_id)
        .bind(&handoff.request_fingerprint)
        .bind(name_of(&HandoffState::INITIAL))
        .bind(handoff.conversation.encode_to_vec())
        .bind(handoff.context.encode_to_vec())
        .bind(handoff.requested_target.encode_to_vec())
        .bind(name_of(&handoff.mode))
        .bind(plan)
        .bind(&handoff.customer_message)
        .bind(&handoff.customer_message_language)
        .bind(handoff.created_at_ms)
        .bind(handoff.created_at_ms)
        .bind(handoff.deadline_ms)
        .bind(handoff.decision.as_ref().map(Message::encode_to_vec))
        .execute(&mut *tx)
        .await
        .map_err(unavailable)?
        .rows_affected();
        if inserted == 0 {
            let row = sqlx::query(sql(format!(
                "SELECT {HANDOFF_COLUMNS} FROM handoffs WHERE tenant = $1 AND request_id = $2"
            )))
            .bind(&handoff.tenant)
            .bind(&handoff.request_id)
            .fetch_optional(&mut *tx)
            .await
            .map_err(unavailable)?
            .ok_or(StoreError::NotFound)?;
            let existing = handoff_of(&row)?;
            tx.commit().await.map_err(unavailable)?;
            return Ok(CreateOutcome {
                handoff: existing,
                created_event: None,
            });
        }
        let (stored, event) = created(handoff);
        insert_event(&mut tx, &stored.tenant, &event, None).await?;
        if let Some(audit) = &audit {
            insert_audit(&mut tx, audit).await?;
        }
        if let Some(lease) = lease {
            sqlx::query(sql(format!(
                "UPDATE handoffs SET lease_owner = $3, lease_expires_ms = {NOW_MS} + $4 \
                 WHERE tenant = $1 AND id = $2"
            )))
            .bind(&stored.tenant)
            .bind(&stored.id)
            .bind(lease.owner)
            .bind(millis(lease.ttl))
            .execute(&mut *tx)
            .await
            .map_err(unavailable)?;
        }
        notify(&mut tx, &stored.tenant, &stored.id, 1).await?;
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
        let row = sqlx::query(sql(format!(
            "SELECT {HANDOFF_COLUMNS} FROM handoffs WHERE id = $1"
        )))
        .bind(id)
        .fetch_optional(&self.pool)
        .await
        .map_err(unavailable)?
        .ok_or(StoreError::NotFound)?;
        handoff_of(&row)
    }

    async fn list(
        &self,
        tenant: &str,
        states: &[HandoffState],
        limit: usize,
        after_id: Option<&str>,
    ) -> Result<Vec<Handoff>, StoreError> {
        let states: Vec<String> = states.iter().map(name_of).collect();
        // Ids are UUIDv7, so ordering by id is ordering by creation time.
        let rows = sqlx::query(sql(format!(
            "SELECT {HANDOFF_COLUMNS} FROM handoffs WHERE tenant = $1 \
             AND ($2::text IS NULL OR id < $2) \
             AND (cardinality($3::text[]) = 0 OR state = ANY($3)) \
             ORDER BY id DESC LIMIT $4"
        )))
        .bind(tenant)
        .bind(after_id)
        .bind(states)
        .bind(i64::try_from(limit).unwrap_or(i64::MAX))
        .fetch_all(&self.pool)
        .await
        .map_err(unavailable)?;
        rows.iter().map(handoff_of).collect()
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
        let (record, position) = next_record(&handoff, event)?;
        if let (Some(position), Some(attempt)) = (&position, &record.attempt) {
            let seen: bool = sqlx::query_scalar(
                "SELECT EXISTS (SELECT 1 FROM handoff_events WHERE tenant = $1 \
                 AND handoff_id = $2 AND attempt = $3 AND connector_run = $4 \
                 AND connector_sequence >= $5)",
            )
            .bind(tenant)
            .bind(id)
            .bind(i64::from(attempt.number))
            .bind(&position.run_id)
            .bind(to_i64(position.sequence))
            .fetch_one(&mut *tx)
            .await
            .map_err(unavailable)?;
            if seen {
                return Err(StoreError::Duplicate);
            }
        }
        insert_event(&mut tx, tenant, &record, position.as_ref()).await?;
        apply(&mut handoff, &record);
        // A handoff that has ended is nobody's to dispatch: its lease goes.
        sqlx::query(
            "UPDATE handoffs SET state = $1, updated_at_ms = $2, last_sequence = $3, \
             current_attempt = $4, queue_position = $5, queue_wait_ms = $6, \
             failure_reason = $7, failure_detail = $8, wrap_up = $9, \
             lease_owner = CASE WHEN $10 THEN NULL ELSE lease_owner END, \
             lease_expires_ms = CASE WHEN $10 THEN NULL ELSE lease_expires_ms END \
             WHERE tenant = $11 AND id = $12",
        )
        .bind(name_of(&handoff.state))
        .bind(handoff.updated_at_ms)
        .bind(to_i64(handoff.last_sequence))
        .bind(
            handoff
                .current_attempt
                .as_ref()
                .map(|a| i64::from(a.number)),
        )
        .bind(handoff.queue_status.map(|q| i64::from(q.position)))
        .bind(wait_ms(&handoff.queue_status))
        .bind(handoff.failure.as_ref().map(|f| f.reason as i32))
        .bind(handoff.failure.as_ref().map(|f| f.detail.clone()))
        .bind(handoff.wrap_up.as_ref().map(Message::encode_to_vec))
        .bind(handoff.state.is_terminal())
        .bind(tenant)
        .bind(id)
        .execute(&mut *tx)
        .await
        .map_err(unavailable)?;
        if let Some(audit) = &audit {
            insert_audit(&mut tx, audit).await?;
        }
        notify(&mut tx, tenant, id, record.sequence).await?;
        tx.commit().await.map_err(unavailable)?;
        Ok((handoff, record))
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
        let rows = sqlx::query(sql(format!(
            "SELECT {EVENT_COLUMNS} FROM handoff_events WHERE tenant = $1 AND handoff_id = $2 \
             AND sequence > $3 ORDER BY sequence LIMIT $4"
        )))
        .bind(tenant)
        .bind(id)
        .bind(to_i64(after))
        .bind(i64::try_from(limit).unwrap_or(i64::MAX))
        .fetch_all(&mut *connection)
        .await
        .map_err(unavailable)?;
        rows.iter()
            .map(|row| EventRow::from_pg(row)?.into_record(&handoff.plan))
            .collect()
    }

    async fn in_flight(&self) -> Result<Vec<Handoff>, StoreError> {
        let rows = sqlx::query(sql(format!(
            "SELECT {HANDOFF_COLUMNS} FROM handoffs WHERE state NOT IN {ENDED} ORDER BY id"
        )))
        .fetch_all(&self.pool)
        .await
        .map_err(unavailable)?;
        rows.iter().map(handoff_of).collect()
    }

    async fn last_connector_position(
        &self,
        id: &str,
        attempt: u32,
    ) -> Result<Option<(String, u64)>, StoreError> {
        let row = sqlx::query(
            "SELECT connector_run, connector_sequence FROM handoff_events \
             WHERE handoff_id = $1 AND attempt = $2 AND connector_sequence IS NOT NULL \
             ORDER BY sequence DESC LIMIT 1",
        )
        .bind(id)
        .bind(i64::from(attempt))
        .fetch_optional(&self.pool)
        .await
        .map_err(unavailable)?;
        row.map(|row| {
            let run: String = column(&row, 0)?;
            let sequence = unsigned(Some(column(&row, 1)?))?.unwrap_or_default();
            Ok((run, sequence))
        })
        .transpose()
    }

    async fn ping(&self) -> Result<(), StoreError> {
        // A committed write: `SELECT 1` still answers when the server
        // cannot write (a full disk, a read-only standby after a failover).
        sqlx::query(
            "INSERT INTO store_probe (id, written_at) VALUES (1, now()) \
             ON CONFLICT (id) DO UPDATE SET written_at = excluded.written_at",
        )
        .execute(&self.pool)
        .await
        .map_err(unavailable)?;
        Ok(())
    }

    async fn renew_lease(
        &self,
        tenant: &str,
        id: &str,
        owner: &str,
        ttl: Duration,
    ) -> Result<bool, StoreError> {
        let renewed = sqlx::query(sql(format!(
            "UPDATE handoffs SET lease_expires_ms = {NOW_MS} + $4 \
             WHERE tenant = $1 AND id = $2 AND lease_owner = $3"
        )))
        .bind(tenant)
        .bind(id)
        .bind(owner)
        .bind(millis(ttl))
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
        let rows = sqlx::query(sql(format!(
            "UPDATE handoffs SET lease_owner = $1, lease_expires_ms = {NOW_MS} + $2 \
             WHERE id IN (SELECT id FROM handoffs WHERE state NOT IN {ENDED} \
                 AND (lease_expires_ms IS NULL OR lease_expires_ms < {NOW_MS}) \
                 ORDER BY id LIMIT $3 FOR UPDATE SKIP LOCKED) \
             RETURNING {HANDOFF_COLUMNS}"
        )))
        .bind(owner)
        .bind(millis(ttl))
        .bind(i64::try_from(limit).unwrap_or(i64::MAX))
        .fetch_all(&self.pool)
        .await
        .map_err(unavailable)?;
        let mut claimed = rows.iter().map(handoff_of).collect::<Result<Vec<_>, _>>()?;
        claimed.sort_by(|a, b| a.id.cmp(&b.id));
        Ok(claimed)
    }

    async fn listen(&self) -> Result<Option<mpsc::Receiver<Notice>>, StoreError> {
        let mut listener = PgListener::connect_with(&self.pool)
            .await
            .map_err(unavailable)?;
        listener.listen(CHANNEL).await.map_err(unavailable)?;
        let (sender, receiver) = mpsc::channel(NOTICE_BUFFER);
        tokio::spawn(forward_notices(listener, sender));
        Ok(Some(receiver))
    }
}

/// Forwards notifications until the receiver goes. A lost connection is
/// re-established (the listener listens again on it); what was announced
/// meanwhile is lost, and so is what did not fit in the buffer, so then a
/// `Missed` tells the hub to re-read what it follows.
async fn forward_notices(mut listener: PgListener, sender: mpsc::Sender<Notice>) {
    loop {
        let missed = match listener.try_recv().await {
            Ok(Some(notification)) => match parse_notice(notification.payload()) {
                Some(notice) => match sender.try_send(Notice::Recorded(notice)) {
                    Ok(()) => false,
                    Err(mpsc::error::TrySendError::Full(_)) => true,
                    Err(mpsc::error::TrySendError::Closed(_)) => return,
                },
                None => {
                    tracing::warn!("ignoring a malformed event notification");
                    false
                }
            },
            Ok(None) | Err(_) => {
                tracing::warn!("lost the event notification connection; reconnecting");
                if !reconnect(&mut listener, &sender).await {
                    return;
                }
                tracing::info!("listening for event notifications again");
                true
            }
        };
        // Waits for room: the hub drains the buffer.
        if missed && sender.send(Notice::Missed).await.is_err() {
            return;
        }
    }
}

/// Reconnects the listener (which listens again); false when nobody
/// follows the notices any more.
async fn reconnect(listener: &mut PgListener, sender: &mpsc::Sender<Notice>) -> bool {
    loop {
        if sender.is_closed() {
            return false;
        }
        match sqlx::query("SELECT 1").execute(&mut *listener).await {
            Ok(_) => return true,
            Err(error) => {
                tracing::debug!(%error, "event notifications: still reconnecting");
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
        }
    }
}
