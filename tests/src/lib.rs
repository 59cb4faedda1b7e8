//! The harness of Baton's cross-service tests: starts the real binaries on
//! ephemeral loopback ports and reads the addresses they bound from their
//! readiness line.
//!
//! Binaries come from `$BATON_BIN_DIR` (set by `tests/run`), else from the
//! cargo target directory this test binary was built into. Build them first:
//! `cargo build --release --workspace --bins`.

pub mod auth;
pub mod burst;
pub mod converse;
pub mod desk;
mod in_process;
pub mod oidc_provider;
pub mod postgres;
mod sample;
pub mod sip;
pub mod sipp;

pub use in_process::InProcess;
pub use sample::{sample_request, sip_request};

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use anyhow::{Context, bail};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

/// How long a service may take to print its readiness line.
const START_TIMEOUT: Duration = Duration::from_secs(30);

/// The path of one of the workspace's binaries.
pub fn binary(name: &str) -> PathBuf {
    let dir = std::env::var_os("BATON_BIN_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            // target/<profile>/deps/<test binary> → target/<profile>
            let exe = std::env::current_exe().expect("current exe");
            exe.parent()
                .and_then(Path::parent)
                .map(Path::to_path_buf)
                .expect("target directory")
        });
    dir.join(name)
}

/// A path in this repository, from its root (`proto/clients/python`).
pub fn repository_path(relative: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join(relative)
}

