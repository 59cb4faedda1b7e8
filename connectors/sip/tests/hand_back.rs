//! Hand-back to the AI runtime against real SIP peers: sipp plays the
//! human's phone (which must find the hand-back address in a Call-Info of
//! the INVITE), the caller's gateway of the warm transfer, and then the
//! gateway carrying out the human's blind transfer to that address, which
//! must be redirected (302) to the runtime's URI with the handoff id in
//! User-to-User. The transfer then ends HANDED_BACK with the wrap-up the
//! gateway's INVITE carried; the address is taken once (403 after), and an
//! address nobody opened gets 404. A connector stopped while a transfer
//! waits for its hand-back leaves the address to the next process, which
//! opens it again when the transfer is re-attached.

use std::net::SocketAddr;
use std::time::Duration;

use baton_connector_sip::config::HandBackConfig;
use baton_proto::connector::v1::connector_service_client::ConnectorServiceClient;
use baton_proto::connector::v1::{
    ContextEnvelope, ContextReference, StartTransferRequest, TransferEventKind,
};
use baton_proto::types::v1::{CallReference, Conversation, TransferMode, target};
use baton_tests::sipp::{Sipp, sip_connector_scenario};

mod common;

use common::{journalled_connector, next_event, sipp, start_request};

/// Where the scenario `gateway_hands_back` expects the customer to go.
const RUNTIME_URI: &str = "sip:ai@runtime.test:5070";
const HANDOFF_ID: &str = "h-hand-back-1";

/// sipp as the caller's gateway INVITing `user` at the connector.
fn gateway_inviting(scenario: &str, user: &str, connector: SocketAddr) -> Sipp {
    Sipp::play(&sip_connector_scenario(scenario))
        .args([connector.to_string(), "-s".into(), user.into()])
        .start()
}

/// The connector, in-process, with hand-back to [`RUNTIME_URI`].
async fn connector() -> (SocketAddr, SocketAddr) {
    common::connector(|config| {
        config.hand_back = Some(HandBackConfig {
            runtime_uri: RUNTIME_URI.into(),
            window: Duration::from_secs(600),
        });
    })
    .await
}

/// The `[hand_back]` section of the connector as a process.
fn hand_back_section() -> String {
    format!("\n[hand_back]\nruntime_uri = \"{RUNTIME_URI}\"\n")
}

fn request(agent: &Sipp, gateway: &Sipp) -> StartTransferRequest {
    start_request(
        HANDOFF_ID,
        target::Kind::SipUri(agent.uri("agent")),
        TransferMode::Warm,
        ContextEnvelope {
            reference: Some(ContextReference {
                handoff_id: HANDOFF_ID.into(),
                token: "baton.test.token".into(),
                context_url: String::new(),
                screen_pop_url: "https://baton.test/pop/h1?t=abc".into(),
            }),
            conversation: Some(Conversation {
                call: Some(CallReference {
                    sip_call_id: "customer-call-1@gw".into(),
                    sip_from_tag: "customer-tag".into(),
                    sip_to_tag: "gw-tag".into(),
                    sip_gateway_uri: gateway.uri("gw"),
                    ..Default::default()
                }),
                ..Default::default()
            }),
            payloads: vec![baton_proto::connector::v1::ContextPayload {
                mechanism: baton_proto::connector::v1::ContextMechanism::SipHeaders as i32,
                content: r#"{"intent":"billing","language":"en-US"}"#.into(),
                omitted_fields: vec![],
            }],
            ..Default::default()
        },
    )
}

/// The user part of the hand-back address in the INVITE sipp received.
fn hand_back_user(messages: &str) -> String {
    let start = messages
        .find("sip:handback-")
        .expect("the INVITE carried a hand-back address")
        + "sip:".len();
    messages[start..]
        .split('@')
        .next()
        .expect("a user part")
        .to_owned()
}

