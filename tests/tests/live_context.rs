//! Live context through the real binaries: a handoff to the embedded queue
//! (`baton-connector-queue`) behind `baton-control` is offered to agent ann,
//! whose desktop event stream is open. While the offer is open, the runtime
//! calls UpdateHandoff with a new transcript turn and a new entity: ann's
//! view shows both (the control service forwarded the update to the queue,
//! which reports context_updates), and the signed context URL serves them
//! too. An update against the version before is ABORTED; WatchHandoff
//! carries CONTEXT_UPDATED with the new version; once ann accepts and the
//! handoff is CONNECTED, UpdateHandoff is FAILED_PRECONDITION.

use std::time::Duration;

use anyhow::Context;
use baton_proto::handoff::v1::handoff_service_client::HandoffServiceClient;
use baton_proto::handoff::v1::{
    GetHandoffRequest, HandoffEvent, HandoffEventKind, HandoffState, UpdateHandoffRequest,
    WatchHandoffResponse,
};
use baton_proto::types::v1 as pb;
use baton_tests::desk::{self, Desk};
use serde_json::Value;
use tonic::transport::Channel;

/// A failure guard for each wait, never a measured time.
const WAIT: Duration = Duration::from_secs(30);

const NEW_TURN: &str = "It was on the third of March, both charges";
const NEW_ENTITY: &str = "charge_date";
const NEW_VALUE: &str = "2026-03-03";

fn update(id: &str, request_id: &str, expected_version: u64) -> UpdateHandoffRequest {
    UpdateHandoffRequest {
        handoff_id: id.into(),
        request_id: request_id.into(),
        expected_context_version: expected_version,
        turns: vec![pb::Turn {
            speaker: pb::Speaker::Customer as i32,
            text: NEW_TURN.into(),
            at: None,
        }],
        entities: vec![pb::Entity {
            name: NEW_ENTITY.into(),
            value: NEW_VALUE.into(),
            r#type: "date".into(),
            sensitive: false,
        }],
        notes: String::new(),
    }
}

/// Whether `offer` (the screen pop of the agent's view) shows the update.
fn shows_update(offer: &Value) -> bool {
    let has_turn = offer["transcript"]
        .as_array()
        .is_some_and(|turns| turns.iter().any(|t| t["text"] == NEW_TURN));
    let has_entity = offer["entities"].as_array().is_some_and(|entities| {
        entities
            .iter()
            .any(|e| e["name"] == NEW_ENTITY && e["value"] == NEW_VALUE)
    });
    has_turn && has_entity
}

/// Reads the watch stream until an event satisfies `wanted` (bounded by
/// [`WAIT`]); every event read, that one last.
async fn watch_until(
    watch: &mut tonic::Streaming<WatchHandoffResponse>,
    wanted: impl Fn(&HandoffEvent) -> bool,
) -> anyhow::Result<Vec<HandoffEvent>> {
    let mut events = Vec::new();
    tokio::time::timeout(WAIT, async {
        while let Some(response) = watch.message().await? {
            if let Some(event) = response.event {
                let done = wanted(&event);
                events.push(event);
                if done {
                    return anyhow::Ok(());
                }
            }
        }
        anyhow::bail!("the watch stream ended")
    })
    .await
    .with_context(|| format!("no such event in time; seen: {events:?}"))??;
    Ok(events)
}

async fn version_of(client: &mut HandoffServiceClient<Channel>, id: &str) -> anyhow::Result<u64> {
    let handoff = client
        .get_handoff(GetHandoffRequest {
            handoff_id: id.into(),
        })
        .await?
        .into_inner()
        .handoff
        .context("no handoff")?;
    Ok(handoff.context_version)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_update_while_offered_shows_on_the_open_screen_pop_and_stops_once_accepted()
-> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let (queue, control) = desk::start_queue_and_control(dir.path(), "ann", "").await?;
    let mut client = baton_tests::handoff_client(&control).await;

    // The queue takes a handoff only while an agent with its skill is
    // signed in and available.
    let ann = Desk::sign_in(&desk::desktop_base(&queue), "ann", "ann-pw").await?;
    ann.available().await?;
    let support = pb::target::Kind::Queue(pb::QueueTarget {
        name: "support".into(),
        skills: vec![],
    });
    let mut request = baton_tests::sample_request("live-context-1", support);
    request.timeout = Some(Duration::from_secs(300).try_into()?);
    let id = baton_tests::create_handoff(&mut client, request).await;
    let mut watch = baton_tests::open_watch(&mut client, &id, 0).await;

    // The offer is open on ann's desktop, without the update yet.
    let mut views = ann
        .views("/api/agent/events")
        .await?
        .map_err(|status| anyhow::anyhow!("agent events refused: {status}"))?;
    let offered = views
        .until(|v| v["offer"]["handoff_id"] == id.as_str())
        .await?;
    assert!(!shows_update(&offered["offer"]), "{offered}");

    // The runtime adds what the customer said while waiting.
    let version = version_of(&mut client, &id).await?;
    let updated = client
        .update_handoff(update(&id, "live-update-1", version))
        .await?
        .into_inner();
    assert!(updated.applied);
    assert_eq!(updated.context_version, version + 1);

    // The same open stream shows it on the offer, without a new offer.
    let shown = views
        .until(|v| v["offer"]["handoff_id"] == id.as_str() && shows_update(&v["offer"]))
        .await?;
    assert!(shown["active"].is_null(), "{shown}");

    // The signed context URL serves the stored latest context too.
    let screen_pop = shown["offer"]["screen_pop_url"]
        .as_str()
        .context("screen-pop URL")?;
    let context_url = screen_pop.replace("/screen-pop?", "/context?");
    let http = reqwest::Client::builder().no_proxy().build()?;
    let served = http.get(&context_url).send().await?.text().await?;
    assert!(served.contains(NEW_TURN), "{served}");
    assert!(served.contains(NEW_VALUE), "{served}");

    // An update made against the version before this one is refused.
    let stale = client
        .update_handoff(update(&id, "live-update-stale", version))
        .await
        .expect_err("a stale version");
    assert_eq!(stale.code(), tonic::Code::Aborted, "{stale:?}");

    // The runtime's watch stream carries the update as an event.
    let events = watch_until(&mut watch, |e| e.kind() == HandoffEventKind::ContextUpdated).await?;
    let context_updated = events.last().context("an event")?;
    assert_eq!(context_updated.context_version, version + 1);

    // Once ann accepts and a human has the customer, the context is closed.
    let status = ann
        .change(
            reqwest::Method::POST,
            &format!("/api/handoffs/{id}/accept"),
            Value::Null,
        )
        .await?;
    assert!(status.is_success(), "accept: {status}");
    watch_until(&mut watch, |e| e.state() == HandoffState::Connected).await?;
    let closed = client
        .update_handoff(update(&id, "live-update-late", version + 1))
        .await
        .expect_err("connected");
    assert_eq!(closed.code(), tonic::Code::FailedPrecondition, "{closed:?}");
    Ok(())
}
