//! A chat handoff relayed through the webhook connector, both ways: this
//! test plays the control service's relay (ConverseTransfer on the
//! connector's gRPC side) and, with a receiver that verifies every
//! request's Standard Webhooks signature and the documented JSON of each
//! chat message, the platform. The platform answers on the connector's
//! `/v1/chats/{handoff_id}/{attempt}`, signed with the endpoint's secret.

mod common;

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use baton_connector_sdk::testing::{self, Relay, next_event, start_transfer};
use baton_connector_webhook::WebhookConfig;
use baton_proto::connector::v1::converse_transfer_response::Kind as ResponseKind;
use baton_proto::connector::v1::{ContextEnvelope, StartTransferRequest, TransferEventKind};
use baton_proto::types::v1::{
    Channel, ChatAuthor, ChatEndReason, ChatEntry, ChatEntryKind, Conversation,
};
use common::{
    Answer, OTHER_SECRET, Process, Received, Receiver, SECRET, again, chat_endpoint,
    connector_config, post_signed, receiver, start_receiver,
};
use serde_json::{Value, json};
use tonic::Streaming;

fn config(dir: &Path, receiver: SocketAddr, chat_name: &str) -> WebhookConfig {
    connector_config(
        dir,
        vec![("crm", chat_endpoint(receiver, "crm", chat_name))],
        &[("billing", &["crm"])],
        3,
    )
}

/// A chat handoff's first transfer to queue billing.
fn request(handoff_id: &str) -> StartTransferRequest {
    let envelope = ContextEnvelope {
        reference: Some(testing::context_reference(
            "https://baton.example",
            handoff_id,
            "tok",
        )),
        conversation: Some(Conversation {
            channel: Channel::Chat as i32,
            ..Default::default()
        }),
        ..Default::default()
    };
    StartTransferRequest {
        deadline: testing::deadline_in(Duration::from_secs(60)),
        ..testing::transfer_request(handoff_id, testing::queue("billing", &[]), envelope)
    }
}

/// The id of the human's next message on `relay`.
async fn next_message_id(relay: &mut Relay) -> String {
    loop {
        match relay.next().await {
            Some(ResponseKind::Message(draft)) => return draft.client_message_id,
            Some(ResponseKind::Typing(_) | ResponseKind::Read(_)) => {}
            other => panic!("expected a message of the human, got {other:?}"),
        }
    }
}

fn message(handoff_id: &str, sequence: u64, author: ChatAuthor, id: &str) -> ChatEntry {
    ChatEntry {
        create_time: Some(prost_types::Timestamp {
            seconds: 1_700_000_000 + i64::try_from(sequence).expect("small"),
            nanos: 0,
        }),
        ..testing::chat_message(handoff_id, sequence, author, id, &format!("text of {id}"))
    }
}

fn ended(handoff_id: &str, sequence: u64) -> ChatEntry {
    ChatEntry {
        kind: ChatEntryKind::Ended as i32,
        author: ChatAuthor::System as i32,
        client_message_id: String::new(),
        text: "the human completed the conversation".into(),
        end_reason: ChatEndReason::Completed as i32,
        ..message(handoff_id, sequence, ChatAuthor::System, "")
    }
}

/// The chat messages (entries, not hints) the platform accepted.
fn chat_entries(receiver: &Receiver) -> Vec<Received> {
    receiver
        .received()
        .into_iter()
        .filter(|r| {
            r.status == 200
                && matches!(
                    r.body["type"].as_str(),
                    Some("baton.chat.message" | "baton.chat.ended")
                )
        })
        .collect()
}

async fn entries_at_the_platform(receiver: &Receiver, count: usize) -> Vec<Received> {
    testing::at_least(count, "chat entries at the platform", || {
        chat_entries(receiver)
    })
    .await
}

/// What the platform posts for the human.
fn human_message(id: &str) -> String {
    json!({ "kind": "message", "message": { "id": id, "text": format!("text of {id}") } })
        .to_string()
}

