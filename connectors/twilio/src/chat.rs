//! Chat transfers over Twilio Conversations: each has a Conversation
//! (`CH…`) that a Flex agent joins through a TaskRouter chat task. The
//! relay ([`Connector::converse`](baton_connector_sdk::Connector::converse))
//! posts the customer's messages to it, authored [`CUSTOMER_AUTHOR`]; the
//! agent's come back through the Conversations post-event webhook
//! ([`CONVERSATION_EVENTS_PATH`], signed like every callback) and go to the
//! relay with their Message SID (`IM…`) as id; the Conversation closed ends
//! the transfer.
//!
//! Nothing is posted twice: a customer's message is posted with its log
//! sequence in the message's attributes, and the last sequence dealt with
//! is journalled (`chat_through` in the transfer's note). A relay that
//! reconnects, or a connector that restarted, reads the Conversation's
//! messages once: the parts it finds posted are not posted again, and the
//! agent's messages are sent to the relay again (the control service
//! stores a message id once), so that none is lost while no relay was
//! open. Attachments travel by reference: a customer's are posted as their
//! URLs; the agent's media are not relayed (their URLs need the account's
//! credentials), a note in the text says one was sent.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use baton_connector_sdk::FailureReason;
use baton_connector_sdk::chat::{
    ChatAuthor, ChatEntry, ChatEntryKind, ChatMessageDraft, ChatRelay, FromControl, Status,
};
use serde_json::json;
use tokio::sync::mpsc;

use crate::callbacks::{CallNote, Callbacks, TransferHandle, param, signed_params};
use crate::conversations::ConversationsApi;

/// Where the Conversations service's post-event webhook (filters
/// `onMessageAdded`, `onConversationStateUpdated`) is set, below the
/// callbacks' public URL.
pub const CONVERSATION_EVENTS_PATH: &str = "/v1/conversations/events";
/// The author of the customer's messages in the Conversation.
pub const CUSTOMER_AUTHOR: &str = "baton-customer";
/// The longest body of one Conversations message: longer customer
/// messages are posted in parts.
const MAX_BODY_CHARS: usize = 1600;

/// One chat transfer's Conversation.
#[derive(Debug)]
pub struct Chat {
    tenant: String,
    conversation_sid: String,
    handle: TransferHandle,
    /// Held by the open relay: one at a time posts.
    relay: tokio::sync::Mutex<Relayed>,
    /// The agent's messages not yet back as entries of the log.
    pending: Mutex<Vec<ChatMessageDraft>>,
    /// The open relay's outbound side.
    link: Mutex<Option<mpsc::Sender<ChatMessageDraft>>>,
}

/// Where the relay stands.
#[derive(Debug, Default)]
struct Relayed {
    /// The last entry dealt with.
    through: u64,
    /// The customer's message parts found in the Conversation, by
    /// (sequence, part).
    posted: HashSet<(u64, u64)>,
    /// The Conversation's messages were read since this process took it.
    synced: bool,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

impl Chat {
    fn pending(&self, draft: ChatMessageDraft) {
        let mut pending = lock(&self.pending);
        if pending
            .iter()
            .all(|p| p.client_message_id != draft.client_message_id)
        {
            pending.push(draft.clone());
        }
        drop(pending);
        // Without a relay now, the message waits for the next.
        if let Some(link) = lock(&self.link).as_ref() {
            let _ = link.try_send(draft);
        }
    }

    /// Reads the Conversation once: what was posted, what the agent said.
    async fn sync(&self, api: &ConversationsApi, relayed: &mut Relayed) -> Result<(), String> {
        if relayed.synced {
            return Ok(());
        }
        let messages = api
            .messages(&self.conversation_sid)
            .await
            .map_err(|e| format!("reading conversation {}: {e}", self.conversation_sid))?;
        for message in messages {
            if let Some(part) = message.posted_part() {
                relayed.posted.insert(part);
            } else if message.author.as_deref() != Some(CUSTOMER_AUTHOR) {
                self.pending(agent_draft(
                    &message.sid,
                    message.body.as_deref().unwrap_or_default(),
                    message.media.as_ref().is_some_and(|m| !m.is_null()),
                ));
            }
        }
        relayed.synced = true;
        Ok(())
    }

