//! The webhook connector against a receiving endpoint that enforces the
//! Standard Webhooks contract the way a receiver built on the spec's
//! reference libraries does: POST with `application/json`, the three
//! `webhook-*` headers, a timestamp within five minutes, a valid `v1`
//! signature, a JSON body with `type`, `timestamp` and `data`; anything
//! else is refused (400/401/405/415). It also enforces a rate limit (429
//! with `Retry-After`) and answers as each test scripts it (5xx, 429, a
//! hang, a 4xx) to drive the retries.

mod common;

use std::net::SocketAddr;
use std::time::Duration;

use baton_connector_sdk::testing::{self, completed_after_rate_limit_waits, kinds};
use baton_connector_webhook::config::{Completion, EndpointConfig};
use baton_proto::connector::v1::{
    ContextEnvelope, ContextMechanism, ContextPayload, StartTransferRequest, StartTransferResponse,
    TransferEventKind,
};
use baton_proto::types::v1::{FailureReason, Target, target};
use common::{
    Answer, OTHER_SECRET, SECRET, connector_config, endpoint, post_report, receiver, start_receiver,
};

struct Connector {
    grpc: SocketAddr,
    http: SocketAddr,
    _dir: tempfile::TempDir,
}

async fn start_connector(
    endpoints: Vec<(&str, EndpointConfig)>,
    queues: &[(&str, &[&str])],
    max_attempts: u32,
) -> Connector {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = connector_config(dir.path(), endpoints, queues, max_attempts);
    let bound = baton_connector_webhook::bind(config)
        .await
        .expect("connector binds");
    let connector = Connector {
        grpc: bound.grpc_addr,
        http: bound.http_addr,
        _dir: dir,
    };
    tokio::spawn(bound.serve(std::future::pending()));
    connector
}

/// A connector with one endpoint, `crm`, that queue `billing` posts to.
async fn start_billing_connector(crm: EndpointConfig, max_attempts: u32) -> Connector {
    start_connector(vec![("crm", crm)], &[("billing", &["crm"])], max_attempts).await
}

fn request(handoff_id: &str, queue: &str) -> StartTransferRequest {
    let envelope = ContextEnvelope {
        reference: Some(testing::context_reference(
            "http://127.0.0.1:8080",
            handoff_id,
            "signed.token",
        )),
        conversation: Some(testing::sip_call("a84b4c76e66710@gw.example.com")),
        payloads: vec![ContextPayload {
            mechanism: ContextMechanism::Webhook as i32,
            content: r#"{"token":"signed.token","intent":"billing.dispute","summary":"Charged twice in March","entities":{"issue_type":"double charge"}}"#.into(),
            omitted_fields: vec!["entities.account_number".into()],
        }],
        ..Default::default()
    };
    StartTransferRequest {
        deadline: testing::deadline_in(Duration::from_secs(30)),
        ..testing::transfer_request(handoff_id, testing::queue(queue, &["disputes"]), envelope)
    }
}

/// Starts a transfer and reads its events to the terminal one.
async fn transfer(grpc: SocketAddr, request: StartTransferRequest) -> Vec<StartTransferResponse> {
    // Bounded: a transfer ends within its deadline, 30 s.
    baton_tests::transfer(grpc, request, Duration::from_secs(35)).await
}

/// Asserts that the transfer failed at once, for `reason`, its detail
/// naming each of `details`.
fn assert_failed_at_once(
    events: &[StartTransferResponse],
    reason: FailureReason,
    details: &[&str],
) {
    assert_eq!(kinds(events), [TransferEventKind::Failed]);
    assert_eq!(events[0].failure_reason, reason as i32);
    assert!(
        details
            .iter()
            .all(|detail| events[0].detail.contains(detail)),
        "{}",
        events[0].detail
    );
}

async fn delivery_log(http: SocketAddr, handoff_id: &str) -> Vec<serde_json::Value> {
    let response = reqwest::get(format!(
        "http://{http}/v1/deliveries?handoff_id={handoff_id}"
    ))
    .await
    .expect("log answers");
    assert_eq!(response.status(), 200);
    let body = response.text().await.expect("body");
    let value: serde_json::Value = serde_json::from_str(&body).expect("JSON");
    value["attempts"].as_array().expect("attempts").clone()
}

