//! Requests for connector tests (the `test-support` feature, and this
//! crate's own tests): the fields every test sets the same way written
//! once, so that a test names only what it is about; the calls a test
//! makes as the control service (a client, its info, availability, a
//! transfer's events, a chat relay).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime};

use baton_proto::connector::v1::connector_service_client::ConnectorServiceClient;
use baton_proto::connector::v1::converse_transfer_request::Kind as ToConnector;
use baton_proto::connector::v1::converse_transfer_response::Kind as FromConnector;
use baton_proto::connector::v1::{
    ContextEnvelope, ContextReference, ConverseTransferOpen, ConverseTransferRequest,
    ConverseTransferResponse, GetAvailabilityRequest, GetConnectorInfoRequest,
    GetConnectorInfoResponse, StartTransferRequest, StartTransferResponse, TransferEventKind,
};
use baton_proto::types::v1::{
    Availability, CallReference, Channel, ChatAuthor, ChatEntry, ChatEntryKind, Conversation,
    QueueTarget, Target, TransferMode, target,
};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;

/// The tenant of every request built here.
pub const TENANT: &str = "acme";

/// The caller of every conversation built here.
pub const CALLER: &str = "+14155550123";

/// How long [`next_event`] waits for one event before the test fails.
const EVENT_WAIT: Duration = Duration::from_secs(10);

/// A first attempt of `handoff_id` (tenant [`TENANT`]), warm, to `target`,
/// carrying `envelope`, due a minute from now.
pub fn transfer_request(
    handoff_id: &str,
    target: target::Kind,
    envelope: ContextEnvelope,
) -> StartTransferRequest {
    StartTransferRequest {
        tenant: TENANT.into(),
        handoff_id: handoff_id.into(),
        attempt: 1,
        target: Some(Target { kind: Some(target) }),
        mode: TransferMode::Warm as i32,
        envelope: Some(envelope),
        deadline: deadline_in(Duration::from_secs(60)),
        disclosure: None,
        callback: None,
    }
}

/// The queue `name`, asking for `skills`.
pub fn queue(name: &str, skills: &[&str]) -> target::Kind {
    target::Kind::Queue(QueueTarget {
        name: name.into(),
        skills: skills.iter().map(|skill| (*skill).into()).collect(),
    })
}

/// The reference to `handoff_id`'s context as the control service at
/// `base` (e.g. `https://baton.example`) would issue it with `token`.
pub fn context_reference(base: &str, handoff_id: &str, token: &str) -> ContextReference {
    ContextReference {
        handoff_id: handoff_id.into(),
        token: token.into(),
        context_url: format!("{base}/v1/handoffs/{handoff_id}/context?token=t"),
        screen_pop_url: format!("{base}/v1/handoffs/{handoff_id}/screen-pop?token=t"),
    }
}

/// A deadline `within` from now, for a request whose test waits for the
/// transfer's end a bounded time.
pub fn deadline_in(within: Duration) -> Option<prost_types::Timestamp> {
    Some((SystemTime::now() + within).into())
}

/// A voice call in `en-US` from [`CALLER`], known to the platform as
/// `contact_id` (a Twilio call SID, an Amazon Connect contact id).
pub fn platform_call(contact_id: &str) -> Conversation {
    voice(CallReference {
        platform_contact_id: contact_id.into(),
        caller_number: CALLER.into(),
        ..Default::default()
    })
}

/// A voice call in `en-US` from [`CALLER`] that came in over SIP as
/// `sip_call_id`.
pub fn sip_call(sip_call_id: &str) -> Conversation {
    voice(CallReference {
        sip_call_id: sip_call_id.into(),
        caller_number: CALLER.into(),
        ..Default::default()
    })
}

fn voice(call: CallReference) -> Conversation {
    Conversation {
        channel: Channel::Voice as i32,
        call: Some(call),
        language: "en-US".into(),
    }
}

/// A fresh directory for one connector's transfer journal below
/// `target_tmpdir` (an integration test's `env!("CARGO_TARGET_TMPDIR")`),
/// named after `package`: never the source tree, never shared by two
/// connectors of one test process.
pub fn scratch_dir(target_tmpdir: &str, package: &str) -> PathBuf {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    PathBuf::from(target_tmpdir).join(format!("{package}-{}-{n}", std::process::id()))
}

/// A client of the connector serving gRPC at `grpc`.
pub async fn client(grpc: SocketAddr) -> ConnectorServiceClient<tonic::transport::Channel> {
    ConnectorServiceClient::connect(format!("http://{grpc}"))
        .await
        .expect("connects")
}

