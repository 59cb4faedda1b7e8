//! A restart of the webhook connector in the middle of a transfer: the
//! connector runs in a runtime of its own, which the test drops at once
//! (as kill -9 ends a process: no drain, nothing cancelled), and a new one
//! starts on the same addresses and journal; the control service's
//! re-attach (the same StartTransfer) resumes the transfer there.
//!
//! The resumed transfer delivers the very same message (the same
//! `webhook-id` and body) to an endpoint that had not answered, never a
//! second one, posts nothing to an endpoint that had accepted, and takes
//! the reports a receiving system signs for it after the restart.

mod common;

use std::net::SocketAddr;
use std::path::Path;
use std::time::{Duration, SystemTime};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use baton_connector_sdk::config::StoreConfig;
use baton_connector_webhook::WebhookConfig;
use baton_connector_webhook::config::{Completion, EndpointConfig, RetryConfig};
use baton_connector_webhook::signature::SigningSecret;
use baton_proto::connector::v1::connector_service_client::ConnectorServiceClient;
use baton_proto::connector::v1::{
    ContextEnvelope, ContextReference, StartTransferRequest, StartTransferResponse,
    TransferEventKind,
};
use baton_proto::types::v1::{QueueTarget, Target, TransferMode, target};
use baton_tests::InProcess;
use common::{Answer, SECRET, receiver, secret_bytes, start_receiver};
use hmac::{Hmac, Mac};
use sha2::Sha256;

/// A connector process: its own runtime, dropped at once to crash it.
struct Process {
    connector: InProcess,
    grpc: SocketAddr,
    http: SocketAddr,
}

impl Process {
    fn start(config: WebhookConfig) -> Process {
        let (connector, (grpc, http)) = InProcess::start(move || {
            let config = config.clone();
            async move {
                let bound = baton_connector_webhook::bind(config).await?;
                let addresses = (bound.grpc_addr, bound.http_addr);
                Ok((addresses, bound.serve(std::future::pending())))
            }
        });
        Process {
            connector,
            grpc,
            http,
        }
    }

    /// Ends the process as kill -9 would: every task dropped where it is.
    fn crash(self) {
        self.connector.crash();
    }
}

fn config(dir: &Path, receiver: SocketAddr, completion: Completion) -> WebhookConfig {
    let mut config = WebhookConfig {
        delivery_log: dir.join("deliveries.sqlite3"),
        store: StoreConfig::at(Some(dir.join("data"))),
        endpoints: [(
            "crm".to_owned(),
            EndpointConfig {
                url: format!("http://{receiver}/hooks/crm"),
                secret: SigningSecret::parse(SECRET).expect("secret"),
                rate_per_second: 100.0,
                burst: 10,
                timeout: Duration::from_secs(10),
                completion,
            },
        )]
        .into(),
        queues: [("billing".to_owned(), vec!["crm".to_owned()])].into(),
        retry: RetryConfig {
            max_attempts: 3,
            initial_backoff: Duration::from_millis(20),
            max_backoff: Duration::from_millis(80),
            max_retry_after: Duration::from_secs(2),
        },
        ..Default::default()
    };
    config.server.grpc_listen = "127.0.0.1:0".parse().expect("address");
    config.server.http_listen = Some("127.0.0.1:0".parse().expect("address"));
    config
}

/// The same process again: the same addresses and journal.
fn again(config: &WebhookConfig, first: &Process) -> WebhookConfig {
    let mut config = config.clone();
    config.server.grpc_listen = first.grpc;
    config.server.http_listen = Some(first.http);
    config
}

fn request(handoff_id: &str) -> StartTransferRequest {
    StartTransferRequest {
        tenant: "acme".into(),
        handoff_id: handoff_id.into(),
        attempt: 1,
        target: Some(Target {
            kind: Some(target::Kind::Queue(QueueTarget {
                name: "billing".into(),
                skills: vec![],
            })),
        }),
        mode: TransferMode::Warm as i32,
        envelope: Some(ContextEnvelope {
            reference: Some(ContextReference {
                handoff_id: handoff_id.into(),
                token: "tok".into(),
                context_url: "https://baton.example/context".into(),
                screen_pop_url: "https://baton.example/screen-pop".into(),
            }),
            ..Default::default()
        }),
        deadline: Some((SystemTime::now() + Duration::from_secs(30)).into()),
        disclosure: None,
    }
}

async fn start_transfer(
    grpc: SocketAddr,
    request: StartTransferRequest,
) -> tonic::Streaming<StartTransferResponse> {
    let mut client = ConnectorServiceClient::connect(format!("http://{grpc}"))
        .await
        .expect("connects");
    client
        .start_transfer(request)
        .await
        .expect("StartTransfer accepted")
        .into_inner()
}

/// The events of a stream to its end, each within 10 s.
async fn to_the_end(
    mut stream: tonic::Streaming<StartTransferResponse>,
) -> Vec<StartTransferResponse> {
    let mut events = Vec::new();
    while let Some(event) = tokio::time::timeout(Duration::from_secs(10), stream.message())
        .await
        .expect("an event in time")
        .expect("stream healthy")
    {
        events.push(event);
    }
    events
}

