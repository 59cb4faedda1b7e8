//! A restart of the webhook connector in the middle of a burst of handoffs
//! is a non-event for the customers: real processes (the control service
//! and the webhook connector with its transfer journal) and a receiving
//! system in the test that answers each message after [`ANSWER_AFTER`],
//! the connector killed (kill -9) or stopped (SIGTERM, a 3 s drain) while
//! most of the burst is being delivered, then started again on the same
//! addresses and data directory after a second.
//!
//! For every handoff: it reaches at most one human at the receiver (one
//! `webhook-id`, one endpoint: a message delivered again after the restart
//! has the same `webhook-id` and the same body, so the receiver counts it
//! once; a second `webhook-id` for the handoff, or a delivery to the
//! route's fallback endpoint as well, would be a second offer), its event
//! log is gapless, and it ends COMPLETED. With a restart shorter than the
//! re-attach window no handoff fails.

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path as UrlPath, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use baton_proto::handoff::v1::HandoffState;
use baton_tests::burst::{
    self, Endings, Fault, Tally, check_gapless, event_log, fell_back, spawn_burst, tail,
    wait_all_ended, wait_until,
};
use baton_tests::{Service, start_with_config};
use tempfile::TempDir;
use tokio::task::JoinSet;

const HANDOFFS: usize = 200;
/// Handoffs created while the connector is down.
const DURING_DOWNTIME: usize = 10;
/// How long the receiver takes to answer a message: with the endpoint's
/// rate limit, the burst takes seconds to deliver.
const ANSWER_AFTER: Duration = Duration::from_millis(300);
/// Messages per second the connector sends to each endpoint.
const RATE_PER_SECOND: u32 = 40;
/// The fault hits once the receiver has answered this many messages.
const FAULT_AFTER_ANSWERED: usize = 20;
const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

/// One `webhook-id` as the receiver saw it.
#[derive(Debug)]
struct Message {
    handoff_id: String,
    endpoint: String,
    body: Bytes,
    deliveries: usize,
    /// A delivery with this id whose body differed from the first.
    changed: bool,
}

/// The receiving system: every message by `webhook-id`, and how many it
/// answered.
#[derive(Debug, Default)]
struct Receiver {
    messages: Mutex<BTreeMap<String, Message>>,
    answered: AtomicUsize,
}

impl Receiver {
    fn answered(&self) -> usize {
        self.answered.load(Ordering::SeqCst)
    }
}

async fn receive(
    State(receiver): State<Arc<Receiver>>,
    UrlPath(endpoint): UrlPath<String>,
    headers: HeaderMap,
    body: Bytes,
) -> StatusCode {
    let Some(id) = headers
        .get("webhook-id")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
    else {
        return StatusCode::BAD_REQUEST;
    };
    let Some(handoff_id) = serde_json::from_slice::<serde_json::Value>(&body)
        .ok()
        .and_then(|v| v["data"]["handoff_id"].as_str().map(str::to_owned))
    else {
        return StatusCode::BAD_REQUEST;
    };
    {
        let mut messages = receiver.messages.lock().expect("lock");
        let message = messages.entry(id).or_insert_with(|| Message {
            handoff_id,
            endpoint,
            body: body.clone(),
            deliveries: 0,
            changed: false,
        });
        message.deliveries += 1;
        message.changed |= message.body != body;
    }
    // Counted when it arrives; a connector killed meanwhile never sees
    // the answer and delivers the same message again.
    tokio::time::sleep(ANSWER_AFTER).await;
    receiver.answered.fetch_add(1, Ordering::SeqCst);
    StatusCode::ACCEPTED
}

async fn start_receiver(receiver: Arc<Receiver>) -> SocketAddr {
    let app = Router::new()
        .route("/hooks/{endpoint}", post(receive))
        .with_state(receiver);
    baton_tests::serve_loopback(app).await
}

fn webhook_config(dir: &Path, receiver: SocketAddr, grpc: &str, http: &str) -> String {
    let endpoint = |name: &str| {
        format!(
            "[endpoints.{name}]\nurl = \"http://{receiver}/hooks/{name}\"\nsecret = \"{SECRET}\"\n\
             rate_per_second = {RATE_PER_SECOND}.0\nburst = 1\ntimeout = \"5s\"\n"
        )
    };
    format!(
        r#"name = "webhook"
listen = "{grpc}"
http_listen = "{http}"
delivery_log = {log:?}
data_dir = {data:?}
drain_timeout = "3s"

[retry]
max_attempts = 6
initial_backoff = "200ms"
max_backoff = "1s"

{desk}
{backup}
[queues]
desk = ["desk"]
backup = ["backup"]
"#,
        log = dir.join("deliveries.sqlite3").display().to_string(),
        data = dir.join("webhook").display().to_string(),
        desk = endpoint("desk"),
        backup = endpoint("backup"),
    )
}

async fn start_webhook(dir: &Path, receiver: SocketAddr, grpc: &str, http: &str) -> Service {
    let config = webhook_config(dir, receiver, grpc, http);
    start_with_config("baton-connector-webhook", dir, "webhook.toml", &config, &[])
        .await
        .expect("start the webhook connector")
}

struct Stack {
    dir: TempDir,
    webhook: Option<Service>,
    control: Service,
    receiver_addr: SocketAddr,
    webhook_grpc: SocketAddr,
    webhook_http: SocketAddr,
}