    /// Deals with one entry of the log, once.
    async fn take(
        &self,
        api: &ConversationsApi,
        relayed: &mut Relayed,
        entry: ChatEntry,
    ) -> Result<(), String> {
        if entry.sequence <= relayed.through {
            return Ok(());
        }
        if entry.kind == ChatEntryKind::Ended as i32 {
            if let Err(error) = api.close(&self.conversation_sid).await {
                tracing::info!(conversation = %self.conversation_sid, %error, "conversation not closed at the handoff's end");
            }
        } else if entry.author == ChatAuthor::Customer as i32 {
            for (part, body) in customer_parts(&entry).into_iter().enumerate() {
                let part = part as u64;
                if relayed.posted.contains(&(entry.sequence, part)) {
                    continue;
                }
                let attributes = json!({
                    "baton_sequence": entry.sequence,
                    "baton_part": part,
                    "baton_message_id": entry.client_message_id,
                });
                api.post_message(&self.conversation_sid, CUSTOMER_AUTHOR, &body, &attributes)
                    .await
                    .map_err(|e| {
                        format!("posting to conversation {}: {e}", self.conversation_sid)
                    })?;
                relayed.posted.insert((entry.sequence, part));
            }
        } else if entry.author == ChatAuthor::Human as i32 {
            lock(&self.pending).retain(|p| p.client_message_id != entry.client_message_id);
        }
        relayed.through = entry.sequence;
        let through = entry.sequence;
        self.handle
            .update_note(|note| note.chat_through = through)
            .await;
        Ok(())
    }

    /// The Conversation was closed (by the agent, or Flex's wrap-up).
    async fn closed(&self) {
        let events = self.handle.events();
        if self.handle.is_connected() {
            events
                .completed("the agent closed the Twilio conversation")
                .await;
        } else {
            events
                .failed(
                    FailureReason::NoAgents,
                    "the Twilio conversation was closed before an agent accepted it",
                )
                .await;
        }
        self.handle.end_if_ended();
    }
}

/// The customer's message as Conversations bodies: the text, then each
/// attachment's URL, in parts of at most [`MAX_BODY_CHARS`].
fn customer_parts(entry: &ChatEntry) -> Vec<String> {
    let mut text = entry.text.clone();
    for attachment in &entry.attachments {
        if !text.is_empty() {
            text.push('\n');
        }
        let name = if attachment.name.is_empty() {
            attachment.media_type.as_str()
        } else {
            attachment.name.as_str()
        };
        text.push_str(&format!("[{name}] {}", attachment.url));
    }
    let chars: Vec<char> = text.chars().collect();
    if chars.is_empty() {
        return vec![String::new()];
    }
    chars
        .chunks(MAX_BODY_CHARS)
        .map(|chunk| chunk.iter().collect())
        .collect()
}

/// An agent's message for the relay.
fn agent_draft(message_sid: &str, body: &str, has_media: bool) -> ChatMessageDraft {
    let mut text = body.to_owned();
    if has_media {
        if !text.is_empty() {
            text.push('\n');
        }
        text.push_str("(the agent sent a file, which Baton does not relay)");
    }
    ChatMessageDraft {
        client_message_id: message_sid.to_owned(),
        text,
        attachments: Vec::new(),
    }
}

/// Every chat transfer's Conversation, by Conversation SID.
#[derive(Debug, Default)]
pub struct Chats {
    by_conversation: Mutex<HashMap<String, Arc<Chat>>>,
}

impl Chats {
    /// Follows a transfer's Conversation for `keep`; `through` is the
    /// journalled last entry dealt with.
    pub fn add(
        self: &Arc<Self>,
        tenant: &str,
        conversation_sid: &str,
        handle: TransferHandle,
        through: u64,
        keep: Duration,
    ) {
        let chats = Arc::downgrade(self);
        let forget = conversation_sid.to_owned();
        tokio::spawn(async move {
            tokio::time::sleep(keep).await;
            if let Some(chats) = chats.upgrade() {
                lock(&chats.by_conversation).remove(&forget);
            }
        });
        let chat = Arc::new(Chat {
            tenant: tenant.to_owned(),
            conversation_sid: conversation_sid.to_owned(),
            handle,
            relay: tokio::sync::Mutex::new(Relayed {
                through,
                ..Default::default()
            }),
            pending: Mutex::default(),
            link: Mutex::default(),
        });
        lock(&self.by_conversation).insert(conversation_sid.to_owned(), chat);
    }

    pub fn remove(&self, conversation_sid: &str) {
        lock(&self.by_conversation).remove(conversation_sid);
    }

    /// Ends the transfer of a Conversation found closed.
    pub async fn closed(&self, conversation_sid: &str) {
        let chat = lock(&self.by_conversation).get(conversation_sid).cloned();
        if let Some(chat) = chat {
            chat.closed().await;
        }
    }

    fn of_transfer(&self, handoff_id: &str, attempt: u32) -> Option<Arc<Chat>> {
        lock(&self.by_conversation)
            .values()
            .find(|chat| {
                let (id, n) = chat.handle.transfer();
                id == handoff_id && *n == attempt
            })
            .cloned()
    }

