//! The agent desktop over HTTP: the embedded page, a small JSON API and
//! Server-Sent Events that push every change to the open desktops (no
//! polling). Sign-in checks a password and sets an HttpOnly session
//! cookie; every change also carries the session's CSRF token
//! (`X-CSRF-Token`) and passes the Origin check ([`crate::guard`]).

use std::convert::Infallible;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use axum::extract::{ConnectInfo, DefaultBodyLimit, FromRequestParts, Path, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use axum::{Json, Router};
use futures::Stream;
use serde::Deserialize;

use crate::accounts::Role;
use crate::desk::{Desk, DeskFailure, SignIn};
use crate::domain::{AgentState, DeskError, Judgements};
use crate::guard::{Guard, GuardOptions};
use crate::outcomes::Outcomes;
use crate::session::Session;

/// Desktop requests are small forms; anything bigger is refused.
const MAX_BODY_BYTES: usize = 16 * 1024;

const DESKTOP_HTML: &str = include_str!("../assets/desktop.html");
const SUPERVISOR_HTML: &str = include_str!("../assets/supervisor.html");
const STYLE_CSS: &str = include_str!("../assets/style.css");
const DESKTOP_JS: &str = include_str!("../assets/desktop.js");
const SUPERVISOR_JS: &str = include_str!("../assets/supervisor.js");
const COMMON_JS: &str = include_str!("../assets/common.js");
const OUTCOMES_JS: &str = include_str!("../assets/outcomes.js");

const HTML: &str = "text/html; charset=utf-8";
const JS: &str = "text/javascript; charset=utf-8";

/// The embedded pages and their assets: path, body, content type.
const ASSETS: [(&str, &str, &str); 8] = [
    ("/", DESKTOP_HTML, HTML),
    ("/supervisor", SUPERVISOR_HTML, HTML),
    ("/assets/style.css", STYLE_CSS, "text/css; charset=utf-8"),
    ("/assets/common.js", COMMON_JS, JS),
    ("/assets/desktop.js", DESKTOP_JS, JS),
    ("/assets/supervisor.js", SUPERVISOR_JS, JS),
    ("/assets/outcomes.js", OUTCOMES_JS, JS),
    ("/assets/chat.js", crate::chat::CHAT_JS, JS),
];

/// What the handlers share: the queue and the front door.
#[derive(Debug, Clone)]
pub struct DeskHttp {
    pub(crate) desk: Arc<Desk>,
    guard: Arc<Guard>,
    /// The supervisor's outcome figures; `None` without `[outcomes]`.
    pub(crate) outcomes: Option<Arc<Outcomes>>,
}

pub fn router(
    desk: Arc<Desk>,
    guard: GuardOptions,
    outcomes: Option<Arc<Outcomes>>,
) -> Result<Router, String> {
    let state = DeskHttp {
        desk,
        guard: Arc::new(Guard::new(guard)?),
        outcomes,
    };
    let mut router = Router::new();
    for (path, body, content_type) in ASSETS {
        router = router.route(path, get(move || asset(body, content_type)));
    }
    Ok(router
        .route(
            "/api/sessions",
            post(sign_in).delete(sign_out).get(current_session),
        )
        .route("/api/agent/state", put(set_state))
        .route("/api/agent/events", get(agent_events))
        .route("/api/handoffs/{id}/accept", post(accept))
        .route("/api/handoffs/{id}/decline", post(decline))
        .route("/api/handoffs/{id}/wrap-up", post(wrap_up))
        .route("/api/handoffs/{id}/hand-back", post(hand_back::hand_back))
        .route("/api/handoffs/{id}/reveal", post(reveal))
        .route("/api/supervisor/events", get(supervisor_events))
        .route(
            "/api/supervisor/outcomes",
            get(crate::outcomes::http::outcomes),
        )
        .route("/api/chats", get(crate::chat::list))
        .route("/api/chats/{id}", get(crate::chat::read))
        .route("/api/chats/{id}/messages", post(crate::chat::post_message))
        .route("/api/chats/{id}/typing", post(crate::chat::post_typing))
        .route("/api/chats/{id}/read", post(crate::chat::post_read))
        .route("/healthz", get(|| async { "ok" }))
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .with_state(state))
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

async fn asset(body: &'static str, content_type: &'static str) -> Response {
    let mut response = ([(header::CONTENT_TYPE, content_type)], body).into_response();
    security_headers(response.headers_mut());
    response
}

impl IntoResponse for DeskFailure {
    fn into_response(self) -> Response {
        let status = match &self {
            DeskFailure::Unauthenticated
            | DeskFailure::SessionEnded
            | DeskFailure::WrongCredentials => StatusCode::UNAUTHORIZED,
            DeskFailure::Forbidden(_) => StatusCode::FORBIDDEN,
            DeskFailure::TooManyAttempts(_) => StatusCode::TOO_MANY_REQUESTS,
            DeskFailure::SignInUnavailable => StatusCode::SERVICE_UNAVAILABLE,
            DeskFailure::Invalid(_) => StatusCode::BAD_REQUEST,
            DeskFailure::Desk(DeskError::UnknownAgent(_)) => StatusCode::UNAUTHORIZED,
            DeskFailure::Desk(DeskError::UnknownContact(_)) => StatusCode::NOT_FOUND,
            DeskFailure::Desk(_) => StatusCode::CONFLICT,
            DeskFailure::Store(_) => StatusCode::INTERNAL_SERVER_ERROR,
        };
        if status == StatusCode::INTERNAL_SERVER_ERROR {
            tracing::error!(error = %self, "desktop request failed");
        }
        let mut response = (
            status,
            Json(serde_json::json!({ "error": self.to_string() })),
        )
            .into_response();
        if let DeskFailure::TooManyAttempts(wait) = self
            && let Ok(value) = HeaderValue::from_str(&wait.as_secs().max(1).to_string())
        {
            response.headers_mut().insert(header::RETRY_AFTER, value);
        }
        response
    }
}

/// Who may make a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Needs {
    /// Any signed-in session.
    Session,
    /// An agent's session.
    Agent,
    /// A supervisor's or an admin's.
    Supervisor,
}

impl DeskHttp {
    /// The request's session if it has the role; a change (`changes`)
    /// must also pass the Origin and CSRF checks. No session is 401, the
    /// wrong role or a failed check 403.
    pub(crate) fn authorize(
        &self,
        headers: &HeaderMap,
        needs: Needs,
        changes: bool,
    ) -> Result<(String, Session), DeskFailure> {
        if changes {
            self.guard.check_origin(headers)?;
        }
        let id = self
            .guard
            .session_id(headers)
            .ok_or(DeskFailure::Unauthenticated)?;
        let session = self.desk.session(id)?;
        if changes {
            self.guard.check_csrf(headers, id)?;
        }
        let allowed = match needs {
            Needs::Session => true,
            Needs::Agent => session.role == Role::Agent,
            Needs::Supervisor => session.role.supervises(),
        };
        if !allowed {
            return Err(DeskFailure::Forbidden(
                format!("a {needs:?} session is needed").to_lowercase(),
            ));
        }
        Ok((id.to_owned(), session))
    }

    /// The signed-in agent's id, for an agent's change.
    fn agent(&self, headers: &HeaderMap) -> Result<String, DeskFailure> {
        Ok(self.authorize(headers, Needs::Agent, true)?.1.account)
    }
}

/// The caller's address, when the listener recorded it.
#[derive(Debug, Clone, Copy)]
struct Source(Option<IpAddr>);

impl<S: Send + Sync> FromRequestParts<S> for Source {
    type Rejection = Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(Source(
            parts
                .extensions
                .get::<ConnectInfo<SocketAddr>>()
                .map(|ConnectInfo(peer)| peer.ip()),
        ))
    }
}

