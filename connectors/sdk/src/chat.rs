//! The chat relay of a transfer (`ConverseTransfer`), for connectors that
//! carry a chat handoff's conversation to the human. The SDK takes the
//! gRPC stream: it checks the opening message and the tenant, then hands
//! the connector a [`ChatRelay`] to serve through
//! [`Connector::converse`](crate::Connector::converse). The connector
//! answers first with [`ChatRelay::opened`] (the last sequence it has of
//! the conversation), then reads the log's entries from
//! [`ChatRelay::incoming`] and sends the human's messages; a message it
//! sent before a reconnect and has not seen come back as an entry, it
//! sends again (the control service stores a message id once).

use std::pin::Pin;

use baton_proto::connector::v1::converse_transfer_request::Kind as RequestKind;
use baton_proto::connector::v1::converse_transfer_response::Kind as ResponseKind;
use baton_proto::connector::v1::{
    ConverseTransferOpened, ConverseTransferRequest, ConverseTransferResponse,
};
pub use baton_proto::types::v1::{
    ChatAttachment, ChatAuthor, ChatEndReason, ChatEntry, ChatEntryKind, ChatMessageDraft,
};
use baton_proto::types::v1::{ChatRead, ChatTyping};
use tokio::sync::mpsc;
use tokio_stream::{Stream, StreamExt};
pub use tonic::Status;
use tonic::Streaming;

/// What the control service sends on a relay.
#[derive(Debug, Clone, PartialEq)]
pub enum FromControl {
    /// An entry of the conversation log, in sequence order; the last is
    /// the ENDED one.
    Entry(ChatEntry),
    /// The customer is typing (or stopped).
    Typing(bool),
    /// The customer has read up to a sequence.
    Read(u64),
}

/// One relay of a transfer's conversation.
#[derive(Debug)]
pub struct ChatRelay {
    pub tenant: String,
    pub handoff_id: String,
    pub attempt: u32,
    /// What the control service sends, until it closes the stream.
    pub incoming: mpsc::Receiver<FromControl>,
    outgoing: mpsc::Sender<Result<ConverseTransferResponse, Status>>,
}

impl ChatRelay {
    async fn send(&self, kind: ResponseKind) -> bool {
        self.outgoing
            .send(Ok(ConverseTransferResponse { kind: Some(kind) }))
            .await
            .is_ok()
    }

    /// Says where the connector stands: the control service then sends the
    /// entries after `after_sequence`. First, once.
    pub async fn opened(&self, after_sequence: u64) -> bool {
        self.send(ResponseKind::Opened(ConverseTransferOpened {
            after_sequence,
        }))
        .await
    }

    /// Sends a message of the human; false once the relay has closed.
    pub async fn message(&self, draft: ChatMessageDraft) -> bool {
        self.send(ResponseKind::Message(draft)).await
    }

    pub async fn typing(&self, active: bool) -> bool {
        self.send(ResponseKind::Typing(ChatTyping {
            author: ChatAuthor::Human as i32,
            active,
        }))
        .await
    }

    pub async fn read(&self, through_sequence: u64) -> bool {
        self.send(ResponseKind::Read(ChatRead {
            author: ChatAuthor::Human as i32,
            through_sequence,
        }))
        .await
    }

    /// Ends the relay with `status` (e.g. NOT_FOUND for an unknown
    /// transfer).
    pub async fn refuse(self, status: Status) {
        let _ = self.outgoing.send(Err(status)).await;
    }

    /// Resolves once the control service has stopped reading.
    pub async fn closed(&self) {
        self.outgoing.closed().await;
    }
}

/// The response stream of ConverseTransfer.
pub(crate) type RelayStream =
    Pin<Box<dyn Stream<Item = Result<ConverseTransferResponse, Status>> + Send>>;

/// Reads the opening message and builds the relay, and the stream that
/// carries what the connector sends; the control service's later messages
/// are forwarded to [`ChatRelay::incoming`] until it closes its side.
pub(crate) async fn accept(
    mut requests: Streaming<ConverseTransferRequest>,
) -> Result<(ChatRelay, RelayStream), Status> {
    let open = match requests.message().await? {
        Some(ConverseTransferRequest {
            kind: Some(RequestKind::Open(open)),
        }) => open,
        _ => {
            return Err(Status::invalid_argument(
                "open: the first message of ConverseTransfer must be open",
            ));
        }
    };
    let (incoming_sender, incoming) = mpsc::channel(64);
    let (outgoing, responses) = mpsc::channel(64);
    tokio::spawn(async move {
        while let Some(Ok(request)) = requests.next().await {
            let message = match request.kind {
                Some(RequestKind::Entry(entry)) => FromControl::Entry(entry),
                Some(RequestKind::Typing(typing)) => FromControl::Typing(typing.active),
                Some(RequestKind::Read(read)) => FromControl::Read(read.through_sequence),
                Some(RequestKind::Open(_)) | None => continue,
            };
            if incoming_sender.send(message).await.is_err() {
                return;
            }
        }
    });
    let relay = ChatRelay {
        tenant: open.tenant,
        handoff_id: open.handoff_id,
        attempt: open.attempt,
        incoming,
        outgoing,
    };
    Ok((
        relay,
        Box::pin(tokio_stream::wrappers::ReceiverStream::new(responses)),
    ))
}
