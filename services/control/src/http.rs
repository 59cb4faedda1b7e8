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
use baton_proto::types::v1 as pb;
use serde::Deserialize;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::domain::Handoff;
use crate::domain::HandoffState;
use crate::domain::envelope::{reason_name, speaker_name};
use crate::store::{AuditAction, AuditEntry, HandoffStore, StoreError};
use crate::token::{Purpose, TokenSigner};

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
    /// Whether `/metrics` is served here (to loopback callers only),
    /// because no `metrics.listen` of its own is configured.
    pub metrics_here: bool,
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

pub fn router(state: HttpState) -> Router {
    let mut router = Router::new().route("/healthz", get(|| async { "ok" }));
    if state.metrics_here {
        router = router.route("/metrics", get(loopback_metrics));
    }
    router
        .route("/v1/handoffs/{id}/context", get(context_json))
        .route("/v1/handoffs/{id}/screen-pop", get(screen_pop))
        .with_state(state)
}

/// `/metrics` alone, for the `metrics.listen` listener.
pub fn metrics_router() -> Router {
    Router::new().route(
        "/metrics",
        get(baton_service_kit::telemetry::prometheus_scrape),
    )
}

/// Metrics mix every tenant's handoffs: on the listener that serves
/// context pages to the world they are for the host itself only.
async fn loopback_metrics(peer: Peer) -> Response {
    match peer {
        Some(Extension(ConnectInfo(peer))) if peer.ip().is_loopback() => {
            baton_service_kit::telemetry::prometheus_scrape()
                .await
                .into_response()
        }
        _ => (
            StatusCode::FORBIDDEN,
            "metrics are served to loopback callers only here; set metrics.listen",
        )
            .into_response(),
    }
}

/// `429` with `Retry-After` in whole seconds, rounded up.
fn too_many(retry_after: Duration, what: &'static str) -> Response {
    let seconds = retry_after.as_millis().div_ceil(1000).max(1);
    (
        StatusCode::TOO_MANY_REQUESTS,
        [(header::RETRY_AFTER, seconds.to_string())],
        what,
    )
        .into_response()
}

/// A masked value shows nothing but that it exists.
const MASK: &str = "••••••";

/// What every refused token gets, whatever the reason (none, altered,
/// expired, another handoff's, revoked, the handoff cancelled, ended long
/// ago, purged or gone): the holder learns nothing about which.
fn refused() -> Response {
    (
        StatusCode::UNAUTHORIZED,
        "a valid context token for this handoff is required",
    )
        .into_response()
}

fn unavailable(error: StoreError) -> Response {
    tracing::error!(%error, "context lookup failed");
    (StatusCode::SERVICE_UNAVAILABLE, "try again").into_response()
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
/// audit log (`page` says which page was read).
async fn authorised_handoff(
    state: &HttpState,
    id: &str,
    query: &TokenQuery,
    headers: &HeaderMap,
    peer: Peer,
    page: &str,
) -> Result<Handoff, Response> {
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
            return Err(too_many(
                retry_after,
                "too many refused context tokens from this address",
            ));
        }
        return Err(refused());
    }
    // Only a valid token spends its handoff's reads: nobody else can
    // exhaust them.
    if let Err(retry_after) = state.reads.buckets.take(id, Instant::now()) {
        return Err(too_many(
            retry_after,
            "this handoff's context was read too often",
        ));
    }
    let now_ms = i64::try_from(now.as_millis()).unwrap_or(i64::MAX);
    // The token proves access to exactly this handoff, whatever its tenant.
    let handoff = match state.store.find_by_id(id).await {
        Ok(handoff) => handoff,
        Err(StoreError::NotFound) => return Err(refused()),
        Err(error) => return Err(unavailable(error)),
    };
    let access = match state.store.context_access(id).await {
        Ok(access) => access,
        Err(StoreError::NotFound) => return Err(refused()),
        Err(error) => return Err(unavailable(error)),
    };
    if access.closed() || !tokens_still_open(&handoff, state.ended_token_grace, now_ms) {
        tracing::info!(handoff_id = %id, "context token refused: revoked, purged or the handoff ended");
        return Err(refused());
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
    };
    state
        .store
        .record_view(entry, now_ms.saturating_sub(window))
        .await
        .map_err(unavailable)?;
    Ok(handoff)
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

