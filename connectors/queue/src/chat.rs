//! Chat conversations on the agent desktop: the relay of each chat
//! transfer (`Connector::converse`, through the SDK's [`ChatRelay`]) and
//! what the desktop's chat pane reads and sends (`/api/chats…`).
//!
//! The control service keeps the conversation log; this keeps, per
//! handoff, the entries it has received (so that a reconnect of the relay
//! names the last one and nothing is sent twice) and the agent's messages
//! not yet acknowledged (sent again on every reconnect, by their id, which
//! the control service stores once). Only the agent connected to the
//! contact reads or writes its conversation. Kept in memory: after a
//! restart the relay reconnects from sequence 0 and gets the whole log.

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard};

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use baton_connector_sdk::chat::{
    ChatAuthor, ChatEntry, ChatEntryKind, ChatMessageDraft, ChatRelay, FromControl,
};
use serde::{Deserialize, Serialize};
use tokio::sync::{mpsc, watch};

use crate::desk::{Desk, DeskFailure};
use crate::http::{DeskHttp, Needs};

/// What the pane sends, forwarded to the relay if one is open.
#[derive(Debug, Clone)]
enum ToControl {
    Message(ChatMessageDraft),
    Typing(bool),
    Read(u64),
}

/// One handoff's conversation as this connector has it.
#[derive(Debug, Default)]
struct Conversation {
    tenant: String,
    /// The log's entries received, in sequence order from 1.
    entries: Vec<ChatEntry>,
    /// The agent's messages not yet back as entries.
    pending: Vec<ChatMessageDraft>,
    customer_typing: bool,
    customer_read_through: u64,
    /// The open relay's outbound side.
    link: Option<mpsc::Sender<ToControl>>,
}

impl Conversation {
    fn last_sequence(&self) -> u64 {
        self.entries.last().map_or(0, |e| e.sequence)
    }

    fn ended(&self) -> bool {
        self.entries
            .last()
            .is_some_and(|e| e.kind == ChatEntryKind::Ended as i32)
    }

    /// Takes an entry once, in order; acknowledges the agent's message.
    fn receive(&mut self, entry: ChatEntry) {
        if entry.sequence != self.last_sequence() + 1 {
            return;
        }
        if entry.author == ChatAuthor::Human as i32 {
            self.pending
                .retain(|p| p.client_message_id != entry.client_message_id);
        }
        self.entries.push(entry);
    }
}

/// Every chat conversation of this connector.
#[derive(Debug)]
pub struct Chats {
    conversations: Mutex<HashMap<String, Conversation>>,
    /// Bumped on every change, for the pane's long poll.
    version: watch::Sender<u64>,
}

impl Default for Chats {
    fn default() -> Self {
        Self {
            conversations: Mutex::default(),
            version: watch::channel(0).0,
        }
    }
}

impl Chats {
    fn lock(&self) -> MutexGuard<'_, HashMap<String, Conversation>> {
        self.conversations.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn changed(&self) {
        self.version.send_modify(|v| *v += 1);
    }

    /// Serves one relay until the control service closes it.
    pub async fn serve(&self, desk: &Desk, mut relay: ChatRelay) {
        if desk.contact_tenant(&relay.handoff_id).as_deref() != Some(relay.tenant.as_str()) {
            relay
                .refuse(baton_connector_sdk::chat::Status::not_found(
                    "this connector has no such transfer for this tenant",
                ))
                .await;
            return;
        }
        let (link, mut outbound) = mpsc::channel(64);
        let (after, pending) = {
            let mut all = self.lock();
            let conversation = all.entry(relay.handoff_id.clone()).or_default();
            conversation.tenant = relay.tenant.clone();
            conversation.link = Some(link);
            (conversation.last_sequence(), conversation.pending.clone())
        };
        if !relay.opened(after).await {
            return;
        }
        // Sent before the reconnect and not acknowledged: again, by id.
        for draft in pending {
            relay.message(draft).await;
        }
        loop {
            tokio::select! {
                incoming = relay.incoming.recv() => match incoming {
                    Some(message) => self.take(&relay.handoff_id, message),
                    None => break,
                },
                Some(message) = outbound.recv() => {
                    let open = match message {
                        ToControl::Message(draft) => relay.message(draft).await,
                        ToControl::Typing(active) => relay.typing(active).await,
                        ToControl::Read(through) => relay.read(through).await,
                    };
                    if !open {
                        break;
                    }
                }
            }
        }
        if let Some(conversation) = self.lock().get_mut(&relay.handoff_id) {
            conversation.link = None;
        }
    }

