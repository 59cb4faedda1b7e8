//! TLS on the listeners and mTLS between the control service and its
//! connectors, with real processes on loopback: a handoff end to end, a
//! plain-text client against a TLS listener, a control service without a
//! client certificate against a connector that requires one, and a
//! certificate rotated on disk while the service keeps serving.

mod common;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use baton_proto::handoff::v1::handoff_service_client::HandoffServiceClient;
use baton_proto::handoff::v1::{GetHandoffRequest, HandoffEventKind as K, HandoffState};
use baton_proto::types::v1 as pb;
use baton_service_kit::tls::ClientTlsFiles;
use baton_service_kit::tls::dev_ca::{self, DevCa};
use baton_tests::Service;
use common::{assert_failed_over_from, create, kinds, queue, request, watch_all};
use tempfile::TempDir;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tonic::transport::{Channel, Endpoint};
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_client::HealthClient;

/// A script connector serving gRPC with the dev CA's server certificate;
/// with `require_client_certificate`, only clients the CA signed get in.
async fn start_connector(
    dir: &Path,
    name: &str,
    ca: &DevCa,
    require_client_certificate: bool,
) -> Service {
    let client_ca = if require_client_certificate {
        format!("client_ca_file = {:?}\n", path(&ca.ca_cert))
    } else {
        String::new()
    };
    let config = dir.join(format!("{name}.toml"));
    std::fs::write(
        &config,
        format!(
            r#"name = "{name}"
listen = "127.0.0.1:0"
default_script = ["ringing", "answered", "context_delivered", "connected", "completed"]
record_file = {record:?}

[tls]
cert_file = {cert:?}
key_file = {key:?}
{client_ca}"#,
            record = path(&dir.join(format!("{name}.jsonl"))),
            cert = path(&ca.server_cert),
            key = path(&ca.server_key),
        ),
    )
    .expect("write connector config");
    Service::start("baton-connector-script", &["--config", &path(&config)], dir)
        .await
        .expect("start the script connector")
}

/// A control service serving both listeners with `cert`/`key` (no client
/// certificate asked for), and the given `[connectors.*]` and
/// `[connector_tls]` sections.
async fn start_control(dir: &Path, cert: &Path, key: &Path, connectors: &str) -> Service {
    let config = dir.join("control.toml");
    std::fs::write(
        &config,
        format!(
            r#"[server]
grpc_listen = "127.0.0.1:0"
http_listen = "127.0.0.1:0"
drain_timeout = "3s"

[store]
data_dir = {data:?}

[tls]
cert_file = {cert:?}
key_file = {key:?}

{connectors}"#,
            data = path(&dir.join("control-data")),
            cert = path(cert),
            key = path(key),
        ),
    )
    .expect("write control config");
    Service::start("baton-control", &["--config", &path(&config)], dir)
        .await
        .expect("start control")
}

fn path(path: &Path) -> String {
    path.to_str().expect("UTF-8 path").to_owned()
}

fn https(addr: SocketAddr) -> String {
    format!("https://{addr}")
}

fn trusting(ca_file: &Path) -> ClientTlsFiles {
    ClientTlsFiles {
        ca_file: ca_file.to_owned(),
        cert_file: None,
        key_file: None,
        server_name: None,
    }
}

/// A gRPC channel to `addr` over TLS with `files`; connects now.
async fn tls_channel(addr: SocketAddr, files: &ClientTlsFiles) -> Result<Channel, String> {
    Endpoint::from_shared(https(addr))
        .map_err(|e| e.to_string())?
        .tls_config(files.tonic_config().map_err(|e| e.to_string())?)
        .map_err(|e| e.to_string())?
        .connect_timeout(Duration::from_secs(5))
        .connect()
        .await
        .map_err(|e| format!("{e:?}"))
}