#[tokio::test]
async fn the_human_transfers_the_customer_to_the_hand_back_address_and_the_runtime_gets_them() {
    let agent = sipp("agent_answers_hand_back");
    let gateway = sipp("gateway_warm");
    let (grpc, sip) = connector().await;
    let mut client = ConnectorServiceClient::connect(format!("http://{grpc}"))
        .await
        .expect("connects");
    let mut stream = client
        .start_transfer(request(&agent, &gateway))
        .await
        .expect("StartTransfer accepted")
        .into_inner();
    let mut kinds = Vec::new();
    while let Some(event) = next_event(&mut stream).await {
        kinds.push(event.kind());
        if event.kind() == TransferEventKind::Connected {
            break;
        }
    }
    assert_eq!(
        kinds.last(),
        Some(&TransferEventKind::Connected),
        "{kinds:?}"
    );
    gateway.assert_passed().await;
    let user = hand_back_user(&agent.finish().await.expect("the phone's scenario passed"));

    // Nobody opened this address, however like the real one it looks.
    let unknown = format!("handback-{}", "0".repeat(32));
    let refused = gateway_inviting("gateway_hand_back_refused", &unknown, sip);
    let log = refused.finish().await.expect("refused");
    assert!(log.contains("SIP/2.0 404 Not Found"), "{log}");

    let handing_back = gateway_inviting("gateway_hands_back", &user, sip);
    let log = handing_back
        .finish()
        .await
        .expect("redirected to the runtime");
    let uui: String = HANDOFF_ID.bytes().map(|b| format!("{b:02x}")).collect();
    assert!(
        log.contains(&format!("?User-to-User={uui}%3Bencoding%3Dhex")),
        "the handoff id in User-to-User: {log}"
    );
    let event = next_event(&mut stream).await.expect("the hand-back");
    assert_eq!(event.kind(), TransferEventKind::HandedBack, "{event:?}");
    let wrap_up = event.wrap_up.expect("HANDED_BACK carries the wrap-up");
    assert_eq!(
        (
            wrap_up.disposition.as_str(),
            wrap_up.notes.as_str(),
            wrap_up.instruction.as_str()
        ),
        (
            "verified",
            "checked the date of birth",
            "customer verified; finish the address change"
        )
    );
    assert!(
        next_event(&mut stream).await.is_none(),
        "HANDED_BACK ends it"
    );

    // The address took its one hand-back.
    let again = gateway_inviting("gateway_hand_back_refused", &user, sip);
    let log = again.finish().await.expect("refused");
    assert!(log.contains("SIP/2.0 403 Forbidden"), "{log}");
}

#[tokio::test]
async fn a_restarted_connector_opens_the_hand_back_address_again() {
    let agent = sipp("agent_answers_hand_back");
    let gateway = sipp("gateway_warm");
    let dir = tempfile::tempdir().expect("tempdir");
    let mut connector = journalled_connector(
        dir.path(),
        "127.0.0.1:0",
        "127.0.0.1:0",
        &hand_back_section(),
    )
    .await;
    let (grpc, sip) = (connector.addr("grpc"), connector.addr("sip"));
    let mut client = ConnectorServiceClient::connect(format!("http://{grpc}"))
        .await
        .expect("connects");
    let first = request(&agent, &gateway);
    let mut stream = client
        .start_transfer(first.clone())
        .await
        .expect("StartTransfer accepted")
        .into_inner();
    while let Some(event) = next_event(&mut stream).await {
        if event.kind() == TransferEventKind::Connected {
            break;
        }
    }
    gateway.assert_passed().await;
    let user = hand_back_user(&agent.finish().await.expect("the phone's scenario passed"));
    let status = connector.stop().await.expect("stops in time");
    assert!(status.success(), "{status}");

    // The next process, on the same addresses and journal.
    let _next = journalled_connector(
        dir.path(),
        &grpc.to_string(),
        &sip.to_string(),
        &hand_back_section(),
    )
    .await;
    let mut client = ConnectorServiceClient::connect(format!("http://{grpc}"))
        .await
        .expect("connects");
    // Re-attached as the control service does: the same request.
    let mut stream = client
        .start_transfer(first)
        .await
        .expect("re-attached")
        .into_inner();
    let event = next_event(&mut stream).await.expect("an event");
    assert_eq!(event.kind(), TransferEventKind::Connected, "{event:?}");

    let log = gateway_inviting("gateway_hands_back", &user, sip)
        .finish()
        .await
        .expect("redirected to the runtime");
    assert!(log.contains("SIP/2.0 302"), "{log}");
    let event = next_event(&mut stream).await.expect("the hand-back");
    assert_eq!(event.kind(), TransferEventKind::HandedBack, "{event:?}");
    assert!(
        next_event(&mut stream).await.is_none(),
        "HANDED_BACK ends it"
    );
}
