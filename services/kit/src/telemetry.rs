//! Logs, traces and metrics.
//!
//! Logs are structured lines on stderr (text or JSON) through `tracing`.
//! Traces are the same `tracing` spans, exported over OTLP when an endpoint
//! is configured (in the file or by the standard `OTEL_*` variables); with
//! none, no OpenTelemetry layer is installed at all, so tracing off costs
//! nothing beyond the log lines. The W3C `traceparent` of an incoming gRPC
//! call is continued ([`grpc_server_span`]) and passed on to every outgoing
//! call ([`inject_traceparent`], [`current_traceparent`]), so that one trace
//! follows a handoff from the AI runtime to the human's phone.
//!
//! Metrics are OpenTelemetry instruments (`opentelemetry::global::meter`),
//! read by a Prometheus registry ([`prometheus_text`]) and, with
//! an OTLP endpoint, exported periodically.

use std::time::Duration;

use opentelemetry::propagation::{Extractor, TextMapPropagator};
use opentelemetry::trace::{TraceContextExt, TracerProvider as _};
use opentelemetry_otlp::WithExportConfig;
use opentelemetry_sdk::metrics::SdkMeterProvider;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::{Sampler, SdkTracerProvider};
use tracing_opentelemetry::OpenTelemetrySpanExt;
use tracing_subscriber::EnvFilter;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

/// How log lines are written.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Deserialize)]
#[serde(try_from = "String")]
pub enum LogFormat {
    /// Human-readable lines.
    #[default]
    Text,
    /// One JSON object per line, with the fields of every enclosing span
    /// (trace id, handoff id) under `spans`.
    Json,
}

impl TryFrom<String> for LogFormat {
    type Error = String;

    // By hand, so that a wrong value says what would have been right.
    fn try_from(value: String) -> Result<Self, String> {
        match value.as_str() {
            "text" => Ok(LogFormat::Text),
            "json" => Ok(LogFormat::Json),
            other => Err(format!("expected \"text\" or \"json\", got {other:?}")),
        }
    }
}

/// The OTLP wire protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize)]
pub enum OtlpProtocol {
    #[serde(rename = "grpc")]
    Grpc,
    #[serde(rename = "http/protobuf")]
    HttpProtobuf,
}

/// The `[telemetry]` section every service's configuration carries.
#[derive(Debug, Clone, serde::Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TelemetryConfig {
    /// `text` or `json`.
    pub log_format: LogFormat,
    /// Which log lines are written (`tracing` filter syntax); `RUST_LOG`
    /// overrides it.
    pub log_filter: String,
    /// OTLP collector. Empty: `OTEL_EXPORTER_OTLP_ENDPOINT` (and the
    /// per-signal variables) decide; with neither, nothing is exported.
    pub otlp_endpoint: String,
    /// `grpc` or `http/protobuf`. Unset: `OTEL_EXPORTER_OTLP_PROTOCOL`, else
    /// `grpc`.
    pub otlp_protocol: Option<OtlpProtocol>,
    /// The share of new traces sampled (0.0–1.0). A call that arrives with a
    /// sampled `traceparent` is always recorded.
    pub trace_sample_ratio: f64,
    /// How often metrics are pushed over OTLP.
    #[serde(with = "humantime_serde")]
    pub metrics_interval: Duration,
}

impl Default for TelemetryConfig {
    fn default() -> Self {
        TelemetryConfig {
            log_format: LogFormat::Text,
            log_filter: "info".into(),
            otlp_endpoint: String::new(),
            otlp_protocol: None,
            trace_sample_ratio: 1.0,
            metrics_interval: Duration::from_secs(30),
        }
    }
}

/// Why telemetry could not start.
#[derive(Debug, thiserror::Error)]
pub enum TelemetryError {
    #[error("telemetry.{key}: {message}")]
    Invalid { key: &'static str, message: String },
    #[error("OTLP exporter: {0}")]
    Exporter(#[from] opentelemetry_otlp::ExporterBuildError),
    #[error("Prometheus exporter: {0}")]
    Prometheus(String),
}

/// The running telemetry pipelines; flushes and stops them when dropped.
pub struct Telemetry {
    tracer_provider: Option<SdkTracerProvider>,
    meter_provider: SdkMeterProvider,
}

impl std::fmt::Debug for Telemetry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Telemetry")
            .field("owns_tracer_provider", &self.tracer_provider.is_some())
            .finish_non_exhaustive()
    }
}