/// The platform posts `body` to the chat at `reply_url`, signed with the
/// endpoint's secret; the connector takes it (204).
async fn platform_posts(reply_url: &str, body: &str) {
    let (status, answer) = post_signed(reply_url, body, SECRET).await;
    assert_eq!(status, 204, "{body}: {answer}");
}

/// The human's message `id`, posted by the platform and taken.
async fn human_says(reply_url: &str, id: &str) {
    platform_posts(reply_url, &human_message(id)).await;
}

/// Starts the chat transfer `handoff_id` and waits until it is connected;
/// the URL the platform answers at, from the transfer's message.
async fn connected_chat(
    grpc: SocketAddr,
    receiver: &Receiver,
    handoff_id: &str,
) -> (
    Streaming<baton_proto::connector::v1::StartTransferResponse>,
    String,
) {
    let mut transfer = start_transfer(grpc, request(handoff_id)).await;
    assert_eq!(
        next_event(&mut transfer).await.kind(),
        TransferEventKind::ContextDelivered
    );
    assert_eq!(
        next_event(&mut transfer).await.kind(),
        TransferEventKind::Connected
    );
    let handoff = receiver
        .received()
        .into_iter()
        .find(|r| r.body["data"]["handoff_id"] == handoff_id && r.endpoint == "crm")
        .expect("the transfer's message reached the platform");
    let reply_url = handoff.body["data"]["chat"]["reply_url"]
        .as_str()
        .expect("data.chat.reply_url")
        .to_owned();
    (transfer, reply_url)
}

#[tokio::test]
async fn messages_go_both_ways_in_order_with_their_ids_and_the_end_reaches_the_platform() {
    let receiver = receiver(&[("crm", vec![])], None);
    let receiver_addr = start_receiver(receiver.clone()).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let process = Process::start(config(dir.path(), receiver_addr, "crm"));
    let (mut transfer, reply_url) = connected_chat(process.grpc, &receiver, "h-both").await;

    let mut relay = Relay::open(process.grpc, "h-both").await;
    assert_eq!(relay.opened_after, 0, "nothing relayed yet");
    relay
        .entry(message("h-both", 1, ChatAuthor::Customer, "c-1"))
        .await;
    relay
        .entry(message("h-both", 2, ChatAuthor::Customer, "c-2"))
        .await;
    let delivered = entries_at_the_platform(&receiver, 2).await;
    assert_eq!(
        delivered
            .iter()
            .map(|r| (
                r.body["data"]["sequence"].clone(),
                r.body["data"]["id"].clone()
            ))
            .collect::<Vec<_>>(),
        [(json!(1), json!("c-1")), (json!(2), json!("c-2"))]
    );
    assert_eq!(delivered[0].body["data"]["author"], "customer");
    assert_eq!(delivered[0].body["data"]["reply_url"], reply_url.as_str());
    assert_ne!(delivered[0].id, delivered[1].id, "a webhook-id per entry");

    for id in ["p-1", "p-2"] {
        human_says(&reply_url, id).await;
    }
    platform_posts(
        &reply_url,
        &json!({"kind": "typing", "active": true}).to_string(),
    )
    .await;
    assert_eq!(next_message_id(&mut relay).await, "p-1");
    assert_eq!(next_message_id(&mut relay).await, "p-2");
    assert!(
        matches!(relay.next().await, Some(ResponseKind::Typing(typing)) if typing.active),
        "the human's typing"
    );
    // The platform posts p-1 again (its retry): taken, not sent twice.
    human_says(&reply_url, "p-1").await;
    human_says(&reply_url, "p-3").await;
    assert_eq!(
        next_message_id(&mut relay).await,
        "p-3",
        "p-1 was not sent again"
    );

    relay
        .entry(message("h-both", 3, ChatAuthor::Human, "p-1"))
        .await;
    let human = entries_at_the_platform(&receiver, 3).await;
    assert_eq!(human[2].body["data"]["author"], "human");
    assert_eq!(human[2].body["data"]["id"], "p-1");

    // The human ends the chat: the transfer completes; the control
    // service then writes ENDED, which reaches the platform.
    platform_posts(&reply_url, &json!({"kind": "end"}).to_string()).await;
    assert_eq!(
        next_event(&mut transfer).await.kind(),
        TransferEventKind::Completed
    );
    relay.entry(ended("h-both", 4)).await;
    let all = entries_at_the_platform(&receiver, 4).await;
    assert_eq!(all[3].body["type"], "baton.chat.ended");
    assert_eq!(all[3].body["data"]["reason"], "completed");
    assert_eq!(all[3].body["data"]["sequence"], 4);
    assert!(
        relay.next().await.is_none(),
        "the relay is over after ENDED"
    );
    let (status, answer) = post_signed(&reply_url, &human_message("p-9"), SECRET).await;
    assert_eq!(status, 409, "the conversation is over: {answer}");
}

