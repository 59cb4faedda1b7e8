//! The data policy (issue 20) at Amazon Connect's far end: the real
//! control service and `baton-connector-amazon-connect` binaries against
//! the contract server, whose contacts keep the attributes the connector
//! set on them as Amazon Connect would. Needs both binaries built (CI
//! builds every binary first).
//!
//! - Under the built-in policy the summary and transcript arrive with the
//!   card number, e-mail address, phone number and date of birth masked,
//!   byte for byte as the policy renders them, and no sensitive entity or
//!   caller's number is on the contact.
//! - Through the route `escalations`, whose rules send this connector the
//!   summary in clear and the transcript only by reference: the summary
//!   arrives unchanged and no turn of the transcript is on the contact.

mod common;

use baton_connector_sdk::testing::personal::{
    NEVER_SENT as PERSONAL, REDACTED_SUMMARY, REDACTED_TURN, SUMMARY, TURN,
};
use baton_proto::handoff::v1::CreateHandoffRequest;
use baton_proto::types::v1 as pb;
use baton_tests::{handoff_client, start_control};
use common::{ContractServer, contact_id, sample_on_contact, start_connector_binary};
use serde_json::Value;

/// The sample escalation from a live TASK contact, with personal data in
/// its free text, to `target`.
fn request(request_id: &str, contact: &str, target: pb::target::Kind) -> CreateHandoffRequest {
    let mut request = sample_on_contact(request_id, contact, target);
    let context = request.context.as_mut().expect("the sample has a context");
    context.summary = SUMMARY.into();
    context.transcript[0].text = TURN.into();
    request
}

#[tokio::test]
async fn the_contact_gets_the_attributes_the_policy_says() {
    let server = ContractServer::start().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let connector = start_connector_binary(&server, dir.path()).await;
    let sections = format!(
        r#"
[connectors.amazon-connect]
endpoint = "{endpoint}"

[default_connectors]
queue = "amazon-connect"

[[routes]]
name = "escalations"
targets = [{{ connector = "amazon-connect", queue = "support" }}]

[data_policy.routes.escalations.connectors.amazon-connect]
summary = "clear"
transcript = "reference"
"#,
        endpoint = connector.endpoint("grpc"),
    );
    let control = start_control(dir.path(), &sections, &[])
        .await
        .expect("the control service starts (build it first)");
    let mut client = handoff_client(&control).await;

    let (redacted_contact, clear_contact) = (contact_id("TASK", 201), contact_id("TASK", 202));
    let support = pb::target::Kind::Queue(pb::QueueTarget {
        name: "support".into(),
        skills: vec![],
    });
    let redacted_id = baton_tests::create_handoff(
        &mut client,
        request("connect-redacted", &redacted_contact, support),
    )
    .await;
    let clear_id = baton_tests::create_handoff(
        &mut client,
        request(
            "connect-clear",
            &clear_contact,
            pb::target::Kind::Route("escalations".into()),
        ),
    )
    .await;
    for id in [&redacted_id, &clear_id] {
        baton_tests::expect_completed(&mut client, id, 600, &[&control, &connector]).await;
    }

    // Built-in policy: masked byte for byte, nothing personal on the contact.
    let attributes = server.contact(&redacted_contact).await["Attributes"].clone();
    assert_eq!(attributes["baton_handoff_id"], redacted_id.as_str());
    assert_eq!(attributes["baton_summary"], REDACTED_SUMMARY);
    assert_eq!(
        attributes["baton_transcript"],
        format!("customer: {REDACTED_TURN}\nai: I'm connecting you with a specialist.")
    );
    assert_eq!(attributes["baton_entity_issue_type"], "double charge");
    let text = attributes.to_string();
    for value in PERSONAL {
        assert!(!text.contains(value), "{value} reached the contact: {text}");
    }

    // The route's rules: the summary clear, the transcript by reference.
    let attributes = server.contact(&clear_contact).await["Attributes"].clone();
    assert_eq!(attributes["baton_handoff_id"], clear_id.as_str());
    assert_eq!(attributes["baton_summary"], SUMMARY);
    assert_eq!(attributes.get("baton_transcript"), None, "{attributes}");
    let text = attributes.to_string();
    for value in ["+44 20 7946 0018", "ACC-99887766", "+14155550123"] {
        assert!(!text.contains(value), "{value} reached the contact: {text}");
    }
    server.assert_all_accepted().await;

    // Each attempt's disclosure audited with the route and the forms.
    let records = baton_tests::disclosures(&mut client, "amazon-connect").await;
    let clear = records
        .iter()
        .find(|r| r.handoff_id == clear_id)
        .expect("the clear handoff's disclosure");
    let detail: Value = serde_json::from_str(&clear.detail).expect("JSON detail");
    assert_eq!(detail["route"], "escalations");
    assert_eq!(detail["fields"]["summary"], "clear");
    assert_eq!(detail["fields"]["transcript"], "reference");
}
