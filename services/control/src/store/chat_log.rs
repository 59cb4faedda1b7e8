//! The chat log role: a chat handoff's conversation, one entry per message
//! in the order stored, ended once by an ENDED entry. The statements both
//! backends run and the reading of a row are here; each backend serialises
//! the appends to one handoff (SQLite's one writer; PostgreSQL's
//! transaction-scoped advisory lock) so that sequences have no gaps.

use async_trait::async_trait;

use super::StoreError;
use super::rows::Columns;
use crate::domain::chat::{
    ChatAppend, ChatAttachment, ChatAuthor, ChatDraft, ChatEndReason, ChatEntry,
};

/// A chat handoff's conversation log. Every method takes the tenant.
#[async_trait]
pub trait ChatLog: Send + Sync {
    /// Stores `author`'s message with the next sequence, unless that author
    /// already sent its message id (then the entry stored then) or the
    /// conversation has ended (then the ENDED entry).
    async fn append_chat(
        &self,
        tenant: &str,
        handoff_id: &str,
        author: ChatAuthor,
        draft: ChatDraft,
    ) -> Result<ChatAppend, StoreError>;

    /// Ends the conversation with `reason`: stores the ENDED entry once,
    /// and returns it (the one stored before, on a repeat).
    async fn end_chat(
        &self,
        tenant: &str,
        handoff_id: &str,
        reason: ChatEndReason,
    ) -> Result<ChatEntry, StoreError>;

    /// The sequence of the conversation's latest entry (0 when empty).
    async fn last_chat_sequence(&self, tenant: &str, handoff_id: &str) -> Result<u64, StoreError>;

    /// Up to `limit` entries after `after_sequence`, in order.
    async fn chat_after(
        &self,
        tenant: &str,
        handoff_id: &str,
        after_sequence: u64,
        limit: usize,
    ) -> Result<Vec<ChatEntry>, StoreError>;
}

/// The columns of an entry, in the order [`read_entry`] reads.
macro_rules! chat_columns {
    () => {
        "handoff_id, sequence, author, message_id, text, attachments, author_name, \
         end_reason, created_at_ms"
    };
}

pub(super) const CHAT_AFTER: &str = concat!(
    "SELECT ",
    chat_columns!(),
    " FROM chat_entries WHERE tenant = ?1 AND handoff_id = ?2 AND sequence > ?3 \
     ORDER BY sequence LIMIT ?4"
);

pub(super) const CHAT_BY_MESSAGE: &str = concat!(
    "SELECT ",
    chat_columns!(),
    " FROM chat_entries WHERE tenant = ?1 AND handoff_id = ?2 AND author = ?3 \
     AND message_id = ?4"
);

pub(super) const CHAT_LAST_SEQUENCE: &str =
    "SELECT COALESCE(MAX(sequence), 0) FROM chat_entries WHERE tenant = ?1 AND handoff_id = ?2";

pub(super) const INSERT_CHAT: &str = "INSERT INTO chat_entries (tenant, handoff_id, sequence, \
     author, message_id, text, attachments, author_name, end_reason, created_at_ms) \
     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)";

/// What [`INSERT_CHAT`] binds after the tenant and handoff, in order.
pub(super) struct ChatValues {
    pub sequence: i64,
    pub author: i64,
    pub message_id: String,
    pub text: String,
    pub attachments: String,
    pub author_name: String,
    pub end_reason: Option<i64>,
    pub created_at_ms: i64,
}

impl ChatValues {
    pub(super) fn message(
        sequence: u64,
        author: ChatAuthor,
        draft: ChatDraft,
        now_ms: i64,
    ) -> Self {
        Self {
            sequence: super::values::to_i64(sequence),
            author: author.code(),
            message_id: draft.message_id,
            text: draft.text,
            attachments: serde_json::to_string(&draft.attachments).unwrap_or_else(|_| "[]".into()),
            author_name: draft.author_name,
            end_reason: None,
            created_at_ms: now_ms,
        }
    }

    pub(super) fn ended(sequence: u64, reason: ChatEndReason, now_ms: i64) -> Self {
        Self {
            sequence: super::values::to_i64(sequence),
            author: ChatAuthor::System.code(),
            message_id: String::new(),
            text: reason.message().into(),
            attachments: "[]".into(),
            author_name: String::new(),
            end_reason: Some(reason.code()),
            created_at_ms: now_ms,
        }
    }

    /// The entry these values store.
    pub(super) fn entry(&self, handoff_id: &str) -> Result<ChatEntry, StoreError> {
        Ok(ChatEntry {
            handoff_id: handoff_id.into(),
            sequence: u64::try_from(self.sequence).unwrap_or_default(),
            author: author_of(self.author)?,
            message_id: self.message_id.clone(),
            text: self.text.clone(),
            attachments: attachments_of(&self.attachments)?,
            author_name: self.author_name.clone(),
            time_ms: self.created_at_ms,
            ended: self.end_reason.map(reason_of).transpose()?,
        })
    }
}

fn author_of(code: i64) -> Result<ChatAuthor, StoreError> {
    ChatAuthor::from_code(code)
        .ok_or_else(|| StoreError::Corrupt(format!("chat entry author {code}")))
}

fn reason_of(code: i64) -> Result<ChatEndReason, StoreError> {
    ChatEndReason::from_code(code)
        .ok_or_else(|| StoreError::Corrupt(format!("chat end reason {code}")))
}

fn attachments_of(json: &str) -> Result<Vec<ChatAttachment>, StoreError> {
    serde_json::from_str(json).map_err(|e| StoreError::Corrupt(format!("chat attachments: {e}")))
}

/// Reads a row of [`CHAT_AFTER`] or [`CHAT_BY_MESSAGE`].
pub(super) fn read_entry(row: &impl Columns) -> Result<ChatEntry, StoreError> {
    Ok(ChatEntry {
        handoff_id: row.text(0)?,
        sequence: u64::try_from(row.integer(1)?).unwrap_or_default(),
        author: author_of(row.integer(2)?)?,
        message_id: row.text(3)?,
        text: row.text(4)?,
        attachments: attachments_of(&row.text(5)?)?,
        author_name: row.text(6)?,
        ended: row.optional_integer(7)?.map(reason_of).transpose()?,
        time_ms: row.integer(8)?,
    })
}
