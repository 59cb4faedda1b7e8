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
use std::time::Duration;

use baton_connector_sdk::testing::{self, kinds, start_transfer, to_the_end};
use baton_connector_webhook::WebhookConfig;
use baton_connector_webhook::config::{Completion, EndpointConfig};
use baton_proto::connector::v1::{ContextEnvelope, StartTransferRequest, TransferEventKind};
use common::{
    Answer, Process, SECRET, again, connector_config, endpoint, post_report, receiver,
    start_receiver,
};

fn config(dir: &Path, receiver: SocketAddr, completion: Completion) -> WebhookConfig {
    let crm = EndpointConfig {
        timeout: Duration::from_secs(10),
        completion,
        ..endpoint(receiver, "crm", SECRET)
    };
    connector_config(dir, vec![("crm", crm)], &[("billing", &["crm"])], 3)
}

fn request(handoff_id: &str) -> StartTransferRequest {
    let envelope = ContextEnvelope {
        reference: Some(testing::context_reference(
            "https://baton.example",
            handoff_id,
            "tok",
        )),
        ..Default::default()
    };
    StartTransferRequest {
        deadline: testing::deadline_in(Duration::from_secs(30)),
        ..testing::transfer_request(handoff_id, testing::queue("billing", &[]), envelope)
    }
}

async fn wait_for_requests(receiver: &common::Receiver, count: usize) {
    testing::at_least(count, "requests at the receiver", || receiver.received()).await;
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
        post_report(&report_url, &report, SECRET).await,
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
