//! End to end through SIP: the control service, the SIP connector and sipp
//! as the humans' phones and a trunk, all real processes on loopback. A
//! handoff to a SIP URI or a phone number reaches sipp with the context
//! token in User-to-User (the scenarios fail otherwise), WatchHandoff shows
//! ringing then connected, a busy first target falls back to the next, and
//! the INVITE carries the AI runtime's trace on to the phone.

use std::net::UdpSocket;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use HandoffEventKind as K;
use baton_proto::handoff::v1::handoff_service_client::HandoffServiceClient;
use baton_proto::handoff::v1::*;
use baton_proto::types::v1 as pb;
use baton_tests::Service;
use tokio::process::{Child, Command};
use tokio_stream::StreamExt;

fn free_udp_port() -> u16 {
    let socket = UdpSocket::bind("127.0.0.1:0").expect("bind a probe socket");
    socket.local_addr().expect("probe address").port()
}

/// sipp playing one scenario of the SIP connector's once.
struct Sipp {
    child: Child,
    port: u16,
    name: String,
}

impl Sipp {
    fn start(scenario: &str, dir: &Path) -> Self {
        let port = free_udp_port();
        let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("../connectors/sip/tests/scenarios")
            .join(format!("{scenario}.xml"));
        let child = Command::new("sipp")
            .arg("-sf")
            .arg(&path)
            .args(["-i", "127.0.0.1", "-p", &port.to_string()])
            .args(["-m", "1", "-timeout", "30s", "-timeout_error", "-nostdin"])
            .arg("-trace_err")
            .arg("-error_file")
            .arg(dir.join(format!("sipp-{scenario}-{port}.log")))
            .arg("-trace_msg")
            .arg("-message_file")
            .arg(dir.join(format!("sipp-{scenario}-{port}-messages.log")))
            .current_dir(dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("sipp is installed (Debian package sip-tester)");
        Self {
            child,
            port,
            name: scenario.into(),
        }
    }

    fn uri(&self) -> String {
        format!("sip:agent@127.0.0.1:{}", self.port)
    }

    /// Every SIP message sipp sent and received, as it logged them.
    fn messages(&self, dir: &Path) -> String {
        std::fs::read_to_string(dir.join(format!("sipp-{}-{}-messages.log", self.name, self.port)))
            .unwrap_or_default()
    }

    async fn assert_passed(mut self, dir: &Path) {
        let status = tokio::time::timeout(Duration::from_secs(40), self.child.wait())
            .await
            .expect("sipp ends within its own -timeout")
            .expect("sipp exit status");
        let errors =
            std::fs::read_to_string(dir.join(format!("sipp-{}-{}.log", self.name, self.port)))
                .unwrap_or_default();
        assert!(
            status.success(),
            "sipp {} failed ({status}): {errors}",
            self.name
        );
    }
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
        Self::start_with_env(busy, answers, trunk_port, &[]).await
    }

    /// As [`Stack::start`], with `env` for both services.
    async fn start_with_env(
        busy: &Sipp,
        answers: &Sipp,
        trunk_port: u16,
        env: &[(&str, &str)],
    ) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let sip_config = dir.path().join("sip.toml");
        std::fs::write(
            &sip_config,
            format!(
                r#"
listen = "127.0.0.1:0"
ring_timeout = "10s"

[sip]
bind = "127.0.0.1:0"
t1 = "100ms"

[[trunks]]
name = "test"
prefixes = ["+4930"]
host = "127.0.0.1:{trunk_port}"
username = "baton-trunk"
password = "s3cret"
caller_id = "+4930000000"
caller_id_policy = "fixed"
"#
            ),
        )
        .expect("write sip config");
        let connector = Service::start_with_env(
            "baton-connector-sip",
            &["--config", sip_config.to_str().expect("path")],
            env,
            dir.path(),
        )
        .await
        .expect("start the SIP connector");
        let control_config = dir.path().join("control.toml");
        std::fs::write(
            &control_config,
            format!(
                r#"
[server]
grpc_listen = "127.0.0.1:0"
http_listen = "127.0.0.1:0"

[store]
data_dir = {data:?}

[connectors.sip]
endpoint = "{endpoint}"

[default_connectors]
sip_uri = "sip"
phone_number = "sip"

[[routes]]
name = "sip-fallback"
targets = [{{ connector = "sip", sip_uri = "{busy}" }}, {{ connector = "sip", sip_uri = "{answers}" }}]
"#,
                data = dir.path().join("control").display().to_string(),
                endpoint = connector.endpoint("grpc"),
                busy = busy.uri(),
                answers = answers.uri(),
            ),
        )
        .expect("write control config");
        let control = Service::start_with_env(
            "baton-control",
            &["--config", control_config.to_str().expect("path")],
            env,
            dir.path(),
        )
        .await
        .expect("start control");
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
        let mut client = HandoffServiceClient::connect(self.control.endpoint("grpc"))
            .await
            .expect("connect to control");
        let mut create = tonic::Request::new(request(request_id, target));
        if let Some(traceparent) = traceparent {
            create
                .metadata_mut()
                .insert("traceparent", traceparent.parse().expect("metadata"));
        }
        let id = client
            .create_handoff(create)
            .await
            .expect("create")
            .into_inner()
            .handoff
            .expect("handoff")
            .id;
        let stream = client
            .watch_handoff(WatchHandoffRequest {
                handoff_id: id,
                after_sequence: 0,
            })
            .await
            .expect("watch")
            .into_inner();
        tokio::time::timeout(Duration::from_secs(60), async {
            stream
                .filter_map(|r| r.ok().and_then(|r| r.event))
                .collect::<Vec<_>>()
                .await
        })
        .await
        .expect("the handoff ends")
    }
}

