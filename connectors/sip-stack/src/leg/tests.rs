use std::net::SocketAddr;
use std::time::Duration;

use baton_connector_sdk::{FailureReason, Transfer, TransferEvents, TransferMode, TransferTarget};
use baton_proto::connector::v1::TransferEventKind;
use tokio::net::UdpSocket;

use super::*;
use crate::stack::Transport;

const T1: Duration = Duration::from_millis(50);

async fn stack() -> Arc<SipStack> {
    let stack = SipStack::bind(
        "127.0.0.1:0".parse().expect("addr"),
        Transport::Udp,
        None,
        "baton".into(),
        T1,
        None,
    )
    .await
    .expect("binds");
    tokio::spawn(stack.clone().run());
    stack
}

/// A phone on loopback that the test answers by hand.
struct Phone {
    socket: UdpSocket,
}

impl Phone {
    async fn bind() -> Self {
        Self {
            socket: UdpSocket::bind("127.0.0.1:0").await.expect("binds"),
        }
    }

    fn addr(&self) -> SocketAddr {
        self.socket.local_addr().expect("addr")
    }

    fn uri(&self) -> String {
        format!("sip:agent@{}", self.addr())
    }

    /// The next request, skipping retransmissions of `skip` methods.
    async fn recv(&self) -> (rsip::Request, String, SocketAddr) {
        let mut buffer = vec![0u8; 65536];
        let (length, from) = tokio::time::timeout(Duration::from_secs(5), async {
            self.socket.recv_from(&mut buffer).await
        })
        .await
        .expect("a request in time")
        .expect("receives");
        let text = String::from_utf8_lossy(&buffer[..length]).into_owned();
        match message::parse(&buffer[..length]).expect("parses") {
            rsip::SipMessage::Request(request) => (request, text, from),
            rsip::SipMessage::Response(_) => panic!("a response: {text}"),
        }
    }

    /// The next request of `method`, ignoring retransmissions of others.
    async fn recv_method(&self, method: Method) -> (rsip::Request, String, SocketAddr) {
        loop {
            let received = self.recv().await;
            if received.0.method == method {
                return received;
            }
        }
    }

    async fn answer(&self, request: &rsip::Request, code: u16, to: SocketAddr) -> Vec<u8> {
        let reply = message::render_response(request, code, "Reason", "phone-tag");
        self.socket.send_to(&reply, to).await.expect("sends");
        reply
    }
}

/// The INVITE a transfer would have sent to `phone`, as noted.
fn pending(stack: &SipStack, phone: &Phone) -> PendingInvite {
    let branch = "z9hG4bKresumetest".to_owned();
    let invite: HeaderLines = vec![
        ("Via".into(), stack.via(&branch, Transport::Udp)),
        ("Max-Forwards".into(), "70".into()),
        ("From".into(), format!("<{}>;tag=ours", stack.own_uri())),
        ("To".into(), format!("<{}>", phone.uri())),
        ("Call-ID".into(), "resume-call@baton".into()),
        ("CSeq".into(), "1 INVITE".into()),
        ("Contact".into(), stack.contact(Transport::Udp)),
        ("User-to-User".into(), "00;encoding=hex".into()),
    ];
    PendingInvite {
        request_uri: phone.uri(),
        lines: cancel_lines(&invite, 1),
        branch,
        cseq: 1,
        to: Peer {
            addr: phone.addr(),
            transport: Transport::Udp,
        },
    }
}

fn dialog(phone: &Phone) -> Dialog {
    Dialog {
        call_id: "answered-call@baton".into(),
        from: "<sip:baton@127.0.0.1>;tag=ours".into(),
        to: format!("<{}>;tag=theirs", phone.uri()),
        local_tag: "ours".into(),
        remote_tag: "theirs".into(),
        remote_target: phone.uri(),
        route_set: vec![],
        cseq: 1,
        target_uri: phone.uri(),
    }
}

fn header<'a>(text: &'a str, name: &str) -> Option<&'a str> {
    text.lines()
        .find_map(|line| line.strip_prefix(&format!("{name}: ")))
        .map(str::trim)
}

