//! A chat handoff's conversation: one log per handoff, in the order the
//! control service stored its entries. The customer's messages come from
//! the runtime, the human's from the connector; each writer names its
//! messages, so that a message re-sent after a reconnect is stored once.
//! The log ends with one ENDED entry once the handoff ends.

use serde::{Deserialize, Serialize};

use super::HandoffState;

/// The most characters a message's text holds.
pub const MAX_TEXT_CHARS: usize = 4096;
/// The most attachments one message carries.
pub const MAX_ATTACHMENTS: usize = 10;
/// The largest attachment, by its declared size: 25 MiB.
pub const MAX_ATTACHMENT_BYTES: u64 = 25 * 1024 * 1024;
/// The longest attachment URL.
pub const MAX_URL_CHARS: usize = 2048;
/// The longest message id and attachment name.
pub const MAX_ID_CHARS: usize = 128;
pub const MAX_NAME_CHARS: usize = 256;

/// Who wrote an entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChatAuthor {
    Customer,
    Human,
    /// Baton itself: only the ENDED entry.
    System,
}

impl ChatAuthor {
    /// Its number in the store.
    pub fn code(self) -> i64 {
        match self {
            ChatAuthor::Customer => 1,
            ChatAuthor::Human => 2,
            ChatAuthor::System => 3,
        }
    }

    pub fn from_code(code: i64) -> Option<Self> {
        match code {
            1 => Some(ChatAuthor::Customer),
            2 => Some(ChatAuthor::Human),
            3 => Some(ChatAuthor::System),
            _ => None,
        }
    }
}

/// Why a conversation ended: how its handoff ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChatEndReason {
    Completed,
    Cancelled,
    Failed,
    HandedBack,
}

impl ChatEndReason {
    /// The reason a handoff's terminal state gives; `None` while it runs.
    pub fn of(state: HandoffState) -> Option<Self> {
        match state {
            HandoffState::Completed => Some(ChatEndReason::Completed),
            HandoffState::Cancelled => Some(ChatEndReason::Cancelled),
            HandoffState::Failed => Some(ChatEndReason::Failed),
            _ if state.is_terminal() => Some(ChatEndReason::HandedBack),
            _ => None,
        }
    }

    pub fn code(self) -> i64 {
        match self {
            ChatEndReason::Completed => 1,
            ChatEndReason::Cancelled => 2,
            ChatEndReason::Failed => 3,
            ChatEndReason::HandedBack => 4,
        }
    }

    pub fn from_code(code: i64) -> Option<Self> {
        match code {
            1 => Some(ChatEndReason::Completed),
            2 => Some(ChatEndReason::Cancelled),
            3 => Some(ChatEndReason::Failed),
            4 => Some(ChatEndReason::HandedBack),
            _ => None,
        }
    }

    /// The final message both sides read.
    pub fn message(self) -> &'static str {
        match self {
            ChatEndReason::Completed => "The conversation is over: the agent completed it.",
            ChatEndReason::Cancelled => "The conversation is over: the handoff was cancelled.",
            ChatEndReason::Failed => "The conversation is over: no agent could take it.",
            ChatEndReason::HandedBack => {
                "The conversation is over: the agent handed it back to the assistant."
            }
        }
    }
}

/// A file shared by reference.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChatAttachment {
    pub url: String,
    pub media_type: String,
    pub size_bytes: u64,
    #[serde(default)]
    pub name: String,
}

/// A message as its writer sent it, before it has a sequence.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChatDraft {
    pub message_id: String,
    pub text: String,
    pub attachments: Vec<ChatAttachment>,
    /// The name the writer shows (the human's display name); may be empty.
    pub author_name: String,
}

/// One stored entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChatEntry {
    pub handoff_id: String,
    pub sequence: u64,
    pub author: ChatAuthor,
    /// The writer's id of the message; empty on the ENDED entry.
    pub message_id: String,
    pub text: String,
    pub attachments: Vec<ChatAttachment>,
    pub author_name: String,
    pub time_ms: i64,
    /// Set on the ENDED entry, the log's last.
    pub ended: Option<ChatEndReason>,
}

/// What appending a message did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChatAppend {
    /// Stored now, with this sequence.
    Stored(ChatEntry),
    /// The writer sent this message id before: the entry stored then.
    AlreadyStored(ChatEntry),
    /// The conversation has ended; nothing was stored.
    Ended(ChatEntry),
}

impl ChatAppend {
    /// The entry the writer reads back: its message, or the end.
    pub fn entry(&self) -> &ChatEntry {
        match self {
            ChatAppend::Stored(entry)
            | ChatAppend::AlreadyStored(entry)
            | ChatAppend::Ended(entry) => entry,
        }
    }
}

