//! Traces and metrics of real processes: the control service exports spans
//! over OTLP/gRPC and the script connector over OTLP/HTTP to collectors run
//! by this test; one handoff makes one trace across both, continuing the
//! caller's `traceparent`, with no customer data in any span. The
//! Prometheus endpoint counts and times handoffs.

mod common;

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use baton_proto::handoff::v1::HandoffEventKind;
use common::{Stack, create, http_get, queue, request, watch_until};
use opentelemetry_proto::tonic::collector::metrics::v1::metrics_service_server::{
    MetricsService, MetricsServiceServer,
};
use opentelemetry_proto::tonic::collector::metrics::v1::{
    ExportMetricsServiceRequest, ExportMetricsServiceResponse,
};
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{
    TraceService, TraceServiceServer,
};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use opentelemetry_proto::tonic::common::v1::any_value::Value;
use prost::Message;
use tokio::net::TcpListener;

/// One exported span, flattened with the name of the service that sent it.
#[derive(Debug, Clone)]
struct CollectedSpan {
    service: String,
    name: String,
    trace_id: String,
    span_id: String,
    parent_span_id: String,
    /// Every attribute and event of the span, as text, for the PII check.
    text: String,
}

#[derive(Clone, Default)]
struct Collector {
    spans: Arc<Mutex<Vec<CollectedSpan>>>,
}

impl Collector {
    fn take(&self, request: ExportTraceServiceRequest) {
        let mut spans = self.spans.lock().expect("spans");
        for resource_spans in request.resource_spans {
            let service = resource_spans
                .resource
                .iter()
                .flat_map(|resource| resource.attributes.iter())
                .find(|attribute| attribute.key == "service.name")
                .and_then(|attribute| attribute.value.as_ref())
                .and_then(|value| match &value.value {
                    Some(Value::StringValue(name)) => Some(name.clone()),
                    _ => None,
                })
                .unwrap_or_default();
            for scope in resource_spans.scope_spans {
                for span in scope.spans {
                    let text = format!("{:?} {:?}", span.attributes, span.events);
                    spans.push(CollectedSpan {
                        service: service.clone(),
                        name: span.name,
                        trace_id: hex(&span.trace_id),
                        span_id: hex(&span.span_id),
                        parent_span_id: hex(&span.parent_span_id),
                        text,
                    });
                }
            }
        }
    }

    fn spans(&self) -> Vec<CollectedSpan> {
        self.spans.lock().expect("spans").clone()
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|byte| format!("{byte:02x}")).collect()
}

#[tonic::async_trait]
impl TraceService for Collector {
    async fn export(
        &self,
        request: tonic::Request<ExportTraceServiceRequest>,
    ) -> Result<tonic::Response<ExportTraceServiceResponse>, tonic::Status> {
        self.take(request.into_inner());
        Ok(tonic::Response::new(ExportTraceServiceResponse::default()))
    }
}

#[tonic::async_trait]
impl MetricsService for Collector {
    async fn export(
        &self,
        _request: tonic::Request<ExportMetricsServiceRequest>,
    ) -> Result<tonic::Response<ExportMetricsServiceResponse>, tonic::Status> {
        Ok(tonic::Response::new(ExportMetricsServiceResponse::default()))
    }
}

/// An OTLP/gRPC collector on loopback; returns its endpoint.
async fn grpc_collector(collector: Collector) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let address = listener.local_addr().expect("address");
    tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(TraceServiceServer::new(collector.clone()))
            .add_service(MetricsServiceServer::new(collector))
            .serve_with_incoming(tokio_stream::wrappers::TcpListenerStream::new(listener)),
    );
    format!("http://{address}")
}

/// An OTLP/HTTP (binary protobuf) collector on loopback, checking the
/// content type as the OTLP specification requires; returns its base URL.
async fn http_collector(collector: Collector) -> String {
    use axum::http::{HeaderMap, StatusCode, header};
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let address = listener.local_addr().expect("address");
    let traces = {
        let collector = collector.clone();
        move |headers: HeaderMap, body: axum::body::Bytes| {
            let collector = collector.clone();
            async move {
                if headers
                    .get(header::CONTENT_TYPE)
                    .and_then(|v| v.to_str().ok())
                    != Some("application/x-protobuf")
                {
                    return StatusCode::UNSUPPORTED_MEDIA_TYPE;
                }
                match ExportTraceServiceRequest::decode(body) {
                    Ok(request) => {
                        collector.take(request);
                        StatusCode::OK
                    }
                    Err(_) => StatusCode::BAD_REQUEST,
                }
            }
        }
    };
    let app = axum::Router::new()
        .route("/v1/traces", axum::routing::post(traces))
        .route(
            "/v1/metrics",
            axum::routing::post(|| async { StatusCode::OK }),
        );
    tokio::spawn(async move { axum::serve(listener, app).await });
    format!("http://{address}")
}

