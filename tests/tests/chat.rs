//! A chat handoff's live conversation through the real binaries: the
//! runtime (this test) holds the customer's side with ConverseHandoff on
//! `baton-control`; agent ann answers at the embedded queue's desktop API
//! (`baton-connector-queue`), as the chat pane does, with her session
//! cookie and CSRF token. Messages go both ways in order with their ids;
//! a message sent again (by either side, after a reconnect) is stored once;
//! a runtime that reconnects from the last sequence it saw gets exactly
//! what it missed, also after the control service crashed and started
//! again on its store; the conversation ends with an ENDED entry when the
//! agent completes the contact, and a runtime that has read it to the end
//! cannot reopen it (FAILED_PRECONDITION). Nobody but the connected agent
//! reads the chat.

use std::path::Path;
use std::time::Duration;

use anyhow::{Context, bail};
use baton_proto::handoff::v1::handoff_service_client::HandoffServiceClient;
use baton_proto::types::v1 as pb;
use baton_proto::types::v1::{ChatAuthor, ChatEndReason, ChatEntryKind};
use baton_tests::Service;
use baton_tests::converse::{Conversation, chat_request};
use baton_tests::desk::{self, Desk, add_support_agent};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use tonic::transport::Channel;

/// A failure guard for each wait, never a measured time.
const WAIT: Duration = Duration::from_secs(30);

/// The control service in front of `queue`, on the store in `dir`.
async fn start_control(dir: &Path, queue: &Service) -> anyhow::Result<Service> {
    baton_tests::control_with_connector("queue", &queue.endpoint("grpc"), &[], dir).await
}

/// The queue connector, with agents ann and bob of the default tenant,
/// and the control service in front of it.
async fn start(dir: &Path) -> anyhow::Result<(Service, Service)> {
    let accounts = dir.join("desk-accounts.toml");
    for name in ["ann", "bob"] {
        add_support_agent(&accounts, name, &format!("{name}-pw"))?;
    }
    let queue = desk::start_queue(dir, &accounts, "").await?;
    let control = start_control(dir, &queue).await?;
    Ok((queue, control))
}

/// Signs agent `name` in at the queue's desktop.
async fn sign_in(queue: &Service, name: &str) -> anyhow::Result<Desk> {
    Desk::sign_in(&desk::desktop_base(queue), name, &format!("{name}-pw")).await
}

/// The agent sends a chat message as the pane does (a retry keeps its id).
async fn write(desk: &Desk, handoff_id: &str, id: &str, text: &str) -> anyhow::Result<StatusCode> {
    desk.change(
        Method::POST,
        &format!("/api/chats/{handoff_id}/messages"),
        json!({ "id": id, "text": text }),
    )
    .await
}

