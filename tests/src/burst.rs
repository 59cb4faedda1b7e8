//! What the connector restart tests share: a burst of handoffs created at
//! once, each handoff's whole event log, and the checks every one of them
//! must pass.

use std::time::Duration;

use baton_proto::handoff::v1::handoff_service_client::HandoffServiceClient;
use baton_proto::handoff::v1::{CreateHandoffRequest, HandoffEvent, WatchHandoffRequest};
use tokio::task::JoinSet;
use tonic::transport::Channel;

/// Creates a handoff on a task of its own; the task yields its id.
pub fn spawn_create(
    creates: &mut JoinSet<String>,
    client: &HandoffServiceClient<Channel>,
    request: CreateHandoffRequest,
) {
    let mut client = client.clone();
    creates.spawn(async move {
        client
            .create_handoff(request)
            .await
            .expect("CreateHandoff")
            .into_inner()
            .handoff
            .expect("handoff")
            .id
    });
}

/// The whole event log of a handoff that has ended (the watch ends with
/// it), read within 10 s.
pub async fn event_log(
    client: &mut HandoffServiceClient<Channel>,
    handoff_id: &str,
) -> Vec<HandoffEvent> {
    let mut stream = client
        .watch_handoff(WatchHandoffRequest {
            handoff_id: handoff_id.into(),
            after_sequence: 0,
        })
        .await
        .expect("watch")
        .into_inner();
    let mut events = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), async {
        while let Ok(Some(response)) = stream.message().await {
            events.extend(response.event);
        }
    })
    .await
    .expect("an ended handoff's log ends");
    events
}

/// Whether the log's sequences are 1, 2, 3… without a gap; the problem
/// otherwise.
pub fn check_gapless(handoff_id: &str, events: &[HandoffEvent]) -> Result<(), String> {
    let sequences: Vec<u64> = events.iter().map(|e| e.sequence).collect();
    if sequences == (1..=events.len() as u64).collect::<Vec<_>>() {
        Ok(())
    } else {
        Err(format!("{handoff_id}: events not gapless: {sequences:?}"))
    }
}

/// The last 40 lines of a log, for a failure message.
pub fn tail(log: &str) -> String {
    let lines: Vec<&str> = log.lines().collect();
    lines[lines.len().saturating_sub(40)..].join("\n")
}
