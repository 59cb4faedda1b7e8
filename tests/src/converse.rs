//! The runtime's side of a chat handoff in tests: the chat request, and one
//! ConverseHandoff stream (open after a sequence, say, read entries).

use std::time::Duration;

use anyhow::{Context, bail};
use baton_proto::handoff::v1::converse_handoff_request::Kind as RequestKind;
use baton_proto::handoff::v1::converse_handoff_response::Kind as ResponseKind;
use baton_proto::handoff::v1::handoff_service_client::HandoffServiceClient;
use baton_proto::handoff::v1::{
    ConverseHandoffRequest, ConverseHandoffResponse, ConverseOpen, ConverseOpened,
    CreateHandoffRequest,
};
use baton_proto::types::v1 as pb;
use tokio::sync::mpsc;
use tonic::Streaming;
use tonic::codegen::tokio_stream::wrappers::ReceiverStream;
use tonic::transport::Channel;

/// A failure guard for each wait, never a measured time.
const WAIT: Duration = Duration::from_secs(30);

/// The sample escalation as a chat handoff to the `support` queue, with
/// time for a conversation.
pub fn chat_request(request_id: &str) -> CreateHandoffRequest {
    let support = pb::target::Kind::Queue(pb::QueueTarget {
        name: "support".into(),
        skills: vec![],
    });
    let mut request = crate::sample_request(request_id, support);
    let conversation = request.conversation.as_mut().expect("a conversation");
    conversation.channel = pb::Channel::Chat as i32;
    conversation.call = None;
    request.timeout = Some(prost_types::Duration {
        seconds: 300,
        nanos: 0,
    });
    request
}

/// One open ConverseHandoff stream of the runtime.
#[derive(Debug)]
pub struct Conversation {
    send: mpsc::Sender<ConverseHandoffRequest>,
    pub receive: Streaming<ConverseHandoffResponse>,
}

impl Conversation {
    /// Opens `handoff_id`'s conversation after `after_sequence`; the
    /// stream and its `opened` answer.
    pub async fn open(
        client: &mut HandoffServiceClient<Channel>,
        handoff_id: &str,
        after_sequence: u64,
    ) -> anyhow::Result<(Conversation, ConverseOpened)> {
        let (send, requests) = mpsc::channel(16);
        send.send(ConverseHandoffRequest {
            kind: Some(RequestKind::Open(ConverseOpen {
                handoff_id: handoff_id.into(),
                after_sequence,
            })),
        })
        .await?;
        let mut receive = client
            .converse_handoff(ReceiverStream::new(requests))
            .await?
            .into_inner();
        let first = tokio::time::timeout(WAIT, receive.message())
            .await
            .context("no answer to open")??
            .context("the stream ended before opened")?;
        let Some(ResponseKind::Opened(opened)) = first.kind else {
            bail!("the first answer is not opened: {first:?}");
        };
        Ok((Conversation { send, receive }, opened))
    }

    /// Sends a message of the customer.
    pub async fn say(&self, id: &str, text: &str) -> anyhow::Result<()> {
        self.send
            .send(ConverseHandoffRequest {
                kind: Some(RequestKind::Message(pb::ChatMessageDraft {
                    client_message_id: id.into(),
                    text: text.into(),
                    attachments: vec![],
                })),
            })
            .await?;
        Ok(())
    }

    /// The next entry of the log, skipping hints (typing, read).
    pub async fn next_entry(&mut self) -> anyhow::Result<pb::ChatEntry> {
        loop {
            let response = tokio::time::timeout(WAIT, self.receive.message())
                .await
                .context("no entry in time")??
                .context("the stream ended")?;
            if let Some(ResponseKind::Entry(entry)) = response.kind {
                return Ok(entry);
            }
        }
    }
}