#[tokio::test]
async fn the_chat_endpoint_refuses_what_is_not_a_signed_well_formed_request_of_a_known_chat() {
    let receiver = receiver(&[("crm", vec![])], None);
    let receiver_addr = start_receiver(receiver.clone()).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let process = Process::start(config(dir.path(), receiver_addr, "crm"));
    let (_transfer, reply_url) = connected_chat(process.grpc, &receiver, "h-refuse").await;
    let mut relay = Relay::open(process.grpc, "h-refuse").await;

    let unsigned = reqwest::Client::new()
        .post(&reply_url)
        .header("content-type", "application/json")
        .body(human_message("x-1"))
        .send()
        .await
        .expect("answered");
    assert_eq!(unsigned.status().as_u16(), 401, "no signature");
    let (status, _) = post_signed(&reply_url, &human_message("x-2"), OTHER_SECRET).await;
    assert_eq!(status, 401, "another secret's signature");

    let stale = (std::time::SystemTime::now() - Duration::from_secs(3600))
        .duration_since(std::time::SystemTime::UNIX_EPOCH)
        .expect("clock")
        .as_secs();
    let body = human_message("x-3");
    let signature = baton_connector_webhook::signature::SigningSecret::parse(SECRET)
        .expect("secret")
        .sign("msg_stale", stale as i64, body.as_bytes());
    let replayed = reqwest::Client::new()
        .post(&reply_url)
        .header("content-type", "application/json")
        .header("webhook-id", "msg_stale")
        .header("webhook-timestamp", stale.to_string())
        .header("webhook-signature", signature)
        .body(body)
        .send()
        .await
        .expect("answered");
    assert_eq!(replayed.status().as_u16(), 401, "a stale timestamp");

    let huge = json!({"kind": "message", "message": {"id": "x-4", "text": "a".repeat(70_000)}});
    let (status, _) = post_signed(&reply_url, &huge.to_string(), SECRET).await;
    assert_eq!(status, 413, "an oversized body");

    let unknown = reply_url.replace("h-refuse", "h-nobody");
    let (status, _) = post_signed(&unknown, &human_message("x-5"), SECRET).await;
    assert_eq!(status, 404, "an unknown transfer");

    for (body, field) in [
        (
            json!({"kind": "message", "message": {"text": "hi"}}),
            "message.id",
        ),
        (
            json!({"kind": "read", "through_sequence": "two"}),
            "through_sequence",
        ),
        (
            json!({"kind": "typing", "active": true, "who": "ann"}),
            "who",
        ),
    ] {
        let (status, answer) = post_signed(&reply_url, &body.to_string(), SECRET).await;
        assert_eq!(status, 400, "{body}");
        let answer: Value = serde_json::from_str(&answer).expect("a JSON error");
        assert!(
            answer["error"].as_str().is_some_and(|e| e.contains(field)),
            "{body}: {answer}"
        );
    }
    // Nothing refused reached the relay: the next message is the good one.
    human_says(&reply_url, "ok-1").await;
    assert_eq!(next_message_id(&mut relay).await, "ok-1");
}