/// What the page learns of its session: who, which role and tenants, and
/// the CSRF token to send back with every change. Never the session id.
fn session_body(
    name: &str,
    display_name: &str,
    role: Role,
    tenants: &[String],
    id: &str,
) -> serde_json::Value {
    serde_json::json!({
        "name": name,
        "display_name": display_name,
        "role": role,
        "tenants": tenants,
        "csrf_token": crate::session::csrf_token(id),
    })
}

async fn sign_in(
    State(state): State<DeskHttp>,
    Source(source): Source,
    headers: HeaderMap,
    Json(request): Json<SignIn>,
) -> Result<Response, DeskFailure> {
    state.guard.check_origin(&headers)?;
    state.guard.admit(source)?;
    let desk = state.desk.clone();
    // Argon2 takes tens of milliseconds of CPU on purpose: off the async
    // threads.
    let signed_in = tokio::task::spawn_blocking(move || desk.sign_in(&request))
        .await
        .map_err(|e| DeskFailure::Invalid(format!("sign-in failed: {e}")))?;
    let signed_in = match signed_in {
        Ok(signed_in) => signed_in,
        Err(DeskFailure::WrongCredentials) => {
            tracing::info!(source = ?source, "desktop sign-in refused: wrong name or password");
            return Err(state.guard.failed(source));
        }
        Err(other) => return Err(other),
    };
    let body = session_body(
        &signed_in.name,
        &signed_in.display_name,
        signed_in.role,
        &signed_in.tenants,
        &signed_in.session_id,
    );
    let mut response = Json(body).into_response();
    response.headers_mut().insert(
        header::SET_COOKIE,
        state.guard.session_cookie(&signed_in.session_id),
    );
    Ok(response)
}

