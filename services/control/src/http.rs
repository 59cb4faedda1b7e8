//! The HTTP side of the control service: the context of a handoff for
//! whoever the handoff reaches, as JSON (`/v1/handoffs/{id}/context`) and as
//! a readable screen-pop page (`/v1/handoffs/{id}/screen-pop`). Both need
//! the handoff's signed context token (`?token=` or `Authorization: Bearer`).
//! Sensitive entities are masked.
//!
//! Reads are bounded: per handoff (a token bucket, `429` with
//! `Retry-After` beyond it), per source address for refused tokens (the
//! service's failed-authentication limit), and in the audit log, where
//! repeated reads of one page count on one record.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use axum::Extension;
use axum::Router;
use axum::extract::{ConnectInfo, Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use serde::Deserialize;
use uuid::Uuid;

use crate::domain::Handoff;
use crate::domain::HandoffState;
use crate::error::ControlError;
use crate::store::{AuditAction, AuditEntry, HandoffStore, StoreError};
use crate::token::{Purpose, TokenSigner};

mod page;

/// A handoff with a context to show, for tests elsewhere in the crate.
#[cfg(test)]
pub(crate) use page::tests::handoff as sample_handoff;
pub use page::{context_document, screen_pop_page};

#[derive(Clone)]
pub struct HttpState {
    pub store: Arc<dyn HandoffStore>,
    pub tokens: TokenSigner,
    /// How long after a handoff completed or failed its tokens still open
    /// its context (the human may read it during wrap-up). A cancelled
    /// handoff's tokens stop at once.
    pub ended_token_grace: std::time::Duration,
    /// Reads per handoff, and how long repeated reads share a record.
    pub reads: ReadLimiter,
    /// Refused tokens per source address (shared with the gRPC listener's
    /// failed authentications).
    pub failures: baton_auth::FailureLimiter,
}

/// How often one handoff's context may be read, in bounded memory.
#[derive(Clone)]
pub struct ReadLimiter {
    buckets: Arc<baton_auth::rate_limit::TenantBuckets>,
    audit_window: Duration,
}

impl ReadLimiter {
    pub fn new(config: &crate::config::ContextReadsConfig) -> Result<Self, String> {
        let buckets = baton_auth::rate_limit::TenantBuckets::new(&baton_auth::RateLimitConfig {
            requests_per_second: config.per_minute / 60.0,
            burst: config.burst,
            max_tenants: config.max_tracked,
        })
        .map_err(|e| format!("context_reads: {e}"))?;
        Ok(Self {
            buckets: Arc::new(buckets),
            audit_window: config.audit_window,
        })
    }
}

/// The peer of a request, when the server recorded it.
type Peer = Option<Extension<ConnectInfo<SocketAddr>>>;

#[derive(Debug, Deserialize)]
pub struct TokenQuery {
    token: Option<String>,
}

/// The context pages. `/metrics` is not here: the server merges in the
/// kit's metrics routes (loopback callers only, or none with a
/// `metrics.listen` of its own).
pub fn router(state: HttpState) -> Router {
    Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route("/v1/handoffs/{id}/{page}", get(handoff_page))
        .with_state(state)
}

/// Whether tokens of `handoff` still open it at `now_ms`.
fn tokens_still_open(handoff: &Handoff, grace: std::time::Duration, now_ms: i64) -> bool {
    match handoff.state {
        HandoffState::Cancelled => false,
        state if state.is_terminal() => {
            let grace = i64::try_from(grace.as_millis()).unwrap_or(i64::MAX);
            now_ms <= handoff.updated_at_ms.saturating_add(grace)
        }
        _ => true,
    }
}

/// The handoff a request's context token opens, once the view is in the
/// audit log (`page` says which page was read). Every refused token is
/// [`ControlError::ContextTokenRefused`], whatever the reason.
async fn authorised_handoff(
    state: &HttpState,
    id: &str,
    query: &TokenQuery,
    headers: &HeaderMap,
    peer: Peer,
    page: &str,
) -> Result<Handoff, ControlError> {
    let bearer = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    let token = query.token.as_deref().or(bearer).unwrap_or_default();
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    let verified = Uuid::parse_str(id).ok().is_some_and(|uuid| {
        state
            .tokens
            .verify(token, uuid, Purpose::ReadContext, now.as_secs())
            .is_ok()
    });
    if !verified {
        if let Some(Extension(ConnectInfo(peer))) = peer
            && let Err(retry_after) = state.failures.failed(peer.ip())
        {
            return Err(ControlError::TooManyRefusedTokens { retry_after });
        }
        return Err(ControlError::ContextTokenRefused);
    }
    // Only a valid token spends its handoff's reads: nobody else can
    // exhaust them.
    if let Err(retry_after) = state.reads.buckets.take(id, Instant::now()) {
        return Err(ControlError::ContextReadTooOften { retry_after });
    }
    let now_ms = i64::try_from(now.as_millis()).unwrap_or(i64::MAX);
    // The token proves access to exactly this handoff, whatever its tenant.
    let handoff = state.store.find_by_id(id).await.map_err(refused_if_gone)?;
    let access = state
        .store
        .context_access(id)
        .await
        .map_err(refused_if_gone)?;
    if access.closed() || !tokens_still_open(&handoff, state.ended_token_grace, now_ms) {
        tracing::info!(handoff_id = %id, "context token refused: revoked, purged or the handoff ended");
        return Err(ControlError::ContextTokenRefused);
    }
    // Recorded before the context leaves: no audit record, no context.
    // Reads of the same page within the window count on one record.
    let window = i64::try_from(state.reads.audit_window.as_millis()).unwrap_or(i64::MAX);
    let entry = AuditEntry {
        tenant: handoff.tenant.clone(),
        handoff_id: handoff.id.clone(),
        action: AuditAction::Viewed,
        actor: "context-token".into(),
        credential: page.to_owned(),
        time_ms: now_ms,
        detail: String::new(),
        connector: String::new(),
    };
    state
        .store
        .record_view(entry, now_ms.saturating_sub(window))
        .await?;
    Ok(handoff)
}

/// A handoff that is gone refuses its tokens like any other refusal.
fn refused_if_gone(error: StoreError) -> ControlError {
    match error {
        StoreError::NotFound => ControlError::ContextTokenRefused,
        error => ControlError::Store(error),
    }
}

fn no_store(mut response: Response) -> Response {
    let headers = response.headers_mut();
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static("default-src 'none'; style-src 'unsafe-inline'"),
    );
    response
}

