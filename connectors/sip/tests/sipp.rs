//! The SIP connector against real SIP peers: sipp plays the human's phone
//! and the caller's gateway. Each test drives the connector through its gRPC
//! API and checks both sides: the transfer events, and sipp's exit code
//! (its scenarios fail when a header such as User-to-User is missing).

use std::net::{SocketAddr, UdpSocket};
use std::path::PathBuf;
use std::process::Stdio;
use std::time::{Duration, SystemTime};

use baton_connector_sip::SipConfig;
use baton_connector_sip::config::TrunkConfig;
use baton_proto::connector::v1::connector_service_client::ConnectorServiceClient;
use baton_proto::connector::v1::{
    ContextEnvelope, ContextMechanism, ContextPayload, ContextReference, StartTransferRequest,
    TransferEventKind,
};
use baton_proto::types::v1::{
    CallReference, Conversation, FailureReason, Target, TransferMode, target,
};
use tokio::process::{Child, Command};

/// The handoff token every test sends; its hex is in the scenarios.
const TOKEN: &str = "baton.test.token";

/// A free UDP port on loopback (sipp cannot pick its own and report it).
fn free_udp_port() -> u16 {
    let socket = UdpSocket::bind("127.0.0.1:0").expect("bind a probe socket");
    socket.local_addr().expect("probe address").port()
}

fn free_tcp_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind a probe listener");
    listener.local_addr().expect("probe address").port()
}

/// A sipp process playing one scenario once.
struct Sipp {
    child: Child,
    port: u16,
    name: String,
    dir: tempfile::TempDir,
}

impl Sipp {
    fn start(scenario: &str) -> Self {
        Self::start_on(scenario, "u1")
    }

