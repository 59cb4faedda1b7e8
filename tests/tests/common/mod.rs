//! A control service wired to a scripted connector, both real processes on
//! ephemeral loopback ports, for the control-service tests.
#![allow(dead_code)]
// Not every test binary uses every helper re-exported here.
#![allow(unused_imports)]

pub mod cluster;

use std::path::{Path, PathBuf};
use std::time::Duration;

use baton_proto::handoff::v1::handoff_service_client::HandoffServiceClient;
use baton_proto::handoff::v1::*;
use baton_proto::types::v1 as pb;
use baton_tests::{Service, start_with_config};
use tempfile::TempDir;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_stream::StreamExt;
use tonic::transport::Channel;

/// Scripts of the test connector, by target.
const SCRIPT_CONFIG: &str = r#"
name = "script"
listen = "127.0.0.1:0"
default_script = ["ringing", "answered", "context_delivered", "connected", "completed"]

[targets]
busy = ["ringing", "failed:busy"]
hold = ["ringing", "hold"]
agents = ["queued:2:40s", "queued:1:20s", "offered", "answered", "context_delivered", "connected", "completed"]
slow = ["ringing", "sleep:3s", "answered", "connected", "completed"]
wrapped = ["answered", "connected", "wrap_up:refund issued:refunded the second charge"]
"sip:busy@127.0.0.1" = ["ringing", "failed:busy"]
"#;

/// The `[server]` section of every control service these tests start:
/// loopback, ephemeral ports, and a drain short enough for a restart test.
pub const CONTROL_SERVER: &str = r#"
[server]
grpc_listen = "127.0.0.1:0"
http_listen = "127.0.0.1:0"
drain_timeout = "3s"
"#;

pub struct Stack {
    pub dir: TempDir,
    pub connector: Service,
    pub control: Option<Service>,
    /// Extra environment of the control service.
    control_env: Vec<(String, String)>,
}

impl Stack {
    pub async fn start() -> Stack {
        Self::start_with_env(&[], &[]).await
    }

    /// Like [`start`](Self::start), with extra environment variables for the
    /// connector and for the control service.
    pub async fn start_with_env(
        connector_env: &[(&str, &str)],
        control_env: &[(&str, &str)],
    ) -> Stack {
        let dir = tempfile::tempdir().expect("tempdir");
        let connector = start_script_connector(dir.path(), SCRIPT_CONFIG, connector_env).await;
        let mut stack = Stack {
            dir,
            connector,
            control: None,
            control_env: control_env
                .iter()
                .map(|(key, value)| (key.to_string(), value.to_string()))
                .collect(),
        };
        stack.start_control().await;
        stack
    }

    fn control_config(&self) -> PathBuf {
        let path = self.dir.path().join("control.toml");
        let config = format!(
            r#"{CONTROL_SERVER}
[store]
data_dir = {data:?}

[connectors.script]
endpoint = "{endpoint}"

[connectors.down]
endpoint = "http://127.0.0.1:9"
call_timeout = "1s"

[default_connectors]
queue = "script"
phone_number = "script"
sip_uri = "script"

[[routes]]
name = "fallback"
targets = [{{ connector = "script", queue = "busy" }}, {{ connector = "script", queue = "agents" }}]

[[routes]]
name = "dead-then-alive"
targets = [{{ connector = "down", queue = "agents" }}, {{ connector = "script", queue = "agents" }}]

[[routes]]
name = "hold-then-agents"
targets = [{{ connector = "script", queue = "hold" }}, {{ connector = "script", queue = "agents" }}]

[[routes]]
name = "all-busy"
targets = [{{ connector = "script", queue = "busy" }}, {{ connector = "script", sip_uri = "sip:busy@127.0.0.1" }}]

[messages.translations]
es = "Le paso con una persona que ya conoce su caso."
"#,
            data = self.dir.path().join("control").display().to_string(),
            endpoint = self.connector.endpoint("grpc"),
        );
        std::fs::write(&path, config).expect("write control config");
        path
    }

    pub async fn start_control(&mut self) {
        let config = self.control_config();
        let env: Vec<(&str, &str)> = self
            .control_env
            .iter()
            .map(|(key, value)| (key.as_str(), value.as_str()))
            .collect();
        let control = Service::start_with_env(
            "baton-control",
            &["--config", config.to_str().expect("path")],
            &env,
            self.dir.path(),
        )
        .await
        .expect("start control");
        self.control = Some(control);
    }

    /// Stops the connector (SIGTERM) and starts it again on the same
    /// address, as a rolling restart would.
    pub async fn restart_connector(&mut self) {
        let status = self.connector.stop().await.expect("stop the connector");
        assert!(status.success(), "connector exit status {status:?}");
        self.start_connector_again().await;
    }

    /// Kills the connector (SIGKILL), as a crash would; it is down until
    /// [`start_connector_again`](Self::start_connector_again).
    pub async fn crash_connector(&mut self) {
        self.connector.kill().await.expect("kill the connector");
    }

    /// Starts the connector again on the address it had.
    pub async fn start_connector_again(&mut self) {
        let address = self.connector.addr("grpc").to_string();
        let script = self.dir.path().join("script.toml");
        self.connector = Service::start(
            "baton-connector-script",
            &[
                "--config",
                script.to_str().expect("path"),
                "--listen",
                &address,
            ],
            self.dir.path(),
        )
        .await
        .expect("restart the script connector");
    }

