//! The shared store: PostgreSQL, for several control-service replicas.
//!
//! Every write is committed (with PostgreSQL's default
//! `synchronous_commit = on`, so on disk) before the caller is answered.
//! The handoff log's writes (create, append, context updates) are
//! committed in groups by one writer task per replica (`writer`), each
//! write in its own savepoint; the others are one transaction each.
//! `append` locks the handoff's row (`SELECT … FOR UPDATE`), so that two
//! replicas appending to one handoff are serialised and the state machine
//! sees the latest state. Each commit that records events also sends a
//! notification listing them (delivered only if the commit succeeds),
//! which every replica's event hub follows (`notices`). Lease times use
//! the database's clock, so replicas' clocks need not agree. The schema
//! comes from the SQL files of `migrations/postgres`, applied by
//! `sqlx::migrate!`.
//!
//! One file per role: `handoff_log`, `leases`, `audit`, `retention`; the
//! store's health check is here.

mod audit;
mod chat_log;
mod handoff_log;
mod leases;
mod notices;
mod outcomes;
mod retention;
mod writer;

use std::time::Duration;

use async_trait::async_trait;
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions, PgRow};
use sqlx::{AssertSqlSafe, PgConnection, Row};

use super::rows::{columns_by, read_handoff};
use super::sql::numbered_for_postgres;
use super::values::{EventValues, StateValues};
use super::{AuditEntry, StoreError, StoreHealth, sql};
use crate::domain::Handoff;

/// The database's clock in Unix milliseconds.
const NOW_MS: &str = "(extract(epoch from clock_timestamp()) * 1000)::bigint";

/// The PostgreSQL store.
#[derive(Clone)]
pub struct PgStore {
    pool: PgPool,
    /// Commits the handoff log's writes in groups, on a connection of its
    /// own (besides the pool's).
    writer: writer::Writer,
    /// Renews dispatch leases in batches.
    renewals: leases::Renewals,
}

impl std::fmt::Debug for PgStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PgStore")
    }
}

impl PgStore {
    /// Connects to `url` with a pool of up to `max_connections` connections
    /// (the writer and the event listener hold one more each), a call
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
            .connect_with(options.clone())
            .await
            .map_err(unavailable)?;
        sqlx::migrate!("migrations/postgres")
            .run(&pool)
            .await
            .map_err(|e| StoreError::Unavailable(format!("migrations: {e}")))?;
        let writer = writer::Writer::start(options, connect_timeout);
        let renewals = leases::Renewals::start(pool.clone());
        Ok(Self {
            pool,
            writer,
            renewals,
        })
    }

    async fn connection(&self) -> Result<sqlx::pool::PoolConnection<sqlx::Postgres>, StoreError> {
        self.pool.acquire().await.map_err(unavailable)
    }
}

#[async_trait]
impl StoreHealth for PgStore {
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
}

/// A statement of `sql`, in PostgreSQL's numbering.
fn shared(statement: &str) -> AssertSqlSafe<String> {
    AssertSqlSafe(numbered_for_postgres(statement))
}

/// A statement of this backend put together from constants; every value
/// is bound.
fn own(statement: String) -> AssertSqlSafe<String> {
    AssertSqlSafe(statement)
}

fn unavailable(error: sqlx::Error) -> StoreError {
    StoreError::Unavailable(error.to_string())
}

columns_by!(PgRow, try_get);

/// Ends `tx` as `result` says: commits what succeeded, rolls back a
/// refusal or failure before it is answered. A dropped sqlx transaction
/// only queues its ROLLBACK for the pooled connection's next use, and
/// until then the row locks it took stay held: a purge skips the row and
/// another replica's writer waits on it. A failed rollback is not reported
/// over the refusal: the server ends the transaction when the connection
/// goes.
async fn finish<T>(
    tx: sqlx::Transaction<'_, sqlx::Postgres>,
    result: Result<T, StoreError>,
) -> Result<T, StoreError> {
    match result {
        Ok(value) => {
            tx.commit().await.map_err(unavailable)?;
            Ok(value)
        }
        Err(error) => {
            let _ = tx.rollback().await;
            Err(error)
        }
    }
}

/// `tenant`'s handoff `id`, its row locked until the transaction ends when
/// `lock`.
async fn load(
    connection: &mut PgConnection,
    tenant: &str,
    id: &str,
    lock: bool,
) -> Result<Handoff, StoreError> {
    let statement = if lock {
        shared(&format!("{} FOR UPDATE", sql::HANDOFF))
    } else {
        shared(sql::HANDOFF)
    };
    let row = sqlx::query(statement)
        .bind(tenant)
        .bind(id)
        .fetch_optional(&mut *connection)
        .await
        .map_err(unavailable)?
        .ok_or(StoreError::NotFound)?;
    read_handoff(&row)
}

async fn insert_event(connection: &mut PgConnection, event: EventValues) -> Result<(), StoreError> {
    sqlx::query(shared(sql::INSERT_EVENT))
        .bind(event.tenant)
        .bind(event.handoff_id)
        .bind(event.sequence)
        .bind(event.kind)
        .bind(event.state)
        .bind(event.time_ms)
        .bind(event.attempt)
        .bind(event.queue_position)
        .bind(event.queue_wait_ms)
        .bind(event.failure_reason)
        .bind(event.failure_detail)
        .bind(event.detail)
        .bind(event.connector_sequence)
        .bind(event.wrap_up)
        .bind(event.connector_run)
        .bind(event.context_version)
        .execute(&mut *connection)
        .await
        .map_err(|error| match &error {
            // The unique index caught a connector event recorded concurrently.
            sqlx::Error::Database(db) if db.is_unique_violation() => StoreError::Duplicate,
            _ => unavailable(error),
        })?;
    Ok(())
}

async fn update_state(
    connection: &mut PgConnection,
    tenant: &str,
    id: &str,
    state: StateValues,
) -> Result<(), StoreError> {
    sqlx::query(shared(sql::UPDATE_STATE))
        .bind(state.state)
        .bind(state.updated_at_ms)
        .bind(state.last_sequence)
        .bind(state.current_attempt)
        .bind(state.queue_position)
        .bind(state.queue_wait_ms)
        .bind(state.failure_reason)
        .bind(state.failure_detail)
        .bind(state.wrap_up)
        .bind(tenant)
        .bind(id)
        .bind(state.outcome)
        .bind(state.callback)
        .execute(&mut *connection)
        .await
        .map_err(unavailable)?;
    Ok(())
}

async fn insert_audit(connection: &mut PgConnection, entry: &AuditEntry) -> Result<(), StoreError> {
    sqlx::query(shared(sql::INSERT_AUDIT))
        .bind(&entry.tenant)
        .bind(&entry.handoff_id)
        .bind(entry.action.name())
        .bind(&entry.actor)
        .bind(&entry.credential)
        .bind(entry.time_ms)
        .bind(&entry.detail)
        .bind(&entry.connector)
        .execute(&mut *connection)
        .await
        .map_err(unavailable)?;
    Ok(())
}