/// The page's session, for a page opened after sign-in (a reload, a new
/// tab): who it is and its CSRF token. Another site cannot read this
/// answer (no CORS), so the token stays with the desktop's own pages.
async fn current_session(
    State(state): State<DeskHttp>,
    headers: HeaderMap,
) -> Result<Json<serde_json::Value>, DeskFailure> {
    let (id, session) = state.authorize(&headers, Needs::Session, false)?;
    let display_name = state
        .desk
        .display_name(&session.account)
        .unwrap_or_else(|| session.account.clone());
    Ok(Json(session_body(
        &session.account,
        &display_name,
        session.role,
        &session.tenants,
        &id,
    )))
}

async fn sign_out(
    State(state): State<DeskHttp>,
    headers: HeaderMap,
) -> Result<Response, DeskFailure> {
    let (id, _) = state.authorize(&headers, Needs::Session, true)?;
    state.desk.sign_out(&id)?;
    let mut response = StatusCode::NO_CONTENT.into_response();
    response
        .headers_mut()
        .insert(header::SET_COOKIE, state.guard.cleared_cookie());
    Ok(response)
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct StateRequest {
    state: AgentState,
}

async fn set_state(
    State(state): State<DeskHttp>,
    headers: HeaderMap,
    Json(request): Json<StateRequest>,
) -> Result<StatusCode, DeskFailure> {
    state
        .desk
        .set_state(&state.agent(&headers)?, request.state)?;
    Ok(StatusCode::NO_CONTENT)
}

async fn accept(
    State(state): State<DeskHttp>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<StatusCode, DeskFailure> {
    state.desk.accept(&state.agent(&headers)?, &id)?;
    Ok(StatusCode::NO_CONTENT)
}

async fn decline(
    State(state): State<DeskHttp>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<StatusCode, DeskFailure> {
    state.desk.decline(&state.agent(&headers)?, &id)?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct WrapUpRequest {
    disposition: String,
    #[serde(default)]
    notes: String,
    /// The agent's one-click judgements; absent: not answered.
    #[serde(default)]
    context_sufficient: Option<bool>,
    #[serde(default)]
    customer_repeated: Option<bool>,
    #[serde(default)]
    escalation_needed: Option<bool>,
}

async fn wrap_up(
    State(state): State<DeskHttp>,
    headers: HeaderMap,
    Path(id): Path<String>,
    Json(request): Json<WrapUpRequest>,
) -> Result<StatusCode, DeskFailure> {
    state.desk.wrap_up(
        &state.agent(&headers)?,
        &id,
        &request.disposition,
        &request.notes,
        Judgements {
            context_sufficient: request.context_sufficient,
            customer_repeated: request.customer_repeated,
            escalation_needed: request.escalation_needed,
        },
    )?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RevealRequest {
    entity: usize,
}

async fn reveal(
    State(state): State<DeskHttp>,
    headers: HeaderMap,
    Path(id): Path<String>,
    Json(request): Json<RevealRequest>,
) -> Result<Json<serde_json::Value>, DeskFailure> {
    let value = state
        .desk
        .reveal(&state.agent(&headers)?, &id, request.entity)?;
    Ok(Json(serde_json::json!({ "value": value })))
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
    State(state): State<DeskHttp>,
    headers: HeaderMap,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, DeskFailure> {
    let (id, _) = state.authorize(&headers, Needs::Agent, false)?;
    let stream = view_stream(state.desk, move |desk| desk.agent_view(&id));
    Ok(Sse::new(stream).keep_alive(KeepAlive::default()))
}

/// The supervisor's live view, of their tenants only: 401 without a
/// session, 403 for an agent's.
async fn supervisor_events(
    State(state): State<DeskHttp>,
    headers: HeaderMap,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, DeskFailure> {
    let (id, _) = state.authorize(&headers, Needs::Supervisor, false)?;
    let stream = view_stream(state.desk, move |desk| desk.supervisor_view_of(&id));
    Ok(Sse::new(stream).keep_alive(KeepAlive::default()))
}

#[path = "hand_back/http.rs"]
mod hand_back;

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use axum::body::Body;
    use axum::http::Request;
    use tower::ServiceExt;

    use super::*;
    use crate::accounts::{Account, Accounts, hash_password};
    use crate::config::QueueConfig;
    use crate::guard::CSRF_HEADER;

    async fn call(router: &Router, request: Request<Body>) -> (StatusCode, HeaderMap, String) {
        let response = router.clone().oneshot(request).await.expect("infallible");
        let status = response.status();
        let headers = response.headers().clone();
        let body = axum::body::to_bytes(response.into_body(), 1 << 20)
            .await
            .expect("body");
        (status, headers, String::from_utf8_lossy(&body).into_owned())
    }

    /// A request as a browser page of this desktop sends it.
    fn request(
        method: &str,
        uri: &str,
        cookie: Option<&str>,
        csrf: Option<&str>,
        body: &str,
    ) -> Request<Body> {
        let mut request = Request::builder()
            .method(method)
            .uri(uri)
            .header(header::HOST, "127.0.0.1:8090")
            .header(header::CONTENT_TYPE, "application/json");
        if let Some(cookie) = cookie {
            request = request.header(header::COOKIE, format!("baton_desk_session={cookie}"));
        }
        if let Some(csrf) = csrf {
            request = request.header(CSRF_HEADER, csrf);
        }
        request.body(Body::from(body.to_owned())).expect("request")
    }

    /// An agent's change to available, as the page sends it.
    fn set_available(cookie: Option<&str>, csrf: Option<&str>) -> Request<Body> {
        request(
            "PUT",
            "/api/agent/state",
            cookie,
            csrf,
            r#"{"state":"available"}"#,
        )
    }

    /// A desk with agent ann (password "ann-pw") and supervisor sue
    /// ("sue-pw"), both of acme.
    fn desk_router(dir: &std::path::Path) -> Router {
        desk_router_with(dir, None)
    }

    fn desk_router_with(dir: &std::path::Path, outcomes: Option<Arc<Outcomes>>) -> Router {
        let accounts_file = dir.join("accounts.toml");
        let account = |name: &str, role| Account {
            name: name.into(),
            display_name: None,
            role,
            tenants: vec!["acme".into()],
            skills: vec!["support".into()],
            contact: String::new(),
            password: hash_password(&format!("{name}-pw")).expect("hash"),
        };
        Accounts {
            accounts: vec![
                account("ann", Role::Agent),
                account("sue", Role::Supervisor),
            ],
        }
        .save(&accounts_file)
        .expect("accounts");
        let mut config = QueueConfig::ephemeral(dir.join("queue"));
        config.desk.accounts_file = Some(accounts_file);
        let desk = Desk::open(&config).expect("open");
        router(
            desk,
            GuardOptions {
                secure: false,
                allowed_origins: Vec::new(),
                failed_sign_ins: config.desk.failed_sign_ins.clone(),
                session_lifetime: Duration::from_secs(3600),
            },
            outcomes,
        )
        .expect("router")
    }

    /// Signs in; the session id (from the cookie) and the CSRF token.
    async fn sign_in(router: &Router, name: &str) -> (String, String) {
        let body = format!(r#"{{"name":"{name}","password":"{name}-pw"}}"#);
        let (status, headers, body) =
            call(router, request("POST", "/api/sessions", None, None, &body)).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        let cookie = headers
            .get(header::SET_COOKIE)
            .and_then(|v| v.to_str().ok())
            .expect("a cookie");
        assert!(
            cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"),
            "{cookie}"
        );
        let id = cookie
            .split(';')
            .next()
            .and_then(|pair| pair.split_once('='))
            .map(|(_, id)| id.to_owned())
            .expect("session id");
        assert!(!body.contains(&id), "the id is never in the body");
        let body: serde_json::Value = serde_json::from_str(&body).expect("json");
        let csrf = body["csrf_token"].as_str().expect("csrf").to_owned();
        (id, csrf)
    }

    /// The outcomes of tenant `tenant`, read from a control service that
    /// is not there (port 9 on loopback: refused at once).
    fn unreachable_outcomes(dir: &std::path::Path, tenant: &str) -> Arc<Outcomes> {
        let key = dir.join("control-key");
        std::fs::write(
            &key,
            "bk_0123456789abcdef_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\n",
        )
        .expect("write");
        let config = crate::outcomes::OutcomesConfig {
            control_endpoint: "http://127.0.0.1:9".into(),
            api_key_file: key,
            tenant: tenant.into(),
            tls: None,
            timeout: Duration::from_secs(5),
        };
        Arc::new(Outcomes::from_config(&config).expect("outcomes"))
    }

    #[tokio::test]
    async fn outcomes_are_for_supervisors_of_the_credentials_tenant_and_errors_are_short() {
        let outcomes =
            |cookie: Option<&str>| request("GET", "/api/supervisor/outcomes", cookie, None, "");
        // Without [outcomes], the view says so.
        let dir = tempfile::tempdir().expect("tempdir");
        let router = desk_router(dir.path());
        assert_eq!(
            call(&router, outcomes(None)).await.0,
            StatusCode::UNAUTHORIZED
        );
        let (ann, _) = sign_in(&router, "ann").await;
        assert_eq!(
            call(&router, outcomes(Some(&ann))).await.0,
            StatusCode::FORBIDDEN
        );
        let (sue, _) = sign_in(&router, "sue").await;
        let (status, _, body) = call(&router, outcomes(Some(&sue))).await;
        assert_eq!(
            (status, body.as_str()),
            (StatusCode::OK, r#"{"configured":false}"#)
        );

        // The control service unreachable: 502 and a short message, never
        // the credential.
        let dir = tempfile::tempdir().expect("tempdir");
        let router = desk_router_with(dir.path(), Some(unreachable_outcomes(dir.path(), "acme")));
        let (ann, _) = sign_in(&router, "ann").await;
        assert_eq!(
            call(&router, outcomes(Some(&ann))).await.0,
            StatusCode::FORBIDDEN
        );
        let (sue, _) = sign_in(&router, "sue").await;
        let (status, _, body) = call(&router, outcomes(Some(&sue))).await;
        assert_eq!(status, StatusCode::BAD_GATEWAY, "{body}");
        assert!(body.contains("cannot be reached"), "{body}");
        assert!(!body.contains("bk_") && !body.contains("AAAA"), "{body}");

        // A supervisor who does not see the credential's tenant gets nothing.
        let dir = tempfile::tempdir().expect("tempdir");
        let router = desk_router_with(dir.path(), Some(unreachable_outcomes(dir.path(), "globex")));
        let (sue, _) = sign_in(&router, "sue").await;
        let (status, _, body) = call(&router, outcomes(Some(&sue))).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    }

    #[tokio::test]
    async fn the_desktop_refuses_strangers_big_bodies_and_inline_script() {
        let dir = tempfile::tempdir().expect("tempdir");
        let router = desk_router(dir.path());

        let (status, headers, page) = call(&router, request("GET", "/", None, None, "")).await;
        assert_eq!(status, StatusCode::OK);
        assert!(page.contains("Baton Desk"));
        let csp = headers
            .get(header::CONTENT_SECURITY_POLICY)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default();
        assert!(csp.contains("script-src 'self'"), "{csp}");

        let (status, _, _) = call(&router, set_available(None, None)).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        let (status, _, _) = call(&router, set_available(Some("forged"), Some("x"))).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        let (status, _, _) = call(
            &router,
            request("GET", "/api/agent/events", Some("forged"), None, ""),
        )
        .await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);

        let huge = format!(
            r#"{{"name":"ann","password":"{}"}}"#,
            "x".repeat(MAX_BODY_BYTES)
        );
        let (status, _, _) =
            call(&router, request("POST", "/api/sessions", None, None, &huge)).await;
        assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
        let (status, _, _) = call(
            &router,
            request("POST", "/api/sessions", None, None, r#"{"agent_id":"ann"}"#),
        )
        .await;
        assert!(status.is_client_error(), "no password: {status}");
    }

    #[tokio::test]
    async fn sign_in_needs_the_password_and_changes_need_the_csrf_token_and_the_role() {
        let dir = tempfile::tempdir().expect("tempdir");
        let router = desk_router(dir.path());
        for body in [
            r#"{"name":"ann","password":"wrong"}"#,
            r#"{"name":"nobody","password":"ann-pw"}"#,
        ] {
            let (status, headers, _) =
                call(&router, request("POST", "/api/sessions", None, None, body)).await;
            assert_eq!(status, StatusCode::UNAUTHORIZED);
            assert!(headers.get(header::SET_COOKIE).is_none());
        }

        let (ann, ann_csrf) = sign_in(&router, "ann").await;
        let (status, _, body) = call(&router, set_available(Some(&ann), None)).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "no CSRF token: {body}");
        let (status, _, _) = call(&router, set_available(Some(&ann), Some("guess"))).await;
        assert_eq!(status, StatusCode::FORBIDDEN);
        let mut foreign = set_available(Some(&ann), Some(&ann_csrf));
        foreign.headers_mut().insert(
            header::ORIGIN,
            HeaderValue::from_static("http://evil.example"),
        );
        let (status, _, _) = call(&router, foreign).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "another origin");
        let (status, _, _) = call(&router, set_available(Some(&ann), Some(&ann_csrf))).await;
        assert_eq!(status, StatusCode::NO_CONTENT);

        // The page learns its CSRF token again after a reload.
        let (status, _, body) = call(
            &router,
            request("GET", "/api/sessions", Some(&ann), None, ""),
        )
        .await;
        assert_eq!(status, StatusCode::OK);
        assert!(
            body.contains(&ann_csrf) && body.contains("\"agent\""),
            "{body}"
        );

        let (status, _, _) = call(
            &router,
            request(
                "POST",
                "/api/handoffs/nope/accept",
                Some(&ann),
                Some(&ann_csrf),
                "",
            ),
        )
        .await;
        assert_eq!(status, StatusCode::NOT_FOUND);

        // The supervisor stream: 401 without a session, 403 for an agent.
        let events =
            |cookie: Option<&str>| request("GET", "/api/supervisor/events", cookie, None, "");
        assert_eq!(
            call(&router, events(None)).await.0,
            StatusCode::UNAUTHORIZED
        );
        let (status, _, _) = call(&router, events(Some(&ann))).await;
        assert_eq!(status, StatusCode::FORBIDDEN);
        let (sue, sue_csrf) = sign_in(&router, "sue").await;
        let response = router
            .clone()
            .oneshot(events(Some(&sue)))
            .await
            .expect("infallible");
        assert_eq!(response.status(), StatusCode::OK);
        drop(response);
        // A supervisor takes no handoffs.
        let (status, _, _) = call(&router, set_available(Some(&sue), Some(&sue_csrf))).await;
        assert_eq!(status, StatusCode::FORBIDDEN);

        // Signed out, the session works no more.
        let (status, headers, _) = call(
            &router,
            request("DELETE", "/api/sessions", Some(&ann), Some(&ann_csrf), ""),
        )
        .await;
        assert_eq!(status, StatusCode::NO_CONTENT);
        let cleared = headers
            .get(header::SET_COOKIE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default();
        assert!(cleared.contains("Max-Age=0"), "{cleared}");
        let (status, _, _) = call(&router, set_available(Some(&ann), Some(&ann_csrf))).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
    }
}