    /// The transfer's note, if it is a chat transfer followed here.
    pub async fn note_of(&self, handoff_id: &str, attempt: u32) -> Option<CallNote> {
        let chat = self.of_transfer(handoff_id, attempt)?;
        Some(chat.handle.note().await)
    }

    /// Serves one relay until the control service closes it.
    pub async fn serve(&self, api: &ConversationsApi, mut relay: ChatRelay) {
        let Some(chat) = self
            .of_transfer(&relay.handoff_id, relay.attempt)
            .filter(|chat| chat.tenant == relay.tenant)
        else {
            relay
                .refuse(Status::not_found(
                    "this connector has no chat transfer for this handoff, attempt and tenant",
                ))
                .await;
            return;
        };
        // A reconnect waits for the relay it replaces to end.
        let mut relayed = chat.relay.lock().await;
        if let Err(detail) = chat.sync(api, &mut relayed).await {
            relay.refuse(Status::unavailable(detail)).await;
            return;
        }
        let (link, mut outbound) = mpsc::channel(64);
        *lock(&chat.link) = Some(link);
        if !relay.opened(relayed.through).await {
            *lock(&chat.link) = None;
            return;
        }
        let pending = lock(&chat.pending).clone();
        for draft in pending {
            relay.message(draft).await;
        }
        let failure = loop {
            tokio::select! {
                incoming = relay.incoming.recv() => match incoming {
                    Some(FromControl::Entry(entry)) => {
                        if let Err(detail) = chat.take(api, &mut relayed, entry).await {
                            break Some(detail);
                        }
                    }
                    // Twilio's typing and read indicators are the Chat
                    // SDK's, not the REST API's.
                    Some(FromControl::Typing(_) | FromControl::Read(_)) => {}
                    None => break None,
                },
                Some(draft) = outbound.recv() => {
                    if !relay.message(draft).await {
                        break None;
                    }
                }
            }
        };
        *lock(&chat.link) = None;
        if let Some(detail) = failure {
            tracing::warn!(%detail, "chat relay ended; the control service sends again");
            relay.refuse(Status::unavailable(detail)).await;
        }
    }
}

/// The Conversations service's post-event webhook: an agent's message, or
/// a Conversation's state. Events of Conversations this connector does not
/// follow (the account's others) are acknowledged and ignored.
pub async fn conversation_event(
    State(callbacks): State<Arc<Callbacks>>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let params = match signed_params(&callbacks, &uri, &headers, &body) {
        Ok(params) => params,
        Err(refusal) => return refusal.into_response(),
    };
    let chat = lock(&callbacks.chats.by_conversation)
        .get(param(&params, "ConversationSid"))
        .cloned();
    let Some(chat) = chat else {
        return StatusCode::OK.into_response();
    };
    match param(&params, "EventType") {
        "onMessageAdded" => {
            let sid = param(&params, "MessageSid");
            let own = param(&params, "Author") == CUSTOMER_AUTHOR;
            if !own && is_sid(sid, "IM") {
                chat.pending(agent_draft(
                    sid,
                    param(&params, "Body"),
                    !param(&params, "Media").is_empty(),
                ));
            }
        }
        "onConversationStateUpdated" if param(&params, "StateTo") == "closed" => {
            chat.closed().await;
        }
        _ => {}
    }
    StatusCode::OK.into_response()
}

fn is_sid(text: &str, prefix: &str) -> bool {
    text.len() == 34 && text.starts_with(prefix) && text[2..].bytes().all(|b| b.is_ascii_hexdigit())
}

#[cfg(test)]
mod tests {
    use super::*;
    use baton_connector_sdk::chat::ChatAttachment;

    #[test]
    fn a_long_message_and_its_attachments_are_posted_in_parts_by_reference() {
        let entry = ChatEntry {
            sequence: 3,
            author: ChatAuthor::Customer as i32,
            kind: ChatEntryKind::Message as i32,
            text: "x".repeat(MAX_BODY_CHARS + 10),
            attachments: vec![ChatAttachment {
                url: "https://files.example/receipt.png".into(),
                media_type: "image/png".into(),
                size_bytes: 10,
                name: "receipt.png".into(),
            }],
            ..Default::default()
        };
        let parts = customer_parts(&entry);
        assert_eq!(parts.len(), 2);
        assert_eq!(parts[0].chars().count(), MAX_BODY_CHARS);
        assert!(parts[1].ends_with("[receipt.png] https://files.example/receipt.png"));
    }

    #[test]
    fn an_agents_file_is_named_not_relayed() {
        let draft = agent_draft("IM0123", "", true);
        assert_eq!(draft.client_message_id, "IM0123");
        assert!(draft.text.contains("does not relay"));
        assert!(draft.attachments.is_empty());
    }
}
