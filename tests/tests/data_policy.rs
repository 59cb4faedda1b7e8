//! The data policy (issue 20) through the real binaries: what arrives at
//! the far end of each connector against the policy, byte for byte where
//! it matters, and the audit log's record of every disclosure.
//!
//! One control service, a webhook connector delivering to a receiver in
//! this test, and the scripted connector (the structured context, as the
//! queue connector gets it, recorded to a file). Three handoffs with the
//! same personal data in their free text:
//!
//! - to a webhook queue under the built-in policy: free text redacted, so
//!   no card number, e-mail, phone number or date of birth appears
//!   anywhere in the body the receiver got, and no sensitive entity;
//! - through the route `open`, whose policy sends the webhook the summary
//!   and transcript in clear: they arrive unchanged;
//! - through the route `structured` to the scripted connector, whose
//!   policy leaves the summary out: it is not in the structured context
//!   and is named as omitted, while the context URL still serves it whole.

mod common;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::post;
use baton_proto::handoff::v1::{AuditAction, ListAuditRecordsRequest};
use baton_proto::types::v1 as pb;
use baton_tests::{Service, handoff_client, start_control, start_with_config};
use serde_json::Value;
use tonic_types::StatusExt;

use common::start_script_connector;

const CARD: &str = "4111 1111 1111 1111";
const EMAIL: &str = "jane.doe@example.com";
const PHONE: &str = "+44 20 7946 0018";
const BIRTH_DATE: &str = "1984-03-15";
const ACCOUNT: &str = "ACC-99887766";
const SUMMARY: &str = "Charged twice on card 4111 1111 1111 1111; reply to jane.doe@example.com";
const TURN: &str = "Call me on +44 20 7946 0018, I was born on 1984-03-15";
const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

/// Every body the receiver got.
type Bodies = Arc<Mutex<Vec<Bytes>>>;

async fn receive(State(bodies): State<Bodies>, body: Bytes) -> StatusCode {
    bodies.lock().expect("lock").push(body);
    StatusCode::ACCEPTED
}

async fn start_receiver(bodies: Bodies) -> SocketAddr {
    let app = Router::new()
        .route("/hooks/desk", post(receive))
        .with_state(bodies);
    baton_tests::serve_loopback(app).await
}

async fn start_webhook(dir: &std::path::Path, receiver: SocketAddr) -> Service {
    let config = format!(
        r#"name = "webhook"
delivery_log = {log:?}

[server]
grpc_listen = "127.0.0.1:0"
http_listen = "127.0.0.1:0"

[store]
data_dir = {data:?}

[endpoints.desk]
url = "http://{receiver}/hooks/desk"
secret = "{SECRET}"

[queues]
desk = ["desk"]
open = ["desk"]
"#,
        log = dir.join("deliveries.sqlite3").display().to_string(),
        data = dir.join("webhook").display().to_string(),
    );
    start_with_config("baton-connector-webhook", dir, "webhook.toml", &config, &[])
        .await
        .expect("start the webhook connector")
}

/// The sample escalation with personal data in its summary and transcript.
fn request(
    request_id: &str,
    target: pb::target::Kind,
) -> baton_proto::handoff::v1::CreateHandoffRequest {
    let mut request = baton_tests::sample_request(request_id, target);
    let context = request.context.as_mut().expect("the sample has a context");
    context.summary = SUMMARY.into();
    context.transcript[0].text = TURN.into();
    context.entities[0].value = ACCOUNT.into();
    request.timeout = Some(prost_types::Duration {
        seconds: 120,
        nanos: 0,
    });
    request
}

fn route(name: &str) -> pb::target::Kind {
    pb::target::Kind::Route(name.into())
}

