//! Hand-back to the AI through the real binaries: a handoff to the
//! embedded queue (`baton-connector-queue`) behind `baton-control`; agent
//! ann signs in at the desktop's API as the page does (session cookie and
//! CSRF token), accepts the offer and returns the customer to the AI with
//! a disposition, notes and an instruction. The runtime's WatchHandoff
//! stream ends with HANDED_BACK carrying that wrap-up, GetHandoff shows
//! state HANDED_BACK, and both read the same after the control service is
//! killed (SIGKILL) and started again on its store. A hand-back without
//! the CSRF token, or by an agent who does not have the contact, is
//! refused and changes nothing.

use std::path::Path;
use std::time::Duration;

use anyhow::Context;
use baton_proto::handoff::v1::handoff_service_client::HandoffServiceClient;
use baton_proto::handoff::v1::{HandoffEvent, HandoffEventKind, HandoffState};
use baton_proto::types::v1 as pb;
use baton_tests::Service;
use baton_tests::desk::{self, Desk, add_support_agent};
use tonic::transport::Channel;

/// A failure guard for each wait, never a measured time.
const WAIT: Duration = Duration::from_secs(30);

const DISPOSITION: &str = "verified";
const NOTES: &str = "checked the date of birth and the postcode";
const INSTRUCTION: &str = "customer verified; finish the address change";

/// The queue with agents ann and bob of the control service's tenant
/// without credentials.
async fn start_queue(dir: &Path) -> anyhow::Result<Service> {
    let accounts = dir.join("desk-accounts.toml");
    for name in ["ann", "bob"] {
        add_support_agent(&accounts, name, &format!("{name}-pw"))?;
    }
    desk::start_queue(dir, &accounts, "").await
}

/// The control service in front of `queue`, on the store in `dir`.
async fn start_control(dir: &Path, queue: &Service) -> anyhow::Result<Service> {
    baton_tests::control_with_connector("queue", &queue.endpoint("grpc"), &[], dir).await
}

async fn runtime(control: &Service) -> anyhow::Result<HandoffServiceClient<Channel>> {
    Ok(HandoffServiceClient::connect(control.endpoint("grpc")).await?)
}

/// Signs agent `name` in at the queue's desktop, with the password
/// [`add_agents`] gave them.
async fn sign_in(queue: &Service, name: &str) -> anyhow::Result<Desk> {
    Desk::sign_in(&desk::desktop_base(queue), name, &format!("{name}-pw")).await
}

fn hand_back_body() -> serde_json::Value {
    serde_json::json!({
        "disposition": DISPOSITION,
        "notes": NOTES,
        "instruction": INSTRUCTION,
    })
}

fn assert_handed_back(event: &HandoffEvent) {
    assert_eq!(event.kind(), HandoffEventKind::HandedBack, "{event:?}");
    assert_eq!(event.state(), HandoffState::HandedBack, "{event:?}");
    let wrap_up = event
        .wrap_up
        .as_ref()
        .expect("HANDED_BACK carries the wrap-up");
    assert_eq!(
        (
            wrap_up.disposition.as_str(),
            wrap_up.notes.as_str(),
            wrap_up.instruction.as_str()
        ),
        (DISPOSITION, NOTES, INSTRUCTION)
    );
}

