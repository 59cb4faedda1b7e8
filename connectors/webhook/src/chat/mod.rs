//! Chat handoffs relayed through a platform's endpoint (its `chat_url`).
//!
//! A chat transfer delivered to an endpoint with a `chat_url` stays
//! connected until the platform posts `end`. Meanwhile the control
//! service's relay (`ConverseTransfer`) brings the conversation's entries,
//! each posted to `chat_url` as a signed message whose `webhook-id` is
//! derived from the transfer and the entry's sequence; the platform posts
//! the human's messages, typing, read and end to
//! `/v1/chats/{handoff_id}/{attempt}`, signed with the endpoint's secret.
//!
//! What the connector keeps ([`store`]) makes a reconnect of the relay and
//! a restart of the connector lossless and free of duplicates: the relay
//! is answered with the last entry the platform accepted, and the human's
//! messages not yet back as entries are sent again (the control service
//! stores a message id once); those posted while no relay is open wait
//! there, bounded, for the next one.

pub mod store;
pub mod wire;

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, MutexGuard};

use baton_connector_sdk::chat::{
    ChatAuthor, ChatEntry, ChatEntryKind, ChatRelay, FromControl, Status,
};
use tokio::sync::{mpsc, watch};

use crate::delivery::{Deliverer, DeliveryError, Endpoint, Message};
use store::{ChatStore, Queued};
use wire::{ChatTransfer, FromPlatform};

/// A transfer: handoff id and attempt.
type Key = (String, u32);

/// What the platform posted, for the open relay.
#[derive(Debug)]
enum ToControl {
    Message(wire::HumanMessage),
    Typing(bool),
    Read(u64),
}

/// Why a request of the platform was refused.
#[derive(Debug, thiserror::Error)]
pub enum ChatError {
    #[error("the signature does not match the secret of any chat endpoint")]
    Unauthenticated,
    #[error("no chat of this endpoint has this handoff and attempt")]
    Unknown,
    #[error("{0}")]
    Invalid(String),
    #[error("the conversation is over")]
    Over,
    #[error("too many messages of the human wait for the relay; retry later")]
    Full,
    #[error("the chat store failed")]
    Store(#[from] anyhow::Error),
}

/// A signed request of the platform.
#[derive(Debug)]
pub struct SignedRequest<'a> {
    pub id: &'a str,
    pub timestamp: i64,
    pub signature: &'a str,
    pub body: &'a [u8],
}

/// Every chat of this connector.
#[derive(Debug)]
pub struct Chats {
    store: ChatStore,
    /// The endpoints with a `chat_url`, by name.
    endpoints: BTreeMap<String, Arc<Endpoint>>,
    deliverer: Deliverer,
    /// `{public_url}/v1/chats`.
    reply_base: String,
    /// The open relay of each transfer.
    links: Mutex<HashMap<Key, mpsc::Sender<ToControl>>>,
    /// The running transfers, each waiting for the human's end.
    ends: Mutex<HashMap<Key, watch::Sender<bool>>>,
}

impl Chats {
    pub fn new(
        store: ChatStore,
        endpoints: BTreeMap<String, Arc<Endpoint>>,
        deliverer: Deliverer,
        public_url: &str,
    ) -> Self {
        Self {
            store,
            endpoints: endpoints
                .into_iter()
                .filter(|(_, e)| e.chat_url.is_some())
                .collect(),
            deliverer,
            reply_base: format!("{}/v1/chats", public_url.trim_end_matches('/')),
            links: Mutex::default(),
            ends: Mutex::default(),
        }
    }

    /// Whether any endpoint takes chats (the connector's chat capability).
    pub fn any(&self) -> bool {
        !self.endpoints.is_empty()
    }

    /// Where the platform posts the human's side of a transfer's chat.
    pub fn reply_url(&self, handoff_id: &str, attempt: u32) -> String {
        format!("{}/{handoff_id}/{attempt}", self.reply_base)
    }

    fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
        mutex.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Keeps the chat of a transfer delivered to `endpoint`; resolves to
    /// true once the human ended it (also if it was before a restart).
    pub fn begin(
        &self,
        tenant: &str,
        handoff_id: &str,
        attempt: u32,
        endpoint: &str,
    ) -> anyhow::Result<watch::Receiver<bool>> {
        self.store.register(handoff_id, attempt, tenant, endpoint)?;
        let human_ended = self
            .store
            .conversation(handoff_id, attempt)?
            .is_some_and(|c| c.human_ended);
        let (ended, receiver) = watch::channel(human_ended);
        Self::lock(&self.ends).insert((handoff_id.to_owned(), attempt), ended);
        Ok(receiver)
    }

    /// The transfer is over for this process (ended or cancelled); its
    /// conversation is kept for the relay, which still brings the end.
    pub fn finish(&self, handoff_id: &str, attempt: u32) {
        Self::lock(&self.ends).remove(&(handoff_id.to_owned(), attempt));
    }

    /// Serves one relay until the control service closes it, the ENDED
    /// entry reached the platform, or the platform cannot be reached.
    pub async fn serve(&self, mut relay: ChatRelay) {
        let key = (relay.handoff_id.clone(), relay.attempt);
        let conversation = match self.store.conversation(&key.0, key.1) {
            Ok(Some(c)) if c.tenant == relay.tenant => c,
            Ok(_) => {
                relay
                    .refuse(Status::not_found(
                        "this connector has no chat of this transfer for this tenant",
                    ))
                    .await;
                return;
            }
            Err(error) => {
                tracing::error!(%error, "the chat store could not be read");
                relay
                    .refuse(Status::unavailable("the chat store failed"))
                    .await;
                return;
            }
        };
        let Some(endpoint) = self.endpoints.get(&conversation.endpoint).cloned() else {
            relay
                .refuse(Status::not_found(
                    "the chat's endpoint is no longer configured",
                ))
                .await;
            return;
        };
        // Linked before the pending messages are read: one posted in
        // between is sent twice at worst, and stored once.
        let (link, mut from_platform) = mpsc::channel(64);
        Self::lock(&self.links).insert(key.clone(), link.clone());
        let pending = self.store.pending(&key.0, key.1).unwrap_or_default();
        if relay.opened(conversation.delivered_through).await {
            let mut open = true;
            for message in pending {
                open = open && relay.message(message.draft()).await;
            }
            let incoming = std::mem::replace(&mut relay.incoming, mpsc::channel(1).1);
            let to_platform =
                self.to_platform(&key, &endpoint, conversation.delivered_through, incoming);
            tokio::pin!(to_platform);
            while open {
                tokio::select! {
                    () = &mut to_platform => break,
                    () = relay.closed() => break,
                    Some(message) = from_platform.recv() => {
                        open = match message {
                            ToControl::Message(message) => relay.message(message.draft()).await,
                            ToControl::Typing(active) => relay.typing(active).await,
                            ToControl::Read(through) => relay.read(through).await,
                        };
                    }
                }
            }
        }
        let mut links = Self::lock(&self.links);
        if links.get(&key).is_some_and(|l| l.same_channel(&link)) {
            links.remove(&key);
        }
    }

