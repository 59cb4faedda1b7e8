//! End to end through SIP: the control service, the SIP connector and sipp
//! as the humans' phones and a trunk, all real processes on loopback. A
//! handoff to a SIP URI or a phone number reaches sipp with the context
//! token in User-to-User (the scenarios fail otherwise), WatchHandoff shows
//! ringing then connected, a busy first target falls back to the next, and
//! the INVITE carries the AI runtime's trace on to the phone.

use std::time::Duration;

use HandoffEventKind as K;
use baton_proto::handoff::v1::*;
use baton_proto::types::v1 as pb;
use baton_tests::sipp::{Sipp, sip_connector_scenario};
use baton_tests::{Service, sip_request};
use baton_tests::{event_kinds, in_order};

/// sipp playing one scenario of the SIP connector's once.
fn sipp(scenario: &str) -> Sipp {
    Sipp::play(&sip_connector_scenario(scenario))
        .timeout(Duration::from_secs(30))
        .start()
}

/// The SIP connector and the control service, with a fallback route from
/// `busy` to `answers` and a trunk for +4930 at `trunk`.
struct Stack {
    _dir: tempfile::TempDir,
    _connector: Service,
    control: Service,
}

impl Stack {
    async fn start(busy: &Sipp, answers: &Sipp, trunk_port: u16) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let trunk = format!(
            r#"[[trunks]]
name = "test"
prefixes = ["+4930"]
host = "127.0.0.1:{trunk_port}"
username = "baton-trunk"
password = "s3cret"
caller_id = "+4930000000"
caller_id_policy = "fixed"
"#
        );
        let connector = baton_tests::sip::start_loopback_connector(dir.path(), &trunk).await;
        let rest = format!(
            r#"phone_number = "sip"

[[routes]]
name = "sip-fallback"
targets = [{{ connector = "sip", sip_uri = "{busy}" }}, {{ connector = "sip", sip_uri = "{answers}" }}]
"#,
            busy = busy.uri("agent"),
            answers = answers.uri("agent"),
        );
        let control = baton_tests::sip::start_control(dir.path(), &connector, &rest).await;
        Self {
            _dir: dir,
            _connector: connector,
            control,
        }
    }

    /// Creates a handoff and returns every event until it ends.
    async fn handoff(&self, request_id: &str, target: pb::target::Kind) -> Vec<HandoffEvent> {
        self.traced_handoff(request_id, target, None).await
    }

    /// As [`Stack::handoff`], continuing the caller's `traceparent`.
    async fn traced_handoff(
        &self,
        request_id: &str,
        target: pb::target::Kind,
        traceparent: Option<&str>,
    ) -> Vec<HandoffEvent> {
        let mut create = tonic::Request::new(sip_request(request_id, target));
        if let Some(traceparent) = traceparent {
            create
                .metadata_mut()
                .insert("traceparent", traceparent.parse().expect("metadata"));
        }
        baton_tests::handoff_events(&self.control, create, Duration::from_secs(60)).await
    }
}

#[tokio::test]
async fn a_handoff_to_a_sip_uri_rings_the_human_with_the_token_and_connects() {
    let busy = sipp("agent_busy");
    let answers = sipp("agent_answers_any");
    let stack = Stack::start(&busy, &answers, 9).await;
    let events = stack
        .handoff("sip-uri-1", pb::target::Kind::SipUri(answers.uri("agent")))
        .await;
    let kinds = event_kinds(&events);
    assert!(
        in_order(
            &kinds,
            &[K::Ringing, K::Answered, K::Connected, K::Completed]
        ),
        "{kinds:?}"
    );
    answers.assert_passed().await;
}

#[tokio::test]
async fn the_invite_to_the_human_continues_the_callers_trace() {
    const TRACE_ID: &str = "5b8efff798038103d269b633813fc60c";
    const CALLER_SPAN: &str = "eee19b7ec3c1b174";
    let busy = sipp("agent_busy");
    let answers = sipp("agent_answers_any");
    // No OTLP export configured: propagation does not depend on it.
    let stack = Stack::start(&busy, &answers, 9).await;
    let events = stack
        .traced_handoff(
            "sip-traced-1",
            pb::target::Kind::SipUri(answers.uri("agent")),
            Some(&format!("00-{TRACE_ID}-{CALLER_SPAN}-01")),
        )
        .await;
    assert!(event_kinds(&events).contains(&K::Connected), "{events:?}");
    let messages = answers.messages();
    answers.assert_passed().await;
    let invite = messages
        .split("INVITE sip:")
        .nth(1)
        .expect("sipp logged the INVITE it received");
    let traceparent = invite
        .lines()
        .find_map(|line| line.strip_prefix("traceparent: "))
        .expect("the INVITE has a traceparent header");
    assert!(
        traceparent.starts_with(&format!("00-{TRACE_ID}-")) && traceparent.ends_with("-01"),
        "{traceparent}"
    );
    assert!(
        !traceparent.contains(CALLER_SPAN),
        "the parent is the SIP connector's span: {traceparent}"
    );
}

#[tokio::test]
async fn a_busy_first_target_falls_back_to_the_next_sip_target() {
    let busy = sipp("agent_busy");
    let answers = sipp("agent_answers_any");
    let stack = Stack::start(&busy, &answers, 9).await;
    let events = stack
        .handoff(
            "sip-fallback-1",
            pb::target::Kind::Route("sip-fallback".into()),
        )
        .await;
    let kinds = event_kinds(&events);
    assert!(
        in_order(
            &kinds,
            &[
                K::TargetStarted,
                K::TargetFailed,
                K::TargetStarted,
                K::Ringing,
                K::Connected,
                K::Completed
            ]
        ),
        "{kinds:?}"
    );
    let failed = events
        .iter()
        .find(|e| e.kind() == K::TargetFailed)
        .and_then(|e| e.failure.as_ref())
        .expect("a failure");
    assert_eq!(failed.reason(), pb::FailureReason::Busy);
    busy.assert_passed().await;
    answers.assert_passed().await;
}

#[tokio::test]
async fn a_handoff_to_a_phone_number_goes_through_the_trunk_with_digest() {
    let trunk = sipp("trunk_md5");
    let busy = sipp("agent_busy");
    let answers = sipp("agent_answers_any");
    let stack = Stack::start(&busy, &answers, trunk.addr().port()).await;
    let events = stack
        .handoff(
            "phone-1",
            pb::target::Kind::PhoneNumber("+493012345678".into()),
        )
        .await;
    let kinds = event_kinds(&events);
    assert!(
        in_order(&kinds, &[K::Answered, K::Connected, K::Completed]),
        "{kinds:?}"
    );
    trunk.assert_passed().await;
}