#[tokio::test]
async fn every_leg_survives_its_note_and_an_unreadable_note_is_none() {
    let stack = stack().await;
    let phone = Phone::bind().await;
    let legs = [
        Leg::Inviting(pending(&stack, &phone)),
        Leg::Answered(dialog(&phone)),
        Leg::Referring {
            refer_call_id: "refer@baton".into(),
            dialog: Some(dialog(&phone)),
            refer_tag: Some("ours".into()),
        },
        Leg::Referring {
            refer_call_id: "blind@baton".into(),
            dialog: None,
            refer_tag: None,
        },
    ];
    for held in legs {
        let note = held.to_note();
        assert!(note.len() < 4096, "{note}");
        assert_eq!(Leg::from_note(&note), Some(held), "{note}");
    }
    assert_eq!(Leg::from_note("not json"), None);
    assert_eq!(Leg::from_note(r#"{"leg":"flying"}"#), None);
}

#[test]
fn a_cancel_repeats_the_invites_transaction_and_nothing_else() {
    let invite: HeaderLines = vec![
        (
            "Via".into(),
            "SIP/2.0/UDP 127.0.0.1:5062;branch=z9hG4bKx;rport".into(),
        ),
        ("Max-Forwards".into(), "70".into()),
        ("From".into(), "<sip:baton@127.0.0.1>;tag=a".into()),
        ("To".into(), "<sip:agent@127.0.0.1>".into()),
        ("Call-ID".into(), "c@baton".into()),
        ("CSeq".into(), "2 INVITE".into()),
        ("Route".into(), "<sip:proxy;lr>".into()),
        ("Contact".into(), "<sip:baton@127.0.0.1>".into()),
        ("User-to-User".into(), "00;encoding=hex".into()),
    ];
    let cancel = cancel_lines(&invite, 2);
    let names: Vec<&str> = cancel.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(
        names,
        [
            "Via",
            "Max-Forwards",
            "From",
            "To",
            "Call-ID",
            "Route",
            "CSeq"
        ]
    );
    assert_eq!(cancel[0].1, invite[0].1);
    assert_eq!(cancel[6].1, "2 CANCEL");
}

#[tokio::test]
async fn a_noted_invite_is_cancelled_and_its_487_acknowledged() {
    let stack = stack().await;
    let phone = Phone::bind().await;
    let invite = pending(&stack, &phone);
    let ending = tokio::spawn({
        let stack = stack.clone();
        let invite = invite.clone();
        async move { end_invite(&stack, &invite).await }
    });
    let (cancel, text, from) = phone.recv_method(Method::Cancel).await;
    assert_eq!(cancel.uri.to_string(), phone.uri());
    assert!(text.contains(";branch=z9hG4bKresumetest"), "{text}");
    assert_eq!(header(&text, "CSeq"), Some("1 CANCEL"));
    assert_eq!(header(&text, "Call-ID"), Some("resume-call@baton"));
    assert_eq!(header(&text, "User-to-User"), None);
    phone.answer(&cancel, 200, from).await;
    // The INVITE's 487 shares the CANCEL's branch, with the INVITE's CSeq.
    let terminated = String::from_utf8(message::render_response(&cancel, 487, "Terminated", "t"))
        .expect("utf-8")
        .replace("CSeq: 1 CANCEL", "CSeq: 1 INVITE");
    phone
        .socket
        .send_to(terminated.as_bytes(), from)
        .await
        .expect("sends");
    let (_, ack, _) = phone.recv_method(Method::Ack).await;
    assert_eq!(header(&ack, "CSeq"), Some("1 ACK"));
    assert!(ack.contains(";branch=z9hG4bKresumetest"), "{ack}");
    assert!(
        header(&ack, "To").is_some_and(|to| to.contains("tag=t")),
        "{ack}"
    );
    let end = ending.await.expect("ends");
    assert_eq!(end, InviteEnd::Refused(487));
}

#[tokio::test]
async fn an_answer_that_crosses_the_cancel_is_acknowledged_and_hung_up() {
    let stack = stack().await;
    let phone = Phone::bind().await;
    let invite = pending(&stack, &phone);
    let ending = tokio::spawn({
        let stack = stack.clone();
        let invite = invite.clone();
        async move { end_invite(&stack, &invite).await }
    });
    let (cancel, _, from) = phone.recv_method(Method::Cancel).await;
    phone.answer(&cancel, 200, from).await;
    let ok = String::from_utf8(message::render_response(&cancel, 200, "OK", "answered"))
        .expect("utf-8")
        .replace("CSeq: 1 CANCEL", "CSeq: 1 INVITE")
        .replace(
            "Content-Length: 0",
            &format!("Contact: <{}>\r\nContent-Length: 0", phone.uri()),
        );
    phone
        .socket
        .send_to(ok.as_bytes(), from)
        .await
        .expect("sends");
    let (_, ack, _) = phone.recv_method(Method::Ack).await;
    assert_eq!(header(&ack, "CSeq"), Some("1 ACK"));
    assert!(
        !ack.contains("z9hG4bKresumetest"),
        "a 2xx ACK is its own transaction"
    );
    let (bye, text, from) = phone.recv_method(Method::Bye).await;
    assert_eq!(header(&text, "CSeq"), Some("2 BYE"));
    assert!(
        header(&text, "To").is_some_and(|to| to.contains("tag=answered")),
        "{text}"
    );
    assert!(
        header(&text, "From").is_some_and(|f| f.contains("tag=ours")),
        "{text}"
    );
    phone.answer(&bye, 200, from).await;
    let end = ending.await.expect("ends");
    assert_eq!(end, InviteEnd::AnsweredThenHungUp(Some(200)));
}

fn interrupted_transfer(note: Option<String>) -> Transfer {
    Transfer {
        tenant: "acme".into(),
        handoff_id: "h-resume".into(),
        attempt: 1,
        target: TransferTarget::SipUri("sip:agent@127.0.0.1".into()),
        mode: TransferMode::Warm,
        envelope: Default::default(),
        deadline: std::time::SystemTime::now() + Duration::from_secs(30),
        remembered: note,
        disclosure: None,
        callback: None,
    }
}

async fn resumed(
    stack: &Arc<SipStack>,
    transfer: Transfer,
) -> Vec<baton_proto::connector::v1::StartTransferResponse> {
    let (events, mut received) = TransferEvents::channel();
    crate::restart::resume(stack, Duration::from_millis(300), &transfer, &events).await;
    let mut all = Vec::new();
    while let Some(event) = received.recv().await {
        all.push(event);
    }
    all
}

#[tokio::test]
async fn resuming_an_answered_leg_hangs_it_up_and_fails_interrupted() {
    let stack = stack().await;
    let phone = Phone::bind().await;
    let note = Leg::Answered(dialog(&phone)).to_note();
    let resuming = tokio::spawn({
        let stack = stack.clone();
        async move { resumed(&stack, interrupted_transfer(Some(note))).await }
    });
    let (bye, text, from) = phone.recv_method(Method::Bye).await;
    assert_eq!(header(&text, "Call-ID"), Some("answered-call@baton"));
    assert_eq!(header(&text, "CSeq"), Some("2 BYE"));
    phone.answer(&bye, 200, from).await;
    let events = resumed_events(resuming).await;
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(events[0].kind(), TransferEventKind::Failed);
    assert_eq!(events[0].failure_reason(), FailureReason::Interrupted);
    assert!(
        events[0].detail.starts_with(crate::restart::INTERRUPTED)
            && events[0].detail.contains("hung up (BYE 200)"),
        "{}",
        events[0].detail
    );
}

async fn resumed_events(
    resuming: tokio::task::JoinHandle<Vec<baton_proto::connector::v1::StartTransferResponse>>,
) -> Vec<baton_proto::connector::v1::StartTransferResponse> {
    tokio::time::timeout(Duration::from_secs(10), resuming)
        .await
        .expect("resumed in time")
        .expect("resumes")
}

#[tokio::test]
async fn resuming_without_a_note_or_with_a_silent_refer_sends_no_invite() {
    let stack = stack().await;
    let phone = Phone::bind().await;
    let events = resumed(&stack, interrupted_transfer(None)).await;
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].failure_reason(), FailureReason::Interrupted);
    // A blind REFER whose NOTIFYs never come: failed once notify_timeout
    // passes, nothing sent.
    let note = Leg::Referring {
        refer_call_id: "silent@baton".into(),
        dialog: None,
        refer_tag: None,
    }
    .to_note();
    let events = resumed(&stack, interrupted_transfer(Some(note))).await;
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].failure_reason(), FailureReason::Interrupted);
    let mut buffer = [0u8; 1024];
    let nothing = tokio::time::timeout(
        Duration::from_millis(200),
        phone.socket.recv_from(&mut buffer),
    )
    .await;
    assert!(nothing.is_err(), "the phone got a message");
}

