//! A restart of a connector in the middle of a burst of handoffs is a
//! non-event for the customers: real processes (the control service, the
//! queue connector under test and, on routes with a fallback, a second
//! queue connector), agents following their desktops' Server-Sent Events,
//! and the queue connector killed (kill -9) or stopped (SIGTERM) while
//! most of the burst waits, then started again on the same addresses.
//!
//! For every handoff: at most one human is offered it (counted at the
//! desktops' event streams), its event log is gapless, and it ends in a
//! true terminal state: COMPLETED, wrapped up by the one agent who took
//! it. With a restart shorter than the re-attach window no handoff fails.

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use baton_proto::handoff::v1::HandoffEventKind;
use baton_tests::burst::{
    self, Endings, Fault, Tally, check_gapless, event_log, fell_back, spawn_burst, wait_all_ended,
    wait_until,
};
use baton_tests::desk::{Desk, add_support_agent};
use baton_tests::{Service, start_with_config};
use reqwest::Method;
use serde_json::{Value, json};
use tempfile::TempDir;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

const HANDOFFS: usize = 200;
const AGENTS_PER_QUEUE: usize = 8;
/// How long an agent stays on a contact before wrapping it up: long
/// enough that most of the burst is still waiting when the fault hits.
const HOLD: Duration = Duration::from_millis(100);
/// Handoffs created while the connector is down.
const DURING_DOWNTIME: usize = 20;
/// The fault hits once this many handoffs were wrapped up.
const FAULT_AFTER_COMPLETED: usize = 20;

/// What the desktops saw: which agents were offered each handoff, and
/// which wrapped it up.
#[derive(Debug, Default)]
struct Desktops {
    offered: Mutex<BTreeMap<String, BTreeSet<String>>>,
    wrapped: Mutex<BTreeMap<String, Vec<String>>>,
}

impl Desktops {
    fn offered(&self, handoff: &str, agent: &str) {
        self.offered
            .lock()
            .expect("lock")
            .entry(handoff.to_owned())
            .or_default()
            .insert(agent.to_owned());
    }

    fn wrapped(&self, handoff: &str, agent: &str) {
        self.wrapped
            .lock()
            .expect("lock")
            .entry(handoff.to_owned())
            .or_default()
            .push(agent.to_owned());
    }

    fn completed(&self) -> usize {
        self.wrapped.lock().expect("lock").len()
    }
}

fn queue_config(dir: &Path, name: &str, grpc: &str, http: &str) -> String {
    // Short handle times keep the wait estimate under the queue's maximum
    // for a burst this size; no callbacks are offered.
    format!(
        r#"name = "{name}"
grpc_listen = "{grpc}"
http_listen = "{http}"
data_dir = {data:?}
offer_timeout = "2m"
initial_handle_time = "1s"
drain_timeout = "3s"

[desk]
accounts_file = {accounts:?}

[[queues]]
name = "support"
skills = ["support"]
max_wait = "1h"
callback_threshold = "10h"
"#,
        data = dir.join(name).display().to_string(),
        accounts = accounts_file(dir).display().to_string(),
    )
}

/// The desktop accounts both queue connectors read.
fn accounts_file(dir: &Path) -> std::path::PathBuf {
    dir.join("desk-accounts.toml")
}

/// An agent account of the tests' tenant (`default`, the control
/// service's without credentials) for each desktop agent, password "pw".
fn add_agent_accounts(dir: &Path, prefixes: &[&str]) {
    for prefix in prefixes {
        for n in 0..AGENTS_PER_QUEUE {
            add_support_agent(&accounts_file(dir), &format!("{prefix}{n}"), "pw")
                .expect("an agent account");
        }
    }
}

async fn start_queue(dir: &Path, name: &str, grpc: &str, http: &str) -> Service {
    let config = queue_config(dir, name, grpc, http);
    start_with_config(
        "baton-connector-queue",
        dir,
        &format!("{name}.toml"),
        &config,
        &[],
    )
    .await
    .expect("start the queue connector")
}

struct Stack {
    dir: TempDir,
    queue: Option<Service>,
    _backup: Option<Service>,
    control: Service,
    queue_http: SocketAddr,
    queue_grpc: SocketAddr,
    backup_http: Option<SocketAddr>,
}

