//! `GET /api/supervisor/outcomes`: the supervisor panel's figures, for
//! supervisor and admin sessions only (401 without a session, 403 for an
//! agent's or for one that does not see `outcomes.tenant`).

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};

use super::OutcomesError;
use crate::desk::DeskFailure;
use crate::http::{DeskHttp, Needs};

impl IntoResponse for OutcomesError {
    fn into_response(self) -> Response {
        let status = match self {
            OutcomesError::TimedOut => StatusCode::GATEWAY_TIMEOUT,
            OutcomesError::Control { .. } => StatusCode::BAD_GATEWAY,
        };
        (
            status,
            Json(serde_json::json!({ "error": self.to_string() })),
        )
            .into_response()
    }
}

pub(crate) async fn outcomes(
    State(state): State<DeskHttp>,
    headers: HeaderMap,
) -> Result<Response, Response> {
    let (_, session) = state
        .authorize(&headers, Needs::Supervisor, false)
        .map_err(IntoResponse::into_response)?;
    let Some(outcomes) = state.outcomes.as_deref() else {
        return Ok(Json(serde_json::json!({ "configured": false })).into_response());
    };
    if !session.sees(outcomes.tenant()) {
        return Err(DeskFailure::Forbidden(format!(
            "the outcome figures are tenant {}'s, which this session does not see",
            outcomes.tenant()
        ))
        .into_response());
    }
    let view = outcomes.view().await.map_err(IntoResponse::into_response)?;
    Ok(Json(&*view).into_response())
}
