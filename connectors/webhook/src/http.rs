//! The connector's HTTP side. The delivery log: `GET
//! /v1/deliveries?handoff_id=…&limit=…` answers `{"attempts": […]}`, oldest
//! first; it carries no body, secret or context value, only what happened
//! to each request. Progress reports: `POST /v1/reports`, signed per
//! Standard Webhooks (see [`crate::report`]). The human's side of a chat:
//! `POST /v1/chats/{handoff_id}/{attempt}`, signed the same way (see
//! [`crate::chat`]). `/metrics` is not here: it
//! is merged in for loopback callers only, or served on `metrics.listen`
//! (see `baton_service_kit::metrics`).

use std::sync::Arc;
use std::time::SystemTime;

use axum::Json;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, FromRef, Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::Deserialize;
use serde_json::json;

use crate::chat::{ChatError, Chats, SignedRequest};
use crate::log::DeliveryLog;
use crate::report::{ReportError, Reports};

/// How far a report's `webhook-timestamp` may be from the connector's clock.
const REPORT_TOLERANCE_SECS: i64 = 5 * 60;
/// Reports are a few fields.
const MAX_REPORT_BYTES: usize = 16 * 1024;
/// A chat message: 4096 characters of text and ten attachment references
/// fit with room to spare.
const MAX_CHAT_BYTES: usize = 64 * 1024;

#[derive(Clone)]
struct HttpState {
    log: DeliveryLog,
    reports: Arc<Reports>,
    chats: Arc<Chats>,
}

impl FromRef<HttpState> for Arc<Chats> {
    fn from_ref(state: &HttpState) -> Self {
        state.chats.clone()
    }
}

impl FromRef<HttpState> for DeliveryLog {
    fn from_ref(state: &HttpState) -> Self {
        state.log.clone()
    }
}

impl FromRef<HttpState> for Arc<Reports> {
    fn from_ref(state: &HttpState) -> Self {
        state.reports.clone()
    }
}

/// The most rows one query returns.
const MAX_LIMIT: u32 = 1000;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct DeliveriesQuery {
    handoff_id: Option<String>,
    limit: Option<u32>,
}

pub fn router(log: DeliveryLog, reports: Arc<Reports>, chats: Arc<Chats>) -> Router {
    Router::new()
        .route("/v1/deliveries", get(deliveries))
        .route(
            "/v1/reports",
            post(report).layer(DefaultBodyLimit::max(MAX_REPORT_BYTES)),
        )
        .route(
            "/v1/chats/{handoff_id}/{attempt}",
            post(chat).layer(DefaultBodyLimit::max(MAX_CHAT_BYTES)),
        )
        .with_state(HttpState {
            log,
            reports,
            chats,
        })
}

/// Whether a request's `webhook-timestamp` is within the tolerance of the
/// connector's clock (a replay window).
fn timely(timestamp: i64) -> bool {
    let now = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64);
    (now - timestamp).abs() <= REPORT_TOLERANCE_SECS
}

/// The human's side of a chat, posted by the platform.
async fn chat(
    State(chats): State<Arc<Chats>>,
    Path((handoff_id, attempt)): Path<(String, u32)>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let (id, timestamp, signature) = match signature_headers(&headers, StatusCode::UNAUTHORIZED) {
        Ok(parts) => parts,
        Err((status, error)) => return refuse(status, error),
    };
    let request = SignedRequest {
        id,
        timestamp,
        signature,
        body: &body,
    };
    match chats.receive(&handoff_id, attempt, request) {
        Ok(()) => StatusCode::NO_CONTENT.into_response(),
        Err(error @ ChatError::Unauthenticated) => {
            tracing::warn!("chat request with an invalid signature refused");
            refuse(StatusCode::UNAUTHORIZED, &error.to_string())
        }
        Err(error @ ChatError::Unknown) => refuse(StatusCode::NOT_FOUND, &error.to_string()),
        Err(error @ ChatError::Invalid(_)) => refuse(StatusCode::BAD_REQUEST, &error.to_string()),
        Err(error @ ChatError::Over) => refuse(StatusCode::CONFLICT, &error.to_string()),
        Err(error @ ChatError::Full) => (
            StatusCode::TOO_MANY_REQUESTS,
            [("retry-after", "1")],
            Json(json!({ "error": error.to_string() })),
        )
            .into_response(),
        Err(ChatError::Store(error)) => {
            tracing::error!(%error, "the chat store failed");
            refuse(StatusCode::SERVICE_UNAVAILABLE, "the chat store failed")
        }
    }
}

/// The Standard Webhooks headers of a signed request: id, timestamp (a
/// timely one, else 401) and signature; missing or unreadable ones are
/// refused with `malformed`. `Err`: the refusal's status and text.
fn signature_headers(
    headers: &HeaderMap,
    malformed: StatusCode,
) -> Result<(&str, i64, &str), (StatusCode, &'static str)> {
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let (Some(id), Some(timestamp), Some(signature)) = (
        header("webhook-id"),
        header("webhook-timestamp"),
        header("webhook-signature"),
    ) else {
        return Err((
            malformed,
            "webhook-id, webhook-timestamp and webhook-signature are required",
        ));
    };
    let Ok(timestamp) = timestamp.parse::<i64>() else {
        return Err((malformed, "webhook-timestamp: not a number"));
    };
    if !timely(timestamp) {
        return Err((
            StatusCode::UNAUTHORIZED,
            "webhook-timestamp: too old or too new",
        ));
    }
    Ok((id, timestamp, signature))
}

fn refuse(status: StatusCode, error: &str) -> Response {
    (status, Json(json!({ "error": error }))).into_response()
}

async fn report(State(reports): State<Arc<Reports>>, headers: HeaderMap, body: Bytes) -> Response {
    let (id, timestamp, signature) = match signature_headers(&headers, StatusCode::BAD_REQUEST) {
        Ok(parts) => parts,
        Err((status, error)) => return refuse(status, error),
    };
    match reports.receive(id, timestamp, signature, &body).await {
        Ok(()) => StatusCode::NO_CONTENT.into_response(),
        Err(error @ ReportError::Invalid(_)) => refuse(StatusCode::BAD_REQUEST, &error.to_string()),
        Err(error @ ReportError::Unauthenticated) => {
            tracing::warn!("report with an invalid signature refused");
            refuse(StatusCode::UNAUTHORIZED, &error.to_string())
        }
        Err(error @ ReportError::Unknown) => refuse(StatusCode::NOT_FOUND, &error.to_string()),
    }
}

async fn deliveries(
    State(log): State<DeliveryLog>,
    query: Result<Query<DeliveriesQuery>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let Ok(Query(query)) = query else {
        return (
            StatusCode::BAD_REQUEST,
            Json(json!({"error": "query parameters are handoff_id and limit (1 to 1000)"})),
        )
            .into_response();
    };
    let limit = query.limit.unwrap_or(100);
    if limit == 0 || limit > MAX_LIMIT {
        return (
            StatusCode::BAD_REQUEST,
            Json(json!({"error": "limit: must be 1 to 1000"})),
        )
            .into_response();
    }
    let result =
        tokio::task::spawn_blocking(move || log.query(query.handoff_id.as_deref(), limit)).await;
    match result {
        Ok(Ok(attempts)) => Json(json!({ "attempts": attempts })).into_response(),
        Ok(Err(error)) => {
            tracing::error!(%error, "delivery log query failed");
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                Json(json!({"error": "the delivery log could not be read"})),
            )
                .into_response()
        }
        Err(_) => StatusCode::INTERNAL_SERVER_ERROR.into_response(),
    }
}