fn kinds(events: &[StartTransferResponse]) -> Vec<TransferEventKind> {
    events.iter().map(StartTransferResponse::kind).collect()
}

async fn wait_for_requests(receiver: &common::Receiver, count: usize) {
    for _ in 0..400 {
        if receiver.received().len() >= count {
            return;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("the receiver saw fewer than {count} requests");
}

#[tokio::test]
async fn a_message_in_flight_at_a_crash_is_delivered_again_as_the_same_message() {
    // The first request is answered only after the crash: the first
    // process never learns that it was accepted.
    let receiver = receiver(&[("crm", vec![Answer::Hang(Duration::from_secs(5))])], None);
    let receiver_addr = start_receiver(receiver.clone()).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let config = config(dir.path(), receiver_addr, Completion::Accepted);
    let first = Process::start(config.clone());
    let mut running = start_transfer(first.grpc, request("h-crash")).await;
    wait_for_requests(&receiver, 1).await;
    let first_config = again(&config, &first);
    first.crash();
    assert!(
        tokio::time::timeout(Duration::from_secs(5), running.message())
            .await
            .expect("the crash ends the stream")
            .is_err(),
        "the stream ends with an error, not an outcome"
    );
    // One second later (past the whole second of the body's timestamp).
    tokio::time::sleep(Duration::from_millis(1100)).await;

    let second = Process::start(first_config);
    let events = to_the_end(start_transfer(second.grpc, request("h-crash")).await).await;
    assert_eq!(
        kinds(&events),
        [
            TransferEventKind::ContextDelivered,
            TransferEventKind::Connected,
            TransferEventKind::Completed
        ]
    );
    let received = receiver.received();
    assert_eq!(received.len(), 2, "delivered once again: {received:#?}");
    assert_eq!(received[0].id, received[1].id, "the same webhook-id");
    assert_eq!(
        received[0].body, received[1].body,
        "the same body, its timestamp included"
    );
}

#[tokio::test]
async fn an_accepted_message_is_not_posted_again_and_its_reports_reach_the_resumed_transfer() {
    let receiver = receiver(&[("crm", vec![])], None);
    let receiver_addr = start_receiver(receiver.clone()).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let config = config(dir.path(), receiver_addr, Completion::Reported);
    let first = Process::start(config.clone());
    let mut running = start_transfer(first.grpc, request("h-reported")).await;
    let delivered = tokio::time::timeout(Duration::from_secs(10), running.message())
        .await
        .expect("in time")
        .expect("healthy")
        .expect("an event");
    assert_eq!(delivered.kind(), TransferEventKind::ContextDelivered);
    let report_url = receiver.received()[0].body["data"]["report_url"]
        .as_str()
        .expect("report_url")
        .to_owned();
    let second_config = again(&config, &first);
    first.crash();

    let second = Process::start(second_config);
    let mut resumed = start_transfer(second.grpc, request("h-reported")).await;
    let delivered = tokio::time::timeout(Duration::from_secs(10), resumed.message())
        .await
        .expect("in time")
        .expect("healthy")
        .expect("an event");
    assert_eq!(delivered.kind(), TransferEventKind::ContextDelivered);
    assert!(
        delivered.detail.contains("before the connector restarted"),
        "{}",
        delivered.detail
    );
    let report = serde_json::json!({
        "endpoint": "crm", "handoff_id": "h-reported", "attempt": 1, "kind": "completed"
    })
    .to_string();
    // The report URL of the first process, signed with the endpoint's
    // secret: both outlive the restart.
    assert_eq!(
        post_report(&report_url, &report).await,
        204,
        "the resumed transfer takes the report"
    );
    let events = to_the_end(resumed).await;
    assert_eq!(
        kinds(&events),
        [TransferEventKind::Connected, TransferEventKind::Completed]
    );
    assert_eq!(
        receiver.received().len(),
        1,
        "the accepted message is not posted again"
    );
}

/// Posts a report signed per Standard Webhooks; returns the status.
async fn post_report(url: &str, body: &str) -> u16 {
    let id = format!("rep_{}", uuid_like());
    let timestamp = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .expect("clock")
        .as_secs();
    let mut mac = Hmac::<Sha256>::new_from_slice(&secret_bytes(SECRET)).expect("key");
    mac.update(format!("{id}.{timestamp}.{body}").as_bytes());
    let signature = format!("v1,{}", STANDARD.encode(mac.finalize().into_bytes()));
    reqwest::Client::new()
        .post(url)
        .header("content-type", "application/json")
        .header("webhook-id", id)
        .header("webhook-timestamp", timestamp.to_string())
        .header("webhook-signature", signature)
        .body(body.to_owned())
        .send()
        .await
        .expect("the report is answered")
        .status()
        .as_u16()
}

fn uuid_like() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(0);
    NEXT.fetch_add(1, Ordering::Relaxed).to_string()
}
