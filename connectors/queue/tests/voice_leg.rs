//! The voice leg against real SIP peers: with `[voice]` enabled, a voice
//! handoff an agent accepts in the desktop is delivered to the agent's
//! phone (sipp) through the SIP connector's library, and the caller's
//! gateway (sipp) is referred to it. The queue runs in-process and is
//! driven as the control service and an agent's browser would: StartTransfer
//! over gRPC, sign-in and accept over the desktop's HTTP API.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use baton_connector_queue::QueueConfig;
use baton_connector_queue::accounts::{Account, Role, add_account};
use baton_proto::connector::v1::connector_service_client::ConnectorServiceClient;
use baton_proto::connector::v1::{
    ContextEnvelope, ContextReference, StartTransferRequest, StartTransferResponse,
    TransferEventKind,
};
use baton_proto::types::v1::{
    CallReference, Channel, Conversation, FailureReason, QueueTarget, Target, TransferMode, target,
};
use baton_tests::sipp::{Sipp, sip_connector_scenario};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tonic::Streaming;

use TransferEventKind::{Answered, Completed, Connected, ContextDelivered, Failed, Ringing};

/// The handoff token; its hex is in `agent_phone_answers.xml`.
const TOKEN: &str = "baton.queue.token";

/// One of this crate's scenarios.
fn own_scenario(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/scenarios")
        .join(format!("{name}.xml"))
}

/// The desktop's accounts file in `data_dir`.
fn accounts_file(data_dir: &Path) -> PathBuf {
    data_dir.join("desk-accounts.toml")
}

/// The queue, in-process, with the voice leg on, on free loopback ports.
async fn queue(data_dir: &Path) -> (SocketAddr, SocketAddr) {
    let mut config = QueueConfig::ephemeral(data_dir);
    config.desk.accounts_file = Some(accounts_file(data_dir));
    config.voice.enabled = true;
    config.voice.sip.t1 = Duration::from_millis(100);
    let bound = baton_connector_queue::bind(config)
        .await
        .expect("queue binds");
    let addresses = (bound.grpc_addr, bound.http_addr);
    tokio::spawn(bound.serve(std::future::pending()));
    addresses
}

/// One HTTP/1.1 request to the desktop API, as the desktop page sends it
/// (the session cookie and its CSRF token); returns the status, the
/// session cookie set if any, and the body.
async fn http_with_cookie(
    addr: SocketAddr,
    method: &str,
    path: &str,
    session: Option<&str>,
    body: &str,
) -> (u16, Option<String>, String) {
    let mut stream = tokio::net::TcpStream::connect(addr)
        .await
        .expect("desktop listens");
    let authorization = session
        .map(|s| {
            format!(
                "Cookie: baton_desk_session={s}\r\nX-CSRF-Token: {}\r\n",
                baton_connector_queue::session::csrf_token(s)
            )
        })
        .unwrap_or_default();
    let request = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n{authorization}Connection: close\r\n\r\n{body}",
        body.len()
    );
    stream
        .write_all(request.as_bytes())
        .await
        .expect("request sent");
    let mut response = String::new();
    stream
        .read_to_string(&mut response)
        .await
        .expect("response read");
    let status = response
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let (head, body) = response.split_once("\r\n\r\n").unwrap_or_default();
    let cookie = head
        .lines()
        .filter_map(|line| line.split_once(": "))
        .find(|(name, _)| name.eq_ignore_ascii_case("set-cookie"))
        .and_then(|(_, value)| value.strip_prefix("baton_desk_session="))
        .and_then(|value| value.split(';').next())
        .map(str::to_owned);
    (status, cookie, body.to_owned())
}

async fn http(
    addr: SocketAddr,
    method: &str,
    path: &str,
    session: Option<&str>,
    body: &str,
) -> (u16, String) {
    let (status, _, body) = http_with_cookie(addr, method, path, session, body).await;
    (status, body)
}

/// Gives the agent an account (tenant acme) with `contact` as their phone,
/// signs them in; returns the session.
async fn sign_in(data_dir: &Path, desktop: SocketAddr, agent: &str, contact: &str) -> String {
    let account = Account {
        name: agent.into(),
        display_name: None,
        role: Role::Agent,
        tenants: vec![TENANT.into()],
        skills: vec!["support".into()],
        contact: contact.into(),
        password: String::new(),
    };
    add_account(&accounts_file(data_dir), account, "pw").expect("account");
    let body = serde_json::json!({ "name": agent, "password": "pw" }).to_string();
    let (status, cookie, body) =
        http_with_cookie(desktop, "POST", "/api/sessions", None, &body).await;
    assert_eq!(status, 200, "sign-in: {body}");
    cookie.expect("a session cookie")
}

/// The tenant of the transfers and the agents.
const TENANT: &str = "acme";

fn envelope(handoff_id: &str, channel: Channel, gateway: Option<&Sipp>) -> ContextEnvelope {
    ContextEnvelope {
        reference: Some(ContextReference {
            handoff_id: handoff_id.into(),
            token: TOKEN.into(),
            context_url: format!("https://baton.test/context/{handoff_id}?t=abc"),
            screen_pop_url: format!("https://baton.test/pop/{handoff_id}?t=abc"),
        }),
        conversation: Some(Conversation {
            channel: channel as i32,
            // The dialog gateway_warm.xml expects in Target-Dialog.
            call: Some(CallReference {
                sip_call_id: "customer-call-1@gw".into(),
                sip_from_tag: "customer-tag".into(),
                sip_to_tag: "gw-tag".into(),
                sip_gateway_uri: gateway.map(|g| g.uri("gw")).unwrap_or_default(),
                ..Default::default()
            }),
            language: "en-US".into(),
        }),
        ..Default::default()
    }
}

