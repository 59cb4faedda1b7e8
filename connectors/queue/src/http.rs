//! The agent desktop over HTTP: the embedded page, a small JSON API and
//! Server-Sent Events that push every change to the open desktops (no
//! polling). Agents authenticate with the session token the sign-in
//! returns: `Authorization: Bearer …`, or `?session=…` for EventSource,
//! which cannot set headers.

use std::convert::Infallible;
use std::sync::Arc;

use axum::extract::{DefaultBodyLimit, Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use axum::{Json, Router};
use futures::Stream;
use serde::Deserialize;

use crate::desk::{Desk, DeskFailure, SignIn};
use crate::domain::{AgentState, DeskError};

/// Desktop requests are small forms; anything bigger is refused.
const MAX_BODY_BYTES: usize = 16 * 1024;

const DESKTOP_HTML: &str = include_str!("../assets/desktop.html");
const SUPERVISOR_HTML: &str = include_str!("../assets/supervisor.html");
const STYLE_CSS: &str = include_str!("../assets/style.css");
const DESKTOP_JS: &str = include_str!("../assets/desktop.js");
const SUPERVISOR_JS: &str = include_str!("../assets/supervisor.js");
const COMMON_JS: &str = include_str!("../assets/common.js");

pub fn router(desk: Arc<Desk>) -> Router {
    Router::new()
        .route("/", get(|| page(DESKTOP_HTML)))
        .route("/supervisor", get(|| page(SUPERVISOR_HTML)))
        .route(
            "/assets/style.css",
            get(|| asset(STYLE_CSS, "text/css; charset=utf-8")),
        )
        .route(
            "/assets/common.js",
            get(|| asset(COMMON_JS, "text/javascript; charset=utf-8")),
        )
        .route(
            "/assets/desktop.js",
            get(|| asset(DESKTOP_JS, "text/javascript; charset=utf-8")),
        )
        .route(
            "/assets/supervisor.js",
            get(|| asset(SUPERVISOR_JS, "text/javascript; charset=utf-8")),
        )
        .route("/api/sessions", post(sign_in).delete(sign_out))
        .route("/api/agent/state", put(set_state))
        .route("/api/agent/events", get(agent_events))
        .route("/api/handoffs/{id}/accept", post(accept))
        .route("/api/handoffs/{id}/decline", post(decline))
        .route("/api/handoffs/{id}/wrap-up", post(wrap_up))
        .route("/api/handoffs/{id}/reveal", post(reveal))
        .route("/api/handoffs/{id}/callback", post(callback))
        .route("/api/supervisor/events", get(supervisor_events))
        .route("/healthz", get(|| async { "ok" }))
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .with_state(desk)
}

/// The page's security headers: everything comes from this origin and no
/// inline script runs, so a customer's words can never become code even
/// if an escape were missed.
fn security_headers(headers: &mut HeaderMap) {
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'",
        ),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
}

async fn page(html: &'static str) -> Response {
    let mut response = ([(header::CONTENT_TYPE, "text/html; charset=utf-8")], html).into_response();
    security_headers(response.headers_mut());
    response
}

async fn asset(body: &'static str, content_type: &'static str) -> Response {
    let mut response = ([(header::CONTENT_TYPE, content_type)], body).into_response();
    security_headers(response.headers_mut());
    response
}

impl IntoResponse for DeskFailure {
    fn into_response(self) -> Response {
        let status = match &self {
            DeskFailure::Unauthenticated => StatusCode::UNAUTHORIZED,
            DeskFailure::Invalid(_) => StatusCode::BAD_REQUEST,
            DeskFailure::Desk(DeskError::UnknownAgent(_)) => StatusCode::UNAUTHORIZED,
            DeskFailure::Desk(DeskError::UnknownContact(_)) => StatusCode::NOT_FOUND,
            DeskFailure::Desk(_) => StatusCode::CONFLICT,
            DeskFailure::Store(_) => StatusCode::INTERNAL_SERVER_ERROR,
        };
        if status == StatusCode::INTERNAL_SERVER_ERROR {
            tracing::error!(error = %self, "desktop request failed");
        }
        (
            status,
            Json(serde_json::json!({ "error": self.to_string() })),
        )
            .into_response()
    }
}

