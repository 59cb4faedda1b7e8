//! The connector against a local Amazon Connect that checks every request
//! against Amazon's published service model and SigV4
//! (`tests/contract_server.py`), and the server's refusals of requests
//! that break the contract, so that its acceptance means something.

mod common;

use std::time::{Duration, SystemTime};

use baton_connector_amazon_connect::api::sign_request;
use baton_connector_amazon_connect::config::Credentials;
use baton_connector_sdk::testing;
use baton_proto::connector::v1::TransferEventKind as Kind;
use baton_proto::connector::v1::{CancelTransferRequest, ContextMechanism};
use baton_proto::types::v1::{
    Availability, AvailabilityBasis, Channel, FailureReason, WaitEstimateMethod,
};
use common::*;
use serde_json::{Value, json};

const CONNECTED: [Kind; 6] = [
    Kind::Queued,
    Kind::Offered,
    Kind::Answered,
    Kind::ContextDelivered,
    Kind::Connected,
    Kind::Completed,
];

fn operations(log: &[Value]) -> Vec<String> {
    log.iter()
        .map(|e| e["operation"].as_str().unwrap_or_default().to_owned())
        .collect()
}

#[tokio::test]
async fn a_task_goes_to_its_queue_with_the_context_as_attributes_and_reports_queue_figures() {
    let server = ContractServer::start().await;
    let grpc = start_connector(config(&server)).await;
    let contact = contact_id("TASK", 1);

    let events = transfer(grpc, request("h-task", &contact, "support")).await;
    assert_eq!(kinds(&events), CONNECTED, "{events:#?}\n{}", server.logs());
    // The queue's real-time metrics: 2 contacts ahead + this one, and the
    // instance's estimated wait.
    assert_eq!(events[0].queue_position, 3, "{events:#?}");
    assert_eq!(
        events[0].estimated_wait.as_ref().map(|d| d.seconds),
        Some(45)
    );
    assert!(
        events[0].detail.contains("q-support"),
        "{}",
        events[0].detail
    );
    assert!(events[1].detail.contains("u-agent-7"));

    // The context is on the initial contact, flattened into string
    // attributes the agent workspace shows.
    let original = server.contact(&contact).await;
    let attributes = &original["Attributes"];
    assert_eq!(attributes["baton_handoff_id"], "h-task");
    assert_eq!(attributes["baton_summary"], "Charged twice in March");
    assert_eq!(attributes["baton_intent"], "billing.dispute");
    assert_eq!(attributes["baton_entity_issue_type"], "double charge");
    assert_eq!(
        attributes["baton_transcript"],
        "customer: I want a person\nai: Connecting you"
    );
    assert!(
        attributes["baton_screen_pop_url"]
            .as_str()
            .unwrap_or_default()
            .contains("/screen-pop?token=")
    );
    assert!(!attributes.to_string().contains("+14155550123"));
    // TransferContact made a new contact, which the connector followed.
    assert!(original["DisconnectTimestamp"].is_number());
    let log = server.log().await;
    let transfer = log
        .iter()
        .find(|e| e["operation"] == "TransferContact")
        .expect("a TransferContact");
    assert_eq!(transfer["params"]["QueueId"], "q-support");
    assert_eq!(transfer["params"]["ContactFlowId"], "f-queue-transfer");
    assert_eq!(transfer["params"]["ClientToken"], "baton-h-task-1");
    assert_eq!(
        &operations(&log)[..3],
        [
            "DescribeContact",
            "UpdateContactAttributes",
            "TransferContact"
        ]
    );
    assert!(operations(&log).contains(&"GetCurrentMetricData".to_owned()));
    let metrics = log
        .iter()
        .find(|e| e["operation"] == "GetCurrentMetricData")
        .expect("metrics asked");
    assert_eq!(metrics["params"]["Filters"]["Queues"], json!(["q-support"]));
    assert_eq!(metrics["params"]["Filters"]["Channels"], json!(["TASK"]));
    server.assert_all_accepted().await;
}