    pub fn control(&self) -> &Service {
        self.control.as_ref().expect("control running")
    }

    pub async fn client(&self) -> HandoffServiceClient<Channel> {
        HandoffServiceClient::connect(self.control().endpoint("grpc"))
            .await
            .expect("connect to control")
    }

    /// The transfers the connector received, one JSON object each.
    pub fn transfers(&self) -> Vec<serde_json::Value> {
        let path = self.dir.path().join("transfers.jsonl");
        std::fs::read_to_string(path)
            .unwrap_or_default()
            .lines()
            .filter_map(|line| serde_json::from_str(line).ok())
            .collect()
    }

    pub fn data_dir(&self) -> &Path {
        self.dir.path()
    }
}

/// Starts the scripted connector on `script` (its config without the
/// record file), recording every transfer to `dir/transfers.jsonl`.
pub async fn start_script_connector(dir: &Path, script: &str, env: &[(&str, &str)]) -> Service {
    let record = dir.join("transfers.jsonl");
    let config = format!("record_file = {:?}\n{script}", record.display().to_string());
    start_with_config("baton-connector-script", dir, "script.toml", &config, env)
        .await
        .expect("start script connector")
}

pub use baton_tests::create_handoff as create;
pub use baton_tests::sample_request as request;

pub fn queue(name: &str) -> pb::target::Kind {
    pb::target::Kind::Queue(pb::QueueTarget {
        name: name.into(),
        skills: vec![],
    })
}

/// Every event of a handoff after `after`, until the stream ends.
pub async fn watch_all(
    client: &mut HandoffServiceClient<Channel>,
    id: &str,
    after: u64,
) -> Vec<HandoffEvent> {
    baton_tests::watch_all(client, id, after, Duration::from_secs(60)).await
}

/// Waits until a handoff's event log contains an event of `kind`; returns
/// the events seen so far.
pub async fn watch_until(
    client: &mut HandoffServiceClient<Channel>,
    id: &str,
    kind: HandoffEventKind,
) -> Vec<HandoffEvent> {
    let mut stream = baton_tests::open_watch(client, id, 0).await;
    let mut seen = Vec::new();
    tokio::time::timeout(Duration::from_secs(60), async {
        while let Some(Ok(response)) = stream.next().await {
            let event = response.event.expect("event");
            let found = event.kind == kind as i32;
            seen.push(event);
            if found {
                return;
            }
        }
        panic!("stream ended before {kind:?}: {seen:?}");
    })
    .await
    .expect("event arrives");
    seen
}

/// What the script's `agents` queue reports once its transfer started:
/// two queue positions, the offer, and the human taking the call.
pub const AGENTS_ANSWER: [HandoffEventKind; 7] = [
    HandoffEventKind::Queued,
    HandoffEventKind::Queued,
    HandoffEventKind::Offered,
    HandoffEventKind::Answered,
    HandoffEventKind::ContextDelivered,
    HandoffEventKind::Connected,
    HandoffEventKind::Completed,
];

/// The fields an INVALID_ARGUMENT status names in its BadRequest details;
/// panics on any other code.
pub fn bad_fields(status: &tonic::Status) -> Vec<String> {
    use tonic_types::StatusExt;
    assert_eq!(status.code(), tonic::Code::InvalidArgument, "{status:?}");
    status
        .get_details_bad_request()
        .expect("BadRequest details")
        .field_violations
        .into_iter()
        .map(|v| v.field)
        .collect()
}

/// The log of a handoff whose first target rang, answered and completed.
pub const RANG_AND_COMPLETED: [HandoffEventKind; 6] = [
    HandoffEventKind::Created,
    HandoffEventKind::TargetStarted,
    HandoffEventKind::Ringing,
    HandoffEventKind::Answered,
    HandoffEventKind::Connected,
    HandoffEventKind::Completed,
];

pub fn kinds(events: &[HandoffEvent]) -> Vec<HandoffEventKind> {
    events.iter().map(|e| e.kind()).collect()
}

/// Asserts that `connector`, the handoff's first target, failed with a
/// connector error, that the next target was started at once, and that
/// the handoff then completed.
pub fn assert_failed_over_from(events: &[HandoffEvent], connector: &str) {
    use HandoffEventKind as K;
    let kinds = kinds(events);
    assert_eq!(
        kinds.get(..4),
        Some(
            &[
                K::Created,
                K::TargetStarted,
                K::TargetFailed,
                K::TargetStarted
            ][..]
        ),
        "{kinds:?}"
    );
    let failed = &events[2];
    assert_eq!(
        failed.failure.as_ref().expect("failure").reason(),
        pb::FailureReason::ConnectorError
    );
    assert_eq!(
        failed.attempt.as_ref().expect("attempt").connector,
        connector
    );
    assert_eq!(kinds.last(), Some(&K::Completed), "{kinds:?}");
}

/// A plain HTTP/1.1 GET: the status and the whole response, headers included.
pub async fn http_get(address: std::net::SocketAddr, path: &str) -> (u16, String) {
    let mut socket = tokio::net::TcpStream::connect(address)
        .await
        .expect("connect");
    let request = format!("GET {path} HTTP/1.1\r\nHost: {address}\r\nConnection: close\r\n\r\n");
    socket.write_all(request.as_bytes()).await.expect("write");
    let mut response = String::new();
    socket.read_to_string(&mut response).await.expect("read");
    let status = response
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .expect("status line");
    (status, response)
}