/// What is wrong with a draft, as (field, problem) pairs; empty when none.
pub fn draft_problems(draft: &ChatDraft) -> Vec<(String, String)> {
    let mut problems = Vec::new();
    let mut problem = |field: String, text: &str| problems.push((field, text.to_string()));
    let id_chars = draft.message_id.chars().count();
    if id_chars == 0 || id_chars > MAX_ID_CHARS {
        problem(
            "client_message_id".into(),
            "must be 1 to 128 characters, unique per handoff",
        );
    }
    if draft.text.chars().count() > MAX_TEXT_CHARS {
        problem("text".into(), "must be at most 4096 characters");
    }
    if draft.text.trim().is_empty() && draft.attachments.is_empty() {
        problem("text".into(), "a message needs text, attachments or both");
    }
    if draft.attachments.len() > MAX_ATTACHMENTS {
        problem("attachments".into(), "at most 10 per message");
    }
    for (index, attachment) in draft.attachments.iter().enumerate() {
        let field = |name: &str| format!("attachments[{index}].{name}");
        let url = attachment.url.as_str();
        let loopback = ["http://127.0.0.1", "http://localhost", "http://[::1]"]
            .iter()
            .any(|prefix| url.starts_with(prefix));
        if !(url.starts_with("https://") || loopback) || url.chars().count() > MAX_URL_CHARS {
            problem(
                field("url"),
                "must be an https URL (http only on loopback) of at most 2048 characters; \
                 files go by reference, never inline",
            );
        }
        let media = attachment.media_type.as_str();
        if media.len() > MAX_ID_CHARS || media.split('/').filter(|p| !p.is_empty()).count() != 2 {
            problem(field("media_type"), "must be a media type like image/png");
        }
        if attachment.size_bytes == 0 || attachment.size_bytes > MAX_ATTACHMENT_BYTES {
            problem(field("size_bytes"), "must be 1 byte to 25 MiB");
        }
        if attachment.name.chars().count() > MAX_NAME_CHARS {
            problem(field("name"), "must be at most 256 characters");
        }
    }
    problems
}

#[cfg(test)]
mod tests {
    use super::*;

    fn draft(text: &str) -> ChatDraft {
        ChatDraft {
            message_id: "m-1".into(),
            text: text.into(),
            attachments: Vec::new(),
            author_name: String::new(),
        }
    }

    #[test]
    fn a_plain_message_passes() {
        assert!(draft_problems(&draft("hello")).is_empty());
    }

    #[test]
    fn an_empty_or_oversized_message_is_refused_naming_its_field() {
        let fields = |d: &ChatDraft| -> Vec<String> {
            draft_problems(d).into_iter().map(|(f, _)| f).collect()
        };
        assert_eq!(fields(&draft("  ")), ["text"]);
        assert_eq!(fields(&draft(&"x".repeat(MAX_TEXT_CHARS + 1))), ["text"]);
        let mut no_id = draft("hi");
        no_id.message_id.clear();
        assert_eq!(fields(&no_id), ["client_message_id"]);
    }

    #[test]
    fn attachments_go_by_reference_within_limits() {
        let mut with = draft("");
        with.attachments.push(ChatAttachment {
            url: "https://files.example/a.png".into(),
            media_type: "image/png".into(),
            size_bytes: 1000,
            name: "a.png".into(),
        });
        assert!(draft_problems(&with).is_empty());
        with.attachments.push(ChatAttachment {
            url: "data:image/png;base64,AAAA".into(),
            media_type: "png".into(),
            size_bytes: MAX_ATTACHMENT_BYTES + 1,
            name: String::new(),
        });
        let fields: Vec<String> = draft_problems(&with).into_iter().map(|(f, _)| f).collect();
        assert_eq!(
            fields,
            [
                "attachments[1].url",
                "attachments[1].media_type",
                "attachments[1].size_bytes"
            ]
        );
    }

    #[test]
    fn every_terminal_state_has_a_reason_and_no_other_does() {
        assert_eq!(
            ChatEndReason::of(HandoffState::Completed),
            Some(ChatEndReason::Completed)
        );
        assert_eq!(ChatEndReason::of(HandoffState::Connected), None);
        for reason in [
            ChatEndReason::Completed,
            ChatEndReason::Cancelled,
            ChatEndReason::Failed,
            ChatEndReason::HandedBack,
        ] {
            assert_eq!(ChatEndReason::from_code(reason.code()), Some(reason));
        }
    }
}
