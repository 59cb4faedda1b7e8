//! Chat handoffs over Twilio Conversations, against the contract server:
//! the transfer creates a Conversation and a TaskRouter chat task that a
//! Flex agent accepts; the relay (ConverseTransfer, the test standing in
//! for the control service) posts the customer's messages to the
//! Conversation, and the agent's come back through the signed
//! Conversations webhook with their Message SID as id; a relay that
//! reconnects and is sent an entry again posts nothing twice; the agent
//! closing the Conversation completes the transfer.

mod common;

use std::net::SocketAddr;
use std::time::Duration;

use baton_connector_sdk::testing::{self, start_transfer};
use baton_proto::connector::v1::connector_service_client::ConnectorServiceClient;
use baton_proto::connector::v1::converse_transfer_request::Kind as ToConnector;
use baton_proto::connector::v1::converse_transfer_response::Kind as FromConnector;
use baton_proto::connector::v1::{
    ConverseTransferOpen, ConverseTransferRequest, TransferEventKind,
};
use baton_proto::types::v1::{ChatAuthor, ChatEntry, ChatEntryKind, ChatMessageDraft};
use common::*;
use tokio::sync::mpsc;
use tonic::Streaming;

const HANDOFF: &str = "h-chat-1";

/// A relay as the control service opens it: what it sends, what it gets,
/// and the `after_sequence` the connector opened with.
struct Relay {
    send: mpsc::Sender<ConverseTransferRequest>,
    responses: Streaming<baton_proto::connector::v1::ConverseTransferResponse>,
    opened_after: u64,
}

impl Relay {
    async fn open(grpc: SocketAddr) -> Relay {
        let (send, requests) = mpsc::channel(16);
        send.send(ConverseTransferRequest {
            kind: Some(ToConnector::Open(ConverseTransferOpen {
                handoff_id: HANDOFF.into(),
                attempt: 1,
                tenant: testing::TENANT.into(),
            })),
        })
        .await
        .expect("queued");
        let mut client = ConnectorServiceClient::connect(format!("http://{grpc}"))
            .await
            .expect("connects");
        let mut responses = client
            .converse_transfer(tokio_stream::wrappers::ReceiverStream::new(requests))
            .await
            .expect("ConverseTransfer accepted")
            .into_inner();
        let opened_after = match next(&mut responses).await {
            FromConnector::Opened(opened) => opened.after_sequence,
            other => panic!("expected opened first, got {other:?}"),
        };
        Relay {
            send,
            responses,
            opened_after,
        }
    }

    async fn entry(&self, sequence: u64, author: ChatAuthor, id: &str, text: &str) {
        self.send
            .send(ConverseTransferRequest {
                kind: Some(ToConnector::Entry(ChatEntry {
                    handoff_id: HANDOFF.into(),
                    sequence,
                    kind: ChatEntryKind::Message as i32,
                    author: author as i32,
                    client_message_id: id.into(),
                    text: text.into(),
                    ..Default::default()
                })),
            })
            .await
            .expect("relay open");
    }

    async fn message(&mut self) -> ChatMessageDraft {
        match next(&mut self.responses).await {
            FromConnector::Message(draft) => draft,
            other => panic!("expected a message of the agent, got {other:?}"),
        }
    }
}

async fn next(
    responses: &mut Streaming<baton_proto::connector::v1::ConverseTransferResponse>,
) -> FromConnector {
    tokio::time::timeout(Duration::from_secs(10), responses.message())
        .await
        .expect("a relay message in time")
        .expect("relay healthy")
        .and_then(|response| response.kind)
        .expect("a relay message")
}

