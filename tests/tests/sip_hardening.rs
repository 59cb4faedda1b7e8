//! The SIP connector against hostile or unlucky peers, all real processes
//! on loopback: a forger who reads the cleartext UDP and answers in the
//! peer's name (a 200 OK to the INVITE, a NOTIFY for the REFER) from
//! another port, a flood of large requests, a target that never answers
//! (timer B, not a generic time-out), and the caller's sensitive values,
//! which leave in no header unless configuration names them.

use std::net::SocketAddr;
use std::time::{Duration, SystemTime};

use baton_proto::connector::v1::{
    ContextEnvelope, ContextMechanism, ContextPayload, ContextReference, StartTransferRequest,
    StartTransferResponse, TransferEventKind,
};
use baton_proto::handoff::v1::*;
use baton_proto::types::v1 as pb;
use baton_tests::Service;
use baton_tests::sipp::{Sipp, sip_connector_scenario};
use tokio::net::UdpSocket;

const CALLER_NUMBER: &str = "+14155550123";
/// A sensitive entity of the context: it must reach no SIP peer.
const CUSTOMER_NAME: &str = "Jolene Sensitiva";

fn sipp(scenario: &str) -> Sipp {
    Sipp::play(&sip_connector_scenario(scenario))
        .timeout(Duration::from_secs(20))
        .start()
}

/// The SIP connector binary with T1 = `t1` and `extra` TOML (top-level
/// keys first, then sections).
async fn connector(dir: &std::path::Path, t1: &str, extra: &str) -> Service {
    let config = format!(
        "listen = \"127.0.0.1:0\"\n{extra}\n[sip]\nbind = \"127.0.0.1:0\"\nt1 = \"{t1}\"\n"
    );
    baton_tests::sip::start_connector(dir, &config).await
}

/// Creates a warm handoff to `target` through `control` and returns every
/// event until it ends.
async fn handoff(control: &Service, request_id: &str, target: &str) -> Vec<HandoffEvent> {
    let mut request = baton_tests::sip_request(request_id, pb::target::Kind::SipUri(target.into()));
    if let Some(call) = request.conversation.as_mut().and_then(|c| c.call.as_mut()) {
        call.caller_number = CALLER_NUMBER.into();
    }
    let context = request.context.as_mut().expect("context");
    context.summary = "Charged twice".into();
    context.entities = vec![pb::Entity {
        name: "customer_name".into(),
        value: CUSTOMER_NAME.into(),
        r#type: "string".into(),
        sensitive: true,
    }];
    baton_tests::handoff_events(control, request, Duration::from_secs(40)).await
}

/// The messages sipp received, each as its text, from its `-trace_msg` log.
fn received(log: &str) -> Vec<String> {
    log.split("----------------------------------------------- ")
        .filter(|block| block.contains("message received"))
        .filter_map(|block| {
            block
                .split_once(":\n\n")
                .map(|(_, message)| message.to_owned())
        })
        .collect()
}

/// Every header line (name, value) of a SIP message.
fn headers(message: &str) -> Vec<(String, String)> {
    message
        .lines()
        .skip(1)
        .take_while(|line| !line.trim().is_empty())
        .filter_map(|line| line.split_once(':'))
        .map(|(name, value)| (name.trim().to_owned(), value.trim().to_owned()))
        .collect()
}

/// The names of the headers of `messages` whose value contains `value`
/// (digits compared without the plus, as some headers drop it).
fn headers_carrying(messages: &[String], value: &str) -> Vec<String> {
    let bare = value.trim_start_matches('+');
    messages
        .iter()
        .flat_map(|message| headers(message))
        .filter(|(_, v)| v.contains(bare))
        .map(|(name, _)| name)
        .collect()
}

