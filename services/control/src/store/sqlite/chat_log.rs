//! The chat log in the embedded store: each append is one group-commit
//! write, so the one writer thread serialises a handoff's appends.

use async_trait::async_trait;
use rusqlite::{Connection, params};

use super::{SqliteStore, execute, query_all, query_one};
use crate::domain::chat::{ChatAppend, ChatAuthor, ChatDraft, ChatEndReason, ChatEntry};
use crate::store::StoreError;
use crate::store::chat_log::{
    CHAT_AFTER, CHAT_BY_MESSAGE, CHAT_LAST_SEQUENCE, ChatLog, ChatValues, INSERT_CHAT, read_entry,
};
use crate::store::rows::Columns;
use crate::store::values::{now_ms, to_i64};

fn by_message(
    connection: &Connection,
    tenant: &str,
    handoff_id: &str,
    author: ChatAuthor,
    message_id: &str,
) -> Result<Option<ChatEntry>, StoreError> {
    query_one(
        connection,
        CHAT_BY_MESSAGE,
        params![tenant, handoff_id, author.code(), message_id],
        |row| read_entry(row),
    )
}

/// Stores `values` with the sequence after the log's last.
fn insert(
    connection: &Connection,
    tenant: &str,
    handoff_id: &str,
    make: impl FnOnce(u64) -> ChatValues,
) -> Result<ChatEntry, StoreError> {
    let last = query_one(
        connection,
        CHAT_LAST_SEQUENCE,
        params![tenant, handoff_id],
        |row| row.integer(0),
    )?
    .unwrap_or_default();
    let values = make(u64::try_from(last).unwrap_or_default() + 1);
    execute(
        connection,
        INSERT_CHAT,
        params![
            tenant,
            handoff_id,
            values.sequence,
            values.author,
            values.message_id,
            values.text,
            values.attachments,
            values.author_name,
            values.end_reason,
            values.created_at_ms
        ],
    )?;
    values.entry(handoff_id)
}

#[async_trait]
impl ChatLog for SqliteStore {
    async fn append_chat(
        &self,
        tenant: &str,
        handoff_id: &str,
        author: ChatAuthor,
        draft: ChatDraft,
    ) -> Result<ChatAppend, StoreError> {
        let (tenant, handoff_id) = (tenant.to_string(), handoff_id.to_string());
        self.write(move |connection| {
            if let Some(stored) =
                by_message(connection, &tenant, &handoff_id, author, &draft.message_id)?
            {
                return Ok(ChatAppend::AlreadyStored(stored));
            }
            if let Some(ended) =
                by_message(connection, &tenant, &handoff_id, ChatAuthor::System, "")?
            {
                return Ok(ChatAppend::Ended(ended));
            }
            let now = now_ms();
            insert(connection, &tenant, &handoff_id, |sequence| {
                ChatValues::message(sequence, author, draft, now)
            })
            .map(ChatAppend::Stored)
        })
        .await
    }

    async fn end_chat(
        &self,
        tenant: &str,
        handoff_id: &str,
        reason: ChatEndReason,
    ) -> Result<ChatEntry, StoreError> {
        let (tenant, handoff_id) = (tenant.to_string(), handoff_id.to_string());
        self.write(move |connection| {
            if let Some(ended) =
                by_message(connection, &tenant, &handoff_id, ChatAuthor::System, "")?
            {
                return Ok(ended);
            }
            let now = now_ms();
            insert(connection, &tenant, &handoff_id, |sequence| {
                ChatValues::ended(sequence, reason, now)
            })
        })
        .await
    }

    async fn last_chat_sequence(&self, tenant: &str, handoff_id: &str) -> Result<u64, StoreError> {
        let (tenant, handoff_id) = (tenant.to_string(), handoff_id.to_string());
        self.read(move |connection| {
            let last = query_one(
                connection,
                CHAT_LAST_SEQUENCE,
                params![tenant, handoff_id],
                |row| row.integer(0),
            )?;
            Ok(u64::try_from(last.unwrap_or_default()).unwrap_or_default())
        })
        .await
    }

    async fn chat_after(
        &self,
        tenant: &str,
        handoff_id: &str,
        after_sequence: u64,
        limit: usize,
    ) -> Result<Vec<ChatEntry>, StoreError> {
        let (tenant, handoff_id) = (tenant.to_string(), handoff_id.to_string());
        self.read(move |connection| {
            query_all(
                connection,
                CHAT_AFTER,
                params![tenant, handoff_id, to_i64(after_sequence), to_i64(limit)],
                |row| read_entry(row),
            )
        })
        .await
    }
}