/// Reads the chat pane's view of `handoff_id` until `wanted` holds
/// (bounded by WAIT); that view.
async fn chat_until(
    desk: &Desk,
    handoff_id: &str,
    wanted: impl Fn(&Value) -> bool,
) -> anyhow::Result<Value> {
    let path = format!("/api/chats/{handoff_id}");
    let mut last = Value::Null;
    let found = tokio::time::timeout(WAIT, async {
        loop {
            let (status, view) = desk.read(&path).await?;
            if status.is_success() && wanted(&view) {
                return anyhow::Ok(view);
            }
            last = json!({ "status": status.as_u16(), "view": view });
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await;
    match found {
        Ok(view) => view,
        Err(_) => bail!("the chat view never matched; last {last}"),
    }
}

/// Opens the conversation after `after_sequence`: the stream, what the
/// human has read, and the last sequence of the log.
async fn open(
    client: &mut HandoffServiceClient<Channel>,
    handoff_id: &str,
    after_sequence: u64,
) -> anyhow::Result<(Conversation, pb::ChatRead, u64)> {
    let (conversation, opened) = Conversation::open(client, handoff_id, after_sequence).await?;
    let read = pb::ChatRead {
        author: ChatAuthor::Human as i32,
        through_sequence: opened.human_read_through,
    };
    Ok((conversation, read, opened.last_sequence))
}

/// The pane's entries as (author, id, text).
fn entries(view: &Value) -> Vec<(String, String, String)> {
    view["entries"]
        .as_array()
        .map(|entries| {
            entries
                .iter()
                .map(|e| {
                    (
                        e["author"].as_str().unwrap_or_default().to_owned(),
                        e["id"].as_str().unwrap_or_default().to_owned(),
                        e["text"].as_str().unwrap_or_default().to_owned(),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

#[tokio::test]
async fn customer_and_agent_chat_in_order_across_a_runtime_reconnect() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let (queue, mut control) = start(dir.path()).await?;
    let mut client = HandoffServiceClient::connect(control.endpoint("grpc")).await?;
    // The queue takes a handoff only while an agent with its skill is
    // signed in; only ann is available, so she is offered it.
    let ann = sign_in(&queue, "ann").await?;
    let bob = sign_in(&queue, "bob").await?;
    ann.available().await?;
    let id = baton_tests::create_handoff(&mut client, chat_request("chat-1")).await;

    // The customer writes while waiting; the entry comes back with its
    // sequence, and a repeat of the same id is stored once.
    let (mut customer, _, last) = open(&mut client, &id, 0).await?;
    assert_eq!(last, 0, "a new conversation is empty");
    customer.say("c-1", "my parcel never arrived").await?;
    customer.say("c-1", "my parcel never arrived").await?;
    let first = customer.next_entry().await?;
    assert_eq!(
        (
            first.sequence,
            first.author(),
            first.client_message_id.as_str(),
            first.text.as_str()
        ),
        (1, ChatAuthor::Customer, "c-1", "my parcel never arrived")
    );

    ann.agent_view_until(|v| v["offer"]["handoff_id"] == id.as_str())
        .await?;
    let status = ann
        .change(
            Method::POST,
            &format!("/api/handoffs/{id}/accept"),
            json!({}),
        )
        .await?;
    assert!(status.is_success(), "accept: {status}");

    // The agent's pane has what the customer wrote before she accepted.
    let view = chat_until(&ann, &id, |v| !entries(v).is_empty()).await?;
    assert_eq!(
        entries(&view),
        vec![(
            "customer".to_owned(),
            "c-1".to_owned(),
            "my parcel never arrived".to_owned()
        )]
    );
    // Another agent of the same tenant has no access to it.
    let (status, _) = bob.read(&format!("/api/chats/{id}")).await?;
    assert_eq!(status, StatusCode::FORBIDDEN);

    // The agent answers (the pane retries a send with the same id); the
    // customer gets it once, in order.
    for _ in 0..2 {
        let status = write(
            &ann,
            &id,
            "a-1",
            "I see the order; checking the courier now",
        )
        .await?;
        assert_eq!(status, StatusCode::NO_CONTENT);
    }
    let answer = customer.next_entry().await?;
    assert_eq!(
        (
            answer.sequence,
            answer.author(),
            answer.client_message_id.as_str(),
            answer.text.as_str()
        ),
        (
            2,
            ChatAuthor::Human,
            "a-1",
            "I see the order; checking the courier now"
        )
    );

    // The runtime loses its stream after sequence 1 and reopens from
    // there: it gets the agent's message (2) again, nothing before it. It
    // re-sends c-1 (already stored) and writes c-2.
    drop(customer);
    let (mut customer, read, last) = open(&mut client, &id, 1).await?;
    assert_eq!(last, 2);
    assert!(read.through_sequence <= 2, "{read:?}");
    let missed = customer.next_entry().await?;
    assert_eq!(
        (missed.sequence, missed.client_message_id.as_str()),
        (2, "a-1")
    );
    customer.say("c-1", "my parcel never arrived").await?;
    customer.say("c-2", "it was due on Monday").await?;
    let next = customer.next_entry().await?;
    assert_eq!(
        (next.sequence, next.client_message_id.as_str()),
        (3, "c-2"),
        "c-1 was stored once; c-2 follows the agent's message"
    );

    // The pane shows the whole conversation once, in order.
    let view = chat_until(&ann, &id, |v| entries(v).len() >= 3).await?;
    let ids: Vec<String> = entries(&view).into_iter().map(|(_, id, _)| id).collect();
    assert_eq!(ids, ["c-1", "a-1", "c-2"]);

    // The control service crashes (SIGKILL) and starts again on its
    // store. The agent writes meanwhile: the pane keeps the message until
    // the relay is back, then it is stored once, after c-2; the runtime
    // reconnects from the last sequence it saw and gets just that.
    control.kill().await?;
    drop(customer);
    let status = write(&ann, &id, "a-2", "the courier will call you today").await?;
    assert_eq!(status, StatusCode::NO_CONTENT);
    control = start_control(dir.path(), &queue).await?;
    let mut client = HandoffServiceClient::connect(control.endpoint("grpc")).await?;
    let (mut customer, _, _) = open(&mut client, &id, 3).await?;
    let resent = customer.next_entry().await?;
    assert_eq!(
        (
            resent.sequence,
            resent.author(),
            resent.client_message_id.as_str()
        ),
        (4, ChatAuthor::Human, "a-2")
    );
    let view = chat_until(&ann, &id, |v| entries(v).len() >= 4).await?;
    let ids: Vec<String> = entries(&view).into_iter().map(|(_, id, _)| id).collect();
    assert_eq!(
        ids,
        ["c-1", "a-1", "c-2", "a-2"],
        "nothing lost, nothing twice"
    );

    // The agent completes the contact: the conversation ends for both.
    let status = ann
        .change(
            Method::POST,
            &format!("/api/handoffs/{id}/wrap-up"),
            json!({ "disposition": "resolved", "notes": "courier re-sent the parcel" }),
        )
        .await?;
    assert!(status.is_success(), "wrap-up: {status}");
    let ended = customer.next_entry().await?;
    assert_eq!(ended.kind(), ChatEntryKind::Ended, "{ended:?}");
    assert_eq!(ended.end_reason(), ChatEndReason::Completed, "{ended:?}");
    assert_eq!(ended.sequence, 5);
    let after = tokio::time::timeout(WAIT, customer.receive.message())
        .await
        .context("the stream did not end")?;
    assert!(matches!(after, Ok(None)), "nothing after ENDED: {after:?}");
    // A runtime that has read the whole conversation cannot reopen it; one
    // that missed the end still gets it.
    let refused = open(&mut client, &id, 5)
        .await
        .err()
        .context("reopening an ended conversation")?;
    let status = refused
        .downcast_ref::<tonic::Status>()
        .with_context(|| format!("a gRPC status: {refused:#}"))?;
    assert_eq!(status.code(), tonic::Code::FailedPrecondition, "{status:?}");
    assert!(status.message().contains("has ended"), "{status:?}");
    let (mut late, _, last) = open(&mut client, &id, 4).await?;
    assert_eq!(last, 5);
    assert_eq!(late.next_entry().await?.kind(), ChatEntryKind::Ended);
    // The conversation left the desk with the contact.
    let (status, _) = ann.read(&format!("/api/chats/{id}")).await?;
    assert_eq!(status, StatusCode::FORBIDDEN);
    Ok(())
}