fn request(request_id: &str, target: pb::target::Kind) -> CreateHandoffRequest {
    CreateHandoffRequest {
        request_id: request_id.into(),
        conversation: Some(pb::Conversation {
            channel: pb::Channel::Voice as i32,
            language: "en-US".into(),
            call: Some(pb::CallReference {
                caller_number: "+14155550123".into(),
                ..Default::default()
            }),
        }),
        context: Some(pb::HandoffContext {
            summary: "Charged twice for the March invoice".into(),
            intent: Some(pb::Intent {
                name: "billing.dispute".into(),
                confidence: 0.9,
            }),
            priority: 2,
            ..Default::default()
        }),
        target: Some(pb::Target { kind: Some(target) }),
        mode: pb::TransferMode::Warm as i32,
        timeout: None,
        decision: None,
    }
}

fn kinds(events: &[HandoffEvent]) -> Vec<HandoffEventKind> {
    events.iter().map(|e| e.kind()).collect()
}

/// `needles` appear in `haystack` in this order (other events may come between).
fn in_order(haystack: &[HandoffEventKind], needles: &[HandoffEventKind]) -> bool {
    let mut rest = haystack.iter();
    needles.iter().all(|n| rest.any(|k| k == n))
}

#[tokio::test]
async fn a_handoff_to_a_sip_uri_rings_the_human_with_the_token_and_connects() {
    let logs = tempfile::tempdir().expect("tempdir");
    let busy = Sipp::start("agent_busy", logs.path());
    let answers = Sipp::start("agent_answers_any", logs.path());
    let stack = Stack::start(&busy, &answers, 9).await;
    let events = stack
        .handoff("sip-uri-1", pb::target::Kind::SipUri(answers.uri()))
        .await;
    let kinds = kinds(&events);
    assert!(
        in_order(
            &kinds,
            &[K::Ringing, K::Answered, K::Connected, K::Completed]
        ),
        "{kinds:?}"
    );
    answers.assert_passed(logs.path()).await;
}

#[tokio::test]
async fn the_invite_to_the_human_continues_the_callers_trace() {
    const TRACE_ID: &str = "5b8efff798038103d269b633813fc60c";
    const CALLER_SPAN: &str = "eee19b7ec3c1b174";
    let logs = tempfile::tempdir().expect("tempdir");
    let busy = Sipp::start("agent_busy", logs.path());
    let answers = Sipp::start("agent_answers_any", logs.path());
    // Spans go to a port nobody listens on: propagation must not depend
    // on a collector being there.
    let stack = Stack::start_with_env(
        &busy,
        &answers,
        9,
        &[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:9"),
            ("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc"),
        ],
    )
    .await;
    let events = stack
        .traced_handoff(
            "sip-traced-1",
            pb::target::Kind::SipUri(answers.uri()),
            Some(&format!("00-{TRACE_ID}-{CALLER_SPAN}-01")),
        )
        .await;
    assert!(kinds(&events).contains(&K::Connected), "{events:?}");
    let messages = answers.messages(logs.path());
    answers.assert_passed(logs.path()).await;
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
    let logs = tempfile::tempdir().expect("tempdir");
    let busy = Sipp::start("agent_busy", logs.path());
    let answers = Sipp::start("agent_answers_any", logs.path());
    let stack = Stack::start(&busy, &answers, 9).await;
    let events = stack
        .handoff(
            "sip-fallback-1",
            pb::target::Kind::Route("sip-fallback".into()),
        )
        .await;
    let kinds = kinds(&events);
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
    busy.assert_passed(logs.path()).await;
    answers.assert_passed(logs.path()).await;
}

#[tokio::test]
async fn a_handoff_to_a_phone_number_goes_through_the_trunk_with_digest() {
    let logs = tempfile::tempdir().expect("tempdir");
    let trunk = Sipp::start("trunk_md5", logs.path());
    let busy = Sipp::start("agent_busy", logs.path());
    let answers = Sipp::start("agent_answers_any", logs.path());
    let stack = Stack::start(&busy, &answers, trunk.port).await;
    let events = stack
        .handoff(
            "phone-1",
            pb::target::Kind::PhoneNumber("+493012345678".into()),
        )
        .await;
    let kinds = kinds(&events);
    assert!(
        in_order(&kinds, &[K::Answered, K::Connected, K::Completed]),
        "{kinds:?}"
    );
    trunk.assert_passed(logs.path()).await;
}