#[tokio::test]
async fn an_accepted_delivery_carries_the_signed_context_and_completes_the_transfer() {
    let receiver = receiver(&[("crm", vec![])], None);
    let addr = start_receiver(receiver.clone()).await;
    let connector = start_billing_connector(endpoint(addr, "crm", SECRET), 3).await;

    let events = transfer(connector.grpc, request("h-ok", "billing")).await;
    assert_eq!(
        kinds(&events),
        [
            TransferEventKind::ContextDelivered,
            TransferEventKind::Connected,
            TransferEventKind::Completed
        ]
    );
    assert!(events[1].detail.contains("crm"), "{:?}", events[1].detail);

    let received = receiver.received();
    assert_eq!(received.len(), 1);
    let data = &received[0].body["data"];
    assert_eq!(received[0].body["type"], "baton.handoff.transfer");
    assert_eq!(data["handoff_id"], "h-ok");
    assert_eq!(data["target"]["queue"], "billing");
    assert_eq!(data["context"]["summary"], "Charged twice in March");
    assert_eq!(data["reference"]["token"], "signed.token");
    let text = received[0].body.to_string();
    assert!(
        !text.contains("+14155550123"),
        "the caller's number is sensitive"
    );
    assert!(
        data["omitted_fields"]
            .as_array()
            .expect("omitted")
            .iter()
            .any(|f| f == "entities.account_number")
    );

    let log = delivery_log(connector.http, "h-ok").await;
    assert_eq!(log.len(), 1, "{log:?}");
    assert_eq!(log[0]["status"], 200);
    assert_eq!(log[0]["outcome"], "accepted");
    assert_eq!(log[0]["endpoint"], "crm");
    assert_eq!(log[0]["message_id"], received[0].id.as_str());
}

#[tokio::test]
async fn server_errors_throttling_and_timeouts_are_retried_under_the_same_id() {
    let receiver = receiver(
        &[(
            "crm",
            vec![
                Answer::Status(503),
                Answer::Throttle,
                Answer::Hang(Duration::from_secs(2)),
                Answer::Status(200),
            ],
        )],
        None,
    );
    let addr = start_receiver(receiver.clone()).await;
    let connector = start_billing_connector(endpoint(addr, "crm", SECRET), 5).await;

    let events = transfer(connector.grpc, request("h-retry", "billing")).await;
    assert_eq!(
        kinds(&events).last(),
        Some(&TransferEventKind::Completed),
        "{events:?}"
    );
    // Every try reached the endpoint with a valid signature and one id.
    let received = receiver.received();
    assert_eq!(
        received.iter().map(|r| r.status).collect::<Vec<_>>(),
        [503, 429, 200, 200],
        "the hung request is answered too late for the connector, which retried"
    );
    assert!(received.iter().all(|r| r.id == received[0].id));

    let log = delivery_log(connector.http, "h-retry").await;
    let tries: Vec<(u64, Option<u64>, &str)> = log
        .iter()
        .map(|a| {
            (
                a["try_number"].as_u64().expect("try"),
                a["status"].as_u64(),
                a["outcome"].as_str().expect("outcome"),
            )
        })
        .collect();
    assert_eq!(
        tries,
        [
            (1, Some(503), "retryable"),
            (2, Some(429), "retryable"),
            (3, None, "retryable"),
            (4, Some(200), "accepted"),
        ]
    );
    assert!(
        log[2]["error"]
            .as_str()
            .expect("timeout error")
            .contains("timed out")
    );
}

#[tokio::test]
async fn a_client_error_fails_the_transfer_at_once_without_retrying() {
    let receiver = receiver(&[("crm", vec![Answer::Status(422)])], None);
    let addr = start_receiver(receiver.clone()).await;
    let connector = start_billing_connector(endpoint(addr, "crm", SECRET), 5).await;

    let events = transfer(connector.grpc, request("h-422", "billing")).await;
    assert_failed_at_once(&events, FailureReason::Rejected, &["HTTP 422"]);
    assert_eq!(receiver.received().len(), 1);
}

#[tokio::test]
async fn exhausted_retries_fail_the_transfer_with_the_last_status() {
    let receiver = receiver(&[("crm", vec![Answer::Status(500); 10])], None);
    let addr = start_receiver(receiver.clone()).await;
    let connector = start_billing_connector(endpoint(addr, "crm", SECRET), 3).await;

    let events = transfer(connector.grpc, request("h-500", "billing")).await;
    assert_failed_at_once(
        &events,
        FailureReason::Unreachable,
        &["3 tries", "HTTP 500"],
    );
    assert_eq!(receiver.received().len(), 3);
    assert_eq!(delivery_log(connector.http, "h-500").await.len(), 3);
}