impl Stack {
    async fn start(with_fallback: bool) -> Stack {
        let dir = tempfile::tempdir().expect("tempdir");
        add_agent_accounts(dir.path(), &["a", "b"]);
        let queue = start_queue(dir.path(), "queue", "127.0.0.1:0", "127.0.0.1:0").await;
        let backup = if with_fallback {
            Some(start_queue(dir.path(), "backup", "127.0.0.1:0", "127.0.0.1:0").await)
        } else {
            None
        };
        let mut targets = String::from(r#"{ connector = "queue", queue = "support" }"#);
        let mut connectors = format!(
            "[connectors.queue]\nendpoint = \"{}\"\n",
            queue.endpoint("grpc")
        );
        if let Some(backup) = &backup {
            targets.push_str(r#", { connector = "backup", queue = "support" }"#);
            connectors.push_str(&format!(
                "[connectors.backup]\nendpoint = \"{}\"\n",
                backup.endpoint("grpc")
            ));
        }
        let control = burst::start_control(dir.path(), &connectors, "queue", &targets).await;
        Stack {
            queue_http: queue.addr("http"),
            queue_grpc: queue.addr("grpc"),
            backup_http: backup.as_ref().map(|b| b.addr("http")),
            queue: Some(queue),
            _backup: backup,
            control,
            dir,
        }
    }

    /// The fault: the queue connector is killed, or stopped with SIGTERM
    /// (it drains first).
    async fn stop_queue(&mut self, fault: Fault) {
        let queue = self.queue.take().expect("queue running");
        fault.strike(queue, "queue connector").await;
    }

    /// The queue connector started again on the same addresses and data
    /// directory.
    async fn start_queue_again(&mut self) {
        self.queue = Some(
            start_queue(
                self.dir.path(),
                "queue",
                &self.queue_grpc.to_string(),
                &self.queue_http.to_string(),
            )
            .await,
        );
    }
}

/// One agent at a desktop: signs in, follows its event stream (again
/// after the connector restarts), accepts every offer, and wraps each
/// contact up after [`HOLD`].
async fn agent(http: SocketAddr, id: String, desktops: Arc<Desktops>, stop: CancellationToken) {
    let base = format!("http://{http}");
    let desk = Desk::sign_in(&base, &id, "pw").await.expect("sign in");
    desk.available().await.expect("set available");

    while !stop.is_cancelled() {
        let Ok(Ok(mut views)) = desk.views("/api/agent/events").await else {
            // The connector is restarting.
            tokio::time::sleep(Duration::from_millis(100)).await;
            continue;
        };
        loop {
            let view = tokio::select! {
                view = views.next() => view,
                () = stop.cancelled() => return,
            };
            let Ok(Some(view)) = view else { break };
            if let Some(offer) = view["offer"]["handoff_id"].as_str() {
                desktops.offered(offer, &id);
                let accept = format!("/api/handoffs/{offer}/accept");
                let _ = desk.change(Method::POST, &accept, Value::Null).await;
            }
            if let Some(active) = view["active"]["handoff_id"].as_str() {
                tokio::time::sleep(HOLD).await;
                let wrap_up = format!("/api/handoffs/{active}/wrap-up");
                let wrapped = desk
                    .change(Method::POST, &wrap_up, json!({ "disposition": "resolved" }))
                    .await;
                if wrapped.is_ok_and(|status| status.is_success()) {
                    desktops.wrapped(active, &id);
                }
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn run(fault: Fault, with_fallback: bool) {
    let mut stack = Stack::start(with_fallback).await;
    let desktops = Arc::new(Desktops::default());
    let stop = CancellationToken::new();
    let mut agents = JoinSet::new();
    let desks = [
        Some(("a", stack.queue_http)),
        stack.backup_http.map(|h| ("b", h)),
    ];
    for (prefix, http) in desks.into_iter().flatten() {
        for n in 0..AGENTS_PER_QUEUE {
            agents.spawn(agent(
                http,
                format!("{prefix}{n}"),
                desktops.clone(),
                stop.clone(),
            ));
        }
    }
    // Every agent signed in before the burst, so none is refused NO_AGENTS.
    tokio::time::sleep(Duration::from_millis(500)).await;

    let client = baton_tests::handoff_client(&stack.control).await;
    let mut creates = JoinSet::new();
    spawn_burst(&mut creates, &client, "burst-", 0..HANDOFFS);

    // The fault hits mid-burst: some handoffs done, most still waiting.
    wait_until(600, || desktops.completed() >= FAULT_AFTER_COMPLETED).await;
    let in_flight_at_fault = HANDOFFS - desktops.completed();
    stack.stop_queue(fault).await;
    // Customers keep escalating while the connector is down: with a
    // fallback they go there at once, without one they wait for it.
    spawn_burst(
        &mut creates,
        &client,
        "burst-",
        HANDOFFS..HANDOFFS + DURING_DOWNTIME,
    );
    tokio::time::sleep(Duration::from_secs(1)).await;
    stack.start_queue_again().await;

    let ids: Vec<String> = creates.join_all().await;
    let mut client = client.clone();
    let Endings { lost, failed, .. } = wait_all_ended(&mut client, &ids).await;
    let mut tally = Tally {
        in_flight_at_fault,
        lost,
        failed,
        ..Tally::default()
    };
    stop.cancel();
    agents.join_all().await;

    let offered = desktops.offered.lock().expect("lock").clone();
    let wrapped = desktops.wrapped.lock().expect("lock").clone();
    let mut problems = Vec::new();
    for id in &ids {
        let events = event_log(&mut client, id).await;
        if let Err(problem) = check_gapless(id, &events) {
            problems.push(problem);
        }
        let agents = offered.get(id).cloned().unwrap_or_default();
        if agents.len() > 1 {
            tally.offered_twice += 1;
            problems.push(format!("{id}: offered to {agents:?}"));
        }
        if fell_back(&events) {
            tally.fell_back += 1;
        }
        if events.last().map(|e| e.kind()) == Some(HandoffEventKind::Completed) {
            // A true COMPLETED: one wrap-up, by the one agent offered it.
            match wrapped.get(id).map(Vec::as_slice) {
                Some([agent]) if agents.contains(agent) => {}
                other => problems.push(format!(
                    "{id}: COMPLETED, but wrapped up by {other:?}, offered to {agents:?}"
                )),
            }
        }
    }
    println!(
        "{}",
        tally.report("queue", fault, with_fallback, ids.len(), DURING_DOWNTIME)
    );
    assert!(problems.is_empty(), "{problems:#?}");
    tally.assert_non_event(HANDOFFS, &stack.control.logs());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queue_killed_mid_burst_without_a_fallback() {
    run(Fault::Kill, false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queue_killed_mid_burst_with_a_fallback() {
    run(Fault::Kill, true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queue_terminated_mid_burst_without_a_fallback() {
    run(Fault::Terminate, false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queue_terminated_mid_burst_with_a_fallback() {
    run(Fault::Terminate, true).await;
}