async fn flow(dir: &Path, queue: &Service, control: &mut Service) -> anyhow::Result<()> {
    let mut client = runtime(control).await?;
    let support = pb::target::Kind::Queue(pb::QueueTarget {
        name: "support".into(),
        skills: vec![],
    });
    let mut request = baton_tests::sample_request("hand-back-1", support);
    request.timeout = Some(prost_types::Duration {
        seconds: 300,
        nanos: 0,
    });
    // The queue takes a handoff only while an agent with its skill is
    // signed in.
    let ann = sign_in(queue, "ann").await?;
    let bob = sign_in(queue, "bob").await?;
    let id = baton_tests::create_handoff(&mut client, request).await;
    let mut watch = baton_tests::open_watch(&mut client, &id, 0).await;

    // Only ann is available, so she is offered the handoff; bob is signed
    // in as an agent of the same tenant and never has the contact.
    ann.available().await?;
    ann.agent_view_until(|v| v["offer"]["handoff_id"] == id.as_str())
        .await?;
    let status = ann
        .change(
            reqwest::Method::POST,
            &format!("/api/handoffs/{id}/accept"),
            serde_json::Value::Null,
        )
        .await?;
    assert!(status.is_success(), "accept: {status}");
    ann.agent_view_until(|v| v["active"]["handoff_id"] == id.as_str())
        .await?;

    // The same front door as every change: no CSRF token, no hand-back;
    // an agent who does not have the contact cannot hand it back.
    let path = format!("/api/handoffs/{id}/hand-back");
    let status = ann
        .change_without_csrf(reqwest::Method::POST, &path, hand_back_body())
        .await?;
    assert_eq!(status, reqwest::StatusCode::FORBIDDEN, "without CSRF");
    let status = bob
        .change(reqwest::Method::POST, &path, hand_back_body())
        .await?;
    assert_eq!(status, reqwest::StatusCode::CONFLICT, "not bob's contact");
    let status = ann
        .change(reqwest::Method::POST, &path, hand_back_body())
        .await?;
    assert_eq!(status, reqwest::StatusCode::NO_CONTENT, "hand back");
    let status = ann
        .change(reqwest::Method::POST, &path, hand_back_body())
        .await?;
    assert!(
        !status.is_success(),
        "a contact is handed back once: {status}"
    );

    // The runtime's stream ends with the typed event and its payload.
    let mut events = Vec::new();
    tokio::time::timeout(WAIT, async {
        while let Ok(Some(response)) = watch.message().await {
            events.extend(response.event);
        }
    })
    .await
    .context("the watch stream ends after the hand-back")?;
    let last = events.last().context("events")?;
    assert_handed_back(last);
    assert!(
        events
            .iter()
            .any(|e| e.kind() == HandoffEventKind::Connected),
        "connected first: {:?}",
        events.iter().map(|e| e.kind()).collect::<Vec<_>>()
    );
    let handoff = baton_tests::get_handoff(&mut client, &id).await;
    assert_eq!(handoff.state(), HandoffState::HandedBack);
    assert_eq!(
        handoff.wrap_up.as_ref().map(|w| w.instruction.as_str()),
        Some(INSTRUCTION)
    );

    // Durable: the control service killed and started again on its store.
    control.kill().await?;
    *control = start_control(dir, queue).await?;
    let mut client = runtime(control).await?;
    let handoff = baton_tests::get_handoff(&mut client, &id).await;
    assert_eq!(handoff.state(), HandoffState::HandedBack);
    let wrap_up = handoff.wrap_up.context("the wrap-up after a restart")?;
    assert_eq!(
        (wrap_up.disposition.as_str(), wrap_up.instruction.as_str()),
        (DISPOSITION, INSTRUCTION)
    );
    let replayed = baton_tests::watch_all(&mut client, &id, 0, WAIT).await;
    assert_eq!(
        replayed.iter().map(|e| e.sequence).collect::<Vec<_>>(),
        events.iter().map(|e| e.sequence).collect::<Vec<_>>(),
        "the same log after a restart"
    );
    assert_handed_back(replayed.last().context("events")?);
    Ok(())
}

#[tokio::test]
async fn an_agent_hands_the_customer_back_to_the_ai_with_an_instruction() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let queue = start_queue(dir.path()).await?;
    let mut control = start_control(dir.path(), &queue).await?;
    let result = flow(dir.path(), &queue, &mut control).await;
    if result.is_err() {
        eprintln!(
            "queue log:\n{}\ncontrol log:\n{}",
            queue.logs(),
            control.logs()
        );
    }
    result
}