#[tokio::test]
async fn the_endpoint_refuses_a_wrong_signature_and_the_transfer_fails_cleanly() {
    let receiver = receiver(&[("crm", vec![])], None);
    let addr = start_receiver(receiver.clone()).await;
    // The receiver is no stub: unsigned, stale and forged requests are refused.
    let client = reqwest::Client::new();
    let url = format!("http://{addr}/hooks/crm");
    let body = r#"{"type":"t","timestamp":"x","data":{}}"#;
    let unsigned = client
        .post(&url)
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .expect("answers");
    assert_eq!(unsigned.status(), 400);
    let forged = client
        .post(&url)
        .header("content-type", "application/json")
        .header("webhook-id", "msg_1")
        .header("webhook-timestamp", "1614265330")
        .header(
            "webhook-signature",
            "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=",
        )
        .body(body)
        .send()
        .await
        .expect("answers");
    assert_eq!(forged.status(), 401, "stale timestamp");

    let connector = start_billing_connector(endpoint(addr, "crm", OTHER_SECRET), 3).await;
    let events = transfer(connector.grpc, request("h-forged", "billing")).await;
    assert_failed_at_once(&events, FailureReason::Rejected, &["HTTP 401"]);
    assert!(receiver.received().is_empty());
}

#[tokio::test]
async fn one_accepting_endpoint_of_two_connects_and_the_other_is_named() {
    let receiver = receiver(
        &[("crm", vec![]), ("desk", vec![Answer::Status(404)])],
        None,
    );
    let addr = start_receiver(receiver.clone()).await;
    let connector = start_connector(
        vec![
            ("crm", endpoint(addr, "crm", SECRET)),
            ("desk", endpoint(addr, "desk", SECRET)),
        ],
        &[("billing", &["crm", "desk"])],
        3,
    )
    .await;
    let events = transfer(connector.grpc, request("h-two", "billing")).await;
    assert_eq!(
        kinds(&events),
        [
            TransferEventKind::ContextDelivered,
            TransferEventKind::Connected,
            TransferEventKind::Completed
        ]
    );
    assert!(
        events[1].detail.contains("desk") && events[1].detail.contains("HTTP 404"),
        "{}",
        events[1].detail
    );
    let mut endpoints: Vec<String> = receiver
        .received()
        .into_iter()
        .map(|r| r.endpoint)
        .collect();
    endpoints.sort();
    assert_eq!(endpoints, ["crm", "desk"]);
}

#[tokio::test]
async fn an_unconfigured_queue_fails_and_other_target_kinds_are_not_served() {
    let receiver = receiver(&[("crm", vec![])], None);
    let addr = start_receiver(receiver.clone()).await;
    let connector = start_billing_connector(endpoint(addr, "crm", SECRET), 3).await;
    let events = transfer(connector.grpc, request("h-nowhere", "sales")).await;
    assert_failed_at_once(&events, FailureReason::Unreachable, &[]);

    let mut client = testing::client(connector.grpc).await;
    let mut phone = request("h-phone", "billing");
    phone.target = Some(Target {
        kind: Some(target::Kind::PhoneNumber("+14155550100".into())),
    });
    let status = client.start_transfer(phone).await.expect_err("refused");
    assert_eq!(status.code(), tonic::Code::Unimplemented);
    assert!(receiver.received().is_empty());
}