/// The registry the process's metrics are read into, once `init` ran.
static REGISTRY: std::sync::OnceLock<prometheus::Registry> = std::sync::OnceLock::new();

/// Every metric of the process in the Prometheus text exposition format
/// (empty before `init`).
pub fn prometheus_text() -> String {
    let Some(registry) = REGISTRY.get() else {
        return String::new();
    };
    prometheus::TextEncoder::new()
        .encode_to_string(&registry.gather())
        .unwrap_or_else(|error| format!("# encoding failed: {error}\n"))
}

/// An axum handler answering a Prometheus scrape with [`prometheus_text`].
/// Metrics name routes, connectors and outcomes, never customers, so the
/// endpoint needs no token.
pub async fn prometheus_scrape() -> axum::response::Response {
    use axum::response::IntoResponse;
    (
        [(
            axum::http::header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        prometheus_text(),
    )
        .into_response()
}

impl Drop for Telemetry {
    fn drop(&mut self) {
        // Export what is buffered, so that the last spans of a stopping
        // service (its shutdown included) reach the collector.
        if let Some(provider) = self.tracer_provider.take() {
            let _ = provider.shutdown();
        }
        let _ = self.meter_provider.shutdown();
    }
}

/// Installs logs, traces and metrics for the process. `service_name` is
/// the OpenTelemetry `service.name` unless `OTEL_SERVICE_NAME` says
/// otherwise. A second call in the same process installs nothing new (its
/// pipelines are dropped) and returns a handle that owns nothing.
pub fn init(service_name: &str, config: &TelemetryConfig) -> Result<Telemetry, TelemetryError> {
    if !(0.0..=1.0).contains(&config.trace_sample_ratio) {
        return Err(TelemetryError::Invalid {
            key: "trace_sample_ratio",
            message: format!("{} is not between 0.0 and 1.0", config.trace_sample_ratio),
        });
    }
    let resource = opentelemetry_sdk::Resource::builder()
        .with_service_name(
            std::env::var("OTEL_SERVICE_NAME")
                .ok()
                .filter(|name| !name.is_empty())
                .unwrap_or_else(|| service_name.to_string()),
        )
        .build();
    let export = otlp_target(config)?;

    let registry = prometheus::Registry::new();
    let prometheus_reader = opentelemetry_prometheus::exporter()
        .with_registry(registry.clone())
        .without_target_info()
        .build()
        .map_err(|error| TelemetryError::Prometheus(error.to_string()))?;
    let mut meters = SdkMeterProvider::builder()
        .with_resource(resource.clone())
        .with_reader(prometheus_reader);
    if let Some((protocol, endpoint)) = &export {
        let exporter = match protocol {
            OtlpProtocol::Grpc => {
                let mut builder = opentelemetry_otlp::MetricExporter::builder().with_tonic();
                if let Some(endpoint) = endpoint {
                    builder = builder.with_endpoint(endpoint);
                }
                builder.build()?
            }
            OtlpProtocol::HttpProtobuf => {
                let mut builder = opentelemetry_otlp::MetricExporter::builder()
                    .with_http()
                    .with_protocol(opentelemetry_otlp::Protocol::HttpBinary);
                if let Some(endpoint) = endpoint {
                    builder = builder.with_endpoint(signal_url(endpoint, "metrics"));
                }
                builder.build()?
            }
        };
        meters = meters.with_reader(
            opentelemetry_sdk::metrics::PeriodicReader::builder(exporter)
                .with_interval(config.metrics_interval)
                .build(),
        );
    }
    let meter_provider = meters.build();
    // Only the first call installs its pipelines: `baton dev` runs several
    // services in one process, and they share them.
    let first = REGISTRY.set(registry).is_ok();
    if first {
        opentelemetry::global::set_meter_provider(meter_provider.clone());
    }

    // Spans are always made, exported or not: their W3C context is what a
    // SIP INVITE, a webhook or a desktop event carries on, so that the
    // contact center can correlate even when Baton exports nothing.
    let mut tracer_provider = SdkTracerProvider::builder()
        .with_resource(resource)
        .with_sampler(Sampler::ParentBased(Box::new(Sampler::TraceIdRatioBased(
            config.trace_sample_ratio,
        ))));
    if let Some((protocol, endpoint)) = &export {
        let exporter = match protocol {
            OtlpProtocol::Grpc => {
                let mut builder = opentelemetry_otlp::SpanExporter::builder().with_tonic();
                if let Some(endpoint) = endpoint {
                    builder = builder.with_endpoint(endpoint);
                }
                builder.build()?
            }
            OtlpProtocol::HttpProtobuf => {
                let mut builder = opentelemetry_otlp::SpanExporter::builder()
                    .with_http()
                    .with_protocol(opentelemetry_otlp::Protocol::HttpBinary);
                if let Some(endpoint) = endpoint {
                    builder = builder.with_endpoint(signal_url(endpoint, "traces"));
                }
                builder.build()?
            }
        };
        tracer_provider = tracer_provider.with_batch_exporter(exporter);
    }
    let tracer_provider = tracer_provider.build();

    let filter = EnvFilter::try_from_default_env()
        .or_else(|_| EnvFilter::try_new(&config.log_filter))
        .map_err(|error| TelemetryError::Invalid {
            key: "log_filter",
            message: error.to_string(),
        })?;
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let logs = match config.log_format {
        LogFormat::Text => tracing_subscriber::fmt::layer()
            .with_writer(crate::redact::RedactingWriter(std::io::stderr))
            .with_ansi(ansi)
            .boxed(),
        LogFormat::Json => tracing_subscriber::fmt::layer()
            .json()
            .flatten_event(true)
            .with_current_span(false)
            .with_span_list(true)
            .with_writer(crate::redact::RedactingWriter(std::io::stderr))
            .boxed(),
    };
    let otel = tracing_opentelemetry::layer()
        .with_tracer(tracer_provider.tracer("baton"))
        .with_error_records_to_exceptions(true);
    let _ = tracing_subscriber::registry()
        .with(filter)
        .with(logs)
        .with(otel)
        .try_init();

    Ok(Telemetry {
        tracer_provider: first.then_some(tracer_provider),
        meter_provider,
    })
}

use tracing_subscriber::Layer as _;

/// Where spans and metrics go: `None` when nothing is exported. The
/// endpoint is `None` when the OTLP exporter reads it from `OTEL_*`
/// variables itself.
fn otlp_target(
    config: &TelemetryConfig,
) -> Result<Option<(OtlpProtocol, Option<String>)>, TelemetryError> {
    let variable = |name: &str| std::env::var(name).ok().filter(|value| !value.is_empty());
    if variable("OTEL_SDK_DISABLED").is_some_and(|value| value.eq_ignore_ascii_case("true")) {
        return Ok(None);
    }
    let endpoint = (!config.otlp_endpoint.is_empty()).then(|| config.otlp_endpoint.clone());
    let from_environment = [
        "OTEL_EXPORTER_OTLP_ENDPOINT",
        "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
    ]
    .iter()
    .any(|name| variable(name).is_some());
    if endpoint.is_none() && !from_environment {
        return Ok(None);
    }
    let protocol = match config.otlp_protocol {
        Some(protocol) => protocol,
        None => match variable("OTEL_EXPORTER_OTLP_PROTOCOL").as_deref() {
            None | Some("grpc") => OtlpProtocol::Grpc,
            Some("http/protobuf") => OtlpProtocol::HttpProtobuf,
            Some(other) => {
                return Err(TelemetryError::Invalid {
                    key: "otlp_protocol",
                    message: format!(
                        "OTEL_EXPORTER_OTLP_PROTOCOL={other} is not supported (grpc or http/protobuf)"
                    ),
                });
            }
        },
    };
    Ok(Some((protocol, endpoint)))
}

/// The OTLP/HTTP URL of one signal under a collector's base URL.
fn signal_url(base: &str, signal: &str) -> String {
    let path = format!("/v1/{signal}");
    if base.ends_with(&path) {
        base.to_string()
    } else {
        format!("{}{path}", base.trim_end_matches('/'))
    }
}

/// The span of one incoming gRPC call, for `Server::trace_fn`: a child of
/// the caller's `traceparent` when there is one, with the OpenTelemetry RPC
/// attributes and the trace id as a field, so that every log line written
/// while serving the call names its trace. Services record `handoff_id`
/// once they know it.
pub fn grpc_server_span(request: &http::Request<()>) -> tracing::Span {
    let path = request.uri().path();
    let (service, method) = path
        .trim_start_matches('/')
        .split_once('/')
        .unwrap_or((path, ""));
    let parent = TraceContextPropagator::new().extract(&HeaderExtractor(request.headers()));
    let span = tracing::info_span!(
        "grpc.server",
        otel.name = %path.trim_start_matches('/'),
        otel.kind = "server",
        rpc.system = "grpc",
        rpc.service = %service,
        rpc.method = %method,
        trace_id = tracing::field::Empty,
        handoff_id = tracing::field::Empty,
    );
    let remote = parent.span().span_context().clone();
    if remote.is_valid() {
        let _ = span.set_parent(parent);
    }
    record_trace_id_or(&span, &remote);
    span
}

/// Records the span's OpenTelemetry trace id in its `trace_id` field (when
/// traces are on).
pub fn record_trace_id(span: &tracing::Span) {
    record_trace_id_or(span, &opentelemetry::trace::SpanContext::empty_context());
}

/// Records the span's OpenTelemetry trace id (or, with tracing off, the
/// `remote` one it continues) in its `trace_id` field.
fn record_trace_id_or(span: &tracing::Span, remote: &opentelemetry::trace::SpanContext) {
    let own = span.context().span().span_context().trace_id();
    let trace_id = if own != opentelemetry::trace::TraceId::INVALID {
        own
    } else {
        remote.trace_id()
    };
    if trace_id != opentelemetry::trace::TraceId::INVALID {
        span.record("trace_id", tracing::field::display(trace_id));
    }
}

/// The `traceparent` of the current span, to pass on in a SIP header, a
/// webhook or a desktop event; also when nothing is exported. `None` only
/// outside any span.
pub fn current_traceparent() -> Option<String> {
    let mut carrier = std::collections::HashMap::new();
    TraceContextPropagator::new().inject_context(&tracing::Span::current().context(), &mut carrier);
    carrier.remove("traceparent")
}

/// Adds the current span's `traceparent` to an outgoing gRPC call.
pub fn inject_traceparent(metadata: &mut tonic::metadata::MetadataMap) {
    if let Some(value) = current_traceparent()
        .and_then(|value| tonic::metadata::MetadataValue::try_from(value.as_str()).ok())
    {
        metadata.insert("traceparent", value);
    }
}

struct HeaderExtractor<'a>(&'a http::HeaderMap);

impl Extractor for HeaderExtractor<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(|value| value.to_str().ok())
    }

    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(http::HeaderName::as_str).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn http_endpoints_get_the_signal_path_once() {
        assert_eq!(
            signal_url("http://127.0.0.1:4318", "traces"),
            "http://127.0.0.1:4318/v1/traces"
        );
        assert_eq!(
            signal_url("http://127.0.0.1:4318/v1/traces", "traces"),
            "http://127.0.0.1:4318/v1/traces"
        );
    }

    #[test]
    fn log_lines_inside_a_call_name_the_callers_trace_even_with_export_off() {
        #[derive(Clone, Default)]
        struct Buffer(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);
        impl std::io::Write for Buffer {
            fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
                self.0.lock().expect("buffer").extend_from_slice(bytes);
                Ok(bytes.len())
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
        let buffer = Buffer::default();
        let writer = buffer.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_writer(move || writer.clone())
            .with_ansi(false)
            .finish();
        tracing::subscriber::with_default(subscriber, || {
            let request = http::Request::builder()
                .uri("/baton.handoff.v1.HandoffService/CreateHandoff")
                .header(
                    "traceparent",
                    "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
                )
                .body(())
                .expect("request");
            let span = grpc_server_span(&request);
            let _entered = span.enter();
            tracing::info!("inside the call");
        });
        let output = String::from_utf8(buffer.0.lock().expect("buffer").clone()).expect("utf-8");
        assert!(
            output.contains("trace_id=4bf92f3577b34da6a3ce929d0e0e4736"),
            "{output}"
        );
        assert!(output.contains("rpc.method=CreateHandoff"), "{output}");
    }

    #[test]
    fn sample_ratio_out_of_range_names_the_key() {
        let config = TelemetryConfig {
            trace_sample_ratio: 1.5,
            ..TelemetryConfig::default()
        };
        let error = init("test", &config).expect_err("rejects");
        assert!(
            error.to_string().contains("telemetry.trace_sample_ratio"),
            "{error}"
        );
    }
}
