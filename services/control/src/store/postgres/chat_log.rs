//! The chat log in the shared store: each append is one transaction that
//! first takes a transaction-scoped advisory lock on the handoff, so that
//! replicas appending to one conversation at once get consecutive
//! sequences.

use async_trait::async_trait;
use sqlx::PgConnection;
use sqlx::postgres::PgRow;

use super::{PgStore, finish, shared, unavailable};
use crate::domain::chat::{ChatAppend, ChatAuthor, ChatDraft, ChatEndReason, ChatEntry};
use crate::store::StoreError;
use crate::store::chat_log::{
    CHAT_AFTER, CHAT_BY_MESSAGE, CHAT_LAST_SEQUENCE, ChatLog, ChatValues, INSERT_CHAT, read_entry,
};
use crate::store::rows::Columns;
use crate::store::values::{now_ms, to_i64};

/// Serialises the appends to one handoff's conversation until the
/// transaction ends.
async fn lock(connection: &mut PgConnection, handoff_id: &str) -> Result<(), StoreError> {
    sqlx::query("SELECT pg_advisory_xact_lock(hashtextextended('chat:' || $1, 0))")
        .bind(handoff_id)
        .execute(&mut *connection)
        .await
        .map_err(unavailable)?;
    Ok(())
}

async fn by_message(
    connection: &mut PgConnection,
    tenant: &str,
    handoff_id: &str,
    author: ChatAuthor,
    message_id: &str,
) -> Result<Option<ChatEntry>, StoreError> {
    let row: Option<PgRow> = sqlx::query(shared(CHAT_BY_MESSAGE))
        .bind(tenant)
        .bind(handoff_id)
        .bind(author.code())
        .bind(message_id)
        .fetch_optional(&mut *connection)
        .await
        .map_err(unavailable)?;
    row.as_ref().map(read_entry).transpose()
}

async fn insert(
    connection: &mut PgConnection,
    tenant: &str,
    handoff_id: &str,
    make: impl FnOnce(u64) -> ChatValues,
) -> Result<ChatEntry, StoreError> {
    let row: PgRow = sqlx::query(shared(CHAT_LAST_SEQUENCE))
        .bind(tenant)
        .bind(handoff_id)
        .fetch_one(&mut *connection)
        .await
        .map_err(unavailable)?;
    let last = row.integer(0)?;
    let values = make(u64::try_from(last).unwrap_or_default() + 1);
    sqlx::query(shared(INSERT_CHAT))
        .bind(tenant)
        .bind(handoff_id)
        .bind(values.sequence)
        .bind(values.author)
        .bind(&values.message_id)
        .bind(&values.text)
        .bind(&values.attachments)
        .bind(&values.author_name)
        .bind(values.end_reason)
        .bind(values.created_at_ms)
        .execute(&mut *connection)
        .await
        .map_err(unavailable)?;
    values.entry(handoff_id)
}

#[async_trait]
impl ChatLog for PgStore {
    async fn append_chat(
        &self,
        tenant: &str,
        handoff_id: &str,
        author: ChatAuthor,
        draft: ChatDraft,
    ) -> Result<ChatAppend, StoreError> {
        let mut tx = self.pool.begin().await.map_err(unavailable)?;
        let written: Result<_, StoreError> = async {
            lock(&mut tx, handoff_id).await?;
            if let Some(stored) =
                by_message(&mut tx, tenant, handoff_id, author, &draft.message_id).await?
            {
                return Ok(ChatAppend::AlreadyStored(stored));
            }
            if let Some(ended) =
                by_message(&mut tx, tenant, handoff_id, ChatAuthor::System, "").await?
            {
                return Ok(ChatAppend::Ended(ended));
            }
            let now = now_ms();
            let entry = insert(&mut tx, tenant, handoff_id, |sequence| {
                ChatValues::message(sequence, author, draft, now)
            })
            .await?;
            Ok(ChatAppend::Stored(entry))
        }
        .await;
        finish(tx, written).await
    }

    async fn end_chat(
        &self,
        tenant: &str,
        handoff_id: &str,
        reason: ChatEndReason,
    ) -> Result<ChatEntry, StoreError> {
        let mut tx = self.pool.begin().await.map_err(unavailable)?;
        let written: Result<_, StoreError> = async {
            lock(&mut tx, handoff_id).await?;
            if let Some(ended) =
                by_message(&mut tx, tenant, handoff_id, ChatAuthor::System, "").await?
            {
                return Ok(ended);
            }
            let now = now_ms();
            let entry = insert(&mut tx, tenant, handoff_id, |sequence| {
                ChatValues::ended(sequence, reason, now)
            })
            .await?;
            Ok(entry)
        }
        .await;
        finish(tx, written).await
    }

    async fn last_chat_sequence(&self, tenant: &str, handoff_id: &str) -> Result<u64, StoreError> {
        let row: PgRow = sqlx::query(shared(CHAT_LAST_SEQUENCE))
            .bind(tenant)
            .bind(handoff_id)
            .fetch_one(&self.pool)
            .await
            .map_err(unavailable)?;
        Ok(u64::try_from(row.integer(0)?).unwrap_or_default())
    }

    async fn chat_after(
        &self,
        tenant: &str,
        handoff_id: &str,
        after_sequence: u64,
        limit: usize,
    ) -> Result<Vec<ChatEntry>, StoreError> {
        let rows = sqlx::query(shared(CHAT_AFTER))
            .bind(tenant)
            .bind(handoff_id)
            .bind(to_i64(after_sequence))
            .bind(to_i64(limit))
            .fetch_all(&self.pool)
            .await
            .map_err(unavailable)?;
        rows.iter().map(read_entry).collect()
    }
}