#[tokio::test]
async fn a_voice_contact_is_moved_by_its_flow_reading_the_transfer_attributes() {
    let server = ContractServer::start().await;
    let grpc = start_connector(config(&server)).await;
    let contact = contact_id("VOICE", 2);

    let events = transfer(grpc, request("h-voice", &contact, "support")).await;
    assert_eq!(kinds(&events), CONNECTED, "{events:#?}");
    let log = server.log().await;
    // TransferContact refuses VOICE contacts: it is never called for one.
    assert!(!operations(&log).contains(&"TransferContact".to_owned()));
    let voice = server.contact(&contact).await;
    assert_eq!(voice["Attributes"]["baton_transfer"], "requested");
    assert_eq!(voice["Attributes"]["baton_transfer_queue_id"], "q-support");
    assert_eq!(
        voice["Attributes"]["baton_transfer_flow_id"],
        "f-queue-transfer"
    );
    assert_eq!(voice["AgentInfo"]["Id"], "u-agent-7");
    server.assert_all_accepted().await;
}

#[tokio::test]
async fn quick_connects_resolve_to_their_queue_or_agent_and_a_phone_number_one_is_unsupported() {
    let server = ContractServer::start().await;
    let grpc = start_connector(config(&server)).await;

    let events = transfer(
        grpc,
        request("h-qc-queue", &contact_id("TASK", 3), "billing"),
    )
    .await;
    assert_eq!(kinds(&events), CONNECTED, "{events:#?}");

    // A USER quick connect: straight to the agent, no queue to report.
    let events = transfer(grpc, request("h-qc-user", &contact_id("TASK", 4), "alice")).await;
    assert_eq!(
        kinds(&events),
        [
            Kind::Offered,
            Kind::Answered,
            Kind::ContextDelivered,
            Kind::Connected,
            Kind::Completed
        ],
        "{events:#?}"
    );
    let log = server.log().await;
    let to_user = log
        .iter()
        .filter(|e| e["operation"] == "TransferContact")
        .find(|e| e["params"]["UserId"] == "u-agent-7")
        .expect("transferred to the user");
    assert_eq!(to_user["params"]["ContactFlowId"], "f-agent-transfer");
    assert!(to_user["params"].get("QueueId").is_none());

    let events = transfer(
        grpc,
        request("h-qc-phone", &contact_id("TASK", 5), "outside"),
    )
    .await;
    assert_eq!(kinds(&events), [Kind::Failed]);
    let failed = events.last().expect("an event");
    assert_eq!(failed.failure_reason, FailureReason::Unsupported as i32);
    assert!(failed.detail.contains("PHONE_NUMBER"), "{}", failed.detail);
    server.assert_all_accepted().await;
}