/// Waits until `count` bodies arrived (bounded by polls, not asserted
/// on time) and returns them parsed, by handoff id.
async fn bodies_of(bodies: &Bodies, count: usize) -> Vec<(Value, String)> {
    for _ in 0..2400 {
        {
            let got = bodies.lock().expect("lock");
            if got.len() >= count {
                return got
                    .iter()
                    .map(|b| {
                        let raw = String::from_utf8(b.to_vec()).expect("UTF-8 body");
                        (serde_json::from_str(&raw).expect("JSON body"), raw)
                    })
                    .collect();
            }
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("the receiver got fewer than {count} bodies");
}

#[tokio::test]
async fn what_arrives_at_each_connector_is_what_the_policy_says_and_is_audited() {
    let dir = tempfile::tempdir().expect("tempdir");
    let bodies = Bodies::default();
    let receiver = start_receiver(bodies.clone()).await;
    let webhook = start_webhook(dir.path(), receiver).await;
    let script = start_script_connector(
        dir.path(),
        "name = \"script\"\nlisten = \"127.0.0.1:0\"\ndefault_script = [\"ringing\", \"answered\", \"connected\", \"completed\"]\n",
        &[],
    )
    .await;
    let sections = format!(
        r#"
[connectors.webhook]
endpoint = "{webhook}"

[connectors.script]
endpoint = "{script}"

[default_connectors]
queue = "webhook"

[[routes]]
name = "open"
targets = [{{ connector = "webhook", queue = "open" }}]

[[routes]]
name = "structured"
targets = [{{ connector = "script", queue = "anything" }}]

[data_policy.routes.open.connectors.webhook]
summary = "clear"
transcript = "clear"

[data_policy.connectors.script]
summary = "reference"
"#,
        webhook = webhook.endpoint("grpc"),
        script = script.endpoint("grpc"),
    );
    let control = start_control(dir.path(), &sections, &[])
        .await
        .expect("start the control service");
    let mut client = handoff_client(&control).await;

    let redacted_id =
        baton_tests::create_handoff(&mut client, request("redacted", common::queue("desk"))).await;
    let received = bodies_of(&bodies, 1).await;
    let clear_id = baton_tests::create_handoff(&mut client, request("clear", route("open"))).await;
    let received = {
        let _ = received;
        bodies_of(&bodies, 2).await
    };
    let body = |id: &str| {
        received
            .iter()
            .find(|(json, _)| json["data"]["handoff_id"] == id)
            .unwrap_or_else(|| panic!("no body for {id}: {received:?}"))
            .clone()
    };

    // Built-in policy: nothing personal anywhere in the body.
    let (json, raw) = body(&redacted_id);
    for value in [CARD, "4111111111111111", EMAIL, PHONE, BIRTH_DATE, ACCOUNT] {
        assert!(!raw.contains(value), "{value} reached the receiver: {raw}");
    }
    let context = &json["data"]["context"];
    assert_eq!(
        context["summary"],
        "Charged twice on card [card]; reply to [email]"
    );
    assert_eq!(
        context["transcript"][0]["text"],
        "Call me on [phone], I was born on [date_of_birth]"
    );
    assert_eq!(context["entities"]["issue_type"], "double charge", "clear");

    // The route's policy: summary and transcript byte for byte.
    let (json, raw) = body(&clear_id);
    let context = &json["data"]["context"];
    assert_eq!(context["summary"], SUMMARY);
    assert_eq!(context["transcript"][0]["text"], TURN);
    assert!(
        !raw.contains(ACCOUNT),
        "sensitive entities never in a payload"
    );

    // The scripted connector: the summary only by reference.
    let structured_id =
        baton_tests::create_handoff(&mut client, request("structured", route("structured"))).await;
    let transfers_file = dir.path().join("transfers.jsonl");
    let mut transfer = None;
    for _ in 0..2400 {
        transfer = std::fs::read_to_string(&transfers_file)
            .unwrap_or_default()
            .lines()
            .filter_map(|line| serde_json::from_str::<Value>(line).ok())
            .find(|t| t["handoff_id"] == structured_id.as_str());
        if transfer.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    let transfer = transfer.expect("the scripted connector got the transfer");
    assert_eq!(transfer["summary"], "", "{transfer}");
    let omitted: Vec<&str> = transfer["omitted_fields"]
        .as_array()
        .expect("omitted fields")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert!(omitted.contains(&"summary"), "{transfer}");
    // By reference: the signed context URL serves the whole context.
    let screen_pop = transfer["screen_pop_url"].as_str().expect("screen-pop URL");
    let context_url = screen_pop.replace("/screen-pop?", "/context?");
    let served = reqwest::get(&context_url)
        .await
        .expect("GET the context")
        .text()
        .await
        .expect("body");
    assert!(served.contains(SUMMARY), "{served}");

    // Every disclosure audited, by connector and action, never a value.
    let to_webhook = baton_tests::disclosures(&mut client, "webhook").await;
    let forms: Vec<(String, Value)> = to_webhook
        .iter()
        .map(|r| {
            let detail: Value = serde_json::from_str(&r.detail).expect("JSON detail");
            (r.handoff_id.clone(), detail)
        })
        .collect();
    let detail_of = |id: &str| {
        forms
            .iter()
            .find(|(handoff, _)| handoff == id)
            .map(|(_, detail)| detail.clone())
            .unwrap_or_else(|| panic!("no disclosure of {id}: {to_webhook:?}"))
    };
    let redacted = detail_of(&redacted_id);
    assert_eq!(redacted["fields"]["summary"], "redacted");
    assert_eq!(redacted["fields"]["entities.account_number"], "redacted");
    assert_eq!(redacted["target"], "queue:desk");
    assert_eq!(redacted["masked"]["card"], 1);
    let clear = detail_of(&clear_id);
    assert_eq!(clear["fields"]["summary"], "clear");
    assert_eq!(clear["fields"]["transcript"], "clear");
    assert_eq!(
        clear["fields"]["agent_notes"], "redacted",
        "the default below"
    );
    assert!(to_webhook.iter().all(|r| r.connector == "webhook"
        && r.action() == AuditAction::Disclosed
        && !r.detail.contains("4111")
        && !r.detail.contains("jane")));
    let to_script = baton_tests::disclosures(&mut client, "script").await;
    assert_eq!(to_script.len(), 1, "{to_script:?}");
    assert_eq!(to_script[0].handoff_id, structured_id);
    let detail: Value = serde_json::from_str(&to_script[0].detail).expect("JSON detail");
    assert_eq!(detail["fields"]["summary"], "reference");

    // An action this version does not know is refused, naming the field.
    let status = client
        .list_audit_records(ListAuditRecordsRequest {
            action: 99,
            ..Default::default()
        })
        .await
        .expect_err("an unknown action");
    assert_eq!(status.code(), tonic::Code::InvalidArgument);
    let violations = status.get_details_bad_request().expect("field violations");
    assert_eq!(violations.field_violations[0].field, "action");
}
