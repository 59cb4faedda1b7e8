//! Hand-back to the AI through SIP, end to end: the control service, the
//! SIP connector with `[hand_back]`, and sipp as the human's phone, the
//! caller's gateway of the warm transfer, and that gateway again carrying
//! out the human's blind transfer to the hand-back address the phone found
//! in the INVITE's Call-Info. The gateway is redirected (302) to the
//! runtime's SIP URI with the handoff id in User-to-User, and the runtime's
//! WatchHandoff ends with HANDED_BACK carrying the wrap-up the gateway's
//! INVITE had; GetHandoff says HANDED_BACK. A made-up address is refused
//! (404) and changes nothing.

use std::time::Duration;

use HandoffEventKind as K;
use baton_proto::handoff::v1::*;
use baton_proto::types::v1 as pb;
use baton_tests::sipp::{Sipp, sip_connector_scenario};
use baton_tests::{Service, sip_request};

/// A failure guard for each wait, never a measured time.
const WAIT: Duration = Duration::from_secs(40);
/// Where the scenario `gateway_hands_back` expects the customer to go.
const RUNTIME_URI: &str = "sip:ai@runtime.test:5070";

fn sipp(scenario: &str) -> Sipp {
    Sipp::play(&sip_connector_scenario(scenario))
        .timeout(Duration::from_secs(30))
        .start()
}

/// sipp as the caller's gateway INVITing `user` at the SIP connector.
fn gateway_inviting(scenario: &str, user: &str, connector: &Service) -> Sipp {
    Sipp::play(&sip_connector_scenario(scenario))
        .args([connector.addr("sip").to_string(), "-s".into(), user.into()])
        .start()
}

/// The SIP connector with hand-back to [`RUNTIME_URI`], and the control
/// service in front of it.
async fn start(dir: &std::path::Path) -> (Service, Service) {
    let hand_back = format!(
        r#"[hand_back]
runtime_uri = "{RUNTIME_URI}"
window = "10m"
"#
    );
    let connector = baton_tests::sip::start_loopback_connector(dir, &hand_back).await;
    let control = baton_tests::sip::start_control(dir, &connector, "").await;
    (connector, control)
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

/// The next event of `stream`, within [`WAIT`]; `None` once it ended.
async fn next_event(stream: &mut tonic::Streaming<WatchHandoffResponse>) -> Option<HandoffEvent> {
    loop {
        let response = tokio::time::timeout(WAIT, stream.message())
            .await
            .expect("the handoff moves on")
            .ok()??;
        if let Some(event) = response.event {
            return Some(event);
        }
    }
}

#[tokio::test]
async fn the_runtime_sees_the_customer_handed_back_through_sip() {
    let dir = tempfile::tempdir().expect("tempdir");
    let agent = sipp("agent_answers_hand_back");
    let gateway = sipp("gateway_warm");
    let (connector, control) = start(dir.path()).await;
    let mut client = baton_tests::handoff_client(&control).await;
    let mut request = sip_request(
        "sip-hand-back-1",
        pb::target::Kind::SipUri(agent.uri("agent")),
    );
    baton_tests::sip::held_by_gateway(&mut request, gateway.uri("gw"));
    let id = baton_tests::create_handoff(&mut client, request).await;
    let mut watch = baton_tests::open_watch(&mut client, &id, 0).await;
    let mut kinds = Vec::new();
    while let Some(event) = next_event(&mut watch).await {
        kinds.push(event.kind());
        if event.kind() == K::Connected {
            break;
        }
    }
    assert_eq!(kinds.last(), Some(&K::Connected), "{kinds:?}");
    gateway.assert_passed().await;
    let user = hand_back_user(&agent.finish().await.expect("the phone's scenario passed"));

    // A made-up address is refused, and the handoff stays connected.
    let unknown = format!("handback-{}", "f".repeat(32));
    let log = gateway_inviting("gateway_hand_back_refused", &unknown, &connector)
        .finish()
        .await
        .expect("refused");
    assert!(log.contains("SIP/2.0 404 Not Found"), "{log}");

    let log = gateway_inviting("gateway_hands_back", &user, &connector)
        .finish()
        .await
        .expect("redirected to the runtime");
    let uui: String = id.bytes().map(|b| format!("{b:02x}")).collect();
    assert!(
        log.contains(&format!(
            "<{RUNTIME_URI}?User-to-User={uui}%3Bencoding%3Dhex"
        )),
        "the runtime's URI with the handoff id in User-to-User: {log}"
    );

    let event = next_event(&mut watch).await.expect("the hand-back");
    assert_eq!(event.kind(), K::HandedBack, "{event:?}");
    assert_eq!(event.state(), HandoffState::HandedBack, "{event:?}");
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
        next_event(&mut watch).await.is_none(),
        "HANDED_BACK ends the stream"
    );
    let handoff = client
        .get_handoff(GetHandoffRequest {
            handoff_id: id.clone(),
        })
        .await
        .expect("GetHandoff")
        .into_inner()
        .handoff
        .expect("the handoff");
    assert_eq!(handoff.state(), HandoffState::HandedBack);
}