const TRACE_ID: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const CALLER_SPAN_ID: &str = "00f067aa0ba902b7";

#[tokio::test]
async fn one_handoff_is_one_trace_across_control_and_connector_without_customer_data() {
    let collector = Collector::default();
    let grpc = grpc_collector(collector.clone()).await;
    let http = http_collector(collector.clone()).await;
    let stack = Stack::start_with_env(
        &[
            ("BATON_SCRIPT_TELEMETRY__OTLP_ENDPOINT", http.as_str()),
            ("BATON_SCRIPT_TELEMETRY__OTLP_PROTOCOL", "http/protobuf"),
            ("OTEL_BSP_SCHEDULE_DELAY", "100"),
        ],
        &[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", grpc.as_str()),
            ("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc"),
            ("OTEL_BSP_SCHEDULE_DELAY", "100"),
        ],
    )
    .await;
    let mut client = stack.client().await;

    let mut create_request = tonic::Request::new(request("traced-1", queue("support")));
    create_request.metadata_mut().insert(
        "traceparent",
        format!("00-{TRACE_ID}-{CALLER_SPAN_ID}-01")
            .parse()
            .expect("metadata"),
    );
    let id = baton_tests::create_handoff(&mut client, create_request).await;
    watch_until(&mut client, &id, HandoffEventKind::Completed).await;

    // Spans leave in batches; wait (bounded) for both services' spans.
    let mut spans = Vec::new();
    for _ in 0..100 {
        spans = collector.spans();
        let services: HashSet<&str> = spans
            .iter()
            .filter(|span| span.trace_id == TRACE_ID)
            .map(|span| span.service.as_str())
            .collect();
        let connector_done = spans.iter().any(|span| {
            span.service == "baton-connector-script"
                && span.name.ends_with("ConnectorService/StartTransfer")
        });
        if services.contains("baton-control") && connector_done {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let ours: Vec<&CollectedSpan> = spans.iter().filter(|s| s.trace_id == TRACE_ID).collect();
    let by_id: HashMap<&str, &CollectedSpan> = ours
        .iter()
        .map(|span| (span.span_id.as_str(), *span))
        .collect();
    let describe = || {
        ours.iter()
            .map(|s| {
                format!(
                    "{} {} {}<-{}",
                    s.service, s.name, s.span_id, s.parent_span_id
                )
            })
            .collect::<Vec<_>>()
            .join("\n")
    };

    // The control service continues the caller's span.
    let create_span = ours
        .iter()
        .find(|s| s.service == "baton-control" && s.name.ends_with("HandoffService/CreateHandoff"))
        .unwrap_or_else(|| {
            panic!(
                "no CreateHandoff span in the caller's trace:\n{}",
                describe()
            )
        });
    assert_eq!(create_span.parent_span_id, CALLER_SPAN_ID, "{}", describe());

    // The connector's StartTransfer span is a child of the control
    // service's client span for that call.
    let start_transfer = ours
        .iter()
        .find(|s| {
            s.service == "baton-connector-script"
                && s.name.ends_with("ConnectorService/StartTransfer")
        })
        .unwrap_or_else(|| panic!("no connector span in the caller's trace:\n{}", describe()));
    let client_span = by_id
        .get(start_transfer.parent_span_id.as_str())
        .unwrap_or_else(|| panic!("the connector span's parent is missing:\n{}", describe()));
    assert_eq!(client_span.service, "baton-control");
    assert!(
        client_span.name.ends_with("StartTransfer"),
        "{}",
        describe()
    );

    // The transfer's own span hangs under the connector's call, and every
    // span but the first has its parent in the trace.
    assert!(
        ours.iter()
            .any(|s| s.name == "connector.transfer" && s.parent_span_id == start_transfer.span_id),
        "{}",
        describe()
    );
    for span in &ours {
        assert!(
            span.parent_span_id == CALLER_SPAN_ID
                || by_id.contains_key(span.parent_span_id.as_str()),
            "orphan span {} in:\n{}",
            span.name,
            describe()
        );
    }
    // Each state transition has its span.
    assert!(
        ours.iter()
            .filter(|s| s.name.starts_with("handoff "))
            .count()
            >= 4,
        "{}",
        describe()
    );

    // No customer data anywhere in any exported span, ours or not.
    for span in &spans {
        for secret in [
            "ACC-99887766",
            "+14155550123",
            "charged twice",
            "Refund likely",
            "a84b4c76e66710",
        ] {
            assert!(
                !span.text.contains(secret) && !span.name.contains(secret),
                "span {} of {} carries {secret:?}: {}",
                span.name,
                span.service,
                span.text
            );
        }
    }
}

#[tokio::test]
async fn the_prometheus_endpoint_counts_and_times_handoffs() {
    let stack = Stack::start().await;
    let mut client = stack.client().await;
    for n in 0..2 {
        let id = create(
            &mut client,
            request(&format!("metrics-ok-{n}"), queue("support")),
        )
        .await;
        watch_until(&mut client, &id, HandoffEventKind::Completed).await;
    }
    let mut fallback = request("metrics-fallback", pb_route("fallback"));
    fallback.mode = baton_proto::types::v1::TransferMode::Warm as i32;
    let id = create(&mut client, fallback).await;
    watch_until(&mut client, &id, HandoffEventKind::Completed).await;

    let (status, body) = http_get(stack.control().addr("http"), "/metrics").await;
    assert_eq!(status, 200, "{body}");
    let value = |name: &str, labels: &[&str]| -> f64 { sample(&body, name, labels) };
    assert_eq!(
        value("baton_handoffs_started_total", &[]),
        3.0,
        "started in:\n{body}"
    );
    assert_eq!(
        value(
            "baton_handoffs_started_total",
            &[
                "reason=\"ESCALATION_KIND_EXPLICIT_REQUEST\"",
                "route=\"route:fallback\""
            ]
        ),
        1.0,
        "started by route in:\n{body}"
    );
    assert_eq!(
        value(
            "baton_handoffs_finished_total",
            &["connector=\"script\"", "outcome=\"completed\""]
        ),
        3.0,
        "finished in:\n{body}"
    );
    assert_eq!(
        value("baton_handoff_time_to_human_seconds_count", &[]),
        3.0,
        "time to human in:\n{body}"
    );
    // No route of this configuration names the queue `support`: a queue
    // name the caller chose folds into `other`, keeping series bounded.
    assert_eq!(
        value(
            "baton_handoff_time_to_human_seconds_bucket",
            &["route=\"queue:other\"", "le=\"+Inf\""]
        ),
        2.0,
        "histogram buckets in:\n{body}"
    );
    // The fallback route's busy target was given up once, and its agents
    // target queued before connecting.
    assert_eq!(
        value(
            "baton_handoff_fallbacks_total",
            &["connector=\"script\"", "reason=\"FAILURE_REASON_BUSY\""]
        ),
        1.0,
        "fallbacks in:\n{body}"
    );
    assert_eq!(
        value("baton_handoff_queue_wait_seconds_count", &[]),
        1.0,
        "queue wait in:\n{body}"
    );
    assert!(
        value(
            "baton_store_operation_duration_seconds_count",
            &["operation=\"append\""]
        ) >= 10.0,
        "store latency in:\n{body}"
    );
    // No customer data in labels.
    for secret in ["ACC-99887766", "+14155550123", "billing.dispute"] {
        assert!(!body.contains(secret), "metrics carry {secret:?}");
    }
}

fn pb_route(name: &str) -> baton_proto::types::v1::target::Kind {
    baton_proto::types::v1::target::Kind::Route(name.into())
}

/// The sum of the samples of metric `name` whose labels include all of
/// `labels` (each `key="value"`).
fn sample(body: &str, name: &str, labels: &[&str]) -> f64 {
    body.lines()
        .filter(|line| !line.starts_with('#'))
        .filter_map(|line| {
            let (series, value) = line.rsplit_once(' ')?;
            let (metric, rest) = series.split_once('{').unwrap_or((series, ""));
            (metric == name && labels.iter().all(|label| rest.contains(label)))
                .then(|| value.parse::<f64>().ok())
                .flatten()
        })
        .sum()
}