#[tokio::test]
async fn a_retried_entry_carries_the_same_id_and_body() {
    // The platform's chat endpoint fails the first request.
    let receiver = receiver(
        &[("crm", vec![]), ("crm-chat", vec![Answer::Status(503)])],
        None,
    );
    let receiver_addr = start_receiver(receiver.clone()).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let process = Process::start(config(dir.path(), receiver_addr, "crm-chat"));
    let (_transfer, _) = connected_chat(process.grpc, &receiver, "h-retry").await;
    let relay = Relay::open(process.grpc, "h-retry").await;
    relay
        .entry(message("h-retry", 1, ChatAuthor::Customer, "c-1"))
        .await;
    entries_at_the_platform(&receiver, 1).await;
    let tries: Vec<Received> = receiver
        .received()
        .into_iter()
        .filter(|r| r.endpoint == "crm-chat")
        .collect();
    assert_eq!(
        tries.iter().map(|r| r.status).collect::<Vec<_>>(),
        [503, 200],
        "{tries:#?}"
    );
    assert_eq!(tries[0].id, tries[1].id, "the same webhook-id");
    assert_eq!(tries[0].body, tries[1].body, "the same body");
}

#[tokio::test]
async fn a_reconnect_and_a_restart_lose_nothing_and_repeat_nothing() {
    let receiver = receiver(&[("crm", vec![])], None);
    let receiver_addr = start_receiver(receiver.clone()).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let config = config(dir.path(), receiver_addr, "crm");
    let first = Process::start(config.clone());
    let (_transfer, reply_url) = connected_chat(first.grpc, &receiver, "h-again").await;

    let mut relay = Relay::open(first.grpc, "h-again").await;
    relay
        .entry(message("h-again", 1, ChatAuthor::Customer, "c-1"))
        .await;
    relay
        .entry(message("h-again", 2, ChatAuthor::Customer, "c-2"))
        .await;
    entries_at_the_platform(&receiver, 2).await;
    human_says(&reply_url, "p-1").await;
    assert_eq!(next_message_id(&mut relay).await, "p-1");
    drop(relay);
    // Posted while no relay is open: it waits in the connector.
    human_says(&reply_url, "p-2").await;

    let mut relay = Relay::open(first.grpc, "h-again").await;
    assert_eq!(
        relay.opened_after, 2,
        "the last entry the platform accepted"
    );
    // p-1 is not back as an entry yet: sent again (stored once by id).
    assert_eq!(next_message_id(&mut relay).await, "p-1");
    assert_eq!(next_message_id(&mut relay).await, "p-2");
    // The control service sends what it believes the connector lacks.
    relay
        .entry(message("h-again", 2, ChatAuthor::Customer, "c-2"))
        .await;
    relay
        .entry(message("h-again", 3, ChatAuthor::Human, "p-1"))
        .await;
    relay
        .entry(message("h-again", 4, ChatAuthor::Human, "p-2"))
        .await;
    entries_at_the_platform(&receiver, 4).await;
    let second_config = again(&config, &first);
    drop(relay);
    first.crash();

    let second = Process::start(second_config);
    let mut relay = Relay::open(second.grpc, "h-again").await;
    assert_eq!(relay.opened_after, 4, "kept across the restart");
    human_says(&reply_url, "p-3").await;
    assert_eq!(
        next_message_id(&mut relay).await,
        "p-3",
        "the acknowledged p-1 and p-2 are not sent again"
    );
    relay
        .entry(message("h-again", 5, ChatAuthor::Human, "p-3"))
        .await;
    relay.entry(ended("h-again", 6)).await;
    let delivered = entries_at_the_platform(&receiver, 6).await;
    assert!(
        relay.next().await.is_none(),
        "the relay is over after ENDED"
    );
    assert_eq!(
        chat_entries(&receiver)
            .iter()
            .map(|r| r.body["data"]["sequence"].as_u64().expect("sequence"))
            .collect::<Vec<_>>(),
        [1, 2, 3, 4, 5, 6],
        "each entry once, in order: {delivered:#?}"
    );
}
