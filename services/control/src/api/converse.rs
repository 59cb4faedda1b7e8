//! ConverseHandoff: the live conversation of a chat handoff between the
//! customer (through the runtime) and the human (through the connector).
//! The runtime's stream stores the customer's messages and follows the
//! log (`crate::chat`): after `open`, it sends every entry after the
//! sequence the runtime names, in order, its own messages included, then
//! live ones, and ends after the ENDED entry. It starts the relay to the
//! connector, which carries the log the other way.

use std::pin::Pin;
use std::sync::Arc;

use baton_proto::handoff::v1::converse_handoff_request::Kind as RequestKind;
use baton_proto::handoff::v1::converse_handoff_response::Kind as ResponseKind;
use baton_proto::handoff::v1::{
    ConverseHandoffRequest, ConverseHandoffResponse, ConverseOpen, ConverseOpened,
};
use baton_proto::types::v1 as types;
use baton_service_kit::status::{FieldViolation, invalid_argument, with_reason};
use tokio::sync::{broadcast, mpsc};
use tokio_stream::Stream;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Code, Status, Streaming};

use super::HandoffApi;
use super::fields::parse_id;
use crate::chat::relay::Relay;
use crate::chat::{CATCH_UP_BATCH, Hint, RECHECK, Room, settle_end};
use crate::connector::chat::{author_to_wire, draft_from_wire, entry_to_wire};
use crate::convert;
use crate::domain::chat::{ChatAuthor, draft_problems};
use crate::error::ControlError;
use crate::store::HandoffStore;

/// What a conversation stream carries: the log's entries and the other
/// side's hints, or one status that ends it.
pub type ConverseStream =
    Pin<Box<dyn Stream<Item = Result<ConverseHandoffResponse, Status>> + Send>>;

/// `ErrorInfo` reasons of this RPC's own refusals.
const NOT_A_CHAT: &str = "NOT_A_CHAT";
const CONVERSATION_ENDED: &str = "CONVERSATION_ENDED";

type Responses = mpsc::Sender<Result<ConverseHandoffResponse, Status>>;

impl HandoffApi {
    pub(super) async fn converse(
        &self,
        tenant: String,
        mut requests: Streaming<ConverseHandoffRequest>,
    ) -> Result<ConverseStream, Status> {
        let open = match requests.message().await? {
            Some(ConverseHandoffRequest {
                kind: Some(RequestKind::Open(open)),
            }) => open,
            _ => {
                return Err(ControlError::invalid_field(
                    "open",
                    "the first message of ConverseHandoff must be open",
                )
                .into());
            }
        };
        let ConverseOpen {
            handoff_id,
            after_sequence,
        } = open;
        parse_id(&handoff_id)?;
        let handoff = self
            .store
            .get(&tenant, &handoff_id)
            .await
            .map_err(ControlError::from)?;
        let channel = convert::context::conversation(&handoff.conversation).channel;
        if channel != types::Channel::Chat as i32 {
            return Err(with_reason(
                Code::FailedPrecondition,
                NOT_A_CHAT,
                "the handoff's conversation is not a chat (Conversation.channel CHANNEL_CHAT)",
            ));
        }
        if let Some(end) = settle_end(&*self.store, &tenant, &handoff_id)
            .await
            .map_err(ControlError::from)?
            && after_sequence >= end.sequence
        {
            return Err(with_reason(
                Code::FailedPrecondition,
                CONVERSATION_ENDED,
                format!(
                    "the handoff has ended ({}) and the caller has read the whole \
                     conversation: {}",
                    handoff.state.as_str(),
                    end.text
                ),
            ));
        }
        let last_sequence = self
            .store
            .last_chat_sequence(&tenant, &handoff_id)
            .await
            .map_err(ControlError::from)?;
        let room = self.chat_rooms.room(&handoff_id);
        Relay {
            store: self.store.clone(),
            dispatcher: self.dispatcher.clone(),
            room: room.clone(),
            tenant: tenant.clone(),
            handoff_id: handoff_id.clone(),
            shutdown: self.shutdown.clone(),
        }
        .spawn();
        let (sender, receiver) = mpsc::channel(32);
        let opened = ConverseHandoffResponse {
            kind: Some(ResponseKind::Opened(ConverseOpened {
                state: convert::state(handoff.state) as i32,
                last_sequence,
                human_read_through: room.human_read_through(),
            })),
        };
        let conversation = Conversation {
            store: self.store.clone(),
            room,
            tenant,
            handoff_id,
            last_sent: after_sequence,
            sender,
        };
        let shutdown = self.shutdown.clone();
        tokio::spawn(async move {
            let sender = conversation.sender.clone();
            if sender.send(Ok(opened)).await.is_err() {
                return;
            }
            let ended_by = tokio::select! {
                result = conversation.run(requests) => result.err(),
                () = shutdown.cancelled() => Some(ControlError::ShuttingDown.to_status()),
            };
            if let Some(status) = ended_by {
                let _ = sender.send(Err(status)).await;
            }
        });
        Ok(Box::pin(ReceiverStream::new(receiver)))
    }
}