#[tokio::test]
async fn what_connect_refuses_fails_the_transfer_with_its_reason_and_nothing_moves() {
    let server = ContractServer::start().await;
    let grpc = start_connector(config(&server)).await;

    // No contact id in the handoff: nothing is asked of Connect.
    let mut no_contact = request("h-none", "", "support");
    no_contact
        .envelope
        .as_mut()
        .and_then(|e| e.conversation.as_mut())
        .and_then(|c| c.call.as_mut())
        .expect("call")
        .platform_contact_id
        .clear();
    let events = transfer(grpc, no_contact).await;
    assert_eq!(kinds(&events), [Kind::Failed]);
    assert_eq!(events[0].failure_reason, FailureReason::Unsupported as i32);
    assert!(server.log().await.is_empty());

    // A contact Connect does not know: ResourceNotFoundException.
    let events = transfer(grpc, request("h-unknown", "no-such-contact", "support")).await;
    assert_eq!(kinds(&events), [Kind::Failed]);
    assert_eq!(events[0].failure_reason, FailureReason::Unreachable as i32);
    assert!(
        events[0].detail.contains("ResourceNotFoundException"),
        "{}",
        events[0].detail
    );

    // A queue the instance does not have: TransferContact refused, the
    // contact stays where it was.
    let contact = contact_id("TASK", 6);
    let events = transfer(grpc, request("h-missing", &contact, "missing")).await;
    assert_eq!(kinds(&events), [Kind::Failed]);
    assert_eq!(events[0].failure_reason, FailureReason::Unreachable as i32);
    assert!(server.contact(&contact).await["DisconnectTimestamp"].is_null());

    // Wrong credentials: every request refused with 403, the connector's fault.
    let mut wrong = config(&server);
    wrong.credentials.secret_access_key = "not-the-secret".into();
    let wrong_grpc = start_connector(wrong).await;
    let events = transfer(
        wrong_grpc,
        request("h-creds", &contact_id("TASK", 7), "support"),
    )
    .await;
    assert_eq!(kinds(&events), [Kind::Failed]);
    assert_eq!(
        events[0].failure_reason,
        FailureReason::ConnectorError as i32
    );
    assert!(
        events[0].detail.contains("InvalidSignatureException"),
        "{}",
        events[0].detail
    );

    // The customer hangs up while queued: the transfer is over.
    let contact = contact_id("TASK", 8);
    let mut client = testing::client(grpc).await;
    let mut stream = client
        .start_transfer(request("h-hangup", &contact, "waiting"))
        .await
        .expect("accepted")
        .into_inner();
    let mut first = stream.message().await.expect("ok").expect("an event");
    while is_pacing(&first) {
        first = stream.message().await.expect("ok").expect("an event");
    }
    assert_eq!(first.kind, Kind::Queued as i32);
    assert_eq!(first.queue_position, 4, "3 ahead and this one");
    let followed = server
        .contacts()
        .await
        .into_iter()
        .find(|c| c["PreviousContactId"] == contact.as_str())
        .expect("the transferred contact");
    server
        .disconnect(followed["Id"].as_str().expect("id"))
        .await;
    let mut last = first;
    while let Some(event) = stream.message().await.expect("ok") {
        last = event;
    }
    assert_eq!(last.kind, Kind::Cancelled as i32, "{last:?}");
}