/// grpc.health.v1 over `channel`: Ok when the call completes.
async fn health(channel: Channel) -> Result<(), tonic::Status> {
    let mut client = HealthClient::new(channel);
    let check = client.check(HealthCheckRequest {
        service: String::new(),
    });
    tokio::time::timeout(Duration::from_secs(10), check)
        .await
        .map_err(|_| tonic::Status::deadline_exceeded("health check timed out"))?
        .map(|_| ())
}

/// An HTTP/1.1 GET over TLS, trusting `ca_file`: the status line.
async fn https_get(addr: SocketAddr, ca_file: &Path, path: &str) -> String {
    let config = trusting(ca_file).rustls_config().expect("client config");
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    let tcp = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let name = rustls::pki_types::ServerName::from(addr.ip());
    let mut tls = connector.connect(name, tcp).await.expect("TLS handshake");
    let request = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    tls.write_all(request.as_bytes()).await.expect("write");
    let mut response = String::new();
    tokio::time::timeout(Duration::from_secs(10), tls.read_to_string(&mut response))
        .await
        .expect("response in time")
        .expect("read");
    response.lines().next().unwrap_or_default().to_owned()
}

/// The transfers a script connector recorded.
fn recorded(dir: &Path, name: &str) -> usize {
    std::fs::read_to_string(dir.join(format!("{name}.jsonl")))
        .unwrap_or_default()
        .lines()
        .count()
}

struct TlsStack {
    dir: TempDir,
    ca: DevCa,
    control: Service,
    connectors: Vec<Service>,
}

/// A control service with TLS, a connector `strict` requiring client
/// certificates (mTLS) and a connector `open` with TLS only; the control
/// service presents its client certificate to `strict` only when
/// `control_has_client_certificate`.
async fn tls_stack(control_has_client_certificate: bool) -> TlsStack {
    let dir = tempfile::tempdir().expect("tempdir");
    let ca = dev_ca::generate(&dir.path().join("ca")).expect("dev CA");
    let strict = start_connector(dir.path(), "strict", &ca, true).await;
    let open = start_connector(dir.path(), "open", &ca, false).await;
    let strict_tls = if control_has_client_certificate {
        String::new()
    } else {
        format!(
            "tls = {{ ca_file = {:?} }}\n",
            path(&ca.ca_cert) // the CA alone: no client certificate
        )
    };
    let connectors = format!(
        r#"[connector_tls]
ca_file = {ca:?}
cert_file = {cert:?}
key_file = {key:?}

[connectors.strict]
endpoint = "{strict}"
call_timeout = "2s"
{strict_tls}
[connectors.open]
endpoint = "{open}"

[default_connectors]
queue = "strict"

[[routes]]
name = "strict-then-open"
targets = [{{ connector = "strict", queue = "agents" }}, {{ connector = "open", queue = "agents" }}]
"#,
        ca = path(&ca.ca_cert),
        cert = path(&ca.client_cert),
        key = path(&ca.client_key),
        strict = https(strict.addr("grpc")),
        open = https(open.addr("grpc")),
    );
    let control = start_control(dir.path(), &ca.server_cert, &ca.server_key, &connectors).await;
    TlsStack {
        dir,
        ca,
        control,
        connectors: vec![strict, open],
    }
}

async fn client(stack: &TlsStack) -> HandoffServiceClient<Channel> {
    let channel = tls_channel(stack.control.addr("grpc"), &trusting(&stack.ca.ca_cert))
        .await
        .expect("TLS connection to control");
    HandoffServiceClient::new(channel)
}

#[tokio::test]
async fn a_handoff_goes_end_to_end_over_tls_with_mtls_to_the_connector() {
    let stack = tls_stack(true).await;
    let mut client = client(&stack).await;
    let id = create(&mut client, request("tls-1", queue("agents"))).await;
    let events = watch_all(&mut client, &id, 0).await;
    assert_eq!(
        kinds(&events).last(),
        Some(&K::Completed),
        "{:?}",
        kinds(&events)
    );
    assert_eq!(
        recorded(stack.dir.path(), "strict"),
        1,
        "the connector requiring mTLS took the transfer"
    );

    // The screen pop's HTTP listener serves TLS too, and its links say https.
    let handoff = baton_tests::get_handoff(&mut client, id).await;
    assert_eq!(handoff.state(), HandoffState::Completed);
    let status = https_get(stack.control.addr("http"), &stack.ca.ca_cert, "/healthz").await;
    assert!(status.starts_with("HTTP/1.1 200"), "{status}");
}