#[tokio::test]
async fn sensitive_values_leave_in_no_header_unless_configuration_names_them() {
    // The first run leaves `send_sensitive` at its default.
    for (send_sensitive, allowed) in [
        ("", false),
        ("send_sensitive = [\"caller_number\"]\n", true),
    ] {
        let dir = tempfile::tempdir().expect("tempdir");
        let agent = sipp("agent_answers_any");
        let sip = connector(
            dir.path(),
            "100ms",
            &format!("[headers]\np_asserted_identity = true\n{send_sensitive}"),
        )
        .await;
        let control = baton_tests::sip::start_control(dir.path(), &sip, "").await;
        let events = handoff(&control, "sensitive-1", &agent.uri("agent")).await;
        assert!(
            events
                .iter()
                .any(|e| e.kind() == HandoffEventKind::Completed),
            "{events:?}"
        );
        let messages = received(&agent.messages());
        agent.assert_passed().await;
        assert!(
            messages.iter().any(|m| m.starts_with("INVITE ")),
            "sipp logged what it received: {messages:?}"
        );
        // The name is never sent, configured or not.
        assert_eq!(
            headers_carrying(&messages, CUSTOMER_NAME),
            Vec::<String>::new()
        );
        assert!(!messages.iter().any(|m| m.contains(CUSTOMER_NAME)));
        let carrying = headers_carrying(&messages, CALLER_NUMBER);
        if allowed {
            assert_eq!(carrying, ["P-Asserted-Identity"], "{send_sensitive}");
        } else {
            assert_eq!(carrying, Vec::<String>::new(), "the number left by default");
            assert!(!messages.iter().any(|m| m.contains(&CALLER_NUMBER[1..])));
        }
    }
}

#[tokio::test]
async fn a_silent_target_fails_unreachable_on_timer_b_not_as_a_hung_connector() {
    let dir = tempfile::tempdir().expect("tempdir");
    // Takes every datagram and answers none.
    let silent = std::net::UdpSocket::bind("127.0.0.1:0").expect("bind");
    let target = format!("sip:agent@{}", silent.local_addr().expect("addr"));
    // Timer B is 64 * 50 ms = 3.2 s, longer than the control service's
    // generic wait for a connector's first event: the more specific
    // timeout (the target's silence) must be the one reported.
    let sip = connector(dir.path(), "50ms", "").await;
    let control = baton_tests::sip::start_control(
        dir.path(),
        &sip,
        "[dispatch]\nfirst_event_timeout = \"1s\"\n",
    )
    .await;
    let events = handoff(&control, "silent-1", &target).await;
    let failure = events
        .iter()
        .find(|e| e.kind() == HandoffEventKind::TargetFailed)
        .and_then(|e| e.failure.clone())
        .unwrap_or_else(|| panic!("a target failure: {events:?}"));
    assert_eq!(
        failure.reason(),
        pb::FailureReason::Unreachable,
        "{failure:?}"
    );
    assert!(failure.detail.contains("timer B"), "{failure:?}");
    assert!(failure.detail.contains("408"), "{failure:?}");
}

fn envelope(gateway: Option<&Sipp>) -> ContextEnvelope {
    ContextEnvelope {
        reference: Some(ContextReference {
            handoff_id: "h1".into(),
            token: "baton.test.token".into(),
            context_url: String::new(),
            screen_pop_url: String::new(),
        }),
        conversation: Some(pb::Conversation {
            call: Some(pb::CallReference {
                sip_call_id: "customer-call-1@gw".into(),
                sip_from_tag: "customer-tag".into(),
                sip_to_tag: "gw-tag".into(),
                sip_gateway_uri: gateway.map(|g| g.uri("gw")).unwrap_or_default(),
                ..Default::default()
            }),
            language: "en-US".into(),
            ..Default::default()
        }),
        payloads: vec![ContextPayload {
            mechanism: ContextMechanism::SipUserToUser as i32,
            content: "baton.test.token".into(),
            omitted_fields: vec![],
        }],
        ..Default::default()
    }
}

fn start(target: &str, mode: pb::TransferMode, gateway: Option<&Sipp>) -> StartTransferRequest {
    StartTransferRequest {
        tenant: "acme".into(),
        handoff_id: "h1".into(),
        attempt: 1,
        target: Some(pb::Target {
            kind: Some(pb::target::Kind::SipUri(target.into())),
        }),
        mode: mode as i32,
        envelope: Some(envelope(gateway)),
        deadline: Some((SystemTime::now() + Duration::from_secs(60)).into()),
        disclosure: None,
        callback: None,
    }
}

/// Waits (at most 10 s) until `sipp` has logged receiving a `method`
/// request, and returns that request as logged.
async fn request_seen_by(sipp: &Sipp, method: &str) -> String {
    for _ in 0..200 {
        if let Some(request) = received(&sipp.messages())
            .into_iter()
            .find(|m| m.starts_with(&format!("{method} ")))
        {
            return request;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("sipp received no {method}: {}", sipp.messages());
}

fn header<'a>(message: &'a str, name: &str) -> &'a str {
    message
        .lines()
        .find_map(|line| {
            let (key, value) = line.split_once(':')?;
            key.trim()
                .eq_ignore_ascii_case(name)
                .then_some(value.trim())
        })
        .unwrap_or_else(|| panic!("no {name} in {message}"))
}