/// One runtime's stream of one conversation.
struct Conversation {
    store: Arc<dyn HandoffStore>,
    room: Arc<Room>,
    tenant: String,
    handoff_id: String,
    last_sent: u64,
    sender: Responses,
}

enum Progress {
    Open,
    /// The ENDED entry was sent, or the runtime has gone.
    Over,
}

impl Conversation {
    async fn run(mut self, mut requests: Streaming<ConverseHandoffRequest>) -> Result<(), Status> {
        let mut stored = self.room.watch_stored();
        let mut hints = self.room.human_hints.subscribe();
        let mut recheck = tokio::time::interval(RECHECK);
        let mut requests_open = true;
        loop {
            if let Progress::Over = self.catch_up().await? {
                return Ok(());
            }
            tokio::select! {
                request = requests.message(), if requests_open => match request? {
                    Some(request) => self.take(request).await?,
                    // The runtime sends no more, but still reads.
                    None => requests_open = false,
                },
                changed = stored.changed() => {
                    changed.map_err(|_| Status::internal("the conversation's room closed"))?;
                }
                hint = hints.recv() => match hint {
                    Ok(hint) => self.send_hint(hint).await,
                    Err(broadcast::error::RecvError::Lagged(_)) => {}
                    Err(broadcast::error::RecvError::Closed) => return Ok(()),
                },
                () = self.sender.closed() => return Ok(()),
                _ = recheck.tick() => {
                    settle_end(&*self.store, &self.tenant, &self.handoff_id)
                        .await
                        .map_err(ControlError::from)?;
                }
            }
        }
    }

    /// Stores a message of the customer, or passes on a hint.
    async fn take(&mut self, request: ConverseHandoffRequest) -> Result<(), Status> {
        match request.kind {
            Some(RequestKind::Message(draft)) => {
                let draft = draft_from_wire(&draft, "");
                let problems = draft_problems(&draft);
                if !problems.is_empty() {
                    let violations: Vec<FieldViolation> = problems
                        .into_iter()
                        .map(|(field, problem)| {
                            FieldViolation::new(format!("message.{field}"), problem)
                        })
                        .collect();
                    return Err(invalid_argument(&violations));
                }
                let appended = self
                    .store
                    .append_chat(&self.tenant, &self.handoff_id, ChatAuthor::Customer, draft)
                    .await
                    .map_err(ControlError::from)?;
                match appended {
                    crate::domain::chat::ChatAppend::Ended(end)
                        if self.last_sent >= end.sequence =>
                    {
                        return Err(with_reason(
                            Code::FailedPrecondition,
                            CONVERSATION_ENDED,
                            format!(
                                "the conversation is over; nothing more is stored: {}",
                                end.text
                            ),
                        ));
                    }
                    appended => self.room.stored(appended.entry().sequence),
                }
            }
            Some(RequestKind::Typing(typing)) => {
                let _ = self.room.customer_hints.send(Hint::Typing(typing.active));
            }
            Some(RequestKind::Read(read)) => {
                let _ = self
                    .room
                    .customer_hints
                    .send(Hint::Read(read.through_sequence));
            }
            Some(RequestKind::Open(_)) => {
                return Err(ControlError::invalid_field("open", "open is sent once, first").into());
            }
            None => {}
        }
        Ok(())
    }

    async fn send_hint(&self, hint: Hint) {
        let author = author_to_wire(ChatAuthor::Human) as i32;
        let kind = match hint {
            Hint::Typing(active) => ResponseKind::Typing(types::ChatTyping { author, active }),
            Hint::Read(through) => ResponseKind::Read(types::ChatRead {
                author,
                through_sequence: through,
            }),
        };
        let _ = self
            .sender
            .send(Ok(ConverseHandoffResponse { kind: Some(kind) }))
            .await;
    }

    /// Sends the log's entries after the last one sent.
    async fn catch_up(&mut self) -> Result<Progress, Status> {
        loop {
            let entries = self
                .store
                .chat_after(
                    &self.tenant,
                    &self.handoff_id,
                    self.last_sent,
                    CATCH_UP_BATCH,
                )
                .await
                .map_err(ControlError::from)?;
            let full = entries.len() == CATCH_UP_BATCH;
            for entry in &entries {
                self.last_sent = entry.sequence;
                let response = ConverseHandoffResponse {
                    kind: Some(ResponseKind::Entry(entry_to_wire(entry))),
                };
                if self.sender.send(Ok(response)).await.is_err() || entry.ended.is_some() {
                    return Ok(Progress::Over);
                }
            }
            if !full {
                return Ok(Progress::Open);
            }
        }
    }
}