/// What the connector serving gRPC at `grpc` says of itself
/// (GetConnectorInfo).
pub async fn connector_info(grpc: SocketAddr) -> GetConnectorInfoResponse {
    client(grpc)
        .await
        .get_connector_info(GetConnectorInfoRequest {})
        .await
        .expect("GetConnectorInfo")
        .into_inner()
}

/// Who is there to take a transfer of a [`TENANT`] customer speaking
/// `en-US` on `channel` to `target`, as the connector serving gRPC at
/// `grpc` answers GetAvailability.
pub async fn availability(
    grpc: SocketAddr,
    target: target::Kind,
    channel: Channel,
) -> Result<Availability, tonic::Status> {
    client(grpc)
        .await
        .get_availability(GetAvailabilityRequest {
            target: Some(Target { kind: Some(target) }),
            tenant: TENANT.into(),
            language: "en-US".into(),
            channel: channel as i32,
        })
        .await
        .map(|response| response.into_inner().availability.expect("availability"))
}

/// Starts a transfer on the connector serving gRPC at `grpc`; its stream
/// of events.
pub async fn start_transfer(
    grpc: SocketAddr,
    request: StartTransferRequest,
) -> tonic::Streaming<StartTransferResponse> {
    client(grpc)
        .await
        .start_transfer(request)
        .await
        .expect("StartTransfer accepted")
        .into_inner()
}

/// The next event of `stream`, which must come within 10 s.
pub async fn next_event(
    stream: &mut tonic::Streaming<StartTransferResponse>,
) -> StartTransferResponse {
    next_or_end(stream).await.expect("an event")
}

/// The events of `stream` to its end, each within 10 s.
pub async fn to_the_end(
    mut stream: tonic::Streaming<StartTransferResponse>,
) -> Vec<StartTransferResponse> {
    let mut events = Vec::new();
    while let Some(event) = next_or_end(&mut stream).await {
        events.push(event);
    }
    events
}

async fn next_or_end(
    stream: &mut tonic::Streaming<StartTransferResponse>,
) -> Option<StartTransferResponse> {
    tokio::time::timeout(EVENT_WAIT, stream.message())
        .await
        .expect("an event in time")
        .expect("stream healthy")
}

/// The kind of each event, in order (an unknown kind reads as
/// `Unspecified`, so it fails any comparison with known kinds).
pub fn kinds(events: &[StartTransferResponse]) -> Vec<TransferEventKind> {
    events.iter().map(StartTransferResponse::kind).collect()
}

/// Free text with personal data in it, as the data policy's tests put it in
/// the sample's summary and first turn, and what the built-in policy makes
/// of it.
pub mod personal {
    /// A summary with a card number and an e-mail address.
    pub const SUMMARY: &str =
        "Charged twice on card 4111 1111 1111 1111; reply to jane.doe@example.com";
    /// A turn with a phone number and a date of birth.
    pub const TURN: &str = "Call me on +44 20 7946 0018, I was born on 1984-03-15";
    /// [`SUMMARY`] as the built-in policy masks it.
    pub const REDACTED_SUMMARY: &str = "Charged twice on card [card]; reply to [email]";
    /// [`TURN`] as the built-in policy masks it.
    pub const REDACTED_TURN: &str = "Call me on [phone], I was born on [date_of_birth]";
    /// What must not reach a far end under the built-in policy: the values
    /// masked in [`SUMMARY`] and [`TURN`] (the card also without spaces),
    /// the sample's sensitive account number and its caller's number.
    pub const NEVER_SENT: [&str; 7] = [
        "4111 1111 1111 1111",
        "4111111111111111",
        "jane.doe@example.com",
        "+44 20 7946 0018",
        "1984-03-15",
        "ACC-99887766",
        super::CALLER,
    ];
}

/// The QUEUED events of a transfer, after asserting that it ended COMPLETED
/// and that each of them reports a wait for the connector's own rate limit,
/// with an estimated wait.
pub fn completed_after_rate_limit_waits(
    events: &[StartTransferResponse],
) -> Vec<&StartTransferResponse> {
    assert_eq!(
        kinds(events).last(),
        Some(&TransferEventKind::Completed),
        "{events:?}"
    );
    let queued: Vec<_> = events
        .iter()
        .filter(|e| e.kind == TransferEventKind::Queued as i32)
        .collect();
    for event in &queued {
        assert!(event.detail.contains("rate limit"), "{}", event.detail);
        assert!(event.estimated_wait.is_some());
    }
    queued
}

