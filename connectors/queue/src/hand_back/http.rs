//! `POST /api/handoffs/{id}/hand-back`: the desktop's "Return to AI". The
//! same front door as every desktop change (session cookie, CSRF token,
//! Origin, the agent role, and only the agent connected to the contact,
//! which is of one of the agent's tenants).

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use serde::Deserialize;

use super::DeskHttp;
use crate::desk::DeskFailure;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct HandBackRequest {
    disposition: String,
    #[serde(default)]
    notes: String,
    /// What the AI should do next, e.g. "customer verified; finish the
    /// address change".
    #[serde(default)]
    instruction: String,
}

pub(super) async fn hand_back(
    State(state): State<DeskHttp>,
    headers: HeaderMap,
    Path(id): Path<String>,
    Json(request): Json<HandBackRequest>,
) -> Result<StatusCode, DeskFailure> {
    state.desk.hand_back(
        &state.agent(&headers)?,
        &id,
        &request.disposition,
        &request.notes,
        &request.instruction,
    )?;
    Ok(StatusCode::NO_CONTENT)
}