async fn context_json(
    State(state): State<HttpState>,
    Path(id): Path<String>,
    Query(query): Query<TokenQuery>,
    headers: HeaderMap,
    peer: Peer,
) -> Response {
    match authorised_handoff(&state, &id, &query, &headers, peer, "context").await {
        Ok(handoff) => no_store(axum::Json(context_document(&handoff)).into_response()),
        Err(response) => response,
    }
}

async fn screen_pop(
    State(state): State<HttpState>,
    Path(id): Path<String>,
    Query(query): Query<TokenQuery>,
    headers: HeaderMap,
    peer: Peer,
) -> Response {
    match authorised_handoff(&state, &id, &query, &headers, peer, "screen-pop").await {
        Ok(handoff) => no_store(Html(screen_pop_page(&handoff)).into_response()),
        Err(response) => response,
    }
}

/// The context as JSON, sensitive entity values masked.
pub fn context_document(handoff: &Handoff) -> Value {
    let context = &handoff.context;
    json!({
        "handoff_id": handoff.id,
        "language": handoff.conversation.language,
        "summary": context.summary,
        "intent": context.intent.as_ref().map(|i| json!({"name": i.name, "confidence": i.confidence})),
        "entities": context.entities.iter().map(|e| json!({
            "name": e.name,
            "type": e.r#type,
            "sensitive": e.sensitive,
            "value": if e.sensitive { MASK } else { e.value.as_str() },
        })).collect::<Vec<_>>(),
        "transcript": context.transcript.iter().map(|t| json!({
            "speaker": speaker_name(t.speaker),
            "text": t.text,
            "at": t.at.map(|at| at.seconds),
        })).collect::<Vec<_>>(),
        "attempts": context.attempts.iter().map(|a| json!({
            "action": a.action,
            "outcome": outcome_name(a.outcome),
            "detail": a.detail,
        })).collect::<Vec<_>>(),
        "reason": context.reason.as_ref().map(|r| json!({"kind": reason_name(r.kind), "detail": r.detail})),
        "agent_notes": context.agent_notes,
        "priority": context.priority,
    })
}

fn outcome_name(outcome: i32) -> &'static str {
    match pb::AttemptOutcome::try_from(outcome) {
        Ok(pb::AttemptOutcome::Partial) => "partial",
        Ok(pb::AttemptOutcome::Failed) => "failed",
        Ok(pb::AttemptOutcome::NotUnderstood) => "not understood",
        Ok(pb::AttemptOutcome::Refused) => "refused",
        Ok(pb::AttemptOutcome::Succeeded) => "succeeded",
        _ => "unknown",
    }
}

fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// A readable, self-contained page: what the human reads as the call
/// connects.
pub fn screen_pop_page(handoff: &Handoff) -> String {
    let context = &handoff.context;
    let intent = context
        .intent
        .as_ref()
        .map(|i| {
            format!(
                "{} <span class=muted>({:.0}% confident)</span>",
                escape(&i.name),
                i.confidence * 100.0
            )
        })
        .unwrap_or_else(|| "<span class=muted>not identified</span>".into());
    let reason = context
        .reason
        .as_ref()
        .map(|r| {
            format!(
                "{} — {}",
                reason_name(r.kind).replace('_', " "),
                escape(&r.detail)
            )
        })
        .unwrap_or_default();
    let entities: String = context
        .entities
        .iter()
        .map(|e| {
            let value = if e.sensitive {
                format!("<span class=masked title=\"sensitive\">{MASK}</span>")
            } else {
                escape(&e.value)
            };
            format!(
                "<tr><th>{}</th><td>{value}</td></tr>",
                escape(&e.name.replace('_', " "))
            )
        })
        .collect();
    let attempts: String = context
        .attempts
        .iter()
        .map(|a| {
            format!(
                "<li><b>{}</b> — {}{}</li>",
                escape(&a.action),
                outcome_name(a.outcome),
                if a.detail.is_empty() {
                    String::new()
                } else {
                    format!(": {}", escape(&a.detail))
                }
            )
        })
        .collect();
    let transcript: String = context
        .transcript
        .iter()
        .map(|t| {
            let speaker = speaker_name(t.speaker);
            format!(
                "<li class={speaker}><span class=who>{speaker}</span> {}</li>",
                escape(&t.text)
            )
        })
        .collect();
    format!(
        r#"<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>Handoff — {summary_title}</title>
<style>
body{{font:16px/1.45 system-ui,sans-serif;margin:0;background:#f4f5f7;color:#1d2330}}
main{{max-width:860px;margin:0 auto;padding:1rem}}
section{{background:#fff;border-radius:10px;padding:1rem 1.25rem;margin:.75rem 0;box-shadow:0 1px 2px #0002}}
h1{{font-size:1.3rem;margin:.2rem 0}} h2{{font-size:.8rem;text-transform:uppercase;letter-spacing:.06em;color:#5b6475;margin:0 0 .5rem}}
.muted{{color:#5b6475}} .masked{{letter-spacing:.1em;color:#8a93a5}}
table{{border-collapse:collapse}} th{{text-align:left;padding:.2rem 1rem .2rem 0;color:#5b6475;font-weight:500}}
ol{{padding-left:1.2rem}} .who{{display:inline-block;min-width:5.5rem;font-size:.8rem;text-transform:uppercase;color:#5b6475}}
li.customer .who{{color:#b44d12}} .priority{{float:right;font-weight:600}}
</style></head>
<body><main>
<section aria-labelledby="summary"><span class="priority">Priority {priority}</span><h2 id="summary">Summary</h2><h1>{summary}</h1>
<p><b>Intent:</b> {intent}<br><b>Why a human:</b> {reason}</p></section>
<section aria-labelledby="entities"><h2 id="entities">What we know</h2><table>{entities}</table></section>
<section aria-labelledby="tried"><h2 id="tried">What the AI tried</h2><ul>{attempts}</ul></section>
<section aria-labelledby="notes"><h2 id="notes">Notes from the AI</h2><p>{notes}</p></section>
<section aria-labelledby="transcript"><h2 id="transcript">Transcript</h2><ol>{transcript}</ol></section>
</main></body></html>"#,
        summary_title = escape(&context.summary.chars().take(60).collect::<String>()),
        summary = escape(&context.summary),
        priority = context.priority,
        notes = escape(&context.agent_notes),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::TransferMode;

    fn handoff() -> Handoff {
        Handoff {
            id: Uuid::now_v7().to_string(),
            tenant: "default".into(),
            request_id: "r".into(),
            request_fingerprint: "f".into(),
            state: HandoffState::Pending,
            conversation: pb::Conversation::default(),
            context: pb::HandoffContext {
                summary: "<script>alert(1)</script> double charge".into(),
                entities: vec![pb::Entity {
                    name: "card".into(),
                    value: "4111111111111111".into(),
                    r#type: "card".into(),
                    sensitive: true,
                }],
                ..Default::default()
            },
            requested_target: pb::Target::default(),
            mode: TransferMode::Warm,
            plan: vec![],
            customer_message: String::new(),
            customer_message_language: String::new(),
            created_at_ms: 0,
            updated_at_ms: 0,
            deadline_ms: 0,
            current_attempt: None,
            queue_status: None,
            failure: None,
            last_sequence: 1,
            decision: None,
            wrap_up: None,
        }
    }

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

    #[test]
    fn the_page_escapes_what_the_customer_said_and_masks_sensitive_values() {
        let page = screen_pop_page(&handoff());
        assert!(!page.contains("<script>alert"));
        assert!(page.contains("&lt;script&gt;"));
        assert!(!page.contains("4111111111111111"));
        let json = context_document(&handoff()).to_string();
        assert!(!json.contains("4111111111111111"));
    }
}
