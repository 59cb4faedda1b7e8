//! The data policy (issue 20) at Twilio's far end: the real control
//! service and `baton-connector-twilio` binaries against the contract
//! server, which records the task attributes of every `<Enqueue>` as
//! Twilio would receive them. Needs both binaries built (CI builds every
//! binary first).
//!
//! - A handoff no route applies to goes under the built-in policy: the
//!   summary and transcript arrive with the card number, e-mail address,
//!   phone number and date of birth masked, byte for byte as the policy
//!   renders them; no sensitive entity and no caller's number anywhere in
//!   the TwiML.
//! - A handoff to a queue that names no route, whose intent makes the
//!   control service pick the route `billing`: that route's rules send
//!   the summary and transcript in clear, and they arrive unchanged. The
//!   audit row of the attempt names the route.

mod common;

use baton_connector_sdk::testing::personal::{
    NEVER_SENT as PERSONAL, REDACTED_SUMMARY, REDACTED_TURN, SUMMARY, TURN,
};
use baton_proto::handoff::v1::CreateHandoffRequest;
use baton_proto::types::v1 as pb;
use baton_tests::{Service, handoff_client, start_control, start_with_config};
use common::*;
use serde_json::Value;

/// The sample escalation on Twilio call `call` to queue `queue`, with
/// personal data in its free text and `intent`.
fn request(request_id: &str, call: &str, queue: &str, intent: &str) -> CreateHandoffRequest {
    let mut request = baton_tests::sample_request(
        request_id,
        pb::target::Kind::Queue(pb::QueueTarget {
            name: queue.into(),
            skills: vec![],
        }),
    );
    let call_reference = request
        .conversation
        .as_mut()
        .and_then(|c| c.call.as_mut())
        .expect("the sample has a call");
    call_reference.platform_contact_id = call.into();
    let context = request.context.as_mut().expect("the sample has a context");
    context.summary = SUMMARY.into();
    context.transcript[0].text = TURN.into();
    context.intent.as_mut().expect("an intent").name = intent.into();
    request
}

async fn start_twilio_connector(dir: &std::path::Path, api: std::net::SocketAddr) -> Service {
    let config = format!(
        r#"api_base = "http://{api}"
workflow_sid = "{WORKFLOW_SID}"
rate_per_second = 50.0

[credentials]
account_sid = "{ACCOUNT_SID}"
auth_token = "{AUTH_TOKEN}"

[callbacks]
listen = "127.0.0.1:0"

[server]
grpc_listen = "127.0.0.1:0"

[store]
data_dir = {data:?}
"#,
        data = dir.join("twilio").display().to_string(),
    );
    start_with_config("baton-connector-twilio", dir, "twilio.toml", &config, &[])
        .await
        .expect("start the Twilio connector (build it first)")
}

/// The task attributes Twilio received for `call`.
fn attributes_for(twilio: &Twilio, call: &str) -> (Value, String) {
    let update = twilio
        .updates()
        .into_iter()
        .find(|u| u.call_sid == call)
        .unwrap_or_else(|| panic!("no update of {call}"));
    let Instruction::Enqueue { attributes, .. } = &update.instruction else {
        panic!("not an Enqueue: {}", update.twiml);
    };
    (attributes.clone(), update.twiml.clone())
}

#[tokio::test]
async fn twilio_receives_the_task_attributes_the_policy_of_the_route_used_says() {
    let (redacted_call, clear_call) = (call_sid(31), call_sid(32));
    let twilio = twilio(
        &[
            (redacted_call.clone(), "in-progress"),
            (clear_call.clone(), "in-progress"),
        ],
        &[],
        None,
    );
    let api = start_twilio(twilio.clone()).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let connector = start_twilio_connector(dir.path(), api).await;
    *twilio.event_callback_url.lock().expect("lock") = Some(format!(
        "http://{}/v1/taskrouter/events",
        connector.addr("callbacks")
    ));
    let sections = format!(
        r#"
[connectors.twilio]
endpoint = "{endpoint}"

[default_connectors]
queue = "twilio"

[[routes]]
name = "billing"
intents = ["billing.*"]
targets = [{{ connector = "twilio", queue = "billing" }}]

[data_policy.routes.billing.connectors.twilio]
summary = "clear"
transcript = "clear"
"#,
        endpoint = connector.endpoint("grpc"),
    );
    let control = start_control(dir.path(), &sections, &[])
        .await
        .expect("start the control service (build it first)");
    let mut client = handoff_client(&control).await;

    let redacted_id = baton_tests::create_handoff(
        &mut client,
        request("twilio-redacted", &redacted_call, "desk", "shipping.late"),
    )
    .await;
    let clear_id = baton_tests::create_handoff(
        &mut client,
        request("twilio-clear", &clear_call, "billing", "billing.dispute"),
    )
    .await;
    for id in [&redacted_id, &clear_id] {
        baton_tests::expect_completed(&mut client, id, 600, &[&control, &connector]).await;
    }

    // Built-in policy: masked byte for byte, nothing personal anywhere.
    let (attributes, twiml) = attributes_for(&twilio, &redacted_call);
    assert_eq!(attributes["summary"], REDACTED_SUMMARY);
    assert_eq!(attributes["transcript"][0]["text"], REDACTED_TURN);
    assert_eq!(attributes["entities"]["issue_type"], "double charge");
    for value in PERSONAL {
        assert!(!twiml.contains(value), "{value} reached Twilio: {twiml}");
    }

    // The route the control service picked: summary and transcript clear.
    let (attributes, twiml) = attributes_for(&twilio, &clear_call);
    assert_eq!(attributes["baton_handoff_id"], clear_id.as_str());
    assert_eq!(attributes["summary"], SUMMARY);
    assert_eq!(attributes["transcript"][0]["text"], TURN);
    assert_eq!(
        attributes["agent_notes"], "Refund likely",
        "redacted: nothing to mask"
    );
    assert!(
        !twiml.contains("ACC-99887766"),
        "sensitive entities never clear"
    );
    assert!(!twiml.contains("+14155550123"), "nor the caller's number");
    assert!(twilio.warnings.lock().expect("lock").is_empty());

    // The audit row of each attempt: the route whose rules applied.
    let records = baton_tests::disclosures(&mut client, "twilio").await;
    let detail = |id: &str| -> Value {
        let record = records
            .iter()
            .find(|r| r.handoff_id == id)
            .unwrap_or_else(|| panic!("no disclosure of {id}: {records:?}"));
        serde_json::from_str(&record.detail).expect("JSON detail")
    };
    let clear = detail(&clear_id);
    assert_eq!(clear["route"], "billing");
    assert_eq!(clear["fields"]["summary"], "clear");
    assert_eq!(clear["fields"]["conversation.call.caller_number"], "clear");
    let redacted = detail(&redacted_id);
    assert_eq!(redacted["route"], Value::Null);
    assert_eq!(redacted["fields"]["summary"], "redacted");
    assert_eq!(redacted["masked"]["card"], 1);
}
