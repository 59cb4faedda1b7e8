//! The real control service, the connector binary and the contract server:
//! a handoff of a live TASK contact to queue `support` puts the context the
//! control service renders for TASK_ATTRIBUTES on the contact, without
//! sensitive values, reports the queue, and completes when the agent has
//! it. Needs `baton-control` and `baton-connector-amazon-connect` built
//! (CI builds every binary first; locally `cargo build --release -p
//! baton-control -p baton-connector-amazon-connect`).

mod common;

use baton_proto::handoff::v1::CreateHandoffRequest;
use baton_proto::types::v1 as pb;
use common::{ContractServer, contact_id, sample_on_contact, start_connector_binary};

/// The sample escalation, from a live chat contact, to queue `support`.
fn request(contact: &str) -> CreateHandoffRequest {
    sample_on_contact(
        "amazon-connect-e2e-1",
        contact,
        pb::target::Kind::Queue(pb::QueueTarget {
            name: "support".into(),
            skills: vec![],
        }),
    )
}

#[tokio::test]
async fn a_handoff_of_a_task_contact_reaches_the_agent_with_its_context_as_attributes() {
    let server = ContractServer::start().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let connector = start_connector_binary(&server, dir.path()).await;

    let control = baton_tests::control_with_connector(
        "amazon-connect",
        &connector.endpoint("grpc"),
        &[],
        dir.path(),
    )
    .await
    .expect("the control service starts (build it first: cargo build --release -p baton-control)");

    let contact = contact_id("TASK", 77);
    let mut client = baton_tests::handoff_client(&control).await;
    let handoff_id = baton_tests::create_handoff(&mut client, request(&contact)).await;
    baton_tests::expect_completed(&mut client, &handoff_id, 600, &[&control, &connector]).await;

    let attributes = server.contact(&contact).await["Attributes"].clone();
    assert_eq!(attributes["baton_handoff_id"], handoff_id.as_str());
    assert_eq!(
        attributes["baton_summary"],
        "Customer was charged twice for the March invoice"
    );
    assert_eq!(attributes["baton_intent"], "billing.dispute");
    assert_eq!(attributes["baton_entity_issue_type"], "double charge");
    assert_eq!(
        attributes["baton_transcript"],
        "customer: I was charged twice, I want to talk to a person\nai: I'm connecting you with a specialist."
    );
    let text = attributes.to_string();
    assert!(
        !text.contains("ACC-99887766"),
        "sensitive entity sent: {text}"
    );
    assert!(!text.contains("+14155550123"), "caller number sent: {text}");
    // The screen pop the agent workspace can open is the control service's.
    let screen_pop = attributes["baton_screen_pop_url"].as_str().expect("url");
    let page = reqwest::get(screen_pop).await.expect("screen pop answers");
    assert_eq!(page.status(), 200);
    server.assert_all_accepted().await;
}