/// Runs `command` to its end and fails the test with its output when it
/// fails: for the suites in other languages these tests drive (pip, npm,
/// mypy, unittest, node).
pub fn run_to_success(what: &str, command: &mut std::process::Command) {
    let output = command.output().unwrap_or_else(|e| panic!("{what}: {e}"));
    assert!(
        output.status.success(),
        "{what} failed ({}):\n{}\n{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

/// Asserts that `program --help` succeeds and names each of `options`.
pub async fn assert_help_names(program: &str, options: &[&str]) {
    let output = Command::new(program)
        .arg("--help")
        .output()
        .await
        .expect("runs");
    assert!(output.status.success());
    let help = String::from_utf8_lossy(&output.stdout);
    for option in options {
        assert!(help.contains(option), "{option} missing from:\n{help}");
    }
}

/// Runs `command` to its first line on stdout, asserts that the line is
/// the readiness line of `service` naming a bound loopback address for
/// each of `endpoints`, kills the process and returns its logs (stderr).
pub async fn assert_first_line_ready(
    mut command: Command,
    service: &str,
    endpoints: &[&str],
) -> String {
    let mut child = command
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("starts");
    let stdout = child.stdout.take().expect("stdout");
    let mut lines = BufReader::new(stdout).lines();
    let line = tokio::time::timeout(START_TIMEOUT, lines.next_line())
        .await
        .expect("ready in time")
        .expect("reads")
        .expect("a line");
    let ready: serde_json::Value = serde_json::from_str(&line).expect("JSON");
    assert_eq!(ready["ready"]["service"], service);
    for endpoint in endpoints {
        let addr = ready["ready"][*endpoint].as_str().expect("address");
        assert!(
            addr.starts_with("127.0.0.1:") && !addr.ends_with(":0"),
            "{line}"
        );
    }
    child.start_kill().expect("stops");
    let output = child.wait_with_output().await.expect("exits");
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// Asserts that `command` refuses to start with exit status 2, its stderr
/// naming `key`.
pub async fn assert_refused_naming(mut command: Command, key: &str) {
    let output = command.output().await.expect("runs");
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains(key), "{stderr}");
}

/// Starts a transfer on the connector at `grpc` and reads its events to
/// the terminal one, waiting at most `wait` for each.
pub async fn transfer(
    grpc: SocketAddr,
    request: baton_proto::connector::v1::StartTransferRequest,
    wait: Duration,
) -> Vec<baton_proto::connector::v1::StartTransferResponse> {
    use baton_proto::connector::v1::connector_service_client::ConnectorServiceClient;
    let mut client = ConnectorServiceClient::connect(format!("http://{grpc}"))
        .await
        .expect("connects");
    let mut stream = client
        .start_transfer(request)
        .await
        .expect("StartTransfer accepted")
        .into_inner();
    let mut events = Vec::new();
    while let Some(event) = tokio::time::timeout(wait, stream.message())
        .await
        .expect("an event in time")
        .expect("stream healthy")
    {
        events.push(event);
    }
    events
}

/// The control service (plain text, SQLite under `dir`) with one
/// connector, `name` at `endpoint`, taking every queue target, as a
/// platform connector's end-to-end test runs it; `env` is added to its
/// environment.
pub async fn control_with_connector(
    name: &str,
    endpoint: &str,
    env: &[(&str, &str)],
    dir: &Path,
) -> anyhow::Result<Service> {
    let sections = format!(
        "[connectors.{name}]\nendpoint = \"{endpoint}\"\n\n\
         [default_connectors]\nqueue = \"{name}\"\n"
    );
    start_control(dir, &sections, env).await
}

/// Starts the control service on `dir/control.toml`: plain text on
/// ephemeral loopback ports, SQLite under `dir/control`, then `sections`
/// (the rest of the config, TOML: connectors, routes…); `env` is added to
/// its environment and its log goes to `dir`.
pub async fn start_control(
    dir: &Path,
    sections: &str,
    env: &[(&str, &str)],
) -> anyhow::Result<Service> {
    let config = format!(
        "[server]\ngrpc_listen = \"127.0.0.1:0\"\nhttp_listen = \"127.0.0.1:0\"\n\n\
         [store]\ndata_dir = {data:?}\n\n{sections}",
        data = dir.join("control").display().to_string(),
    );
    start_with_config("baton-control", dir, "control.toml", &config, env).await
}

/// Writes `config` to `dir/file_name`, then starts `binary_name` on it
/// (`--config`) with `env` added to its environment; its log goes to
/// `dir`.
pub async fn start_with_config(
    binary_name: &str,
    dir: &Path,
    file_name: &str,
    config: &str,
    env: &[(&str, &str)],
) -> anyhow::Result<Service> {
    let path = dir.join(file_name);
    std::fs::write(&path, config).with_context(|| format!("write {}", path.display()))?;
    let path = path.to_str().context("a UTF-8 config path")?;
    Service::start_with_env(binary_name, &["--config", path], env, dir).await
}

/// A HandoffService client of the control service `control`.
pub async fn handoff_client(
    control: &Service,
) -> baton_proto::handoff::v1::handoff_service_client::HandoffServiceClient<tonic::transport::Channel>
{
    baton_proto::handoff::v1::handoff_service_client::HandoffServiceClient::connect(
        control.endpoint("grpc"),
    )
    .await
    .expect("connect to control")
}

/// Creates a handoff on the control service `control` and returns every
/// event until it ends; panics when it has not ended within `guard` (a
/// failure guard, not a measured time).
pub async fn handoff_events(
    control: &Service,
    request: impl tonic::IntoRequest<baton_proto::handoff::v1::CreateHandoffRequest>,
    guard: Duration,
) -> Vec<baton_proto::handoff::v1::HandoffEvent> {
    let mut client = handoff_client(control).await;
    let id = create_handoff(&mut client, request).await;
    watch_all(&mut client, &id, 0, guard).await
}

/// Creates a handoff (a request, or one with metadata) and returns its id.
pub async fn create_handoff(
    client: &mut baton_proto::handoff::v1::handoff_service_client::HandoffServiceClient<
        tonic::transport::Channel,
    >,
    request: impl tonic::IntoRequest<baton_proto::handoff::v1::CreateHandoffRequest>,
) -> String {
    created_id(client.create_handoff(request).await)
}

/// The id of the handoff a CreateHandoff call created, whatever client
/// made it (one with credentials, say); panics when the call failed.
pub fn created_id(
    response: Result<
        tonic::Response<baton_proto::handoff::v1::CreateHandoffResponse>,
        tonic::Status,
    >,
) -> String {
    response
        .expect("create")
        .into_inner()
        .handoff
        .expect("handoff")
        .id
}

/// The handoff `handoff_id` as GetHandoff returns it.
pub async fn get_handoff(
    client: &mut baton_proto::handoff::v1::handoff_service_client::HandoffServiceClient<
        tonic::transport::Channel,
    >,
    handoff_id: impl Into<String>,
) -> baton_proto::handoff::v1::Handoff {
    client
        .get_handoff(baton_proto::handoff::v1::GetHandoffRequest {
            handoff_id: handoff_id.into(),
        })
        .await
        .expect("get")
        .into_inner()
        .handoff
        .expect("handoff")
}

/// Every event of `handoff_id` after `after`, until the stream ends;
/// panics when it has not ended within `guard` (a failure guard, not a
/// measured time).
pub async fn watch_all(
    client: &mut baton_proto::handoff::v1::handoff_service_client::HandoffServiceClient<
        tonic::transport::Channel,
    >,
    handoff_id: &str,
    after: u64,
    guard: Duration,
) -> Vec<baton_proto::handoff::v1::HandoffEvent> {
    let mut stream = open_watch(client, handoff_id, after).await;
    tokio::time::timeout(guard, async {
        let mut events = Vec::new();
        // A broken stream ends the log as its end does.
        while let Ok(Some(response)) = stream.message().await {
            events.extend(response.event);
        }
        events
    })
    .await
    .expect("the handoff ends")
}

/// The kinds of `events`, in order.
pub fn event_kinds(
    events: &[baton_proto::handoff::v1::HandoffEvent],
) -> Vec<baton_proto::handoff::v1::HandoffEventKind> {
    events.iter().map(|e| e.kind()).collect()
}

/// Whether `needles` appear in `haystack` in this order (other events may
/// come between).
pub fn in_order<T: PartialEq>(haystack: &[T], needles: &[T]) -> bool {
    let mut rest = haystack.iter();
    needles.iter().all(|n| rest.any(|k| k == n))
}

/// The disclosure records (ListAuditRecords, action DISCLOSED) of
/// `connector`: what the control service sent it under the data policy.
pub async fn disclosures(
    client: &mut baton_proto::handoff::v1::handoff_service_client::HandoffServiceClient<
        tonic::transport::Channel,
    >,
    connector: &str,
) -> Vec<baton_proto::handoff::v1::AuditRecord> {
    use baton_proto::handoff::v1::{AuditAction, ListAuditRecordsRequest};
    client
        .list_audit_records(ListAuditRecordsRequest {
            connector: connector.into(),
            action: AuditAction::Disclosed as i32,
            page_size: 100,
            ..Default::default()
        })
        .await
        .expect("ListAuditRecords")
        .into_inner()
        .records
}

/// Serves `app` on an ephemeral loopback port in the background (a
/// receiver a connector delivers to); its address.
pub async fn serve_loopback(app: axum::Router) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind a loopback port");
    let addr = listener.local_addr().expect("address");
    tokio::spawn(async move { axum::serve(listener, app).await });
    addr
}

/// The event stream of `handoff_id` after `after` (WatchHandoff).
pub async fn open_watch(
    client: &mut baton_proto::handoff::v1::handoff_service_client::HandoffServiceClient<
        tonic::transport::Channel,
    >,
    handoff_id: &str,
    after: u64,
) -> tonic::Streaming<baton_proto::handoff::v1::WatchHandoffResponse> {
    client
        .watch_handoff(baton_proto::handoff::v1::WatchHandoffRequest {
            handoff_id: handoff_id.to_owned(),
            after_sequence: after,
        })
        .await
        .expect("watch")
        .into_inner()
}

/// Reads `stream` until an event satisfies `done`; every event read, the
/// last the one that did. An error when the stream ends or breaks first,
/// or when `guard` (a failure guard, not a measured time) runs out.
pub async fn read_until(
    stream: &mut tonic::Streaming<baton_proto::handoff::v1::WatchHandoffResponse>,
    guard: Duration,
    done: impl Fn(&baton_proto::handoff::v1::HandoffEvent) -> bool,
) -> anyhow::Result<Vec<baton_proto::handoff::v1::HandoffEvent>> {
    let mut seen = Vec::new();
    tokio::time::timeout(guard, async {
        while let Some(response) = stream.message().await? {
            let Some(event) = response.event else {
                continue;
            };
            let found = done(&event);
            seen.push(event);
            if found {
                return Ok(());
            }
        }
        bail!("the watch ended first")
    })
    .await
    .map_err(|_| anyhow::anyhow!("no event matched in time"))
    .and_then(|read| read)
    .with_context(|| format!("events so far: {:?}", event_kinds(&seen)))?;
    Ok(seen)
}

/// Waits, at most `polls` polls, until handoff `handoff_id` ends, and fails
/// the test with the logs of `services` unless it completed.
pub async fn expect_completed(
    client: &mut baton_proto::handoff::v1::handoff_service_client::HandoffServiceClient<
        tonic::transport::Channel,
    >,
    handoff_id: &str,
    polls: usize,
    services: &[&Service],
) {
    let state = wait_until_ended(client, handoff_id, polls).await;
    let logs: String = services
        .iter()
        .map(|service| format!("{}:\n{}\n", service.name, service.logs()))
        .collect();
    assert_eq!(
        state,
        baton_proto::handoff::v1::HandoffState::Completed,
        "handoff {handoff_id}\n{logs}"
    );
}

/// Polls `handoff_id` every 25 ms, at most `polls` times, until it ends;
/// returns the last state seen (still in flight when it did not end).
pub async fn wait_until_ended(
    client: &mut baton_proto::handoff::v1::handoff_service_client::HandoffServiceClient<
        tonic::transport::Channel,
    >,
    handoff_id: &str,
    polls: usize,
) -> baton_proto::handoff::v1::HandoffState {
    use baton_proto::handoff::v1::{GetHandoffRequest, HandoffState};
    let mut state = HandoffState::Unspecified;
    for _ in 0..polls {
        state = client
            .get_handoff(GetHandoffRequest {
                handoff_id: handoff_id.to_owned(),
            })
            .await
            .expect("GetHandoff")
            .into_inner()
            .handoff
            .expect("handoff")
            .state();
        if matches!(
            state,
            HandoffState::Completed | HandoffState::Failed | HandoffState::Cancelled
        ) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    state
}

/// A running service process; killed when dropped.
#[derive(Debug)]
pub struct Service {
    pub name: String,
    child: Child,
    ready: serde_json::Value,
    /// Where the process's stderr (its logs) goes.
    pub log_path: PathBuf,
}

impl Service {
    /// Starts `binary` with `args` and waits for its `{"ready":…}` line.
    pub async fn start(
        binary_name: &str,
        args: &[&str],
        log_dir: &Path,
    ) -> anyhow::Result<Service> {
        Self::start_with_env(binary_name, args, &[], log_dir).await
    }

    pub async fn start_with_env(
        binary_name: &str,
        args: &[&str],
        env: &[(&str, &str)],
        log_dir: &Path,
    ) -> anyhow::Result<Service> {
        let path = binary(binary_name);
        if !path.exists() {
            bail!(
                "{} is missing: build the binaries first (cargo build --release --workspace --bins)",
                path.display()
            );
        }
        Self::start_program(binary_name, &path, args, env, log_dir).await
    }

    /// Starts any program (a Python connector, say) that prints the same
    /// `{"ready":…}` line; `binary_name` names it in logs.
    pub async fn start_program(
        binary_name: &str,
        path: &Path,
        args: &[&str],
        env: &[(&str, &str)],
        log_dir: &Path,
    ) -> anyhow::Result<Service> {
        let log_path = log_dir.join(format!("{binary_name}-{}.log", next_log_number()));
        let log = std::fs::File::create(&log_path)?;
        let mut command = Command::new(path);
        command
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::from(log))
            .kill_on_drop(true);
        // The control service requires credentials by default; the tests of
        // other concerns run it with authentication off unless they say
        // otherwise (tests/tests/security.rs does).
        if binary_name == "baton-control" && !env.iter().any(|(key, _)| *key == "BATON_AUTH__MODE")
        {
            command.env("BATON_AUTH__MODE", "off");
        }
        for (key, value) in env {
            command.env(key, value);
        }
        let mut child = command
            .spawn()
            .with_context(|| format!("starting {}", path.display()))?;
        let stdout = child.stdout.take().context("stdout")?;
        let mut lines = BufReader::new(stdout).lines();
        let ready = tokio::time::timeout(START_TIMEOUT, async {
            while let Some(line) = lines.next_line().await? {
                if let Ok(value) = serde_json::from_str::<serde_json::Value>(&line)
                    && let Some(ready) = value.get("ready")
                {
                    return Ok(ready.clone());
                }
            }
            bail!("{binary_name} exited before it was ready")
        })
        .await
        .map_err(|_| anyhow::anyhow!("{binary_name} was not ready within {START_TIMEOUT:?}"))
        .and_then(|r| r)
        .with_context(|| {
            format!(
                "log: {}",
                std::fs::read_to_string(&log_path).unwrap_or_default()
            )
        })?;
        // Keep draining stdout so the child never blocks on a full pipe.
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        Ok(Service {
            name: binary_name.to_owned(),
            child,
            ready,
            log_path,
        })
    }

    /// An address from the readiness line, e.g. `addr("grpc")`.
    pub fn addr(&self, key: &str) -> SocketAddr {
        self.ready
            .get(key)
            .and_then(|v| v.as_str())
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("{} announced no {key} address: {}", self.name, self.ready))
    }

    /// `http://<addr>` for a gRPC client.
    pub fn endpoint(&self, key: &str) -> String {
        format!("http://{}", self.addr(key))
    }

    /// The process id, while it runs (e.g. to lower its limits with
    /// `prlimit`).
    pub fn pid(&self) -> Option<u32> {
        self.child.id()
    }

    pub fn logs(&self) -> String {
        std::fs::read_to_string(&self.log_path).unwrap_or_default()
    }

    /// Sends SIGTERM and waits for the exit status.
    pub async fn terminate(mut self) -> anyhow::Result<std::process::ExitStatus> {
        self.stop().await
    }

    /// Sends SIGTERM and waits for the exit status, keeping the handle (and
    /// its log) for inspection.
    pub async fn stop(&mut self) -> anyhow::Result<std::process::ExitStatus> {
        let pid = self.child.id().context("already exited")?;
        let status = Command::new("kill")
            .args(["-TERM", &pid.to_string()])
            .status()
            .await?;
        if !status.success() {
            bail!("kill -TERM {pid} failed");
        }
        Ok(tokio::time::timeout(Duration::from_secs(20), self.child.wait()).await??)
    }

    /// Kills the process at once (SIGKILL), as a crash would.
    pub async fn crash(mut self) -> anyhow::Result<()> {
        self.kill().await
    }

    /// Kills the process at once (SIGKILL), keeping the handle (its
    /// addresses and log) for inspection.
    pub async fn kill(&mut self) -> anyhow::Result<()> {
        self.child.kill().await?;
        Ok(())
    }
}