/// What `read` returns once it holds at least `count` items, read every
/// 25 ms for up to 10 s; the test fails naming `what` when they do not
/// come.
pub async fn at_least<T>(count: usize, what: &str, read: impl Fn() -> Vec<T>) -> Vec<T> {
    for _ in 0..400 {
        let items = read();
        if items.len() >= count {
            return items;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("fewer than {count} {what}");
}

/// The control service's side of one ConverseTransfer stream (a chat
/// relay), as a test drives it.
#[derive(Debug)]
pub struct Relay {
    send: mpsc::Sender<ConverseTransferRequest>,
    receive: tonic::Streaming<ConverseTransferResponse>,
    /// The `after_sequence` the connector opened with: the last entry it
    /// already has.
    pub opened_after: u64,
}

impl Relay {
    /// Opens the relay of `handoff_id`'s first transfer ([`TENANT`]) on
    /// the connector serving gRPC at `grpc`; the test fails unless the
    /// connector answers `opened` first.
    pub async fn open(grpc: SocketAddr, handoff_id: &str) -> Relay {
        Self::try_open(grpc, handoff_id)
            .await
            .expect("the relay opens")
    }

    /// As [`Relay::open`], but the refusal the connector answers the open
    /// with (its first message) is returned, not a failure of the test.
    pub async fn try_open(grpc: SocketAddr, handoff_id: &str) -> Result<Relay, tonic::Status> {
        let (send, requests) = mpsc::channel(16);
        send.send(ConverseTransferRequest {
            kind: Some(ToConnector::Open(ConverseTransferOpen {
                handoff_id: handoff_id.into(),
                attempt: 1,
                tenant: TENANT.into(),
            })),
        })
        .await
        .expect("open sent");
        let receive = client(grpc)
            .await
            .converse_transfer(ReceiverStream::new(requests))
            .await
            .expect("ConverseTransfer accepted")
            .into_inner();
        let mut relay = Relay {
            send,
            receive,
            opened_after: 0,
        };
        let first = tokio::time::timeout(EVENT_WAIT, relay.receive.message())
            .await
            .expect("the connector answers in time")?;
        match first.and_then(|response| response.kind) {
            Some(FromConnector::Opened(opened)) => {
                relay.opened_after = opened.after_sequence;
                Ok(relay)
            }
            other => panic!("the first answer is not opened: {other:?}"),
        }
    }

    /// The connector's next message, which must come within 10 s; `None`
    /// once it closed the stream.
    pub async fn next(&mut self) -> Option<FromConnector> {
        tokio::time::timeout(EVENT_WAIT, self.receive.message())
            .await
            .expect("the connector answers in time")
            .expect("the stream is healthy")
            .map(|response| response.kind.expect("a kind"))
    }

    /// Sends `entry` to the connector.
    pub async fn entry(&self, entry: ChatEntry) {
        self.send
            .send(ConverseTransferRequest {
                kind: Some(ToConnector::Entry(entry)),
            })
            .await
            .expect("entry sent");
    }
}

/// Entry `sequence` of `handoff_id`'s chat: message `id` of `author`
/// saying `text`.
pub fn chat_message(
    handoff_id: &str,
    sequence: u64,
    author: ChatAuthor,
    id: &str,
    text: &str,
) -> ChatEntry {
    ChatEntry {
        handoff_id: handoff_id.into(),
        sequence,
        kind: ChatEntryKind::Message as i32,
        author: author as i32,
        client_message_id: id.into(),
        text: text.into(),
        ..Default::default()
    }
}

/// Loads the same settings written in the layout from before the shared
/// `[server]` and `[store]` sections (`old`) and in today's (`new`): both
/// must give the same configuration, with `moved` keys reported as moved.
/// Returns today's, for the connector's own checks.
pub fn old_layout_loads_as_new<C: crate::RunnableConnector + std::fmt::Debug>(
    old: &str,
    new: &str,
    moved: usize,
) -> C {
    let dir =
        std::env::temp_dir().join(format!("baton-layout-{}-{}", C::BINARY, std::process::id()));
    std::fs::create_dir_all(&dir).expect("a temporary directory");
    let load = |name: &str, text: &str| {
        let path = dir.join(name);
        std::fs::write(&path, text).expect("write the file");
        crate::run::load::<C>(Some(&path)).unwrap_or_else(|error| panic!("{name}: {error}"))
    };
    let (from_old, moved_keys) = load("old.toml", old);
    let (from_new, _) = load("new.toml", new);
    let _ = std::fs::remove_dir_all(&dir);
    assert_eq!(moved_keys.len(), moved, "{moved_keys:?}");
    assert_eq!(format!("{from_old:?}"), format!("{from_new:?}"));
    from_new
}