#[tokio::test]
async fn a_cancelled_transfer_is_marked_on_the_contact() {
    let server = ContractServer::start().await;
    let grpc = start_connector(config(&server)).await;
    let contact = contact_id("VOICE", 9);
    let mut client = testing::client(grpc).await;
    let mut stream = client
        .start_transfer(request("h-cancel", &contact, "waiting"))
        .await
        .expect("accepted")
        .into_inner();
    let first = stream.message().await.expect("ok").expect("an event");
    assert_eq!(first.kind, Kind::Queued as i32);
    let cancelled = client
        .cancel_transfer(CancelTransferRequest {
            handoff_id: "h-cancel".into(),
            attempt: 1,
            tenant: "acme".into(),
        })
        .await
        .expect("cancel")
        .into_inner();
    assert!(cancelled.cancelled);
    let mut last = first;
    while let Some(event) = stream.message().await.expect("ok") {
        last = event;
    }
    assert_eq!(last.kind, Kind::Cancelled as i32);
    let mut marked = Value::Null;
    for _ in 0..100 {
        marked = server.contact(&contact).await["Attributes"]["baton_transfer"].clone();
        if marked == "cancelled" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(marked, "cancelled");
    server.assert_all_accepted().await;
}

#[tokio::test]
async fn context_that_does_not_fit_the_contacts_32_kb_leaves_the_reference() {
    let server = ContractServer::start().await;
    // The contact already holds 20 KB of attributes of its own flow.
    let contact = contact_id("TASK", 10);
    let signed = SignedClient::new(&server);
    server.create_contact(&contact, "TASK").await;
    let answer = signed
        .post(
            "/contact/attributes",
            json!({"InstanceId": INSTANCE_ID, "InitialContactId": contact,
                   "Attributes": {"crm_notes": "n".repeat(20_000)}}),
        )
        .await;
    assert_eq!(answer.0, 200, "{answer:?}");
    let grpc = start_connector(config(&server)).await;
    let mut big = request("h-big", &contact, "support");
    let envelope = big.envelope.as_mut().expect("envelope");
    envelope.payloads[0].content =
        json!({"token": "signed.token", "summary": "s".repeat(20_000)}).to_string();
    let events = transfer(grpc, big).await;
    assert_eq!(kinds(&events), CONNECTED, "{events:#?}");
    let attributes = &server.contact(&contact).await["Attributes"];
    assert!(attributes.get("baton_summary").is_none());
    assert_eq!(attributes["baton_handoff_id"], "h-big");
    assert!(
        attributes["baton_context_omitted"]
            .as_str()
            .unwrap_or_default()
            .contains("32 KB")
    );
    assert_eq!(attributes["crm_notes"].as_str().map(str::len), Some(20_000));
    server.assert_all_accepted().await;
}

#[tokio::test]
async fn the_connector_advertises_queues_and_task_attributes_within_32_kb() {
    let server = ContractServer::start().await;
    let grpc = start_connector(config(&server)).await;
    let info = testing::connector_info(grpc).await;
    assert_eq!(info.name, "amazon-connect");
    assert_eq!(info.context_capabilities.len(), 1);
    assert_eq!(
        info.context_capabilities[0].mechanism,
        ContextMechanism::TaskAttributes as i32
    );
    assert!(info.context_capabilities[0].max_bytes <= 32_768);
}

async fn availability(
    grpc: std::net::SocketAddr,
    queue: &str,
    channel: Channel,
) -> Result<Availability, tonic::Status> {
    testing::availability(grpc, testing::queue(queue, &[]), channel).await
}

fn reported(
    signed_in: u32,
    available: u32,
    waiting: u32,
    estimated_wait: Option<i64>,
) -> Availability {
    Availability {
        basis: AvailabilityBasis::Reported as i32,
        agents_signed_in: Some(signed_in),
        agents_available: Some(available),
        contacts_waiting: Some(waiting),
        position: Some(waiting + 1),
        estimated_wait: estimated_wait.map(|seconds| prost_types::Duration { seconds, nanos: 0 }),
        wait_estimate: if estimated_wait.is_some() {
            WaitEstimateMethod::PlatformStatistic
        } else {
            WaitEstimateMethod::Unspecified
        } as i32,
    }
}

/// The GetCurrentMetricData requests the server accepted: each one's
/// filters, groupings and metrics.
async fn metric_requests(server: &ContractServer) -> Vec<Value> {
    server
        .log()
        .await
        .into_iter()
        .filter(|e| e["operation"] == "GetCurrentMetricData")
        .map(|e| {
            assert_eq!(e["status"], 200, "{e}");
            json!({
                "Filters": e["params"]["Filters"],
                "Groupings": e["params"]["Groupings"],
                "CurrentMetrics": e["params"]["CurrentMetrics"],
            })
        })
        .collect()
}

fn metric_request(queue_id: &str, channel: &str) -> Value {
    json!({
        "Filters": {"Queues": [queue_id], "Channels": [channel]},
        "Groupings": ["QUEUE", "CHANNEL"],
        "CurrentMetrics": [
            {"Name": "AGENTS_ONLINE", "Unit": "COUNT"},
            {"Name": "AGENTS_AVAILABLE", "Unit": "COUNT"},
            {"Name": "CONTACTS_IN_QUEUE", "Unit": "COUNT"},
            {"Name": "ESTIMATED_WAIT_TIME", "Unit": "SECONDS"},
        ],
    })
}

#[tokio::test]
async fn availability_is_connects_current_metrics_of_the_queue_for_the_channel() {
    let server = ContractServer::start_with_rate(100.0, 100).await;
    // q-unstaffed has 3 contacts ahead of any channel's own; q-instant none.
    server
        .set_queue_metrics(
            "q-unstaffed",
            json!({
                "VOICE": {"AGENTS_ONLINE": 4, "AGENTS_AVAILABLE": 0, "CONTACTS_IN_QUEUE": 2,
                          "ESTIMATED_WAIT_TIME": 150},
                "CHAT": {"AGENTS_ONLINE": 2, "AGENTS_AVAILABLE": 1, "ESTIMATED_WAIT_TIME": null},
            }),
        )
        .await;
    server
        .set_queue_metrics(
            "q-instant",
            json!({"CHAT": {"AGENTS_ONLINE": 3, "AGENTS_AVAILABLE": 2, "ESTIMATED_WAIT_TIME": null}}),
        )
        .await;
    server
        .set_queue_metrics(
            "q-support",
            json!({"VOICE": {"AGENTS_ONLINE": 7, "AGENTS_AVAILABLE": 1, "ESTIMATED_WAIT_TIME": 30}}),
        )
        .await;
    let grpc = start_connector(config(&server)).await;
    let info = testing::connector_info(grpc).await;
    assert!(info.availability);

    // Voice: Connect's own estimated wait for the queue and channel.
    assert_eq!(
        availability(grpc, "waiting", Channel::Voice)
            .await
            .expect("availability"),
        reported(4, 0, 5, Some(150))
    );
    // Chat, where Connect cannot estimate the wait (null) and fewer agents
    // are free than contacts wait: no estimate.
    assert_eq!(
        availability(grpc, "waiting", Channel::Chat)
            .await
            .expect("availability"),
        reported(2, 1, 3, None)
    );
    // Nobody waits and agents are free: offered at once.
    assert_eq!(
        availability(grpc, "instant", Channel::Chat)
            .await
            .expect("availability"),
        reported(3, 2, 0, Some(0))
    );
    // A quick connect to a queue: that queue's figures (an unspecified
    // channel is voice).
    assert_eq!(
        availability(grpc, "billing", Channel::Unspecified)
            .await
            .expect("availability"),
        reported(7, 1, 2, Some(30))
    );
    // Exactly what the API reference documents for these metrics, every
    // request signed and checked against the service model.
    server.assert_all_accepted().await;
    assert_eq!(
        metric_requests(&server).await,
        [
            metric_request("q-unstaffed", "VOICE"),
            metric_request("q-unstaffed", "CHAT"),
            metric_request("q-instant", "CHAT"),
            metric_request("q-support", "VOICE"),
        ]
    );
    assert!(
        operations(&server.log().await)
            .iter()
            .all(|o| o == "GetCurrentMetricData" || o == "DescribeQuickConnect"),
        "asking moves nothing"
    );
}

#[tokio::test]
async fn availability_of_a_queue_without_a_connect_queue_is_refused_with_the_reason() {
    let server = ContractServer::start_with_rate(100.0, 100).await;
    let grpc = start_connector(config(&server)).await;
    let unmapped = availability(grpc, "unmapped", Channel::Voice)
        .await
        .expect_err("not configured");
    assert_eq!(unmapped.code(), tonic::Code::NotFound);
    assert!(
        unmapped.message().contains("\"unmapped\""),
        "{}",
        unmapped.message()
    );
    assert!(server.log().await.is_empty(), "nothing asked of Connect");

    // A quick connect to an agent or a phone number has no queue metrics.
    for queue in ["alice", "outside"] {
        let refused = availability(grpc, queue, Channel::Voice)
            .await
            .expect_err("no queue");
        assert_eq!(refused.code(), tonic::Code::FailedPrecondition, "{queue}");
    }
    assert_eq!(
        operations(&server.log().await),
        ["DescribeQuickConnect", "DescribeQuickConnect"]
    );

    // Figures no count can be: UNAVAILABLE with the reason, not a panic.
    server
        .set_queue_metrics("q-support", json!({"VOICE": {"AGENTS_ONLINE": -1}}))
        .await;
    let malformed = availability(grpc, "support", Channel::Voice)
        .await
        .expect_err("malformed");
    assert_eq!(malformed.code(), tonic::Code::Unavailable);
    assert!(
        malformed.message().contains("AGENTS_ONLINE"),
        "{}",
        malformed.message()
    );

    // Without queues the connector does not advertise availability.
    let mut bare = config(&server);
    bare.queues.clear();
    let bare = start_connector(bare).await;
    let info = testing::connector_info(bare).await;
    assert!(!info.availability);
}

/// Requests signed like the connector's (its own signer), for proving
/// what the server refuses.
struct SignedClient {
    base: String,
    host: String,
    http: reqwest::Client,
    credentials: Credentials,
}

impl SignedClient {
    fn new(server: &ContractServer) -> Self {
        Self {
            base: server.url(),
            host: server.addr.to_string(),
            http: reqwest::Client::new(),
            credentials: Credentials {
                access_key_id: ACCESS_KEY_ID.into(),
                secret_access_key: SECRET_ACCESS_KEY.into(),
                session_token: None,
            },
        }
    }

    async fn send_with(
        &self,
        method: &str,
        path: &str,
        body: Option<String>,
        credentials: &Credentials,
        time: SystemTime,
        content_type: &str,
    ) -> (u16, String, Value) {
        let url = format!("{}{path}", self.base);
        let body = body.unwrap_or_default();
        let headers: Vec<(&str, &str)> = if body.is_empty() {
            vec![]
        } else {
            vec![("content-type", content_type)]
        };
        let signing = sign_request(
            credentials,
            REGION,
            method,
            &url,
            &headers,
            body.as_bytes(),
            time,
        )
        .expect("signs");
        let mut request = self
            .http
            .request(method.parse().expect("method"), &url)
            .header("host", &self.host);
        for (k, v) in headers
            .iter()
            .copied()
            .chain(signing.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        {
            request = request.header(k, v);
        }
        if !body.is_empty() {
            request = request.body(body);
        }
        let response = request.send().await.expect("answers");
        let status = response.status().as_u16();
        let error_type = response
            .headers()
            .get("x-amzn-errortype")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        let text = response.text().await.unwrap_or_default();
        (
            status,
            error_type,
            serde_json::from_str(&text).unwrap_or(Value::Null),
        )
    }

    async fn post(&self, path: &str, body: Value) -> (u16, String, Value) {
        self.send_with(
            "POST",
            path,
            Some(body.to_string()),
            &self.credentials,
            SystemTime::now(),
            "application/json",
        )
        .await
    }
}

#[tokio::test]
async fn the_contract_server_refuses_what_breaks_the_published_contract() {
    let server = ContractServer::start_with_rate(100.0, 100).await;
    let client = SignedClient::new(&server);
    let task = contact_id("TASK", 20);
    let now = SystemTime::now();
    let describe = format!("/contacts/{INSTANCE_ID}/{task}");

    // A well-formed, signed request is accepted: the baseline.
    let ok = client
        .send_with("GET", &describe, None, &client.credentials, now, "")
        .await;
    assert_eq!(ok.0, 200, "{ok:?}");
    assert_eq!(ok.2["Contact"]["Channel"], "TASK");

    // Authentication: unsigned, wrong secret, unknown key, a skewed clock.
    let unsigned = reqwest::get(format!("{}{describe}", server.url()))
        .await
        .expect("answers");
    assert_eq!(unsigned.status(), 403);
    assert_eq!(
        unsigned.headers()["x-amzn-errortype"],
        "MissingAuthenticationTokenException"
    );
    let wrong_secret = Credentials {
        secret_access_key: "wrong".into(),
        ..client.credentials.clone()
    };
    let unknown_key = Credentials {
        access_key_id: "AKIAUNKNOWNKEY000000".into(),
        ..client.credentials.clone()
    };
    let skewed = now - Duration::from_secs(600);
    for (credentials, at, error, message) in [
        (
            &wrong_secret,
            now,
            "InvalidSignatureException",
            Some("signature"),
        ),
        (&unknown_key, now, "UnrecognizedClientException", None),
        (
            &client.credentials,
            skewed,
            "InvalidSignatureException",
            Some("expired"),
        ),
    ] {
        let refused = client
            .send_with("GET", &describe, None, credentials, at, "")
            .await;
        assert_eq!((refused.0, refused.1.as_str()), (403, error));
        if let Some(message) = message {
            assert!(
                refused.2["Message"]
                    .as_str()
                    .unwrap_or_default()
                    .contains(message),
                "{error}: {}",
                refused.2
            );
        }
    }

    // Paths and methods.
    let unknown = client
        .post("/contact/teleport", json!({"InstanceId": INSTANCE_ID}))
        .await;
    assert_eq!(
        (unknown.0, unknown.1.as_str()),
        (404, "UnknownOperationException")
    );
    let wrong_method = client
        .send_with(
            "GET",
            "/contact/transfer",
            None,
            &client.credentials,
            now,
            "",
        )
        .await;
    assert_eq!(wrong_method.0, 405);

    // Members: required, unknown, lengths, enums, types, encoding.
    let cases = [
        (
            "/contact/transfer",
            json!({"InstanceId": INSTANCE_ID, "ContactId": task, "QueueId": "q-support"}),
            "ContactFlowId: is required",
        ),
        (
            "/contact/transfer",
            json!({"InstanceId": INSTANCE_ID, "ContactId": task, "QueueId": "q-support",
                   "ContactFlowId": "f-queue-transfer", "Priority": 1}),
            "unknown member",
        ),
        (
            "/contact/transfer",
            json!({"InstanceId": INSTANCE_ID, "ContactId": task, "QueueId": "q-support",
                   "ContactFlowId": "f-queue-transfer", "ClientToken": "t".repeat(501)}),
            "maximum 500",
        ),
        (
            "/contact/attributes",
            json!({"InstanceId": INSTANCE_ID, "InitialContactId": task, "Attributes": {"a": 1}}),
            "must be a string",
        ),
        (
            "/contact/attributes",
            json!({"InstanceId": INSTANCE_ID, "InitialContactId": task, "Attributes": {"not ok": "x"}}),
            "alphanumeric",
        ),
        (
            "/contact/attributes",
            json!({"InstanceId": INSTANCE_ID, "InitialContactId": task,
                   "Attributes": {"big": "x".repeat(32_766)}}),
            "32 KB",
        ),
        (
            &*format!("/metrics/current/{INSTANCE_ID}"),
            json!({"Filters": {"Queues": ["q-support"]}, "CurrentMetrics": [{"Name": "CONTACTS_IN_LINE", "Unit": "COUNT"}]}),
            "is not one of",
        ),
        (
            &*format!("/metrics/current/{INSTANCE_ID}"),
            json!({"Filters": {"Queues": ["q-support"]}, "CurrentMetrics": [{"Name": "OLDEST_CONTACT_AGE", "Unit": "COUNT"}]}),
            "SECONDS",
        ),
        (
            &*format!("/metrics/current/{INSTANCE_ID}"),
            json!({"Filters": {"Queues": ["q-support"], "Channels": ["VOICE"]}, "Groupings": ["QUEUE"],
                   "CurrentMetrics": [{"Name": "ESTIMATED_WAIT_TIME", "Unit": "SECONDS"}]}),
            "grouped by [QUEUE, CHANNEL]",
        ),
        (
            &*format!("/metrics/current/{INSTANCE_ID}"),
            json!({"Filters": {"Queues": ["q-support"]}, "Groupings": ["QUEUE", "CHANNEL"],
                   "CurrentMetrics": [{"Name": "AGENTS_ONLINE", "Unit": "COUNT"}]}),
            "needs a Channels filter",
        ),
        (
            &*format!("/metrics/current/{INSTANCE_ID}"),
            json!({"Filters": {"Queues": ["q-support"], "Channels": ["EMAIL"]},
                   "CurrentMetrics": [{"Name": "AGENTS_ONLINE", "Unit": "COUNT"}]}),
            "VOICE, CHAT, and TASK",
        ),
        (
            &*format!("/metrics/current/{INSTANCE_ID}"),
            json!({"Filters": {"Queues": ["q-support"]},
                   "CurrentMetrics": [{"Name": "AGENTS_ONLINE", "Unit": "COUNT"},
                                      {"Name": "AGENTS_ONLINE", "Unit": "COUNT"}]}),
            "asked for twice",
        ),
        (
            &*format!("/metrics/current/{INSTANCE_ID}"),
            json!({"Filters": {"Queues": ["q-support"]}, "Groupings": ["ROUTING_PROFILE"],
                   "CurrentMetrics": [{"Name": "CONTACTS_IN_QUEUE", "Unit": "COUNT"}]}),
            "routing profile filter",
        ),
        (
            &*format!("/metrics/current/{INSTANCE_ID}"),
            json!({"Filters": {"Queues": ["q-support"]}, "Groupings": ["QUEUE", "QUEUE"],
                   "CurrentMetrics": [{"Name": "AGENTS_ONLINE", "Unit": "COUNT"}]}),
            "given twice",
        ),
        (
            "/contact/transfer",
            json!({"InstanceId": INSTANCE_ID, "ContactId": task, "QueueId": "q-support",
                   "UserId": "u-agent-7", "ContactFlowId": "f-queue-transfer"}),
            "both QueueId and UserId",
        ),
        (
            "/contact/transfer",
            json!({"InstanceId": INSTANCE_ID, "ContactId": task, "QueueId": "q-support",
                   "ContactFlowId": "f-whisper"}),
            "cannot be used to transfer",
        ),
        (
            "/contact/transfer",
            json!({"InstanceId": INSTANCE_ID, "ContactId": contact_id("VOICE", 21),
                   "QueueId": "q-support", "ContactFlowId": "f-queue-transfer"}),
            "only supported for TASK and EMAIL",
        ),
    ];
    for (path, body, expected) in cases {
        let (status, error_type, answer) = client.post(path, body.clone()).await;
        assert_eq!(status, 400, "{path} {expected}: {error_type} {answer}");
        assert!(
            error_type.ends_with("Exception"),
            "{path} {expected}: no x-amzn-ErrorType"
        );
        let message = answer["Message"].as_str().unwrap_or_default();
        assert!(message.contains(expected), "{path} {expected}: {message:?}");
    }
    let form = client
        .send_with(
            "POST",
            "/contact/attributes",
            Some(format!("InstanceId={INSTANCE_ID}")),
            &client.credentials,
            now,
            "application/x-www-form-urlencoded",
        )
        .await;
    assert_eq!((form.0, form.1.as_str()), (400, "SerializationException"));

    // Idempotency: the same ClientToken with other parameters.
    let transfer = json!({"InstanceId": INSTANCE_ID, "ContactId": task, "QueueId": "q-support",
                          "ContactFlowId": "f-queue-transfer", "ClientToken": "same-token"});
    let first = client.post("/contact/transfer", transfer.clone()).await;
    assert_eq!(first.0, 200, "{first:?}");
    let again = client.post("/contact/transfer", transfer.clone()).await;
    assert_eq!(
        again.2["ContactId"], first.2["ContactId"],
        "a repeat answers the same"
    );
    let mut other = transfer;
    other["QueueId"] = json!("q-instant");
    let conflict = client.post("/contact/transfer", other).await;
    assert_eq!(
        (conflict.0, conflict.1.as_str()),
        (409, "IdempotencyException")
    );
}

#[tokio::test]
async fn the_contract_server_throttles_past_two_per_second_with_a_burst_of_five() {
    let server = ContractServer::start().await;
    let client = SignedClient::new(&server);
    let describe = format!("/contacts/{INSTANCE_ID}/{}", contact_id("TASK", 30));
    let mut statuses = Vec::new();
    // Back to back, faster than 2/s refills: the burst passes, then 429s.
    // Up to 40 calls, so that even a loaded machine (35 calls slower than
    // 17.5 s) cannot outpace the bucket.
    while statuses.len() < 40 && !statuses.iter().any(|(s, _)| *s == 429) {
        let answer = client
            .send_with(
                "GET",
                &describe,
                None,
                &client.credentials,
                SystemTime::now(),
                "",
            )
            .await;
        statuses.push((answer.0, answer.1));
    }
    assert!(statuses.len() > 5, "{statuses:?}");
    assert!(statuses[..5].iter().all(|(s, _)| *s == 200), "{statuses:?}");
    let throttled: Vec<_> = statuses.iter().filter(|(s, _)| *s == 429).collect();
    assert!(!throttled.is_empty(), "{statuses:?}");
    assert!(throttled.iter().all(|(_, t)| t == "ThrottlingException"));
    assert!(server.stats().await["throttled"].as_u64() >= Some(1));
}