async fn start_transfer(
    grpc: SocketAddr,
    handoff_id: &str,
    envelope: ContextEnvelope,
) -> Streaming<StartTransferResponse> {
    let mut client = ConnectorServiceClient::connect(format!("http://{grpc}"))
        .await
        .expect("connects");
    let request = StartTransferRequest {
        tenant: "acme".into(),
        handoff_id: handoff_id.into(),
        attempt: 1,
        target: Some(Target {
            kind: Some(target::Kind::Queue(QueueTarget {
                name: "support".into(),
                skills: vec![],
            })),
        }),
        mode: TransferMode::Warm as i32,
        envelope: Some(envelope),
        deadline: Some((SystemTime::now() + Duration::from_secs(120)).into()),
        disclosure: None,
        callback: None,
    };
    client
        .start_transfer(request)
        .await
        .expect("StartTransfer accepted")
        .into_inner()
}

/// The agent of `session` accepts the handoff offered to them.
async fn accept(desktop: SocketAddr, session: &str, handoff_id: &str) {
    let path = format!("/api/handoffs/{handoff_id}/accept");
    let (status, body) = http(desktop, "POST", &path, Some(session), "").await;
    assert_eq!(status, 204, "accept: {body}");
}

/// Reads events until one of `kind` (included), or the stream's end.
async fn events_until(
    stream: &mut Streaming<StartTransferResponse>,
    kind: TransferEventKind,
) -> Vec<StartTransferResponse> {
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
        let done = event.kind == kind as i32;
        events.push(event);
        if done {
            break;
        }
    }
    events
}

fn kinds(events: &[StartTransferResponse]) -> Vec<TransferEventKind> {
    events
        .iter()
        .map(|e| TransferEventKind::try_from(e.kind).unwrap_or_default())
        .collect()
}

#[tokio::test]
async fn an_accepted_voice_handoff_connects_when_the_agents_phone_and_the_gateway_do() {
    let phone = Sipp::play(&own_scenario("agent_phone_answers")).start();
    let gateway = Sipp::play(&sip_connector_scenario("gateway_warm")).start();
    let dir = tempfile::tempdir().expect("tempdir");
    let (grpc, desktop) = queue(dir.path()).await;
    let session = sign_in(dir.path(), desktop, "ann", &phone.uri("ann")).await;

    let mut stream =
        start_transfer(grpc, "hq", envelope("hq", Channel::Voice, Some(&gateway))).await;
    let offered = events_until(&mut stream, TransferEventKind::Offered).await;
    assert_eq!(kinds(&offered).last(), Some(&TransferEventKind::Offered));

    accept(desktop, &session, "hq").await;
    let connected = events_until(&mut stream, Connected).await;
    // Accepted (the agent has the screen pop), then the SIP leg: the phone
    // rings and answers with the context, and only the REFER's final
    // NOTIFY connects the customer.
    assert_eq!(
        kinds(&connected),
        [
            ContextDelivered,
            Ringing,
            Answered,
            ContextDelivered,
            Connected
        ]
    );
    let last = connected.last().expect("connected");
    assert!(
        last.detail.contains("REFER with Replaces succeeded"),
        "{}",
        last.detail
    );
    phone.assert_passed().await;
    gateway.assert_passed().await;

    // The agent stays on the contact until wrap-up, as for chat.
    let (status, body) = http(
        desktop,
        "POST",
        "/api/handoffs/hq/wrap-up",
        Some(&session),
        r#"{"disposition":"resolved"}"#,
    )
    .await;
    assert_eq!(status, 204, "wrap-up: {body}");
    let completed = events_until(&mut stream, Completed).await;
    assert_eq!(kinds(&completed), [Completed]);
}

#[tokio::test]
async fn a_busy_agent_phone_fails_the_handoff_busy_and_frees_the_agent() {
    let phone = Sipp::play(&sip_connector_scenario("agent_busy")).start();
    let dir = tempfile::tempdir().expect("tempdir");
    let (grpc, desktop) = queue(dir.path()).await;
    let session = sign_in(dir.path(), desktop, "bob", &phone.uri("bob")).await;

    let mut stream = start_transfer(grpc, "hb", envelope("hb", Channel::Voice, None)).await;
    events_until(&mut stream, TransferEventKind::Offered).await;
    accept(desktop, &session, "hb").await;
    let events = events_until(&mut stream, Failed).await;
    assert_eq!(kinds(&events), [ContextDelivered, Failed]);
    assert_eq!(
        events.last().expect("failed").failure_reason(),
        FailureReason::Busy
    );
    assert!(
        stream.message().await.expect("stream ok").is_none(),
        "nothing follows FAILED"
    );
    phone.assert_passed().await;

    // The agent is free again: the next handoff (a chat) is offered to them
    // and connects at accept, with no voice leg.
    let mut next = start_transfer(grpc, "hc", envelope("hc", Channel::Chat, None)).await;
    events_until(&mut next, TransferEventKind::Offered).await;
    accept(desktop, &session, "hc").await;
    let events = events_until(&mut next, Connected).await;
    assert_eq!(kinds(&events), [Answered, ContextDelivered, Connected]);
}