fn next_log_number() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(0);
    NEXT.fetch_add(1, Ordering::Relaxed)
}

/// Waits until `grpc.health.v1` on `endpoint` reports SERVING.
pub async fn wait_serving(endpoint: &str) -> anyhow::Result<()> {
    use tonic_health::pb::health_client::HealthClient;
    let deadline = tokio::time::Instant::now() + START_TIMEOUT;
    loop {
        if let Ok(channel) = tonic::transport::Channel::from_shared(endpoint.to_owned())?
            .connect()
            .await
        {
            let mut client = HealthClient::new(channel);
            let request = tonic_health::pb::HealthCheckRequest {
                service: String::new(),
            };
            if let Ok(response) = client.check(request).await
                && response.into_inner().status == 1
            {
                return Ok(());
            }
        }
        if tokio::time::Instant::now() > deadline {
            bail!("{endpoint} is not serving");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The directory for test artifacts (screenshots, logs): `$BATON_TEST_ARTIFACTS`
/// or `target/test-artifacts`.
pub fn artifacts_dir() -> PathBuf {
    let dir = std::env::var_os("BATON_TEST_ARTIFACTS")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            binary("")
                .parent()
                .map(|p| p.join("test-artifacts"))
                .unwrap_or_default()
        });
    let _ = std::fs::create_dir_all(&dir);
    dir
}