#[tokio::test]
async fn a_chat_flows_both_ways_once_and_ends_when_the_agent_closes_it() {
    let (twilio, grpc, _) = chat_setup().await;
    let mut events = start_transfer(grpc, chat_request(HANDOFF)).await;
    until(&mut events, TransferEventKind::Connected).await;
    let conversation = twilio.conversation(0).expect("a conversation");
    assert_eq!(conversation.state, "active");
    let tasks = twilio.tasks();
    assert_eq!(tasks.len(), 1, "one chat task");
    assert_eq!(tasks[0].task_channel, "chat");
    assert_eq!(tasks[0].attributes[0]["conversationSid"], conversation.sid);
    assert_eq!(tasks[0].attributes[0]["baton_handoff_id"], HANDOFF);

    let mut relay = Relay::open(grpc).await;
    assert_eq!(relay.opened_after, 0);
    relay
        .entry(1, ChatAuthor::Customer, "c-1", "I was charged twice")
        .await;
    let messages = twilio.messages_at_least(1).await;
    assert_eq!(messages[0]["author"], "baton-customer");
    assert_eq!(messages[0]["body"], "I was charged twice");

    let said = agent_says(&twilio, &conversation.sid, "I see both charges").await;
    let draft = relay.message().await;
    assert_eq!(draft.client_message_id, said, "the Message SID is its id");
    assert!(said.starts_with("IM"));
    assert_eq!(draft.text, "I see both charges");

    // The relay drops and the control service opens it again, sending the
    // customer's first message again: it is not posted twice, and the
    // agent's message, not yet back as an entry, comes again.
    drop(relay);
    let mut relay = Relay::open(grpc).await;
    assert_eq!(relay.opened_after, 1, "the connector had entry 1");
    assert_eq!(relay.message().await.client_message_id, said);
    relay
        .entry(1, ChatAuthor::Customer, "c-1", "I was charged twice")
        .await;
    relay
        .entry(2, ChatAuthor::Human, &said, "I see both charges")
        .await;
    relay
        .entry(3, ChatAuthor::Customer, "c-3", "Thank you")
        .await;
    let messages = twilio.messages_at_least(3).await;
    let bodies: Vec<&str> = messages
        .iter()
        .map(|m| m["body"].as_str().unwrap_or_default())
        .collect();
    assert_eq!(
        bodies,
        ["I was charged twice", "I see both charges", "Thank you"],
        "each message once, in order"
    );

    agent_closes(&twilio, &conversation.sid).await;
    until(&mut events, TransferEventKind::Completed).await;
    assert_eq!(
        twilio.delivered().last().map(|d| d.status),
        Some(200),
        "the closing webhook was taken"
    );
}

#[tokio::test]
async fn a_conversation_webhook_without_a_valid_signature_is_refused() {
    let (twilio, grpc, callbacks) = chat_setup().await;
    let mut events = start_transfer(grpc, chat_request(HANDOFF)).await;
    until(&mut events, TransferEventKind::Connected).await;
    let conversation = twilio.conversation(0).expect("a conversation");
    let url = format!("http://{callbacks}/v1/conversations/events");
    let params = form(&[
        ("AccountSid", ACCOUNT_SID),
        ("EventType", "onConversationStateUpdated"),
        ("ConversationSid", &conversation.sid),
        ("StateFrom", "active"),
        ("StateTo", "closed"),
    ]);
    let forged = reqwest::Client::new()
        .post(&url)
        .header("x-twilio-signature", "c2lnbmVkIGJ5IHNvbWVvbmUgZWxzZQ==")
        .header("content-type", "application/x-www-form-urlencoded")
        .body(serde_urlencoded::to_string(&params).expect("form"))
        .send()
        .await
        .expect("answered");
    assert_eq!(forged.status().as_u16(), 403);
    // The forged close changed nothing: the agent's real one ends it.
    agent_closes(&twilio, &conversation.sid).await;
    until(&mut events, TransferEventKind::Completed).await;
}

#[tokio::test]
async fn a_relay_for_a_transfer_the_connector_does_not_have_is_not_found() {
    let (_, grpc, _) = chat_setup().await;
    let (send, requests) = mpsc::channel(1);
    send.send(ConverseTransferRequest {
        kind: Some(ToConnector::Open(ConverseTransferOpen {
            handoff_id: "h-unknown".into(),
            attempt: 1,
            tenant: testing::TENANT.into(),
        })),
    })
    .await
    .expect("queued");
    let mut client = ConnectorServiceClient::connect(format!("http://{grpc}"))
        .await
        .expect("connects");
    let mut responses = client
        .converse_transfer(tokio_stream::wrappers::ReceiverStream::new(requests))
        .await
        .expect("the stream opens")
        .into_inner();
    let status = tokio::time::timeout(Duration::from_secs(10), responses.message())
        .await
        .expect("an answer in time")
        .expect_err("refused");
    assert_eq!(status.code(), tonic::Code::NotFound);
}
