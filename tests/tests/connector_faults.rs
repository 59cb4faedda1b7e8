//! Connectors that hang or send garbage, against the real control service:
//! the route's next target takes the handoff within its deadline and the
//! runtime sees the fallback; a connector that keeps failing has its
//! circuit opened (skipped at once, shown in health) and closed again once
//! it is fixed. Also the bounded queues: dispatches and watch streams.
//!
//! The faulty connector is `tests/faults/faulty_connector.py` (grpcio); the
//! healthy one is `baton-connector-script`.

mod common;

use std::path::{Path, PathBuf};
use std::time::Duration;

use HandoffEventKind as K;
use baton_proto::handoff::v1::handoff_service_client::HandoffServiceClient;
use baton_proto::handoff::v1::*;
use baton_proto::types::v1 as pb;
use baton_tests::{Service, handoff_client};
use common::{
    RANG_AND_COMPLETED, assert_failed_over_from, create, kinds, queue, request, watch_all,
};
use tempfile::TempDir;
use tonic::transport::Channel;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;

const SCRIPT_CONFIG: &str = r#"
name = "script"
listen = "127.0.0.1:0"
default_script = ["ringing", "answered", "connected", "completed"]

[targets]
hold = ["ringing", "hold"]
"#;

/// A faulty connector, a healthy one, and a control service whose route
/// `faulty-first` tries the faulty one and then the healthy one.
struct Faults {
    dir: TempDir,
    /// Gone once [`Faults::crash_faulty`] killed it.
    faulty: Option<Service>,
    _script: Service,
    control: Service,
}

impl Faults {
    async fn start(dispatch: &str, limits: &str) -> Faults {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join("mode"), "ok").expect("mode");
        let script_config = format!(
            "record_file = {:?}\n{SCRIPT_CONFIG}",
            dir.path().join("script.jsonl").display().to_string()
        );
        let script = baton_tests::start_with_config(
            "baton-connector-script",
            dir.path(),
            "script.toml",
            &script_config,
            &[],
        )
        .await
        .expect("start the script connector");
        let program = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("faults/faulty_connector.py");
        let mode = dir.path().join("mode");
        let record = dir.path().join("faulty.jsonl");
        let faulty = Service::start_program(
            "faulty-connector",
            Path::new("python3"),
            &[
                program.to_str().expect("path"),
                "--mode-file",
                mode.to_str().expect("path"),
                "--record-file",
                record.to_str().expect("path"),
            ],
            &[],
            dir.path(),
        )
        .await
        .expect("start the faulty connector (python3 with grpcio, grpcio-tools, grpcio-health-checking)");
        let config = format!(
            r#"
[server]
grpc_listen = "127.0.0.1:0"
http_listen = "127.0.0.1:0"
drain_timeout = "2s"

[store]
data_dir = {data:?}

[limits]
{limits}

[dispatch]
{dispatch}

[connectors.faulty]
endpoint = "{faulty}"
call_timeout = "2s"

[connectors.script]
endpoint = "{script}"

[default_connectors]
queue = "script"

[[routes]]
name = "faulty-first"
targets = [{{ connector = "faulty", queue = "support" }}, {{ connector = "script", queue = "support" }}]
"#,
            data = dir.path().join("control").display().to_string(),
            faulty = faulty.endpoint("grpc"),
            script = script.endpoint("grpc"),
        );
        let control = baton_tests::start_with_config(
            "baton-control",
            dir.path(),
            "control.toml",
            &config,
            &[],
        )
        .await
        .expect("start control");
        Faults {
            dir,
            faulty: Some(faulty),
            _script: script,
            control,
        }
    }

    /// Kills the faulty connector at once (SIGKILL).
    async fn crash_faulty(&mut self) {
        let faulty = self.faulty.take().expect("the faulty connector runs");
        faulty.crash().await.expect("kill the faulty connector");
    }

    fn set_mode(&self, mode: &str) {
        std::fs::write(self.dir.path().join("mode"), mode).expect("mode");
    }

    async fn client(&self) -> HandoffServiceClient<Channel> {
        handoff_client(&self.control).await
    }

    async fn health(&self, service: &str) -> ServingStatus {
        let channel = Channel::from_shared(self.control.endpoint("grpc"))
            .expect("endpoint")
            .connect()
            .await
            .expect("connect to health");
        let mut health = HealthClient::new(channel);
        health
            .check(HealthCheckRequest {
                service: service.into(),
            })
            .await
            .expect("health check")
            .into_inner()
            .status()
    }

    /// Waits (bounded) until `service`'s health is `expected`; returns the
    /// last status seen.
    async fn wait_health(&self, service: &str, expected: ServingStatus) -> ServingStatus {
        let mut status = self.health(service).await;
        for _ in 0..50 {
            if status == expected {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
            status = self.health(service).await;
        }
        status
    }

    /// The value of `baton_connector_circuit_state` for `connector` on the
    /// Prometheus endpoint.
    async fn circuit_metric(&self, connector: &str) -> Option<f64> {
        let (status, body) = common::http_get(self.control.addr("http"), "/metrics").await;
        assert_eq!(status, 200, "{body}");
        let label = format!("connector=\"{connector}\"");
        body.lines()
            .filter(|line| line.starts_with("baton_connector_circuit_state{"))
            .find(|line| line.contains(&label))
            .and_then(|line| line.rsplit(' ').next())
            .and_then(|value| value.parse().ok())
    }

    /// What reached the faulty connector, one JSON object per call.
    fn faulty_calls(&self) -> Vec<serde_json::Value> {
        read_lines(&self.dir.path().join("faulty.jsonl"))
    }

    /// The transfers the healthy connector started.
    fn script_transfers(&self) -> Vec<serde_json::Value> {
        read_lines(&self.dir.path().join("script.jsonl"))
    }

    /// How many transfers of handoff `id` the healthy connector started.
    fn script_transfers_of(&self, id: &str) -> usize {
        self.script_transfers()
            .iter()
            .filter(|t| t["handoff_id"] == id)
            .count()
    }

    fn faulty_starts(&self, id: &str) -> usize {
        self.faulty_calls()
            .iter()
            .filter(|c| c["call"] == "start" && c["handoff_id"] == id)
            .count()
    }
}