fn tag(value: &str) -> &str {
    value
        .split(";tag=")
        .nth(1)
        .and_then(|rest| rest.split(';').next())
        .unwrap_or_default()
}

/// What a forger received within `wait`, as text.
async fn forger_received(forger: &UdpSocket, wait: Duration) -> Vec<String> {
    let mut got = Vec::new();
    let mut buffer = vec![0u8; 65536];
    let deadline = tokio::time::Instant::now() + wait;
    while let Ok(Ok((length, _))) =
        tokio::time::timeout_at(deadline, forger.recv_from(&mut buffer)).await
    {
        got.push(String::from_utf8_lossy(&buffer[..length]).into_owned());
        if got.len() > 50 {
            break;
        }
    }
    got
}

fn kinds(events: &[StartTransferResponse]) -> Vec<TransferEventKind> {
    events.iter().map(|e| e.kind()).collect()
}

#[tokio::test]
async fn a_forged_200_ok_from_another_address_is_neither_acknowledged_nor_referred_to() {
    let dir = tempfile::tempdir().expect("tempdir");
    let agent = sipp("agent_answers_late");
    let gateway = sipp("gateway_warm");
    let sip = connector(dir.path(), "100ms", "").await;
    let sip_addr: SocketAddr = sip.addr("sip");
    let transfer = tokio::spawn(baton_tests::transfer(
        sip.addr("grpc"),
        start(&agent.uri("agent"), pb::TransferMode::Warm, Some(&gateway)),
        Duration::from_secs(30),
    ));
    // The forger read the INVITE off the wire and answers first, from its
    // own port, with the INVITE's Via, From, To, Call-ID and CSeq.
    let invite = request_seen_by(&agent, "INVITE").await;
    let forger = UdpSocket::bind("127.0.0.1:0").await.expect("bind");
    let evil = format!("sip:evil@{}", forger.local_addr().expect("addr"));
    let body = "v=0\r\no=evil 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 9 RTP/AVP 0\r\n";
    let forged = format!(
        "SIP/2.0 200 OK\r\nVia: {}\r\nFrom: {}\r\nTo: {};tag=evil\r\nCall-ID: {}\r\nCSeq: {}\r\n\
         Contact: <{evil}>\r\nContent-Type: application/sdp\r\nContent-Length: {}\r\n\r\n{body}",
        header(&invite, "Via"),
        header(&invite, "From"),
        header(&invite, "To"),
        header(&invite, "Call-ID"),
        header(&invite, "CSeq"),
        body.len(),
    );
    for _ in 0..3 {
        forger
            .send_to(forged.as_bytes(), sip_addr)
            .await
            .expect("sends");
    }
    let to_forger = forger_received(&forger, Duration::from_secs(2)).await;
    let events = transfer.await.expect("transfer task");
    assert_eq!(to_forger, Vec::<String>::new(), "the forger was answered");
    // The real answer, 1.5 s later, is the one taken: the gateway's
    // scenario checks that Replaces names the phone's tag.
    assert_eq!(
        kinds(&events).last(),
        Some(&TransferEventKind::Completed),
        "{events:?}"
    );
    let refer = request_seen_by(&gateway, "REFER").await;
    assert!(!refer.contains("evil"), "{refer}");
    agent.assert_passed().await;
    gateway.assert_passed().await;
}