fn bearer(headers: &HeaderMap) -> Result<&str, DeskFailure> {
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .ok_or(DeskFailure::Unauthenticated)
}

fn agent(desk: &Desk, headers: &HeaderMap) -> Result<String, DeskFailure> {
    desk.agent_for(bearer(headers)?)
}

async fn sign_in(
    State(desk): State<Arc<Desk>>,
    Json(request): Json<SignIn>,
) -> Result<Json<serde_json::Value>, DeskFailure> {
    let (token, agent) = desk.sign_in(request)?;
    Ok(Json(
        serde_json::json!({ "session": token, "agent_id": agent }),
    ))
}

async fn sign_out(
    State(desk): State<Arc<Desk>>,
    headers: HeaderMap,
) -> Result<StatusCode, DeskFailure> {
    desk.sign_out(bearer(&headers)?)?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct StateRequest {
    state: AgentState,
}

async fn set_state(
    State(desk): State<Arc<Desk>>,
    headers: HeaderMap,
    Json(request): Json<StateRequest>,
) -> Result<StatusCode, DeskFailure> {
    desk.set_state(&agent(&desk, &headers)?, request.state)?;
    Ok(StatusCode::NO_CONTENT)
}

async fn accept(
    State(desk): State<Arc<Desk>>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<StatusCode, DeskFailure> {
    desk.accept(&agent(&desk, &headers)?, &id)?;
    Ok(StatusCode::NO_CONTENT)
}

async fn decline(
    State(desk): State<Arc<Desk>>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<StatusCode, DeskFailure> {
    desk.decline(&agent(&desk, &headers)?, &id)?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct WrapUpRequest {
    disposition: String,
    #[serde(default)]
    notes: String,
}

async fn wrap_up(
    State(desk): State<Arc<Desk>>,
    headers: HeaderMap,
    Path(id): Path<String>,
    Json(request): Json<WrapUpRequest>,
) -> Result<StatusCode, DeskFailure> {
    desk.wrap_up(
        &agent(&desk, &headers)?,
        &id,
        &request.disposition,
        &request.notes,
    )?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RevealRequest {
    entity: usize,
}

async fn reveal(
    State(desk): State<Arc<Desk>>,
    headers: HeaderMap,
    Path(id): Path<String>,
    Json(request): Json<RevealRequest>,
) -> Result<Json<serde_json::Value>, DeskFailure> {
    let value = desk.reveal(&agent(&desk, &headers)?, &id, request.entity)?;
    Ok(Json(serde_json::json!({ "value": value })))
}

/// The customer (through the AI runtime) takes the offered callback.
async fn callback(
    State(desk): State<Arc<Desk>>,
    Path(id): Path<String>,
) -> Result<StatusCode, DeskFailure> {
    desk.choose_callback(&id)?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Debug, Deserialize)]
struct EventsQuery {
    session: String,
}

/// A stream of views, one now and one after every change, ending when
/// `view` returns None (the session ended) or the desktop shuts down.
fn view_stream<T, F>(desk: Arc<Desk>, view: F) -> impl Stream<Item = Result<Event, Infallible>>
where
    T: serde::Serialize,
    F: Fn(&Desk) -> Option<T> + Send + Sync + 'static,
{
    let changes = desk.subscribe();
    let view = Arc::new(view);
    futures::stream::unfold((changes, true), move |(mut changes, first)| {
        let desk = desk.clone();
        let view = view.clone();
        async move {
            if !first {
                let mut closing = desk.closing();
                tokio::select! {
                    changed = changes.changed() => changed.ok()?,
                    _ = closing.wait_for(|closing| *closing) => return None,
                }
            }
            let body = view(&desk)?;
            let event = Event::default()
                .event("view")
                .json_data(body)
                .unwrap_or_else(|_| Event::default().event("error"));
            Some((Ok(event), (changes, false)))
        }
    })
}

async fn agent_events(
    State(desk): State<Arc<Desk>>,
    Query(query): Query<EventsQuery>,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, DeskFailure> {
    desk.agent_for(&query.session)?;
    let session = query.session;
    let stream = view_stream(desk, move |desk| desk.agent_view(&session));
    Ok(Sse::new(stream).keep_alive(KeepAlive::default()))
}

async fn supervisor_events(
    State(desk): State<Arc<Desk>>,
) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    let stream = view_stream(desk, |desk| Some(desk.supervisor_view()));
    Sse::new(stream).keep_alive(KeepAlive::default())
}

#[cfg(test)]
mod tests {
    use axum::body::Body;
    use axum::http::Request;
    use tower::ServiceExt;

    use super::*;
    use crate::config::QueueConfig;

    async fn call(router: &Router, request: Request<Body>) -> (StatusCode, HeaderMap, String) {
        let response = router.clone().oneshot(request).await.expect("infallible");
        let status = response.status();
        let headers = response.headers().clone();
        let body = axum::body::to_bytes(response.into_body(), 1 << 20)
            .await
            .expect("body");
        (status, headers, String::from_utf8_lossy(&body).into_owned())
    }

    fn json(method: &str, uri: &str, session: Option<&str>, body: String) -> Request<Body> {
        let mut request = Request::builder()
            .method(method)
            .uri(uri)
            .header(header::CONTENT_TYPE, "application/json");
        if let Some(session) = session {
            request = request.header(header::AUTHORIZATION, format!("Bearer {session}"));
        }
        request.body(Body::from(body)).expect("request")
    }

    #[tokio::test]
    async fn the_desktop_refuses_strangers_big_bodies_and_inline_script() {
        let dir = tempfile::tempdir().expect("tempdir");
        let desk = Desk::open(&QueueConfig::ephemeral(dir.path())).expect("open");
        let router = router(desk);

        let (status, headers, page) = call(
            &router,
            Request::get("/").body(Body::empty()).expect("request"),
        )
        .await;
        assert_eq!(status, StatusCode::OK);
        assert!(page.contains("Baton Desk"));
        let csp = headers
            .get(header::CONTENT_SECURITY_POLICY)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default();
        assert!(csp.contains("script-src 'self'"), "{csp}");

        let state = r#"{"state":"available"}"#.to_owned();
        let (status, _, _) = call(
            &router,
            json("PUT", "/api/agent/state", None, state.clone()),
        )
        .await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        let (status, _, _) = call(
            &router,
            json("PUT", "/api/agent/state", Some("forged"), state.clone()),
        )
        .await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        let (status, _, _) = call(
            &router,
            Request::get("/api/agent/events?session=forged")
                .body(Body::empty())
                .expect("request"),
        )
        .await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);

        let huge = format!(
            r#"{{"agent_id":"ann","name":"{}"}}"#,
            "x".repeat(MAX_BODY_BYTES)
        );
        let (status, _, _) = call(&router, json("POST", "/api/sessions", None, huge)).await;
        assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
        let (status, _, _) = call(
            &router,
            json(
                "POST",
                "/api/sessions",
                None,
                r#"{"agent_id":"<script>"}"#.into(),
            ),
        )
        .await;
        assert_eq!(status, StatusCode::BAD_REQUEST);

        let (status, _, body) = call(
            &router,
            json(
                "POST",
                "/api/sessions",
                None,
                r#"{"agent_id":"ann","skills":["support"]}"#.into(),
            ),
        )
        .await;
        assert_eq!(status, StatusCode::OK);
        let session: serde_json::Value = serde_json::from_str(&body).expect("json");
        let session = session["session"].as_str().expect("session").to_owned();
        let (status, _, _) = call(
            &router,
            json("PUT", "/api/agent/state", Some(&session), state),
        )
        .await;
        assert_eq!(status, StatusCode::NO_CONTENT);
        let (status, _, _) = call(
            &router,
            json(
                "POST",
                "/api/handoffs/nope/reveal",
                Some(&session),
                r#"{"entity":0}"#.into(),
            ),
        )
        .await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        let (status, _, _) = call(
            &router,
            json(
                "POST",
                "/api/handoffs/nope/accept",
                Some(&session),
                String::new(),
            ),
        )
        .await;
        assert_eq!(status, StatusCode::NOT_FOUND);
    }
}