    /// Posts what the relay brings to the platform, in order, each entry
    /// once past `delivered_through`; returns when the relay closes, the
    /// ENDED entry was accepted, or a delivery failed for good (the relay
    /// then reconnects and the entry is posted again, with its id).
    async fn to_platform(
        &self,
        key: &Key,
        endpoint: &Endpoint,
        mut delivered_through: u64,
        mut incoming: mpsc::Receiver<FromControl>,
    ) {
        let Some(chat_url) = endpoint.chat_url.as_ref() else {
            return;
        };
        let reply_url = self.reply_url(&key.0, key.1);
        let transfer = ChatTransfer {
            handoff_id: &key.0,
            attempt: key.1,
            reply_url: &reply_url,
        };
        while let Some(from_control) = incoming.recv().await {
            let (id, body, entry) = match &from_control {
                FromControl::Entry(entry) if entry.sequence <= delivered_through => continue,
                FromControl::Entry(entry) => (
                    wire::entry_id(&key.0, key.1, entry.sequence),
                    wire::entry_body(transfer, entry),
                    Some(entry),
                ),
                // Hints are not kept: a new id each, posted once per relay.
                FromControl::Typing(active) => {
                    (hint_id(), wire::typing_body(transfer, *active), None)
                }
                FromControl::Read(through) => {
                    (hint_id(), wire::read_body(transfer, *through), None)
                }
            };
            let message = Message {
                id,
                body: body.into(),
                handoff_id: key.0.clone(),
                transfer_attempt: key.1,
            };
            let result = self
                .deliverer
                .deliver_chat(endpoint, chat_url, &message)
                .await;
            let Some(entry) = entry else {
                continue;
            };
            match result {
                Ok(_) => {}
                // A final refusal of one entry is in the delivery log;
                // posting it again would be refused again.
                Err(DeliveryError::Rejected { status, .. }) => {
                    tracing::warn!(handoff_id = %key.0, sequence = entry.sequence, status, "the platform refused a chat entry");
                }
                Err(error) => {
                    tracing::warn!(handoff_id = %key.0, %error, "a chat entry did not reach the platform; the relay reconnects");
                    return;
                }
            }
            delivered_through = entry.sequence;
            if let Err(error) = self.delivered(key, entry) {
                tracing::error!(%error, "the chat store could not be written");
                return;
            }
            if entry.kind == ChatEntryKind::Ended as i32 {
                return;
            }
        }
    }

    fn delivered(&self, key: &Key, entry: &ChatEntry) -> anyhow::Result<()> {
        let ended = entry.kind == ChatEntryKind::Ended as i32;
        self.store.delivered(&key.0, key.1, entry.sequence, ended)?;
        if entry.author == ChatAuthor::Human as i32 {
            self.store
                .acknowledge(&key.0, key.1, &entry.client_message_id)?;
        }
        Ok(())
    }

    /// Takes one signed request of the platform for a transfer's chat.
    pub fn receive(
        &self,
        handoff_id: &str,
        attempt: u32,
        request: SignedRequest<'_>,
    ) -> Result<(), ChatError> {
        let signer = self
            .endpoints
            .values()
            .find(|e| {
                e.signed(
                    request.id,
                    request.timestamp,
                    request.body,
                    request.signature,
                )
            })
            .ok_or(ChatError::Unauthenticated)?;
        let conversation = self
            .store
            .conversation(handoff_id, attempt)?
            .filter(|c| c.endpoint == signer.name)
            .ok_or(ChatError::Unknown)?;
        let posted = FromPlatform::parse(request.body).map_err(ChatError::Invalid)?;
        if conversation.ended {
            return Err(ChatError::Over);
        }
        let key = (handoff_id.to_owned(), attempt);
        let for_control = match posted {
            FromPlatform::Message { message } => {
                match self.store.queue(handoff_id, attempt, &message)? {
                    Queued::New => ToControl::Message(message),
                    Queued::Known => return Ok(()),
                    Queued::Full => return Err(ChatError::Full),
                }
            }
            FromPlatform::Typing { active } => ToControl::Typing(active),
            FromPlatform::Read { through_sequence } => ToControl::Read(through_sequence),
            FromPlatform::End => {
                self.store.end_by_human(handoff_id, attempt)?;
                if let Some(ended) = Self::lock(&self.ends).get(&key) {
                    ended.send_replace(true);
                }
                return Ok(());
            }
        };
        // Without a relay now, a message waits in the store for the next
        // one; a hint is moot by then.
        if let Some(link) = Self::lock(&self.links).get(&key) {
            let _ = link.try_send(for_control);
        }
        Ok(())
    }
}

fn hint_id() -> String {
    format!("msg_{:032x}", rand::random::<u128>())
}
