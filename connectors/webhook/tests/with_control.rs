//! The real control service, the webhook connector binary and a receiving
//! endpoint: the context the control service renders for the WEBHOOK
//! mechanism reaches the receiver, signed, without sensitive values, and
//! the handoff completes, and the request carries the caller's trace
//! (W3C `traceparent`) on to the receiver. Needs `baton-control` built (CI builds every
//! binary first; locally `cargo build -p baton-control`).

mod common;

use baton_proto::handoff::v1::CreateHandoffRequest;
use baton_proto::types::v1 as pb;
use baton_tests::{Service, handoff_client};
use common::{SECRET, receiver, start_receiver};

fn request() -> CreateHandoffRequest {
    baton_tests::sample_request(
        "webhook-e2e-1",
        pb::target::Kind::Queue(pb::QueueTarget {
            name: "billing".into(),
            skills: vec![],
        }),
    )
}

/// The AI runtime's trace, continued by the control service and the
/// connector. Spans are exported to a port nobody listens on: propagation
/// must not depend on a collector being there.
const TRACE_ID: &str = "0af7651916cd43dd8448eb211c80319c";
const TRACING_ENV: &[(&str, &str)] = &[
    ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:9"),
    ("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc"),
];

#[tokio::test]
async fn a_handoff_to_a_webhook_queue_reaches_the_receiver_and_completes() {
    let receiver = receiver(&[("crm", vec![])], None);
    let receiver_addr = start_receiver(receiver.clone()).await;
    let dir = tempfile::tempdir().expect("tempdir");

    let webhook_config = dir.path().join("webhook.toml");
    std::fs::write(
        &webhook_config,
        format!(
            "delivery_log = {log:?}\ndata_dir = {data:?}\n\n[endpoints.crm]\nurl = \"http://{receiver_addr}/hooks/crm\"\nsecret = \"{SECRET}\"\n\n[queues]\nbilling = [\"crm\"]\n",
            log = dir.path().join("deliveries.sqlite3").display().to_string(),
            data = dir.path().join("data").display().to_string(),
        ),
    )
    .expect("writes");
    let webhook = Service::start_with_env(
        "baton-connector-webhook",
        &[
            "--config",
            webhook_config.to_str().expect("path"),
            "--listen",
            "127.0.0.1:0",
            "--http-listen",
            "127.0.0.1:0",
        ],
        TRACING_ENV,
        dir.path(),
    )
    .await
    .expect("the webhook connector starts");

    let control = baton_tests::control_with_connector(
        "webhook",
        &webhook.endpoint("grpc"),
        TRACING_ENV,
        dir.path(),
    )
    .await
    .expect("the control service starts (build it first: cargo build -p baton-control)");

    let mut client = handoff_client(&control).await;
    let mut create = tonic::Request::new(request());
    create.metadata_mut().insert(
        "traceparent",
        format!("00-{TRACE_ID}-b7ad6b7169203331-01")
            .parse()
            .expect("metadata"),
    );
    let handoff_id = baton_tests::create_handoff(&mut client, create).await;
    baton_tests::expect_completed(&mut client, &handoff_id, 400, &[&control]).await;

    let received = receiver.received();
    assert_eq!(received.len(), 1);
    let traceparent = received[0].traceparent.as_deref().unwrap_or_default();
    assert!(
        traceparent.starts_with(&format!("00-{TRACE_ID}-")) && traceparent.ends_with("-01"),
        "the webhook continues the caller's trace: {traceparent:?}"
    );
    assert!(
        !traceparent.contains("b7ad6b7169203331"),
        "the parent is the connector's span, not the caller's: {traceparent}"
    );
    let data = &received[0].body["data"];
    assert_eq!(data["handoff_id"], handoff_id.as_str());
    assert_eq!(
        data["context"]["summary"],
        "Customer was charged twice for the March invoice"
    );
    assert_eq!(data["context"]["entities"]["issue_type"], "double charge");
    let text = received[0].body.to_string();
    assert!(
        !text.contains("ACC-99887766"),
        "sensitive entity sent: {text}"
    );
    assert!(!text.contains("+14155550123"), "caller number sent: {text}");
    assert!(
        data["omitted_fields"]
            .as_array()
            .expect("omitted")
            .iter()
            .any(|f| f == "entities.account_number"),
        "{data}"
    );
    // The reference in the message opens the full context on the control service.
    let context_url = data["reference"]["context_url"]
        .as_str()
        .expect("context_url");
    let context = reqwest::get(context_url).await.expect("context answers");
    assert_eq!(context.status(), 200);
}