#[tokio::test]
async fn a_forged_notify_from_another_port_does_not_complete_a_transfer() {
    let dir = tempfile::tempdir().expect("tempdir");
    let gateway = sipp("gateway_blind_busy_late");
    let sip = connector(dir.path(), "100ms", "").await;
    let sip_addr: SocketAddr = sip.addr("sip");
    let transfer = tokio::spawn(baton_tests::transfer(
        sip.addr("grpc"),
        start(
            "sip:agent@127.0.0.1:5999",
            pb::TransferMode::Blind,
            Some(&gateway),
        ),
        Duration::from_secs(30),
    ));
    // The forger read the REFER and reports, in the gateway's name, that
    // the human took the call; the gateway will say busy 1.5 s later.
    let refer = request_seen_by(&gateway, "REFER").await;
    let forger = UdpSocket::bind("127.0.0.1:0").await.expect("bind");
    let sipfrag = "SIP/2.0 200 OK\r\n";
    let to = header(&refer, "From");
    for (i, from_tag) in ["gw", "another"].iter().enumerate() {
        let forged = format!(
            "NOTIFY sip:baton@{sip_addr} SIP/2.0\r\nVia: SIP/2.0/UDP {};branch=z9hG4bKforged{i}\r\n\
             From: <{}>;tag={from_tag}\r\nTo: {to}\r\nCall-ID: {}\r\nCSeq: {} NOTIFY\r\nEvent: refer\r\n\
             Subscription-State: terminated;reason=noresource\r\nContent-Type: message/sipfrag\r\n\
             Content-Length: {}\r\n\r\n{sipfrag}",
            forger.local_addr().expect("addr"),
            gateway.uri("gw"),
            header(&refer, "Call-ID"),
            i + 1,
            sipfrag.len(),
        );
        forger
            .send_to(forged.as_bytes(), sip_addr)
            .await
            .expect("sends");
    }
    assert!(!tag(to).is_empty(), "the REFER's From has a tag: {to}");
    let answers = forger_received(&forger, Duration::from_millis(500)).await;
    assert!(
        !answers.is_empty() && answers.iter().all(|a| a.starts_with("SIP/2.0 481")),
        "{answers:?}"
    );
    let events = transfer.await.expect("transfer task");
    let last = events.last().expect("events");
    assert_eq!(last.kind(), TransferEventKind::Failed, "{events:?}");
    assert_eq!(last.failure_reason(), pb::FailureReason::Busy, "{events:?}");
    gateway.assert_passed().await;
}

/// Resident memory of `pid`, in KiB.
fn resident_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|value| value.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

#[tokio::test]
async fn a_flood_of_large_requests_leaves_resident_memory_bounded() {
    const REQUESTS: usize = 2_000;
    let dir = tempfile::tempdir().expect("tempdir");
    let sip = connector(dir.path(), "500ms", "").await;
    let pid = sip.pid().expect("pid");
    let sip_addr: SocketAddr = sip.addr("sip");
    let flooder = UdpSocket::bind("127.0.0.1:0").await.expect("bind");
    let local = flooder.local_addr().expect("addr");
    // About 60 KB: 1,100 Via headers, which every reply copies.
    let vias: String = (0..1100)
        .map(|i| {
            format!(
                "Via: SIP/2.0/UDP 10.0.{}.{}:5060;branch=z9hG4bKpad{i:05}\r\n",
                i / 250,
                i % 250
            )
        })
        .collect();
    let mut buffer = vec![0u8; 65536];
    let before = resident_kib(pid);
    let mut answered = 0;
    let mut largest_reply = 0;
    for i in 0..REQUESTS {
        let request = format!(
            "OPTIONS sip:baton@{sip_addr} SIP/2.0\r\nVia: SIP/2.0/UDP {local};branch=z9hG4bKflood{i}\r\n{vias}\
             From: <sip:flood@127.0.0.1>;tag=f{i}\r\nTo: <sip:baton@127.0.0.1>\r\nCall-ID: flood-{i}\r\n\
             CSeq: 1 OPTIONS\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n"
        );
        assert!(request.len() < 64 * 1024 && request.len() > 60_000);
        flooder
            .send_to(request.as_bytes(), sip_addr)
            .await
            .expect("sends");
        // One at a time, so that none is lost to a full socket buffer.
        if let Ok(Ok((length, _))) =
            tokio::time::timeout(Duration::from_secs(2), flooder.recv_from(&mut buffer)).await
        {
            answered += 1;
            largest_reply = largest_reply.max(length);
        }
    }
    let after = resident_kib(pid);
    eprintln!(
        "resident memory: {before} KiB before, {after} KiB after {REQUESTS} requests of about 60 KB ({answered} answered, replies up to {largest_reply} bytes)"
    );
    assert!(answered > REQUESTS * 9 / 10, "{answered} answered");
    assert!(largest_reply > 50_000, "the replies copy the Vias");
    // Unbounded, the replies alone would hold about 120 MB.
    assert!(
        after < before + 48 * 1024,
        "resident memory grew from {before} KiB to {after} KiB"
    );
}
