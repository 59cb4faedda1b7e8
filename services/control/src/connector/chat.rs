//! The chat relay to a connector (`ConverseTransfer`), in the port's
//! words: what the control service sends (the log's entries, the
//! customer's hints) and what the connector sends back (where it stands,
//! the human's messages and hints). The gRPC half is here too, so that the
//! relay touches `grpc.rs` only to be wired in.

use std::pin::Pin;

use baton_proto::connector::v1 as wire;
use baton_proto::types::v1 as types;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tokio_stream::{Stream, StreamExt};

use crate::domain::chat::{ChatAttachment, ChatAuthor, ChatDraft, ChatEndReason, ChatEntry};

/// What the control service sends a connector's chat relay.
#[derive(Debug, Clone, PartialEq)]
pub enum ToConnector {
    Entry(ChatEntry),
    /// The customer is typing (or stopped).
    Typing(bool),
    /// The customer has read up to a sequence.
    Read(u64),
}

/// What a connector's chat relay sends back.
#[derive(Debug, Clone, PartialEq)]
pub enum FromConnector {
    /// First: the last sequence the connector has of this conversation.
    Opened {
        after_sequence: u64,
    },
    /// A message of the human.
    Message(ChatDraft),
    Typing(bool),
    Read(u64),
}

/// The connector's side of a relay, until it ends it or it breaks.
pub type FromConnectorStream =
    Pin<Box<dyn Stream<Item = Result<FromConnector, String>> + Send + 'static>>;

/// Which transfer a relay carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RelayOpen {
    pub tenant: String,
    pub handoff_id: String,
    pub attempt: u32,
}

/// Why a relay could not be opened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RelayRefused {
    /// The connector does not relay chat: the human has only the screen pop.
    Unsupported(String),
    /// The connector has no such transfer (or it is another tenant's).
    UnknownTransfer(String),
    /// It could not be reached now; try again.
    Unavailable(String),
}

pub(super) fn attachment_to_wire(attachment: &ChatAttachment) -> types::ChatAttachment {
    types::ChatAttachment {
        url: attachment.url.clone(),
        media_type: attachment.media_type.clone(),
        size_bytes: attachment.size_bytes,
        name: attachment.name.clone(),
    }
}

pub(crate) fn attachment_from_wire(attachment: &types::ChatAttachment) -> ChatAttachment {
    ChatAttachment {
        url: attachment.url.clone(),
        media_type: attachment.media_type.clone(),
        size_bytes: attachment.size_bytes,
        name: attachment.name.clone(),
    }
}

pub(crate) fn author_to_wire(author: ChatAuthor) -> types::ChatAuthor {
    match author {
        ChatAuthor::Customer => types::ChatAuthor::Customer,
        ChatAuthor::Human => types::ChatAuthor::Human,
        ChatAuthor::System => types::ChatAuthor::System,
    }
}

fn reason_to_wire(reason: ChatEndReason) -> types::ChatEndReason {
    match reason {
        ChatEndReason::Completed => types::ChatEndReason::Completed,
        ChatEndReason::Cancelled => types::ChatEndReason::Cancelled,
        ChatEndReason::Failed => types::ChatEndReason::Failed,
        ChatEndReason::HandedBack => types::ChatEndReason::HandedBack,
    }
}

/// An entry as both contracts carry it.
pub(crate) fn entry_to_wire(entry: &ChatEntry) -> types::ChatEntry {
    types::ChatEntry {
        handoff_id: entry.handoff_id.clone(),
        sequence: entry.sequence,
        kind: if entry.ended.is_some() {
            types::ChatEntryKind::Ended
        } else {
            types::ChatEntryKind::Message
        } as i32,
        author: author_to_wire(entry.author) as i32,
        client_message_id: entry.message_id.clone(),
        text: entry.text.clone(),
        attachments: entry.attachments.iter().map(attachment_to_wire).collect(),
        create_time: Some(prost_types::Timestamp {
            seconds: entry.time_ms.div_euclid(1000),
            nanos: i32::try_from(entry.time_ms.rem_euclid(1000) * 1_000_000).unwrap_or_default(),
        }),
        end_reason: entry.ended.map_or(0, |r| reason_to_wire(r) as i32),
        author_name: entry.author_name.clone(),
    }
}

/// A draft as the wire carries it, with the name its writer shows.
pub(crate) fn draft_from_wire(draft: &types::ChatMessageDraft, author_name: &str) -> ChatDraft {
    ChatDraft {
        message_id: draft.client_message_id.clone(),
        text: draft.text.clone(),
        attachments: draft.attachments.iter().map(attachment_from_wire).collect(),
        author_name: author_name.to_string(),
    }
}

fn to_wire(message: ToConnector) -> wire::ConverseTransferRequest {
    use wire::converse_transfer_request::Kind;
    let kind = match message {
        ToConnector::Entry(entry) => Kind::Entry(entry_to_wire(&entry)),
        ToConnector::Typing(active) => Kind::Typing(types::ChatTyping {
            author: types::ChatAuthor::Customer as i32,
            active,
        }),
        ToConnector::Read(through) => Kind::Read(types::ChatRead {
            author: types::ChatAuthor::Customer as i32,
            through_sequence: through,
        }),
    };
    wire::ConverseTransferRequest { kind: Some(kind) }
}

fn from_wire(message: wire::ConverseTransferResponse) -> Option<FromConnector> {
    use wire::converse_transfer_response::Kind;
    Some(match message.kind? {
        Kind::Opened(opened) => FromConnector::Opened {
            after_sequence: opened.after_sequence,
        },
        Kind::Message(draft) => FromConnector::Message(draft_from_wire(&draft, "")),
        Kind::Typing(typing) => FromConnector::Typing(typing.active),
        Kind::Read(read) => FromConnector::Read(read.through_sequence),
    })
}

/// Opens `ConverseTransfer` on `client`: the open message first, then
/// whatever `outbound` yields.
pub(super) async fn converse_over_grpc(
    mut client: wire::connector_service_client::ConnectorServiceClient<tonic::transport::Channel>,
    open: RelayOpen,
    outbound: mpsc::Receiver<ToConnector>,
) -> Result<FromConnectorStream, RelayRefused> {
    let first = wire::ConverseTransferRequest {
        kind: Some(wire::converse_transfer_request::Kind::Open(
            wire::ConverseTransferOpen {
                handoff_id: open.handoff_id,
                attempt: open.attempt,
                tenant: open.tenant,
            },
        )),
    };
    let requests = tokio_stream::once(first).chain(ReceiverStream::new(outbound).map(to_wire));
    let responses = client.converse_transfer(requests).await.map_err(|status| {
        let detail = status.message().to_string();
        match status.code() {
            tonic::Code::Unimplemented => RelayRefused::Unsupported(detail),
            tonic::Code::NotFound | tonic::Code::InvalidArgument => {
                RelayRefused::UnknownTransfer(detail)
            }
            _ => RelayRefused::Unavailable(detail),
        }
    })?;
    let stream = responses.into_inner().filter_map(|message| match message {
        Ok(message) => from_wire(message).map(Ok),
        Err(status) => Some(Err(status.message().to_string())),
    });
    Ok(Box::pin(stream))
}