    fn take(&self, handoff_id: &str, message: FromControl) {
        {
            let mut all = self.lock();
            let Some(conversation) = all.get_mut(handoff_id) else {
                return;
            };
            match message {
                FromControl::Entry(entry) => conversation.receive(entry),
                FromControl::Typing(active) => conversation.customer_typing = active,
                FromControl::Read(through) => {
                    conversation.customer_read_through =
                        conversation.customer_read_through.max(through);
                }
            }
        }
        self.changed();
    }

    /// Queues the agent's input and forwards it to the open relay.
    fn send(&self, handoff_id: &str, message: ToControl) -> Result<(), DeskFailure> {
        let link = {
            let mut all = self.lock();
            let conversation = all
                .get_mut(handoff_id)
                .ok_or_else(|| DeskFailure::Forbidden("no chat for this handoff".into()))?;
            if conversation.ended() {
                return Err(DeskFailure::Invalid("the conversation is over".into()));
            }
            if let ToControl::Message(draft) = &message
                && !conversation
                    .pending
                    .iter()
                    .any(|p| p.client_message_id == draft.client_message_id)
            {
                conversation.pending.push(draft.clone());
            }
            conversation.link.clone()
        };
        self.changed();
        // Without a relay now, the message waits in `pending` for the next.
        if let Some(link) = link {
            let _ = link.try_send(message);
        }
        Ok(())
    }

    fn view(&self, handoff_id: &str, after: u64) -> Option<ChatView> {
        let all = self.lock();
        let conversation = all.get(handoff_id)?;
        Some(ChatView {
            handoff_id: handoff_id.to_owned(),
            entries: conversation
                .entries
                .iter()
                .filter(|e| e.sequence > after)
                .map(EntryView::of)
                .collect(),
            pending: conversation
                .pending
                .iter()
                .map(|p| PendingView {
                    id: p.client_message_id.clone(),
                    text: p.text.clone(),
                })
                .collect(),
            customer_typing: conversation.customer_typing,
            customer_read_through: conversation.customer_read_through,
            ended: conversation.ended(),
            connected: conversation.link.is_some(),
        })
    }

    fn handoffs(&self) -> Vec<String> {
        self.lock().keys().cloned().collect()
    }
}

/// An entry as the pane shows it.
#[derive(Debug, Serialize)]
struct EntryView {
    sequence: u64,
    /// "customer", "agent" or "system".
    author: &'static str,
    id: String,
    text: String,
    attachments: Vec<AttachmentView>,
    time_ms: i64,
    ended: bool,
}

#[derive(Debug, Serialize)]
struct AttachmentView {
    url: String,
    media_type: String,
    size_bytes: u64,
    name: String,
}

impl EntryView {
    fn of(entry: &ChatEntry) -> Self {
        let author = match ChatAuthor::try_from(entry.author) {
            Ok(ChatAuthor::Customer) => "customer",
            Ok(ChatAuthor::Human) => "agent",
            _ => "system",
        };
        Self {
            sequence: entry.sequence,
            author,
            id: entry.client_message_id.clone(),
            text: entry.text.clone(),
            attachments: entry
                .attachments
                .iter()
                .map(|a| AttachmentView {
                    url: a.url.clone(),
                    media_type: a.media_type.clone(),
                    size_bytes: a.size_bytes,
                    name: a.name.clone(),
                })
                .collect(),
            time_ms: entry
                .create_time
                .as_ref()
                .map_or(0, |t| t.seconds * 1000 + i64::from(t.nanos / 1_000_000)),
            ended: entry.kind == ChatEntryKind::Ended as i32,
        }
    }
}

#[derive(Debug, Serialize)]
struct PendingView {
    id: String,
    text: String,
}

/// One conversation for the pane: the entries after `after`, and what
/// waits.
#[derive(Debug, Serialize)]
pub struct ChatView {
    handoff_id: String,
    entries: Vec<EntryView>,
    pending: Vec<PendingView>,
    customer_typing: bool,
    customer_read_through: u64,
    ended: bool,
    /// A relay to the control service is open now.
    connected: bool,
}

/// The chat pane's script.
pub const CHAT_JS: &str = include_str!("../assets/chat.js");

/// The most characters an agent's message holds (the contract's limit).
const MAX_TEXT_CHARS: usize = 4096;

/// The signed-in agent, who must be the one connected to `handoff_id`.
fn agent_of(
    state: &DeskHttp,
    headers: &HeaderMap,
    handoff_id: &str,
    changes: bool,
) -> Result<String, DeskFailure> {
    let (_, session) = state.authorize(headers, Needs::Agent, changes)?;
    if state.desk.connected_agent(handoff_id).as_deref() != Some(session.account.as_str()) {
        return Err(DeskFailure::Forbidden(
            "only the agent connected to the handoff has its chat".into(),
        ));
    }
    Ok(session.account)
}

