//! What the connector restart tests share: a burst of handoffs created at
//! once, each handoff's whole event log, and the checks every one of them
//! must pass.

use std::collections::BTreeMap;
use std::ops::Range;
use std::path::Path;
use std::time::Duration;

use baton_proto::handoff::v1::handoff_service_client::HandoffServiceClient;
use baton_proto::handoff::v1::{
    CreateHandoffRequest, HandoffEvent, HandoffEventKind, HandoffState,
};
use baton_proto::types::v1 as pb;
use tokio::task::JoinSet;
use tonic::transport::Channel;

use crate::{Service, sample_request, wait_until_ended};

/// How a connector goes down in the middle of a burst.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// kill -9: no drain, nothing flushed.
    Kill,
    /// SIGTERM: the connector drains first and must exit cleanly.
    Terminate,
}

impl Fault {
    /// Takes `connector` (named `what` in failure messages) down; returns
    /// its log: as it was when killed, or as it ends after the drain.
    pub async fn strike(self, mut connector: Service, what: &str) -> String {
        match self {
            Fault::Kill => {
                let logs = connector.logs();
                connector
                    .crash()
                    .await
                    .unwrap_or_else(|e| panic!("kill -9 the {what}: {e}"));
                logs
            }
            Fault::Terminate => {
                let status = connector
                    .stop()
                    .await
                    .unwrap_or_else(|e| panic!("stop the {what}: {e}"));
                assert!(status.success(), "{what} exit status {status:?}");
                connector.logs()
            }
        }
    }
}

/// The tally of one restart scenario, printed for the README's
/// reliability table.
#[derive(Debug, Default)]
pub struct Tally {
    /// Still in flight when the wait for the burst gave up.
    pub lost: usize,
    /// Reached more than one human.
    pub offered_twice: usize,
    pub failed: usize,
    /// Left the first target of their route for another.
    pub fell_back: usize,
    /// Not yet done when the fault hit.
    pub in_flight_at_fault: usize,
}

impl Tally {
    /// The scenario's line of the reliability table: `connector` went
    /// down by `fault` in a burst of `handoffs`, `during_downtime` more
    /// created while it was down.
    pub fn report(
        &self,
        connector: &str,
        fault: Fault,
        with_fallback: bool,
        handoffs: usize,
        during_downtime: usize,
    ) -> String {
        format!(
            "connector restart: {connector}, {fault:?}, {}: {handoffs} handoffs ({} in flight at \
             the fault, {during_downtime} created while it was down): {} lost, {} offered twice, \
             {} failed, {} fell back",
            if with_fallback {
                "with fallback"
            } else {
                "no fallback"
            },
            self.in_flight_at_fault,
            self.lost,
            self.offered_twice,
            self.failed,
            self.fell_back,
        )
    }

    /// Asserts that the restart was a non-event for the customers of a
    /// burst of `handoffs`: none lost, offered twice or failed; that the
    /// fault hit the burst (most handoffs were in flight); and that the
    /// control service re-attached to transfers the connector held
    /// (`control_logs`).
    pub fn assert_non_event(&self, handoffs: usize, control_logs: &str) {
        assert_eq!(
            (self.lost, self.offered_twice, self.failed),
            (0, 0, 0),
            "{self:?}\ncontrol log tail: {}",
            tail(control_logs)
        );
        assert!(self.in_flight_at_fault >= handoffs / 2, "{self:?}");
        assert!(
            control_logs.contains("re-attaching"),
            "no re-attach in the control log"
        );
    }
}

/// Checks `reached` every 25 ms, at most `polls` times, until it holds: the
/// moment a fault hits mid-burst (bounded, so a stuck burst still gets its
/// fault and fails the checks).
pub async fn wait_until(polls: usize, reached: impl Fn() -> bool) {
    for _ in 0..polls {
        if reached() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// Starts the control service (SQLite under `dir`) for a burst: a rate
/// limit the burst cannot hit, `connectors` (TOML `[connectors.*]`
/// tables), `default_queue` taking queue targets, and one route,
/// `support`, over `targets` (TOML inline tables).
pub async fn start_control(
    dir: &Path,
    connectors: &str,
    default_queue: &str,
    targets: &str,
) -> Service {
    let sections = format!(
        r#"
# The burst arrives at once.
[rate_limit]
requests_per_second = 10000
burst = 1000

{connectors}
[default_connectors]
queue = "{default_queue}"

[[routes]]
name = "support"
targets = [{targets}]
"#
    );
    crate::start_control(dir, &sections, &[])
        .await
        .expect("start control")
}

/// Creates, each on a task of its own, the handoffs `{prefix}{n}` for
/// every `n` in `numbers`, all to the route `support`.
pub fn spawn_burst(
    creates: &mut JoinSet<String>,
    client: &HandoffServiceClient<Channel>,
    prefix: &str,
    numbers: Range<usize>,
) {
    for n in numbers {
        let target = pb::target::Kind::Route("support".into());
        spawn_create(
            creates,
            client,
            sample_request(&format!("{prefix}{n}"), target),
        );
    }
}

/// How the handoffs of a burst ended.
#[derive(Debug, Default)]
pub struct Endings {
    /// Still in flight when the wait gave up.
    pub lost: usize,
    pub failed: usize,
    /// Each handoff's last state seen.
    pub states: BTreeMap<String, HandoffState>,
}

/// Waits for each of `ids` to end: bounded, 120 s for the first, less for
/// the rest as they end.
pub async fn wait_all_ended(client: &mut HandoffServiceClient<Channel>, ids: &[String]) -> Endings {
    let mut endings = Endings::default();
    for id in ids {
        let state = wait_until_ended(client, id, 4800).await;
        match state {
            HandoffState::Completed => {}
            HandoffState::Failed => endings.failed += 1,
            _ => endings.lost += 1,
        }
        endings.states.insert(id.clone(), state);
    }
    endings
}

/// Whether the handoff left one of its route's targets for another.
pub fn fell_back(events: &[HandoffEvent]) -> bool {
    events
        .iter()
        .any(|e| e.kind() == HandoffEventKind::TargetFailed)
}

/// Creates a handoff on a task of its own; the task yields its id.
pub fn spawn_create(
    creates: &mut JoinSet<String>,
    client: &HandoffServiceClient<Channel>,
    request: CreateHandoffRequest,
) {
    let mut client = client.clone();
    creates.spawn(async move { crate::create_handoff(&mut client, request).await });
}

/// The whole event log of a handoff that has ended (the watch ends with
/// it), read within 10 s.
pub async fn event_log(
    client: &mut HandoffServiceClient<Channel>,
    handoff_id: &str,
) -> Vec<HandoffEvent> {
    crate::watch_all(client, handoff_id, 0, Duration::from_secs(10)).await
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