fn read_lines(path: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .filter_map(|line| serde_json::from_str(line).ok())
        .collect()
}

fn to_faulty_first(request_id: &str, timeout: Duration) -> CreateHandoffRequest {
    let mut request = request(request_id, pb::target::Kind::Route("faulty-first".into()));
    request.timeout = Some(prost_types::Duration {
        seconds: i64::try_from(timeout.as_secs()).expect("seconds"),
        nanos: 0,
    });
    request
}

fn connector_of(event: &HandoffEvent) -> String {
    match event
        .attempt
        .as_ref()
        .and_then(|a| a.target.as_ref())
        .and_then(|t| t.kind.as_ref())
    {
        Some(pb::target::Kind::Queue(queue)) => queue.name.clone(),
        _ => String::new(),
    }
}

/// The tally of a run, printed in the test output.
#[derive(Debug, Default)]
struct Figures {
    sent: usize,
    acknowledged: usize,
    completed: usize,
    fell_back: usize,
    lost: usize,
    duplicated: usize,
}

impl Figures {
    /// Counts one acknowledged handoff from its whole event log.
    fn count(&mut self, events: &[HandoffEvent]) {
        let terminal = events.last().map(|e| e.kind());
        match terminal {
            Some(K::Completed) => self.completed += 1,
            Some(K::Failed) | Some(K::Cancelled) => {}
            _ => self.lost += 1,
        }
        if events.iter().any(|e| e.kind() == K::TargetFailed) {
            self.fell_back += 1;
        }
        if events.iter().filter(|e| e.kind() == K::Connected).count() > 1 {
            self.duplicated += 1;
        }
    }

    fn print(&self, scenario: &str) {
        println!(
            "figures [{scenario}]: sent {}, acknowledged {}, completed {}, fell back {}, lost {}, duplicated {}",
            self.sent,
            self.acknowledged,
            self.completed,
            self.fell_back,
            self.lost,
            self.duplicated
        );
    }
}