#[tokio::test]
async fn a_plain_text_client_is_refused_by_tls_listeners() {
    let stack = tls_stack(true).await;
    let grpc = stack.control.addr("grpc");
    // gRPC in plain text: the TLS listener never answers it.
    let plain = Endpoint::from_shared(format!("http://{grpc}"))
        .expect("endpoint")
        .connect_timeout(Duration::from_secs(5))
        .connect_lazy();
    let refused = health(plain)
        .await
        .expect_err("plain text must not be served");
    assert_ne!(refused.code(), tonic::Code::Ok);
    // The same check over TLS passes: the listener is up.
    let channel = tls_channel(grpc, &trusting(&stack.ca.ca_cert))
        .await
        .expect("TLS connection");
    health(channel).await.expect("health over TLS");

    // HTTP in plain text gets no HTTP response.
    let mut socket = tokio::net::TcpStream::connect(stack.control.addr("http"))
        .await
        .expect("connect");
    socket
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .await
        .expect("write");
    let mut response = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(10), socket.read_to_end(&mut response))
        .await
        .expect("the listener closes the connection");
    assert!(
        !response.starts_with(b"HTTP/"),
        "a plain-text request was answered: {:?}",
        String::from_utf8_lossy(&response)
    );

    // A client that does not trust the CA is refused by the handshake.
    let other = tempfile::tempdir().expect("tempdir");
    let other_ca = dev_ca::generate(other.path()).expect("another CA");
    let untrusted = tls_channel(grpc, &trusting(&other_ca.ca_cert)).await;
    assert!(
        untrusted.is_err(),
        "a certificate from an untrusted CA was accepted"
    );
}

#[tokio::test]
async fn a_connector_requiring_mtls_refuses_a_control_service_without_a_client_certificate() {
    let stack = tls_stack(false).await;
    let connectors = &stack.connectors;
    let strict = connectors[0].addr("grpc");

    // Directly: without a client certificate the connector refuses; with
    // the CA's client certificate it serves.
    let without = tls_channel(strict, &trusting(&stack.ca.ca_cert)).await;
    let refused = match without {
        Err(error) => error,
        Ok(channel) => health(channel)
            .await
            .expect_err("served a client without a certificate")
            .to_string(),
    };
    assert!(!refused.is_empty());
    let with = tls_channel(strict, &stack.ca.client_files())
        .await
        .expect("mTLS connection");
    health(with)
        .await
        .expect("health with a client certificate");

    // Through the control service: the strict connector is unreachable, so
    // the route falls back to the next target, which completes.
    let mut client = client(&stack).await;
    let id = create(
        &mut client,
        request("mtls-1", pb::target::Kind::Route("strict-then-open".into())),
    )
    .await;
    let events = watch_all(&mut client, &id, 0).await;
    assert_failed_over_from(&events, "strict");
    assert_eq!(recorded(stack.dir.path(), "strict"), 0);
    assert_eq!(recorded(stack.dir.path(), "open"), 1);
}

/// Replaces `target` with `source` in one step (a rename), as a secret
/// volume or cert-manager does.
fn replace(source: &Path, target: &Path) {
    let staged = target.with_extension("new");
    std::fs::copy(source, &staged).expect("copy");
    std::fs::rename(&staged, target).expect("rename");
}

