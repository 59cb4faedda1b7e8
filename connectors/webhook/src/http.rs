//! The delivery log over HTTP: `GET /v1/deliveries?handoff_id=…&limit=…`
//! answers `{"attempts": […]}`, oldest first. It carries no body, secret or
//! context value, only what happened to each request.

use axum::Json;
use axum::Router;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde::Deserialize;
use serde_json::json;

use crate::log::DeliveryLog;

/// The most rows one query returns.
const MAX_LIMIT: u32 = 1000;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct DeliveriesQuery {
    handoff_id: Option<String>,
    limit: Option<u32>,
}

pub fn router(log: DeliveryLog) -> Router {
    Router::new()
        .route("/v1/deliveries", get(deliveries))
        .with_state(log)
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