/// Sends `count` handoffs at once to the faulty-first route and follows
/// each to its end; returns their ids and event logs.
async fn burst(
    faults: &Faults,
    prefix: &str,
    count: usize,
    figures: &mut Figures,
) -> Vec<(String, Vec<HandoffEvent>)> {
    let mut tasks = Vec::new();
    for n in 0..count {
        let mut client = faults.client().await;
        let request_id = format!("{prefix}-{n}");
        tasks.push(tokio::spawn(async move {
            let created = client
                .create_handoff(to_faulty_first(&request_id, Duration::from_secs(30)))
                .await;
            let Ok(created) = created else {
                return None;
            };
            let id = created.into_inner().handoff.expect("handoff").id;
            let events = watch_all(&mut client, &id, 0).await;
            Some((id, events))
        }));
    }
    figures.sent += count;
    let mut results = Vec::new();
    for task in tasks {
        if let Some((id, events)) = task.await.expect("burst task") {
            figures.acknowledged += 1;
            figures.count(&events);
            results.push((id, events));
        }
    }
    results
}

/// The runtime sees attempt 1 (faulty) fail with CONNECTOR_ERROR after
/// `faulty_progress` (the valid events it sent first), then attempt 2
/// (healthy) connect and complete.
fn assert_fell_back_after(events: &[HandoffEvent], faulty_progress: &[K], expect_detail: &str) {
    let mut expected = vec![K::Created, K::TargetStarted];
    expected.extend_from_slice(faulty_progress);
    expected.extend([
        K::TargetFailed,
        K::TargetStarted,
        K::Ringing,
        K::Answered,
        K::Connected,
        K::Completed,
    ]);
    assert_eq!(
        kinds(events),
        expected,
        "{:?}",
        events
            .iter()
            .map(|e| (e.kind(), e.detail.clone(), e.failure.clone()))
            .collect::<Vec<_>>()
    );
    let failed = &events[2 + faulty_progress.len()];
    let failure = failed.failure.as_ref().expect("failure");
    assert_eq!(failure.reason(), pb::FailureReason::ConnectorError);
    assert!(
        failure.detail.contains(expect_detail),
        "{:?} should mention {expect_detail:?}",
        failure.detail
    );
    let next = &events[3 + faulty_progress.len()];
    assert_eq!(next.attempt.as_ref().expect("attempt").attempt, 2);
    assert_eq!(connector_of(next), "support");
}

fn assert_fell_back(events: &[HandoffEvent], expect_detail: &str) {
    assert_fell_back_after(events, &[], expect_detail);
}

