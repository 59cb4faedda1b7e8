//! The real control service, the connector binary and the contract server:
//! a handoff of a live TASK contact to queue `support` puts the context the
//! control service renders for TASK_ATTRIBUTES on the contact, without
//! sensitive values, reports the queue, and completes when the agent has
//! it. Needs `baton-control` and `baton-connector-amazon-connect` built
//! (CI builds every binary first; locally `cargo build --release -p
//! baton-control -p baton-connector-amazon-connect`).

mod common;

use std::time::Duration;

use baton_proto::handoff::v1::handoff_service_client::HandoffServiceClient;
use baton_proto::handoff::v1::{CreateHandoffRequest, GetHandoffRequest, HandoffState};
use baton_proto::types::v1 as pb;
use baton_tests::Service;
use common::{ContractServer, config_toml, contact_id};

fn request(contact: &str) -> CreateHandoffRequest {
    CreateHandoffRequest {
        request_id: "amazon-connect-e2e-1".into(),
        conversation: Some(pb::Conversation {
            channel: pb::Channel::Chat as i32,
            language: "en-US".into(),
            call: Some(pb::CallReference {
                platform_contact_id: contact.into(),
                caller_number: "+14155550123".into(),
                ..Default::default()
            }),
        }),
        context: Some(pb::HandoffContext {
            summary: "Customer was charged twice for the March invoice".into(),
            intent: Some(pb::Intent {
                name: "billing.dispute".into(),
                confidence: 0.92,
            }),
            entities: vec![
                pb::Entity {
                    name: "account_number".into(),
                    value: "ACC-99887766".into(),
                    r#type: "account".into(),
                    sensitive: true,
                },
                pb::Entity {
                    name: "issue_type".into(),
                    value: "double charge".into(),
                    r#type: "string".into(),
                    sensitive: false,
                },
            ],
            transcript: vec![pb::Turn {
                speaker: pb::Speaker::Customer as i32,
                text: "I was charged twice, I want to talk to a person".into(),
                at: None,
            }],
            reason: Some(pb::EscalationReason {
                kind: pb::EscalationKind::ExplicitRequest as i32,
                detail: "asked for a person".into(),
            }),
            priority: 3,
            ..Default::default()
        }),
        target: Some(pb::Target {
            kind: Some(pb::target::Kind::Queue(pb::QueueTarget {
                name: "support".into(),
                skills: vec![],
            })),
        }),
        mode: pb::TransferMode::Warm as i32,
        ..Default::default()
    }
}

#[tokio::test]
async fn a_handoff_of_a_task_contact_reaches_the_agent_with_its_context_as_attributes() {
    let server = ContractServer::start().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let connector_config = dir.path().join("amazon-connect.toml");
    std::fs::write(&connector_config, config_toml(&server, 2.0, 5)).expect("writes");
    let connector = Service::start(
        "baton-connector-amazon-connect",
        &["--config", connector_config.to_str().expect("path")],
        dir.path(),
    )
    .await
    .expect("the connector starts (build it first)");

    let control_config = dir.path().join("control.toml");
    std::fs::write(
        &control_config,
        format!(
            "[server]\ngrpc_listen = \"127.0.0.1:0\"\nhttp_listen = \"127.0.0.1:0\"\n\n[store]\ndata_dir = {data:?}\n\n[connectors.amazon-connect]\nendpoint = \"{endpoint}\"\n\n[default_connectors]\nqueue = \"amazon-connect\"\n",
            data = dir.path().join("control").display().to_string(),
            endpoint = connector.endpoint("grpc"),
        ),
    )
    .expect("writes");
    let control = Service::start(
        "baton-control",
        &["--config", control_config.to_str().expect("path")],
        dir.path(),
    )
    .await
    .expect("the control service starts (build it first: cargo build --release -p baton-control)");

    let contact = contact_id("TASK", 77);
    let mut client = HandoffServiceClient::connect(control.endpoint("grpc"))
        .await
        .expect("connects");
    let handoff = client
        .create_handoff(request(&contact))
        .await
        .expect("CreateHandoff")
        .into_inner()
        .handoff
        .expect("handoff");
    let mut state = HandoffState::Unspecified;
    for _ in 0..600 {
        state = client
            .get_handoff(GetHandoffRequest {
                handoff_id: handoff.id.clone(),
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
    assert_eq!(
        state,
        HandoffState::Completed,
        "control:\n{}\nconnector:\n{}",
        control.logs(),
        connector.logs()
    );

    let attributes = server.contact(&contact).await["Attributes"].clone();
    assert_eq!(attributes["baton_handoff_id"], handoff.id.as_str());
    assert_eq!(
        attributes["baton_summary"],
        "Customer was charged twice for the March invoice"
    );
    assert_eq!(attributes["baton_intent"], "billing.dispute");
    assert_eq!(attributes["baton_entity_issue_type"], "double charge");
    assert_eq!(
        attributes["baton_transcript"],
        "customer: I was charged twice, I want to talk to a person"
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
    assert!(
        server.refused().await.is_empty(),
        "{:?}",
        server.refused().await
    );
}
