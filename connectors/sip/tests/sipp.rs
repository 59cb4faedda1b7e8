//! The SIP connector against real SIP peers: sipp plays the human's phone
//! and the caller's gateway. Each test drives the connector through its gRPC
//! API and checks both sides: the transfer events, and sipp's exit code
//! (its scenarios fail when a header such as User-to-User is missing).

use std::net::{SocketAddr, UdpSocket};
use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use baton_connector_sip::SipConfig;
use baton_connector_sip::config::TrunkConfig;
use baton_proto::connector::v1::connector_service_client::ConnectorServiceClient;
use baton_proto::connector::v1::{
    ContextEnvelope, ContextMechanism, ContextPayload, ContextReference, StartTransferRequest,
    StartTransferResponse, TransferEventKind,
};
use baton_proto::types::v1::{CallReference, Conversation, FailureReason, TransferMode, target};
use baton_tests::sipp::{Sipp, Transport, sip_connector_scenario};
use tonic::Streaming;
use tonic::transport::Channel;

mod common;

use common::{connector, journalled_connector, next_event, sipp, start_request};

/// The handoff token every test sends; its hex is in the scenarios.
const TOKEN: &str = "baton.test.token";

/// A free UDP port on loopback (kamailio cannot pick its own and report it).
fn free_udp_port() -> u16 {
    let socket = UdpSocket::bind("127.0.0.1:0").expect("bind a probe socket");
    socket.local_addr().expect("probe address").port()
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

/// Starts a transfer; returns the client, to cancel it, and its events.
async fn start_transfer(
    grpc: SocketAddr,
    request: StartTransferRequest,
) -> (
    ConnectorServiceClient<Channel>,
    Streaming<StartTransferResponse>,
) {
    let mut client = ConnectorServiceClient::connect(format!("http://{grpc}"))
        .await
        .expect("connects");
    let stream = client
        .start_transfer(request)
        .await
        .expect("StartTransfer accepted")
        .into_inner();
    (client, stream)
}

/// Runs one transfer and returns its events as (kind, failure reason).
async fn transfer(
    grpc: SocketAddr,
    target: target::Kind,
    mode: TransferMode,
    envelope: ContextEnvelope,
) -> Vec<(TransferEventKind, FailureReason)> {
    let (_, mut stream) = start_transfer(grpc, start_request("h1", target, mode, envelope)).await;
    let mut events = Vec::new();
    while let Some(event) = next_event(&mut stream).await {
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

/// A warm transfer to `agent`, the caller behind `gateway` if any.
async fn warm_transfer(
    grpc: SocketAddr,
    agent: &Sipp,
    gateway: Option<&Sipp>,
) -> Vec<(TransferEventKind, FailureReason)> {
    transfer(
        grpc,
        target::Kind::SipUri(agent.uri("agent")),
        TransferMode::Warm,
        envelope(gateway),
    )
    .await
}

/// A blind transfer, which `gateway` carries out: nothing listens at the
/// target, and only the gateway's NOTIFYs tell how it went.
async fn blind_transfer(
    grpc: SocketAddr,
    gateway: &Sipp,
) -> Vec<(TransferEventKind, FailureReason)> {
    transfer(
        grpc,
        target::Kind::SipUri("sip:agent@127.0.0.1:5999".into()),
        TransferMode::Blind,
        envelope(Some(gateway)),
    )
    .await
}

fn kinds(events: &[(TransferEventKind, FailureReason)]) -> Vec<TransferEventKind> {
    events.iter().map(|(kind, _)| *kind).collect()
}

use TransferEventKind::{
    Answered, Completed, Connected, ContextDelivered, Failed, Offered, Ringing,
};

/// The first event of every transfer, as the INVITE or REFER leaves.
const OFFERED: (TransferEventKind, FailureReason) = (Offered, FailureReason::Unspecified);

/// A transfer whose target rang, answered and was connected to the caller.
const RANG_AND_CONNECTED: [TransferEventKind; 6] = [
    Offered,
    Ringing,
    Answered,
    ContextDelivered,
    Connected,
    Completed,
];

/// A connected transfer whose ringing nobody reported: a trunk's, or a
/// blind transfer's seen through the gateway.
const CONNECTED_UNRUNG: [TransferEventKind; 5] =
    [Offered, Answered, ContextDelivered, Connected, Completed];

/// Warm-transfers to `agent` on a connector set up by `adjust`, and asserts
/// that it connected and that `agent` and `gateway` saw what their
/// scenarios expect.
async fn assert_warm_transfer_connects(
    agent: Sipp,
    gateway: Option<Sipp>,
    adjust: impl FnOnce(&mut SipConfig),
) {
    let (grpc, _) = connector(adjust).await;
    let events = warm_transfer(grpc, &agent, gateway.as_ref()).await;
    assert_eq!(kinds(&events), RANG_AND_CONNECTED);
    agent.assert_passed().await;
    if let Some(gateway) = gateway {
        gateway.assert_passed().await;
    }
}

#[tokio::test]
async fn warm_transfer_rings_the_human_with_context_and_refers_the_caller_with_replaces() {
    assert_warm_transfer_connects(sipp("agent_answers"), Some(sipp("gateway_warm")), |_| {}).await;
}

#[tokio::test]
async fn without_a_gateway_the_answer_connects_and_the_leg_is_hung_up() {
    assert_warm_transfer_connects(sipp("agent_answers_then_bye"), None, |_| {}).await;
}

#[tokio::test]
async fn a_busy_human_fails_the_transfer_with_busy() {
    let agent = sipp("agent_busy");
    let (grpc, _) = connector(|_| {}).await;
    let events = warm_transfer(grpc, &agent, None).await;
    assert_eq!(events, [OFFERED, (Failed, FailureReason::Busy)]);
    agent.assert_passed().await;
}

#[tokio::test]
async fn a_human_who_never_answers_is_cancelled_at_the_ring_timeout() {
    let agent = sipp("agent_never_answers");
    let (grpc, _) = connector(|config| config.ring_timeout = Duration::from_secs(1)).await;
    let events = warm_transfer(grpc, &agent, None).await;
    assert_eq!(
        events,
        [
            OFFERED,
            (Ringing, FailureReason::Unspecified),
            (Failed, FailureReason::NoAnswer)
        ]
    );
    agent.assert_passed().await;
}

#[tokio::test]
async fn blind_transfer_follows_the_notify_sipfrag_to_connected() {
    let gateway = sipp("gateway_blind");
    let (grpc, _) = connector(|_| {}).await;
    let events = blind_transfer(grpc, &gateway).await;
    assert_eq!(kinds(&events), RANG_AND_CONNECTED);
    gateway.assert_passed().await;
}

#[tokio::test]
async fn blind_transfer_to_a_busy_human_fails_with_busy_despite_the_202() {
    let gateway = sipp("gateway_blind_busy");
    let (grpc, _) = connector(|_| {}).await;
    let events = blind_transfer(grpc, &gateway).await;
    assert_eq!(events, [OFFERED, (Failed, FailureReason::Busy)]);
    gateway.assert_passed().await;
}

#[tokio::test]
async fn a_refer_without_notify_fails_instead_of_hanging() {
    let gateway = sipp("gateway_silent");
    let (grpc, _) = connector(|config| config.notify_timeout = Duration::from_secs(1)).await;
    let events = blind_transfer(grpc, &gateway).await;
    assert_eq!(events, [OFFERED, (Failed, FailureReason::Unreachable)]);
    gateway.assert_passed().await;
}

/// Transfers to a phone number through a trunk that plays `scenario`, and
/// asserts that it connected and that the trunk saw what it expects.
async fn assert_trunk_transfer_connects(scenario: &str) {
    let trunk_sipp = sipp(scenario);
    let trunk = TrunkConfig {
        name: "test-trunk".into(),
        prefixes: vec!["+4930".into()],
        host: trunk_sipp.addr().to_string(),
        transport: baton_connector_sip::config::Transport::Udp,
        username: Some("baton-trunk".into()),
        password: Some("s3cret".into()),
        number_format: baton_connector_sip::config::NumberFormat::E164,
        caller_id: Some("+4930000000".into()),
        caller_id_policy: baton_connector_sip::config::CallerIdPolicy::Fixed,
    };
    let (grpc, _) = connector(move |config| config.trunks = vec![trunk]).await;
    let events = transfer(
        grpc,
        target::Kind::PhoneNumber("+493012345678".into()),
        TransferMode::Warm,
        envelope(None),
    )
    .await;
    assert_eq!(kinds(&events), CONNECTED_UNRUNG);
    trunk_sipp.assert_passed().await;
}

#[tokio::test]
async fn a_phone_number_goes_through_the_trunk_with_md5_digest() {
    assert_trunk_transfer_connects("trunk_md5").await;
}

#[tokio::test]
async fn a_trunk_challenge_with_sha_256_is_answered_with_sha_256() {
    assert_trunk_transfer_connects("trunk_sha256").await;
}

#[tokio::test]
async fn cancelling_a_ringing_transfer_cancels_the_invite() {
    let agent = sipp("agent_never_answers");
    let (grpc, _) = connector(|_| {}).await;
    let request = start_request(
        "h-cancel",
        target::Kind::SipUri(agent.uri("agent")),
        TransferMode::Warm,
        envelope(None),
    );
    let (mut client, mut stream) = start_transfer(grpc, request).await;
    let mut kinds = Vec::new();
    while let Some(event) = next_event(&mut stream).await {
        kinds.push(event.kind());
        if event.kind() == Ringing {
            // The caller hung up while the human's phone rang.
            client
                .cancel_transfer(baton_proto::connector::v1::CancelTransferRequest {
                    handoff_id: "h-cancel".into(),
                    attempt: 1,
                    tenant: "acme".into(),
                })
                .await
                .expect("CancelTransfer");
        }
    }
    assert_eq!(kinds, [Offered, Ringing, TransferEventKind::Cancelled]);
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
    let agent = sipp("agent_answers");
    let gateway = sipp("gateway_warm");
    // Lose the first INVITE and the first 200 OK (after the 180) …
    let (agent_relay, agent_drops) = lossy_relay(agent.addr(), &[1], &[2]).await;
    // … and the first REFER and the first NOTIFY (after the 202).
    let (gateway_relay, gateway_drops) = lossy_relay(gateway.addr(), &[1], &[2]).await;
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
    assert_eq!(kinds(&events), RANG_AND_CONNECTED);
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
    let proxy_address = proxy.address.to_string();
    assert_warm_transfer_connects(
        sipp("agent_answers_rr"),
        Some(sipp("gateway_warm")),
        move |config| config.sip.outbound_proxy = Some(proxy_address),
    )
    .await;
    drop(proxy);
}

#[tokio::test]
async fn warm_transfer_over_tcp() {
    let over_tcp = |scenario: &str| {
        Sipp::play(&sip_connector_scenario(scenario))
            .transport(Transport::Tcp)
            .start()
    };
    let agent = over_tcp("agent_answers");
    let gateway = over_tcp("gateway_warm");
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
    assert_eq!(kinds(&events), RANG_AND_CONNECTED);
}

#[tokio::test]
async fn user_to_user_goes_into_the_refer_to_for_targets_that_read_it_there() {
    let agent = sipp("agent_answers");
    let gateway = sipp("gateway_warm_uui_in_refer_to");
    let prefix = agent.uri("agent");
    assert_warm_transfer_connects(agent, Some(gateway), move |config| {
        config.headers.uui_in_refer_to = vec![prefix]
    })
    .await;
}

#[tokio::test]
async fn the_phone_hanging_up_the_replaced_leg_gets_a_200() {
    // sipp fails unless its BYE, sent after the transfer, is answered 200.
    assert_warm_transfer_connects(
        sipp("agent_answers_then_hangs_up"),
        Some(sipp("gateway_warm")),
        |_| {},
    )
    .await;
}

#[tokio::test]
async fn a_stopped_connector_leaves_the_ringing_leg_to_the_next_which_cancels_it() {
    let agent = sipp("agent_never_answers");
    let dir = tempfile::tempdir().expect("tempdir");
    let mut connector = journalled_connector(dir.path(), "127.0.0.1:0", "127.0.0.1:0", "").await;
    let (grpc, sip) = (connector.addr("grpc"), connector.addr("sip"));
    let request = start_request(
        "h-stop",
        target::Kind::SipUri(agent.uri("agent")),
        TransferMode::Warm,
        envelope(None),
    );
    let (_, mut stream) = start_transfer(grpc, request.clone()).await;
    for expected in [Offered, Ringing] {
        let event = tokio::time::timeout(Duration::from_secs(30), stream.message())
            .await
            .expect("an event")
            .expect("stream ok")
            .expect("not ended");
        assert_eq!(event.kind(), expected);
    }
    // SIGTERM: the drain passes with the phone still ringing, and the
    // process exits without hanging it up.
    let status = connector.stop().await.expect("stops in time");
    assert!(status.success(), "{status}");
    assert!(
        !agent.messages().contains("CANCEL sip:"),
        "the stopping connector cancelled the leg"
    );

    // The next process, on the same addresses and journal, takes the
    // transfer over when it is re-attached: one CANCEL, never a new INVITE.
    let _next = journalled_connector(dir.path(), &grpc.to_string(), &sip.to_string(), "").await;
    let (_, mut stream) = start_transfer(grpc, request).await;
    let mut events = Vec::new();
    while let Some(event) = tokio::time::timeout(Duration::from_secs(20), stream.message())
        .await
        .expect("an event in time")
        .expect("stream ok")
    {
        events.push(event);
    }
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(events[0].kind(), Failed);
    assert_eq!(events[0].failure_reason(), FailureReason::Interrupted);
    assert!(
        events[0].detail.contains("cancelled (487)"),
        "{}",
        events[0].detail
    );
    let messages = agent.finish().await.expect("CANCELled, 487 acknowledged");
    assert_eq!(messages.matches("INVITE sip:").count(), 1, "{messages}");
}

#[tokio::test]
async fn a_gateway_that_challenges_the_refer_gets_digest_credentials() {
    let gateway = sipp("gateway_challenges_refer");
    let host = gateway.addr().to_string();
    let (grpc, _) = connector(move |config| {
        config.credentials = vec![baton_connector_sip::config::CredentialConfig {
            host,
            username: "baton-gw".into(),
            password: "gw-secret".into(),
        }]
    })
    .await;
    let events = blind_transfer(grpc, &gateway).await;
    assert_eq!(kinds(&events), CONNECTED_UNRUNG);
    gateway.assert_passed().await;
}