#[tokio::test]
async fn resuming_a_refer_follows_its_notifies_to_success() {
    let stack = stack().await;
    let gateway = Phone::bind().await;
    let note = Leg::Referring {
        refer_call_id: "refer@baton".into(),
        dialog: None,
        refer_tag: None,
    }
    .to_note();
    let resuming = tokio::spawn({
        let stack = stack.clone();
        async move {
            let (events, mut received) = TransferEvents::channel();
            let transfer = interrupted_transfer(Some(note));
            crate::restart::resume(&stack, Duration::from_secs(5), &transfer, &events).await;
            let mut all = Vec::new();
            while let Some(event) = received.recv().await {
                all.push(event);
            }
            all
        }
    });
    // The gateway's NOTIFY, retransmitted (as over UDP) until the new
    // process follows the subscription and answers 200.
    let mut buffer = vec![0u8; 65536];
    for attempt in 0..50 {
        let notify = format!(
            "NOTIFY sip:baton@{} SIP/2.0\r\nVia: SIP/2.0/UDP {};branch=z9hG4bKnotify{attempt}\r\n\
             From: <sip:gw@127.0.0.1>;tag=gw\r\nTo: <sip:baton@127.0.0.1>;tag=ours\r\n\
             Call-ID: refer@baton\r\nCSeq: {} NOTIFY\r\nEvent: refer\r\n\
             Content-Type: message/sipfrag\r\nContent-Length: 16\r\n\r\nSIP/2.0 200 OK\r\n",
            stack.local_addr(),
            gateway.addr(),
            attempt + 1,
        );
        gateway
            .socket
            .send_to(notify.as_bytes(), stack.local_addr())
            .await
            .expect("sends");
        let (length, _) = tokio::time::timeout(
            Duration::from_secs(2),
            gateway.socket.recv_from(&mut buffer),
        )
        .await
        .expect("answered")
        .expect("receives");
        if String::from_utf8_lossy(&buffer[..length]).starts_with("SIP/2.0 200") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let events = resumed_events(resuming).await;
    let kinds: Vec<_> = events.iter().map(|e| e.kind()).collect();
    assert_eq!(
        kinds,
        [TransferEventKind::Connected, TransferEventKind::Completed]
    );
}
