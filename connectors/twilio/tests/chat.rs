//! Chat handoffs over Twilio Conversations, against the contract server:
//! the transfer creates a Conversation and a TaskRouter chat task that a
//! Flex agent accepts; the relay (ConverseTransfer, the test standing in
//! for the control service) posts the customer's messages to the
//! Conversation, and the agent's come back through the signed
//! Conversations webhook with their Message SID as id; a relay that
//! reconnects and is sent an entry again posts nothing twice; the agent
//! closing the Conversation completes the transfer.

mod common;

use baton_connector_sdk::testing::{self, Relay, start_transfer};
use baton_proto::connector::v1::TransferEventKind;
use baton_proto::connector::v1::converse_transfer_response::Kind as FromConnector;
use baton_proto::types::v1::{ChatAuthor, ChatEntry, ChatMessageDraft};
use common::*;

const HANDOFF: &str = "h-chat-1";

/// The agent's next message on `relay`.
async fn agent_message(relay: &mut Relay) -> ChatMessageDraft {
    match relay.next().await {
        Some(FromConnector::Message(draft)) => draft,
        other => panic!("expected a message of the agent, got {other:?}"),
    }
}

/// Entry `sequence` of the chat: message `id` of `author` saying `text`.
fn entry(sequence: u64, author: ChatAuthor, id: &str, text: &str) -> ChatEntry {
    testing::chat_message(HANDOFF, sequence, author, id, text)
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

    let mut relay = Relay::open(grpc, HANDOFF).await;
    assert_eq!(relay.opened_after, 0);
    relay
        .entry(entry(1, ChatAuthor::Customer, "c-1", "I was charged twice"))
        .await;
    let messages = twilio.messages_at_least(1).await;
    assert_eq!(messages[0]["author"], "baton-customer");
    assert_eq!(messages[0]["body"], "I was charged twice");

    let said = agent_says(&twilio, &conversation.sid, "I see both charges").await;
    let draft = agent_message(&mut relay).await;
    assert_eq!(draft.client_message_id, said, "the Message SID is its id");
    assert!(said.starts_with("IM"));
    assert_eq!(draft.text, "I see both charges");

    // The relay drops and the control service opens it again, sending the
    // customer's first message again: it is not posted twice, and the
    // agent's message, not yet back as an entry, comes again.
    drop(relay);
    let mut relay = Relay::open(grpc, HANDOFF).await;
    assert_eq!(relay.opened_after, 1, "the connector had entry 1");
    assert_eq!(agent_message(&mut relay).await.client_message_id, said);
    relay
        .entry(entry(1, ChatAuthor::Customer, "c-1", "I was charged twice"))
        .await;
    relay
        .entry(entry(2, ChatAuthor::Human, &said, "I see both charges"))
        .await;
    relay
        .entry(entry(3, ChatAuthor::Customer, "c-3", "Thank you"))
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
    let status = Relay::try_open(grpc, "h-unknown")
        .await
        .expect_err("refused");
    assert_eq!(status.code(), tonic::Code::NotFound);
}