    /// `transport` is sipp's `-t`: `u1` (UDP) or `t1` (one TCP connection).
    fn start_on(scenario: &str, transport: &str) -> Self {
        let port = if transport == "t1" {
            free_tcp_port()
        } else {
            free_udp_port()
        };
        let dir = tempfile::tempdir().expect("tempdir");
        let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("tests/scenarios")
            .join(format!("{scenario}.xml"));
        let child = Command::new("sipp")
            .args(["-sf", path.to_str().expect("utf-8 path")])
            .args(["-i", "127.0.0.1", "-p", &port.to_string(), "-t", transport])
            .args(["-m", "1", "-timeout", "20s", "-timeout_error", "-nostdin"])
            .args(["-trace_err", "-trace_msg", "-error_file"])
            .arg(dir.path().join("errors.log"))
            .current_dir(dir.path())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("sipp is installed (Debian package sip-tester)");
        if transport == "t1" {
            // UDP hides a slow start behind retransmissions; TCP refuses the
            // connection, so wait until sipp listens.
            for _ in 0..100 {
                if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                    break;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
        }
        Self {
            child,
            port,
            name: scenario.to_owned(),
            dir,
        }
    }

    fn uri(&self, user: &str) -> String {
        format!("sip:{user}@127.0.0.1:{}", self.port)
    }

    /// Waits for sipp to finish its scenario and asserts it succeeded.
    async fn assert_passed(mut self) {
        let status = tokio::time::timeout(Duration::from_secs(30), self.child.wait())
            .await
            .expect("sipp ends within its own -timeout")
            .expect("sipp exit status");
        let errors =
            std::fs::read_to_string(self.dir.path().join("errors.log")).unwrap_or_default();
        let mut stderr = String::new();
        if let Some(mut pipe) = self.child.stderr.take() {
            use tokio::io::AsyncReadExt;
            let _ = pipe.read_to_string(&mut stderr).await;
        }
        let mut messages = String::new();
        for entry in std::fs::read_dir(self.dir.path())
            .into_iter()
            .flatten()
            .flatten()
        {
            if entry.file_name().to_string_lossy().contains("messages") {
                messages.push_str(&std::fs::read_to_string(entry.path()).unwrap_or_default());
            }
        }
        assert!(
            status.success(),
            "sipp scenario {} failed ({status}):\n{errors}\n{stderr}\n{messages}",
            self.name
        );
    }
}

/// The connector, in-process, on ephemeral loopback ports.
async fn connector(adjust: impl FnOnce(&mut SipConfig)) -> (SocketAddr, SocketAddr) {
    let mut config = SipConfig::ephemeral();
    config.sip.t1 = Duration::from_millis(100);
    adjust(&mut config);
    let bound = baton_connector_sip::bind(config)
        .await
        .expect("connector binds");
    let addresses = (bound.grpc_addr, bound.sip_addr);
    tokio::spawn(bound.serve(std::future::pending()));
    addresses
}

fn envelope(gateway: Option<&Sipp>) -> ContextEnvelope {
    ContextEnvelope {
        reference: Some(ContextReference {
            handoff_id: "h1".into(),
            token: TOKEN.into(),
            context_url: "https://baton.test/context/h1?t=abc".into(),
            screen_pop_url: "https://baton.test/pop/h1?t=abc".into(),
        }),
        conversation: Some(Conversation {
            call: Some(CallReference {
                sip_call_id: "customer-call-1@gw".into(),
                sip_from_tag: "customer-tag".into(),
                sip_to_tag: "gw-tag".into(),
                caller_number: "+14155550100".into(),
                sip_gateway_uri: gateway.map(|g| g.uri("gw")).unwrap_or_default(),
                ..Default::default()
            }),
            language: "en-US".into(),
            ..Default::default()
        }),
        payloads: vec![
            ContextPayload {
                mechanism: ContextMechanism::SipUserToUser as i32,
                content: TOKEN.into(),
                omitted_fields: vec![],
            },
            ContextPayload {
                mechanism: ContextMechanism::SipHeaders as i32,
                // The CR/LF must not become a header of its own.
                content: r#"{"token":"baton.test.token","intent":"billing\r\nEvil: yes","language":"en-US","priority":2}"#.into(),
                omitted_fields: vec![],
            },
        ],
        ..Default::default()
    }
}

/// Runs one transfer and returns its events as (kind, failure reason).
async fn transfer(
    grpc: SocketAddr,
    target: target::Kind,
    mode: TransferMode,
    envelope: ContextEnvelope,
) -> Vec<(TransferEventKind, FailureReason)> {
    let mut client = ConnectorServiceClient::connect(format!("http://{grpc}"))
        .await
        .expect("connects");
    let request = StartTransferRequest {
        handoff_id: "h1".into(),
        attempt: 1,
        target: Some(Target { kind: Some(target) }),
        mode: mode as i32,
        envelope: Some(envelope),
        deadline: Some((SystemTime::now() + Duration::from_secs(60)).into()),
    };
    let mut stream = client
        .start_transfer(request)
        .await
        .expect("StartTransfer accepted")
        .into_inner();
    let mut events = Vec::new();
    while let Some(event) = tokio::time::timeout(Duration::from_secs(40), stream.message())
        .await
        .expect("events keep coming")
        .expect("stream ok")
    {
        eprintln!(
            "event {:?} {:?} {}",
            event.kind(),
            event.failure_reason(),
            event.detail
        );
        events.push((
            TransferEventKind::try_from(event.kind).unwrap_or_default(),
            FailureReason::try_from(event.failure_reason).unwrap_or_default(),
        ));
    }
    events
}

fn kinds(events: &[(TransferEventKind, FailureReason)]) -> Vec<TransferEventKind> {
    events.iter().map(|(kind, _)| *kind).collect()
}

use TransferEventKind::{Answered, Completed, Connected, ContextDelivered, Failed, Ringing};

#[tokio::test]
async fn warm_transfer_rings_the_human_with_context_and_refers_the_caller_with_replaces() {
    let agent = Sipp::start("agent_answers");
    let gateway = Sipp::start("gateway_warm");
    let (grpc, _) = connector(|_| {}).await;
    let events = transfer(
        grpc,
        target::Kind::SipUri(agent.uri("agent")),
        TransferMode::Warm,
        envelope(Some(&gateway)),
    )
    .await;
    assert_eq!(
        kinds(&events),
        [Ringing, Answered, ContextDelivered, Connected, Completed]
    );
    agent.assert_passed().await;
    gateway.assert_passed().await;
}

#[tokio::test]
async fn without_a_gateway_the_answer_connects() {
    let agent = Sipp::start("agent_answers");
    let (grpc, _) = connector(|_| {}).await;
    let events = transfer(
        grpc,
        target::Kind::SipUri(agent.uri("agent")),
        TransferMode::Warm,
        envelope(None),
    )
    .await;
    assert_eq!(
        kinds(&events),
        [Ringing, Answered, ContextDelivered, Connected, Completed]
    );
    agent.assert_passed().await;
}

#[tokio::test]
async fn a_busy_human_fails_the_transfer_with_busy() {
    let agent = Sipp::start("agent_busy");
    let (grpc, _) = connector(|_| {}).await;
    let events = transfer(
        grpc,
        target::Kind::SipUri(agent.uri("agent")),
        TransferMode::Warm,
        envelope(None),
    )
    .await;
    assert_eq!(events, [(Failed, FailureReason::Busy)]);
    agent.assert_passed().await;
}

#[tokio::test]
async fn a_human_who_never_answers_is_cancelled_at_the_ring_timeout() {
    let agent = Sipp::start("agent_never_answers");
    let (grpc, _) = connector(|config| config.ring_timeout = Duration::from_secs(1)).await;
    let events = transfer(
        grpc,
        target::Kind::SipUri(agent.uri("agent")),
        TransferMode::Warm,
        envelope(None),
    )
    .await;
    assert_eq!(
        events,
        [
            (Ringing, FailureReason::Unspecified),
            (Failed, FailureReason::NoAnswer)
        ]
    );
    agent.assert_passed().await;
}

#[tokio::test]
async fn blind_transfer_follows_the_notify_sipfrag_to_connected() {
    let gateway = Sipp::start("gateway_blind");
    let (grpc, _) = connector(|_| {}).await;
    let events = transfer(
        grpc,
        target::Kind::SipUri("sip:agent@127.0.0.1:5999".into()),
        TransferMode::Blind,
        envelope(Some(&gateway)),
    )
    .await;
    assert_eq!(
        kinds(&events),
        [Ringing, Answered, ContextDelivered, Connected, Completed]
    );
    gateway.assert_passed().await;
}

#[tokio::test]
async fn blind_transfer_to_a_busy_human_fails_with_busy_despite_the_202() {
    let gateway = Sipp::start("gateway_blind_busy");
    let (grpc, _) = connector(|_| {}).await;
    let events = transfer(
        grpc,
        target::Kind::SipUri("sip:agent@127.0.0.1:5999".into()),
        TransferMode::Blind,
        envelope(Some(&gateway)),
    )
    .await;
    assert_eq!(events, [(Failed, FailureReason::Busy)]);
    gateway.assert_passed().await;
}

#[tokio::test]
async fn a_refer_without_notify_fails_instead_of_hanging() {
    let gateway = Sipp::start("gateway_silent");
    let (grpc, _) = connector(|config| config.notify_timeout = Duration::from_secs(1)).await;
    let events = transfer(
        grpc,
        target::Kind::SipUri("sip:agent@127.0.0.1:5999".into()),
        TransferMode::Blind,
        envelope(Some(&gateway)),
    )
    .await;
    assert_eq!(events, [(Failed, FailureReason::Unreachable)]);
    gateway.assert_passed().await;
}

fn trunk(sipp: &Sipp) -> TrunkConfig {
    TrunkConfig {
        name: "test-trunk".into(),
        prefixes: vec!["+4930".into()],
        host: format!("127.0.0.1:{}", sipp.port),
        transport: baton_connector_sip::config::Transport::Udp,
        username: Some("baton-trunk".into()),
        password: Some("s3cret".into()),
        number_format: baton_connector_sip::config::NumberFormat::E164,
        caller_id: Some("+4930000000".into()),
        caller_id_policy: baton_connector_sip::config::CallerIdPolicy::Fixed,
    }
}

#[tokio::test]
async fn a_phone_number_goes_through_the_trunk_with_md5_digest() {
    let trunk_sipp = Sipp::start("trunk_md5");
    let trunk = trunk(&trunk_sipp);
    let (grpc, _) = connector(move |config| config.trunks = vec![trunk]).await;
    let events = transfer(
        grpc,
        target::Kind::PhoneNumber("+493012345678".into()),
        TransferMode::Warm,
        envelope(None),
    )
    .await;
    assert_eq!(
        kinds(&events),
        [Answered, ContextDelivered, Connected, Completed]
    );
    trunk_sipp.assert_passed().await;
}

#[tokio::test]
async fn a_trunk_challenge_with_sha_256_is_answered_with_sha_256() {
    let trunk_sipp = Sipp::start("trunk_sha256");
    let trunk = trunk(&trunk_sipp);
    let (grpc, _) = connector(move |config| config.trunks = vec![trunk]).await;
    let events = transfer(
        grpc,
        target::Kind::PhoneNumber("+493012345678".into()),
        TransferMode::Warm,
        envelope(None),
    )
    .await;
    assert_eq!(
        kinds(&events),
        [Answered, ContextDelivered, Connected, Completed]
    );
    trunk_sipp.assert_passed().await;
}

#[tokio::test]
async fn cancelling_a_ringing_transfer_cancels_the_invite() {
    let agent = Sipp::start("agent_never_answers");
    let (grpc, _) = connector(|_| {}).await;
    let mut client = ConnectorServiceClient::connect(format!("http://{grpc}"))
        .await
        .expect("connects");
    let request = StartTransferRequest {
        handoff_id: "h-cancel".into(),
        attempt: 1,
        target: Some(Target {
            kind: Some(target::Kind::SipUri(agent.uri("agent"))),
        }),
        mode: TransferMode::Warm as i32,
        envelope: Some(envelope(None)),
        deadline: Some((SystemTime::now() + Duration::from_secs(60)).into()),
    };
    let mut stream = client
        .start_transfer(request)
        .await
        .expect("StartTransfer accepted")
        .into_inner();
    let mut kinds = Vec::new();
    while let Some(event) = tokio::time::timeout(Duration::from_secs(40), stream.message())
        .await
        .expect("events keep coming")
        .expect("stream ok")
    {
        kinds.push(event.kind());
        if event.kind() == Ringing {
            // The caller hung up while the human's phone rang.
            client
                .cancel_transfer(baton_proto::connector::v1::CancelTransferRequest {
                    handoff_id: "h-cancel".into(),
                    attempt: 1,
                })
                .await
                .expect("CancelTransfer");
        }
    }
    assert_eq!(kinds, [Ringing, TransferEventKind::Cancelled]);
    agent.assert_passed().await;
}

/// A UDP relay that drops chosen datagrams: `drop_forward` and
/// `drop_backward` list the 1-based numbers of the datagrams to lose in
/// each direction. Returns the address to send to and the count of drops.
async fn lossy_relay(
    upstream: SocketAddr,
    drop_forward: &'static [usize],
    drop_backward: &'static [usize],
) -> (SocketAddr, std::sync::Arc<std::sync::atomic::AtomicUsize>) {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    let front = tokio::net::UdpSocket::bind("127.0.0.1:0")
        .await
        .expect("relay front");
    let back = tokio::net::UdpSocket::bind("127.0.0.1:0")
        .await
        .expect("relay back");
    let address = front.local_addr().expect("relay address");
    let dropped = Arc::new(AtomicUsize::new(0));
    let counter = dropped.clone();
    tokio::spawn(async move {
        let (mut forward, mut backward) = (0, 0);
        let mut client: Option<SocketAddr> = None;
        let mut front_buffer = vec![0u8; 70_000];
        let mut back_buffer = vec![0u8; 70_000];
        loop {
            tokio::select! {
                Ok((length, from)) = front.recv_from(&mut front_buffer) => {
                    client = Some(from);
                    forward += 1;
                    if drop_forward.contains(&forward) {
                        counter.fetch_add(1, Ordering::SeqCst);
                    } else {
                        let _ = back.send_to(&front_buffer[..length], upstream).await;
                    }
                }
                Ok((length, _)) = back.recv_from(&mut back_buffer) => {
                    backward += 1;
                    if drop_backward.contains(&backward) {
                        counter.fetch_add(1, Ordering::SeqCst);
                    } else if let Some(client) = client {
                        let _ = front.send_to(&back_buffer[..length], client).await;
                    }
                }
            }
        }
    });
    (address, dropped)
}

#[tokio::test]
async fn lost_datagrams_are_recovered_by_retransmission() {
    use std::sync::atomic::Ordering;
    let agent = Sipp::start("agent_answers");
    let gateway = Sipp::start("gateway_warm");
    let agent_addr: SocketAddr = format!("127.0.0.1:{}", agent.port).parse().expect("addr");
    let gateway_addr: SocketAddr = format!("127.0.0.1:{}", gateway.port).parse().expect("addr");
    // Lose the first INVITE and the first 200 OK (after the 180) …
    let (agent_relay, agent_drops) = lossy_relay(agent_addr, &[1], &[2]).await;
    // … and the first REFER and the first NOTIFY (after the 202).
    let (gateway_relay, gateway_drops) = lossy_relay(gateway_addr, &[1], &[2]).await;
    let (grpc, _) = connector(|_| {}).await;
    let mut envelope = envelope(Some(&gateway));
    if let Some(call) = envelope.conversation.as_mut().and_then(|c| c.call.as_mut()) {
        call.sip_gateway_uri = format!("sip:gw@{gateway_relay}");
    }
    let events = transfer(
        grpc,
        target::Kind::SipUri(format!("sip:agent@{agent_relay}")),
        TransferMode::Warm,
        envelope,
    )
    .await;
    assert_eq!(
        kinds(&events),
        [Ringing, Answered, ContextDelivered, Connected, Completed]
    );
    assert_eq!(agent_drops.load(Ordering::SeqCst), 2);
    assert_eq!(gateway_drops.load(Ordering::SeqCst), 2);
    agent.assert_passed().await;
    gateway.assert_passed().await;
}

/// kamailio as a record-routing SIP proxy on a free loopback port; stopped
/// with SIGTERM (it then stops its own children) when dropped.
struct Kamailio {
    child: std::process::Child,
    address: SocketAddr,
    _dir: tempfile::TempDir,
}

impl Kamailio {
    async fn start() -> Self {
        let port = free_udp_port();
        let dir = tempfile::tempdir().expect("tempdir");
        let config = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/kamailio.cfg");
        // Debian installs it in /usr/sbin, which is not on every user's PATH.
        let binary = if std::path::Path::new("/usr/sbin/kamailio").exists() {
            "/usr/sbin/kamailio"
        } else {
            "kamailio"
        };
        let child = std::process::Command::new(binary)
            .arg("-f")
            .arg(&config)
            .args(["-DD", "-E", "-m", "16", "-M", "4"])
            .arg("-l")
            .arg(format!("udp:127.0.0.1:{port}"))
            .arg("-Y")
            .arg(dir.path())
            .arg("-P")
            .arg(dir.path().join("kamailio.pid"))
            .arg("-w")
            .arg(dir.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("kamailio is installed (Debian package kamailio)");
        let address: SocketAddr = format!("127.0.0.1:{port}").parse().expect("addr");
        let kamailio = Self {
            child,
            address,
            _dir: dir,
        };
        kamailio.wait_ready().await;
        kamailio
    }

    /// Ready once it answers: an OPTIONS with Max-Forwards 0 gets a 483.
    async fn wait_ready(&self) {
        let probe = tokio::net::UdpSocket::bind("127.0.0.1:0")
            .await
            .expect("probe");
        let local = probe.local_addr().expect("probe address");
        let options = format!(
            "OPTIONS sip:probe@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP {local};branch=z9hG4bKprobe\r\nMax-Forwards: 0\r\nFrom: <sip:probe@127.0.0.1>;tag=p\r\nTo: <sip:probe@127.0.0.1>\r\nCall-ID: probe\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n"
        );
        let mut buffer = [0u8; 4096];
        for _ in 0..100 {
            let _ = probe.send_to(options.as_bytes(), self.address).await;
            if let Ok(Ok(_)) =
                tokio::time::timeout(Duration::from_millis(200), probe.recv_from(&mut buffer)).await
            {
                return;
            }
        }
        panic!("kamailio did not start");
    }
}

impl Drop for Kamailio {
    fn drop(&mut self) {
        let _ = std::process::Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let _ = self.child.wait();
    }
}

#[tokio::test]
async fn warm_transfer_through_kamailio_follows_the_record_route() {
    let proxy = Kamailio::start().await;
    let agent = Sipp::start("agent_answers_rr");
    let gateway = Sipp::start("gateway_warm");
    let proxy_address = proxy.address.to_string();
    let (grpc, _) = connector(move |config| config.sip.outbound_proxy = Some(proxy_address)).await;
    let events = transfer(
        grpc,
        target::Kind::SipUri(agent.uri("agent")),
        TransferMode::Warm,
        envelope(Some(&gateway)),
    )
    .await;
    assert_eq!(
        kinds(&events),
        [Ringing, Answered, ContextDelivered, Connected, Completed]
    );
    agent.assert_passed().await;
    gateway.assert_passed().await;
    drop(proxy);
}

#[tokio::test]
async fn warm_transfer_over_tcp() {
    let agent = Sipp::start_on("agent_answers", "t1");
    let gateway = Sipp::start_on("gateway_warm", "t1");
    let (grpc, _) = connector(|_| {}).await;
    let mut envelope = envelope(Some(&gateway));
    if let Some(call) = envelope.conversation.as_mut().and_then(|c| c.call.as_mut()) {
        call.sip_gateway_uri = format!("{};transport=tcp", gateway.uri("gw"));
    }
    let events = transfer(
        grpc,
        target::Kind::SipUri(format!("{};transport=tcp", agent.uri("agent"))),
        TransferMode::Warm,
        envelope,
    )
    .await;
    agent.assert_passed().await;
    gateway.assert_passed().await;
    assert_eq!(
        kinds(&events),
        [Ringing, Answered, ContextDelivered, Connected, Completed]
    );
}

#[tokio::test]
async fn user_to_user_goes_into_the_refer_to_for_targets_that_read_it_there() {
    let agent = Sipp::start("agent_answers");
    let gateway = Sipp::start("gateway_warm_uui_in_refer_to");
    let prefix = agent.uri("agent");
    let (grpc, _) = connector(move |config| config.headers.uui_in_refer_to = vec![prefix]).await;
    let events = transfer(
        grpc,
        target::Kind::SipUri(agent.uri("agent")),
        TransferMode::Warm,
        envelope(Some(&gateway)),
    )
    .await;
    assert_eq!(
        kinds(&events),
        [Ringing, Answered, ContextDelivered, Connected, Completed]
    );
    agent.assert_passed().await;
    gateway.assert_passed().await;
}

#[tokio::test]
async fn the_phone_hanging_up_the_replaced_leg_gets_a_200() {
    let agent = Sipp::start("agent_answers_then_hangs_up");
    let gateway = Sipp::start("gateway_warm");
    let (grpc, _) = connector(|_| {}).await;
    let events = transfer(
        grpc,
        target::Kind::SipUri(agent.uri("agent")),
        TransferMode::Warm,
        envelope(Some(&gateway)),
    )
    .await;
    assert_eq!(
        kinds(&events),
        [Ringing, Answered, ContextDelivered, Connected, Completed]
    );
    // sipp fails unless its BYE, sent after the transfer, is answered 200.
    agent.assert_passed().await;
    gateway.assert_passed().await;
}

#[tokio::test]
async fn stopping_the_connector_cancels_the_ringing_leg() {
    use tokio::io::AsyncBufReadExt;
    let agent = Sipp::start("agent_never_answers");
    let mut child = Command::new(env!("CARGO_BIN_EXE_baton-connector-sip"))
        .args(["--listen", "127.0.0.1:0", "--sip-bind", "127.0.0.1:0"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("starts");
    let stdout = child.stdout.take().expect("stdout");
    let line = tokio::time::timeout(
        Duration::from_secs(30),
        tokio::io::BufReader::new(stdout).lines().next_line(),
    )
    .await
    .expect("ready in time")
    .expect("reads")
    .expect("a line");
    let ready: serde_json::Value = serde_json::from_str(&line).expect("JSON");
    let grpc = ready["ready"]["grpc"].as_str().expect("grpc").to_owned();
    let mut client = ConnectorServiceClient::connect(format!("http://{grpc}"))
        .await
        .expect("connects");
    let request = StartTransferRequest {
        handoff_id: "h-stop".into(),
        attempt: 1,
        target: Some(Target {
            kind: Some(target::Kind::SipUri(agent.uri("agent"))),
        }),
        mode: TransferMode::Warm as i32,
        envelope: Some(envelope(None)),
        deadline: Some((SystemTime::now() + Duration::from_secs(60)).into()),
    };
    let mut stream = client
        .start_transfer(request)
        .await
        .expect("StartTransfer accepted")
        .into_inner();
    let first = tokio::time::timeout(Duration::from_secs(30), stream.message())
        .await
        .expect("an event")
        .expect("stream ok")
        .expect("not ended");
    assert_eq!(first.kind(), Ringing);
    let pid = child.id().expect("running").to_string();
    let killed = Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .await
        .expect("kill");
    assert!(killed.success());
    let status = tokio::time::timeout(Duration::from_secs(30), child.wait())
        .await
        .expect("stops in time")
        .expect("exit status");
    assert!(status.success(), "{status}");
    // sipp passes only if the INVITE was CANCELled and its 487 acknowledged.
    agent.assert_passed().await;
}

#[tokio::test]
async fn a_gateway_that_challenges_the_refer_gets_digest_credentials() {
    let gateway = Sipp::start("gateway_challenges_refer");
    let host = format!("127.0.0.1:{}", gateway.port);
    let (grpc, _) = connector(move |config| {
        config.credentials = vec![baton_connector_sip::config::CredentialConfig {
            host,
            username: "baton-gw".into(),
            password: "gw-secret".into(),
        }]
    })
    .await;
    let events = transfer(
        grpc,
        target::Kind::SipUri("sip:agent@127.0.0.1:5999".into()),
        TransferMode::Blind,
        envelope(Some(&gateway)),
    )
    .await;
    assert_eq!(
        kinds(&events),
        [Answered, ContextDelivered, Connected, Completed]
    );
    gateway.assert_passed().await;
}