/// A page of the handoff `id` for whoever holds its context token, never
/// cached: `context` (JSON) or `screen-pop` (HTML). The page's name is also
/// what the audit log records the read as.
async fn handoff_page(
    State(state): State<HttpState>,
    Path((id, page)): Path<(String, String)>,
    Query(query): Query<TokenQuery>,
    headers: HeaderMap,
    peer: Peer,
) -> Response {
    let render: fn(&Handoff) -> Response = match page.as_str() {
        "context" => |handoff| axum::Json(context_document(handoff)).into_response(),
        "screen-pop" => |handoff| Html(screen_pop_page(handoff)).into_response(),
        _ => return StatusCode::NOT_FOUND.into_response(),
    };
    match authorised_handoff(&state, &id, &query, &headers, peer, &page).await {
        Ok(handoff) => no_store(render(&handoff)),
        Err(error) => error.into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::page::tests::handoff;

    #[test]
    fn tokens_stop_when_cancelled_and_after_the_grace_once_ended() {
        let grace = std::time::Duration::from_secs(60);
        let mut handoff = handoff();
        handoff.updated_at_ms = 1_000_000;
        assert!(tokens_still_open(&handoff, grace, 5_000_000));
        handoff.state = HandoffState::Completed;
        assert!(tokens_still_open(&handoff, grace, 1_060_000));
        assert!(!tokens_still_open(&handoff, grace, 1_060_001));
        handoff.state = HandoffState::Cancelled;
        assert!(!tokens_still_open(&handoff, grace, 1_000_000));
    }
}