/// Transfers arrive at twice the endpoint's rate: they queue (reported as
/// QUEUED with the wait) and none is throttled by the endpoint.
#[tokio::test]
async fn a_burst_at_twice_the_rate_limit_queues_and_is_never_throttled() {
    // Low enough that scheduling stalls on a loaded machine do not bunch
    // the paced requests.
    const RATE: f64 = 5.0;
    const TRANSFERS: usize = 12;
    // The endpoint allows RATE per second with a bucket of 2.
    let receiver = receiver(&[("crm", vec![])], Some((RATE, 2.0)));
    let addr = start_receiver(receiver.clone()).await;
    let mut config = endpoint(addr, "crm", SECRET);
    config.rate_per_second = RATE;
    config.burst = 1;
    config.timeout = Duration::from_secs(5);
    let connector = start_billing_connector(config, 1).await;

    let mut tasks = Vec::new();
    for i in 0..TRANSFERS {
        // Offered at twice the endpoint's rate.
        tokio::time::sleep(Duration::from_secs_f64(1.0 / (2.0 * RATE))).await;
        let grpc = connector.grpc;
        tasks.push(tokio::spawn(async move {
            transfer(grpc, request(&format!("h-soak-{i}"), "billing")).await
        }));
    }
    let mut queued = 0;
    for task in tasks {
        let events = task.await.expect("transfer task");
        for event in completed_after_rate_limit_waits(&events) {
            queued += 1;
            assert!(event.queue_position >= 1);
        }
    }
    assert_eq!(
        receiver.throttled(),
        0,
        "the endpoint never had to throttle"
    );
    assert_eq!(receiver.received().len(), TRANSFERS);
    assert!(queued > 0, "the backlog is reported as QUEUED");
}

/// Posts `body` as a report signed with `secret`.
async fn report(url: &str, body: serde_json::Value, secret: &str) -> u16 {
    post_report(url, &body.to_string(), secret).await
}

#[tokio::test]
async fn a_reporting_endpoint_connects_the_transfer_when_it_reports_a_human_has_the_customer() {
    let receiver = receiver(&[("crm", vec![])], None);
    let addr = start_receiver(receiver.clone()).await;
    let mut config = endpoint(addr, "crm", SECRET);
    config.completion = Completion::Reported;
    let connector = start_billing_connector(config, 3).await;
    let grpc = connector.grpc;
    let running = tokio::spawn(async move { transfer(grpc, request("h-report", "billing")).await });

    let mut received = Vec::new();
    for _ in 0..400 {
        received = receiver.received();
        if !received.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    let data = &received.first().expect("delivered").body["data"];
    assert_eq!(data["endpoint"], "crm");
    let url = data["report_url"].as_str().expect("report_url").to_owned();
    assert_eq!(url, format!("http://{}/v1/reports", connector.http));
    assert!(!running.is_finished(), "accepted, but no human yet");

    let body = |kind: &str, handoff: &str| serde_json::json!({"endpoint": "crm", "handoff_id": handoff, "attempt": 1, "kind": kind});
    let unsigned = reqwest::Client::new()
        .post(&url)
        .body(body("connected", "h-report").to_string())
        .send()
        .await
        .expect("answers");
    assert_eq!(unsigned.status(), 400);
    assert_eq!(
        report(&url, body("connected", "h-report"), OTHER_SECRET).await,
        401
    );
    assert_eq!(
        report(&url, body("connected", "h-other"), SECRET).await,
        404
    );
    assert_eq!(
        report(&url, body("failed", "h-report"), SECRET).await,
        400,
        "failed needs a reason"
    );
    assert!(!running.is_finished(), "refused reports changed nothing");

    for kind in ["answered", "connected", "completed"] {
        assert_eq!(
            report(&url, body(kind, "h-report"), SECRET).await,
            204,
            "{kind}"
        );
    }
    let events = tokio::time::timeout(Duration::from_secs(10), running)
        .await
        .expect("ends")
        .expect("transfer task");
    assert_eq!(
        kinds(&events),
        [
            TransferEventKind::ContextDelivered,
            TransferEventKind::Answered,
            TransferEventKind::Connected,
            TransferEventKind::Completed
        ]
    );
    assert!(
        events[2].detail.contains("reported by endpoint crm"),
        "{}",
        events[2].detail
    );

    // A reported failure fails the transfer with its reason.
    let grpc = connector.grpc;
    let running =
        tokio::spawn(async move { transfer(grpc, request("h-report-2", "billing")).await });
    let mut status = 404;
    for _ in 0..400 {
        let failed = serde_json::json!({
            "endpoint": "crm", "handoff_id": "h-report-2", "attempt": 1,
            "kind": "failed", "reason": "no_agents"
        });
        status = report(&url, failed, SECRET).await;
        if status != 404 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert_eq!(status, 204);
    let events = tokio::time::timeout(Duration::from_secs(10), running)
        .await
        .expect("ends")
        .expect("transfer task");
    assert_eq!(kinds(&events).last(), Some(&TransferEventKind::Failed));
    assert_eq!(
        events.last().expect("terminal").failure_reason,
        FailureReason::NoAgents as i32
    );
}