impl Stack {
    async fn start(receiver_addr: SocketAddr, with_fallback: bool) -> Stack {
        let dir = tempfile::tempdir().expect("tempdir");
        let webhook = start_webhook(dir.path(), receiver_addr, "127.0.0.1:0", "127.0.0.1:0").await;
        let mut targets = String::from(r#"{ connector = "webhook", queue = "desk" }"#);
        if with_fallback {
            targets.push_str(r#", { connector = "webhook", queue = "backup" }"#);
        }
        let connectors = format!(
            "[connectors.webhook]\nendpoint = \"{}\"\n",
            webhook.endpoint("grpc")
        );
        let control = burst::start_control(dir.path(), &connectors, "webhook", &targets).await;
        Stack {
            webhook_grpc: webhook.addr("grpc"),
            webhook_http: webhook.addr("http"),
            webhook: Some(webhook),
            control,
            receiver_addr,
            dir,
        }
    }

    /// The fault: the connector is killed, or stopped with SIGTERM (it
    /// drains first). Returns its log.
    async fn stop_webhook(&mut self, fault: Fault) -> String {
        let webhook = self.webhook.take().expect("webhook running");
        fault.strike(webhook, "webhook connector").await
    }

    /// The connector started again on the same addresses and data
    /// directory.
    async fn start_webhook_again(&mut self) {
        self.webhook = Some(
            start_webhook(
                self.dir.path(),
                self.receiver_addr,
                &self.webhook_grpc.to_string(),
                &self.webhook_http.to_string(),
            )
            .await,
        );
    }
}

async fn run(fault: Fault, with_fallback: bool) {
    let receiver = Arc::new(Receiver::default());
    let receiver_addr = start_receiver(receiver.clone()).await;
    let mut stack = Stack::start(receiver_addr, with_fallback).await;

    let client = baton_tests::handoff_client(&stack.control).await;
    let mut creates = JoinSet::new();
    spawn_burst(&mut creates, &client, "webhook-burst-", 0..HANDOFFS);

    // The fault hits mid-burst: some messages answered, most not yet.
    wait_until(1200, || receiver.answered() >= FAULT_AFTER_ANSWERED).await;
    let in_flight_at_fault = HANDOFFS.saturating_sub(receiver.answered());
    let first_logs = stack.stop_webhook(fault).await;
    // Customers keep escalating while the connector is down: the route's
    // first target fails over at once, and its last target, on the same
    // connector, waits for it (an open circuit does not skip a last
    // target).
    spawn_burst(
        &mut creates,
        &client,
        "webhook-burst-",
        HANDOFFS..HANDOFFS + DURING_DOWNTIME,
    );
    tokio::time::sleep(Duration::from_secs(1)).await;
    stack.start_webhook_again().await;

    let ids: Vec<String> = tokio::time::timeout(Duration::from_secs(60), creates.join_all())
        .await
        .expect("every CreateHandoff answered within a minute");
    let mut client = client.clone();
    let Endings {
        lost,
        failed,
        states,
    } = wait_all_ended(&mut client, &ids).await;
    let mut tally = Tally {
        in_flight_at_fault,
        lost,
        failed,
        ..Tally::default()
    };

    // Messages delivered again after the restart, with the same id.
    let mut delivered_again = 0;
    // What the receiver saw, by handoff: its message ids and endpoints.
    let mut by_handoff: BTreeMap<String, (BTreeSet<String>, BTreeSet<String>)> = BTreeMap::new();
    let mut problems = Vec::new();
    for (message_id, message) in receiver.messages.lock().expect("lock").iter() {
        let (ids, endpoints) = by_handoff.entry(message.handoff_id.clone()).or_default();
        ids.insert(message_id.clone());
        endpoints.insert(message.endpoint.clone());
        if message.deliveries > 1 {
            delivered_again += 1;
        }
        if message.changed {
            problems.push(format!(
                "{}: {message_id} delivered again with another body",
                message.handoff_id
            ));
        }
    }
    for id in &ids {
        let events = event_log(&mut client, id).await;
        if let Err(problem) = check_gapless(id, &events) {
            problems.push(problem);
        }
        if fell_back(&events) {
            tally.fell_back += 1;
        }
        let (message_ids, endpoints) = by_handoff.get(id).cloned().unwrap_or_default();
        if message_ids.len() > 1 || endpoints.len() > 1 {
            tally.offered_twice += 1;
            problems.push(format!(
                "{id}: offered twice: messages {message_ids:?} to endpoints {endpoints:?}"
            ));
        }
        if states.get(id) == Some(&HandoffState::Completed) && message_ids.is_empty() {
            problems.push(format!("{id}: COMPLETED, but the receiver never saw it"));
        }
    }
    println!(
        "{}, {delivered_again} messages delivered again after the restart",
        tally.report("webhook", fault, with_fallback, ids.len(), DURING_DOWNTIME)
    );
    assert!(
        problems.is_empty(),
        "{problems:#?}\nfirst connector's log tail: {}",
        tail(&first_logs)
    );
    tally.assert_non_event(HANDOFFS, &stack.control.logs());
    // Only customers the connector never had fall back: some of those who
    // escalated while it was down (on SIGTERM, some reached the draining
    // connector and were refused, which is the same).
    assert!(tally.fell_back <= DURING_DOWNTIME, "{tally:?}");
    if !with_fallback {
        // Nothing to fall back to: those customers waited for the connector.
        assert_eq!(tally.fell_back, 0, "{tally:?}");
    }
    let second_logs = stack
        .webhook
        .as_ref()
        .map(Service::logs)
        .unwrap_or_default();
    assert!(
        second_logs.contains("resuming a delivery"),
        "the restarted connector resumed no delivery: {}",
        tail(&second_logs)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhook_killed_mid_burst() {
    run(Fault::Kill, true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhook_terminated_mid_burst() {
    run(Fault::Terminate, true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhook_killed_mid_burst_without_a_fallback() {
    run(Fault::Kill, false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhook_terminated_mid_burst_without_a_fallback() {
    run(Fault::Terminate, false).await;
}