#[tokio::test]
async fn a_certificate_replaced_on_disk_is_served_without_a_restart() {
    let dir = tempfile::tempdir().expect("tempdir");
    let first = dev_ca::generate(&dir.path().join("first")).expect("first CA");
    let second = dev_ca::generate(&dir.path().join("second")).expect("second CA");
    let cert: PathBuf = dir.path().join("tls.crt");
    let key: PathBuf = dir.path().join("tls.key");
    replace(&first.server_cert, &cert);
    replace(&first.server_key, &key);
    let control = start_control(dir.path(), &cert, &key, "").await;
    let grpc = control.addr("grpc");

    let before = tls_channel(grpc, &trusting(&first.ca_cert))
        .await
        .expect("the first certificate is served");
    health(before.clone()).await.expect("health");
    assert!(
        tls_channel(grpc, &trusting(&second.ca_cert)).await.is_err(),
        "the second CA cannot verify the first certificate"
    );

    // Key first, then certificate: in between, the pair does not match and
    // the first certificate stays in force.
    replace(&second.server_key, &key);
    replace(&second.server_cert, &cert);

    let after = tls_channel(grpc, &trusting(&second.ca_cert))
        .await
        .expect("the second certificate is served after the rotation");
    health(after).await.expect("health after the rotation");
    assert!(
        tls_channel(grpc, &trusting(&first.ca_cert)).await.is_err(),
        "the first certificate is no longer served"
    );
    // The connection made before the rotation keeps working.
    health(before)
        .await
        .expect("the earlier connection still serves");
    assert!(control.logs().contains("TLS certificate reloaded"));
}

#[tokio::test]
async fn a_plain_text_health_listener_answers_probes_beside_tls() {
    let dir = tempfile::tempdir().expect("tempdir");
    let ca = dev_ca::generate(&dir.path().join("ca")).expect("dev CA");
    let connector = start_connector(dir.path(), "strict", &ca, true).await;
    let config = dir.path().join("control.toml");
    std::fs::write(
        &config,
        format!(
            "[server]\ngrpc_listen = \"127.0.0.1:0\"\nhttp_listen = \"127.0.0.1:0\"\n\
             [store]\ndata_dir = {:?}\n[tls]\ncert_file = {:?}\nkey_file = {:?}\n",
            path(&dir.path().join("control-data")),
            path(&ca.server_cert),
            path(&ca.server_key),
        ),
    )
    .expect("write control config");
    let control = Service::start(
        "baton-control",
        &["--config", &path(&config), "--health-listen", "127.0.0.1:0"],
        dir.path(),
    )
    .await
    .expect("start control");
    let probe = control.addr("health");
    assert_ne!(probe, control.addr("grpc"));

    // What a Kubernetes gRPC probe does: plain text, grpc.health.v1.
    let plain = Endpoint::from_shared(format!("http://{probe}"))
        .expect("endpoint")
        .connect()
        .await
        .expect("plain-text connection to the probe listener");
    let mut health_client = HealthClient::new(plain.clone());
    let status = health_client
        .check(HealthCheckRequest {
            service: "baton.handoff.v1.HandoffService".into(),
        })
        .await
        .expect("health")
        .into_inner()
        .status();
    assert_eq!(
        status,
        tonic_health::pb::health_check_response::ServingStatus::Serving
    );
    // Nothing else is served there in plain text.
    let refused = HandoffServiceClient::new(plain)
        .get_handoff(GetHandoffRequest {
            handoff_id: "01a210fd-0f33-728b-9872-55c48c26a125".into(),
        })
        .await
        .expect_err("the API is not on the probe listener");
    assert_eq!(refused.code(), tonic::Code::Unimplemented);

    // A connector's probe listener, configured by its flag too: the
    // script connector reads `health_listen` from its file, so restart it
    // with the flag and check the same.
    drop(connector);
    let connector_config = dir.path().join("strict.toml");
    let connector = Service::start(
        "baton-connector-script",
        &[
            "--config",
            &path(&connector_config),
            "--health-listen",
            "127.0.0.1:0",
        ],
        dir.path(),
    )
    .await
    .expect("restart the connector with a probe listener");
    let plain = Endpoint::from_shared(format!("http://{}", connector.addr("health")))
        .expect("endpoint")
        .connect_lazy();
    health(plain)
        .await
        .expect("plain-text health of a connector requiring mTLS");
}