#[derive(Debug, Deserialize)]
pub struct After {
    #[serde(default)]
    after: u64,
}

/// `GET /api/chats`: the conversations of the signed-in agent's contacts.
pub async fn list(
    State(state): State<DeskHttp>,
    headers: HeaderMap,
) -> Result<Json<Vec<String>>, DeskFailure> {
    let (_, session) = state.authorize(&headers, Needs::Agent, false)?;
    let mine = state
        .desk
        .chats
        .handoffs()
        .into_iter()
        .filter(|id| state.desk.connected_agent(id).as_deref() == Some(session.account.as_str()))
        .collect();
    Ok(Json(mine))
}

/// `GET /api/chats/{id}?after=N`: the entries after N and what waits.
pub async fn read(
    State(state): State<DeskHttp>,
    headers: HeaderMap,
    Path(id): Path<String>,
    Query(after): Query<After>,
) -> Result<Json<ChatView>, DeskFailure> {
    agent_of(&state, &headers, &id, false)?;
    state
        .desk
        .chats
        .view(&id, after.after)
        .map(Json)
        .ok_or_else(|| DeskFailure::Forbidden("no chat for this handoff".into()))
}

#[derive(Debug, Deserialize)]
pub struct NewMessage {
    /// The page's id of the message, so that a retry is stored once.
    id: String,
    text: String,
}

/// `POST /api/chats/{id}/messages`.
pub async fn post_message(
    State(state): State<DeskHttp>,
    headers: HeaderMap,
    Path(id): Path<String>,
    Json(message): Json<NewMessage>,
) -> Result<StatusCode, DeskFailure> {
    agent_of(&state, &headers, &id, true)?;
    let chars = message.text.chars().count();
    if message.id.is_empty() || message.id.len() > 128 || chars == 0 || chars > MAX_TEXT_CHARS {
        return Err(DeskFailure::Invalid(
            "a message needs an id (1 to 128 characters) and 1 to 4096 characters of text".into(),
        ));
    }
    state.desk.chats.send(
        &id,
        ToControl::Message(ChatMessageDraft {
            client_message_id: message.id,
            text: message.text,
            attachments: Vec::new(),
        }),
    )?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Debug, Deserialize)]
pub struct Typing {
    active: bool,
}

/// `POST /api/chats/{id}/typing`.
pub async fn post_typing(
    State(state): State<DeskHttp>,
    headers: HeaderMap,
    Path(id): Path<String>,
    Json(typing): Json<Typing>,
) -> Result<StatusCode, DeskFailure> {
    agent_of(&state, &headers, &id, true)?;
    state
        .desk
        .chats
        .send(&id, ToControl::Typing(typing.active))?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Debug, Deserialize)]
pub struct Read {
    through: u64,
}

/// `POST /api/chats/{id}/read`.
pub async fn post_read(
    State(state): State<DeskHttp>,
    headers: HeaderMap,
    Path(id): Path<String>,
    Json(read): Json<Read>,
) -> Result<StatusCode, DeskFailure> {
    agent_of(&state, &headers, &id, true)?;
    state.desk.chats.send(&id, ToControl::Read(read.through))?;
    Ok(StatusCode::NO_CONTENT)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(sequence: u64, author: ChatAuthor, id: &str) -> ChatEntry {
        ChatEntry {
            sequence,
            author: author as i32,
            kind: ChatEntryKind::Message as i32,
            client_message_id: id.into(),
            text: format!("m{sequence}"),
            ..Default::default()
        }
    }

    #[test]
    fn entries_are_taken_once_in_order_and_acknowledge_the_agents_messages() {
        let mut conversation = Conversation::default();
        conversation.pending.push(ChatMessageDraft {
            client_message_id: "a-1".into(),
            text: "hello".into(),
            attachments: Vec::new(),
        });
        conversation.receive(entry(1, ChatAuthor::Customer, "c-1"));
        conversation.receive(entry(1, ChatAuthor::Customer, "c-1"));
        conversation.receive(entry(3, ChatAuthor::Customer, "c-3"));
        assert_eq!(
            conversation.last_sequence(),
            1,
            "a repeat and a gap are ignored"
        );
        conversation.receive(entry(2, ChatAuthor::Human, "a-1"));
        assert!(conversation.pending.is_empty(), "acknowledged by its entry");
        assert!(!conversation.ended());
        let mut end = entry(3, ChatAuthor::System, "");
        end.kind = ChatEntryKind::Ended as i32;
        conversation.receive(end);
        assert!(conversation.ended());
    }
}