#[tokio::test]
async fn hung_and_garbled_connectors_fall_back_to_the_next_target() {
    // A high threshold: every fault reaches the connector (the circuit is
    // the other test's concern).
    let faults = Faults::start(
        "start_timeout = \"1s\"\nfirst_event_timeout = \"1s\"\nretries = 1\nretry_backoff = \"50ms\"\nfailure_threshold = 100",
        "",
    )
    .await;
    let mut client = faults.client().await;
    let mut figures = Figures::default();
    let cases: [(&str, &[K], &str); 6] = [
        ("hang", &[], "no transfer event within"),
        ("silent", &[], "StartTransfer not accepted within"),
        (
            "garbage-sequence",
            &[K::Ringing],
            "sequence 3 where 2 was due",
        ),
        ("garbage-illegal", &[], "not a legal next step"),
        ("garbage-unspecified", &[], "without a kind"),
        ("garbage-bytes", &[], "malformed transfer event"),
    ];
    for (mode, progress, detail) in cases {
        faults.set_mode(mode);
        figures.sent += 1;
        let created = client
            .create_handoff(to_faulty_first(mode, Duration::from_secs(30)))
            .await
            .expect("create")
            .into_inner();
        figures.acknowledged += 1;
        let id = created.handoff.expect("handoff").id;
        let events = watch_all(&mut client, &id, 0).await;
        figures.count(&events);
        assert_fell_back_after(&events, progress, detail);
        // Hung and garbled connectors are not sent the transfer again, and
        // are told to cancel it before the next target rings.
        assert_eq!(faults.faulty_starts(&id), 1, "{mode}: one StartTransfer");
        assert_eq!(
            faults.script_transfers_of(&id),
            1,
            "{mode}: one transfer by the next target"
        );
    }
    // Cancels are sent in the background: wait for them (bounded).
    for _ in 0..50 {
        let cancels = faults
            .faulty_calls()
            .iter()
            .filter(|c| c["call"] == "cancel")
            .count();
        if cancels >= cases.len() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let cancelled: Vec<_> = faults
        .faulty_calls()
        .into_iter()
        .filter(|c| c["call"] == "cancel")
        .collect();
    assert_eq!(cancelled.len(), cases.len(), "{cancelled:?}");
    figures.print("hang and garbage, one handoff per fault");
    assert_eq!(figures.completed, cases.len());
    assert_eq!((figures.lost, figures.duplicated), (0, 0));
    // One faulty connector never takes the control service out.
    assert_eq!(faults.health("").await, ServingStatus::Serving);
}

/// The dispatcher reuses a connector's passed check for up to a second
/// (`CHECK_TTL`). A connector killed within that second must still fail
/// over at once: the failed first call makes the dispatcher check again
/// instead of trusting the reused check and retrying. The faulty
/// connector's retries pause for a minute, past the handoff's deadline, so
/// a retry would fail the handoff instead of completing it on the next
/// target. (On a machine so loaded that the second handoff dispatches more
/// than a second after the first one's check, the check is made afresh
/// and the same outcome follows.)
#[tokio::test]
async fn a_connector_killed_right_after_a_passed_check_fails_over_without_retries() {
    let mut faults = Faults::start(
        "connectors.faulty = { retries = 3, retry_backoff = \"60s\" }",
        "",
    )
    .await;
    let mut client = faults.client().await;
    let timeout = Duration::from_secs(10);
    let first = create(&mut client, to_faulty_first("checked", timeout)).await;
    let events = watch_all(&mut client, &first, 0).await;
    assert_eq!(
        kinds(&events),
        RANG_AND_COMPLETED,
        "the faulty connector, in mode ok, takes the first handoff"
    );

    faults.crash_faulty().await;
    let second = create(&mut client, to_faulty_first("after-crash", timeout)).await;
    let events = watch_all(&mut client, &second, 0).await;
    assert_failed_over_from(&events, "faulty");
    assert_eq!(
        faults.script_transfers_of(&second),
        1,
        "the next target took the handoff"
    );
}

#[tokio::test]
async fn an_open_circuit_skips_a_hung_connector_until_it_is_fixed() {
    let faults = Faults::start(
        "start_timeout = \"1s\"\nfirst_event_timeout = \"1s\"\nretries = 1\nretry_backoff = \"50ms\"\nfailure_threshold = 3\nopen_cooldown = \"5s\"",
        "",
    )
    .await;
    let mut figures = Figures::default();
    assert_eq!(
        faults.health("baton.connector/faulty").await,
        ServingStatus::Serving
    );

    // Three handoffs find the connector hung: each waits for its first
    // event, then falls back. The third failure opens the circuit.
    faults.set_mode("hang");
    for (_, events) in burst(&faults, "hung", 3, &mut figures).await {
        assert_fell_back(&events, "no transfer event within");
    }
    assert_eq!(
        faults
            .wait_health("baton.connector/faulty", ServingStatus::NotServing)
            .await,
        ServingStatus::NotServing
    );
    assert_eq!(
        faults.health("baton.handoff.v1.HandoffService").await,
        ServingStatus::Serving,
        "an open circuit does not take the control service out"
    );
    assert_eq!(faults.circuit_metric("faulty").await, Some(2.0), "open");
    assert_eq!(faults.circuit_metric("script").await, Some(0.0), "closed");

    // A burst while the circuit is open: every handoff skips the faulty
    // connector without calling it.
    let calls_before = faults.faulty_calls().len();
    let skipped = burst(&faults, "skipped", 10, &mut figures).await;
    for (id, events) in &skipped {
        assert_fell_back(events, "circuit is open");
        assert_eq!(faults.faulty_starts(id), 0);
    }
    assert_eq!(
        faults
            .faulty_calls()
            .iter()
            .skip(calls_before)
            .filter(|c| c["call"] == "start")
            .count(),
        0,
        "no StartTransfer reaches a connector whose circuit is open"
    );

    // Fixed: after the cool-down one probe goes through, connects, and
    // the circuit closes (bounded: a handoff every 300 ms, at most 30).
    faults.set_mode("ok");
    let mut client = faults.client().await;
    let mut probe = None;
    for n in 0..30 {
        figures.sent += 1;
        let id = baton_tests::create_handoff(
            &mut client,
            to_faulty_first(&format!("probe-{n}"), Duration::from_secs(30)),
        )
        .await;
        figures.acknowledged += 1;
        let events = watch_all(&mut client, &id, 0).await;
        figures.count(&events);
        if !events.iter().any(|e| e.kind() == K::TargetFailed) {
            probe = Some(events);
            break;
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    let probe = probe.expect("a probe reaches the fixed connector");
    println!(
        "after the fix, {} handoffs until the circuit closed (the ones before the cool-down ended skipped it, the last was the probe)",
        figures.sent - 13
    );
    assert_eq!(kinds(&probe), RANG_AND_COMPLETED);
    assert_eq!(
        faults
            .wait_health("baton.connector/faulty", ServingStatus::Serving)
            .await,
        ServingStatus::Serving
    );

    assert_eq!(faults.circuit_metric("faulty").await, Some(0.0), "closed");

    // Closed again: a burst goes to the first target, no fallback.
    let recovered = burst(&faults, "recovered", 5, &mut figures).await;
    for (id, events) in &recovered {
        assert!(
            !events.iter().any(|e| e.kind() == K::TargetFailed),
            "{events:?}"
        );
        assert_eq!(faults.faulty_starts(id), 1);
    }
    figures.print("hung connector: circuit opens, skips, closes");
    assert_eq!(figures.acknowledged, figures.sent);
    assert_eq!(figures.completed, figures.acknowledged);
    assert_eq!((figures.lost, figures.duplicated), (0, 0));

    // The circuit's state is a metric; its transitions are in the log.
    let log = std::fs::read_to_string(&faults.control.log_path).unwrap_or_default();
    assert!(log.contains("connector circuit changed"), "{log}");
}

#[tokio::test]
async fn full_dispatch_and_watch_queues_answer_resource_exhausted_with_retry_info() {
    let faults = Faults::start("max_in_flight = 2", "max_watch_streams = 2").await;
    let mut client = faults.client().await;
    // Two handoffs that ring until cancelled fill the dispatcher.
    let mut held = Vec::new();
    for n in 0..2 {
        let id = common::create(&mut client, request(&format!("hold-{n}"), queue("hold"))).await;
        held.push(id);
    }
    let refused = client
        .create_handoff(request("one-too-many", queue("support")))
        .await
        .expect_err("the dispatcher is full");
    assert_eq!(refused.code(), tonic::Code::ResourceExhausted);
    let details = tonic_types::StatusExt::get_error_details(&refused);
    assert!(
        details.retry_info().is_some(),
        "RetryInfo tells when to retry"
    );
    assert_eq!(
        details.error_info().expect("error info").reason,
        "DISPATCH_QUEUE_FULL"
    );

    // Two watch streams fill the watch slots; the third is refused.
    let mut streams = Vec::new();
    for id in &held {
        streams.push(
            client
                .watch_handoff(WatchHandoffRequest {
                    handoff_id: id.clone(),
                    after_sequence: 0,
                })
                .await
                .expect("watch")
                .into_inner(),
        );
    }
    let refused = client
        .watch_handoff(WatchHandoffRequest {
            handoff_id: held[0].clone(),
            after_sequence: 0,
        })
        .await
        .expect_err("the watch slots are full");
    assert_eq!(refused.code(), tonic::Code::ResourceExhausted);
    let details = tonic_types::StatusExt::get_error_details(&refused);
    assert!(details.retry_info().is_some());

    // A closed stream frees its slot at once, though its handoff records
    // nothing more (bounded: 50 tries, 100 ms apart).
    drop(streams);
    let mut watched = None;
    for _ in 0..50 {
        match client
            .watch_handoff(WatchHandoffRequest {
                handoff_id: held[0].clone(),
                after_sequence: 0,
            })
            .await
        {
            Ok(stream) => {
                watched = Some(stream.into_inner());
                break;
            }
            Err(status) => {
                assert_eq!(status.code(), tonic::Code::ResourceExhausted);
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
    let _watched = watched.expect("a watch slot again once a stream closes");

    // Cancelling frees the dispatcher.
    for id in &held {
        client
            .cancel_handoff(CancelHandoffRequest {
                handoff_id: id.clone(),
                reason: "test over".into(),
            })
            .await
            .expect("cancel");
    }
    let mut accepted = false;
    for _ in 0..50 {
        match client
            .create_handoff(request("after-room", queue("support")))
            .await
        {
            Ok(_) => {
                accepted = true;
                break;
            }
            Err(status) => {
                assert_eq!(status.code(), tonic::Code::ResourceExhausted);
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
    assert!(accepted, "room again once handoffs end");
}
