//! The desktop's OIDC endpoints: which sign-ins the page offers, the start
//! of a sign-in and the issuer's callback.

use std::sync::Arc;

use axum::Router;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde::Deserialize;

use super::flow::{FlowRefused, PENDING_LIFETIME, ReturnTo};
use super::{Callback, Oidc, OidcError};
use crate::desk::Desk;
use crate::guard::{Guard, cookie};
use crate::session::SignInMethod;

/// The pre-session cookie over plain HTTP.
pub const PENDING_COOKIE: &str = "baton_desk_oidc";
/// Its name over TLS (`__Secure-`: the browser refuses it unless Secure).
pub const SECURE_PENDING_COOKIE: &str = "__Secure-baton_desk_oidc";
/// The pre-session cookie is sent to the callback only.
const PENDING_PATH: &str = "/auth/oidc";

/// What the OIDC endpoints share.
#[derive(Debug, Clone)]
pub struct SignInRoutes {
    pub oidc: Option<Arc<Oidc>>,
    pub desk: Arc<Desk>,
    pub guard: Arc<Guard>,
    /// Passwords of `desk.accounts_file` are accepted.
    pub local_accounts: bool,
    /// The desktop is served over TLS.
    pub secure: bool,
}

pub fn routes(state: SignInRoutes) -> Router {
    Router::new()
        .route("/api/sign-in-options", get(options))
        .route("/auth/oidc/start", get(start))
        .route("/auth/oidc/callback", get(callback))
        .with_state(state)
}

impl SignInRoutes {
    fn pending_cookie_name(&self) -> &'static str {
        if self.secure {
            SECURE_PENDING_COOKIE
        } else {
            PENDING_COOKIE
        }
    }

    /// `Set-Cookie` of the pre-session cookie: HttpOnly, and SameSite=Lax
    /// because the browser comes back from the issuer's site by a
    /// top-level navigation, which a Strict cookie would not follow.
    fn pending_cookie(&self, value: &str, max_age: u64) -> HeaderValue {
        let secure = if self.secure { "; Secure" } else { "" };
        let cookie = format!(
            "{}={value}; Path={PENDING_PATH}; HttpOnly; SameSite=Lax; Max-Age={max_age}{secure}",
            self.pending_cookie_name()
        );
        HeaderValue::from_str(&cookie).unwrap_or_else(|_| HeaderValue::from_static(""))
    }

    fn pending_cookie_of<'a>(&self, headers: &'a HeaderMap) -> Option<&'a str> {
        cookie(headers, self.pending_cookie_name())
    }
}

/// The sign-ins the page offers: passwords, and the issuer's button.
async fn options(State(state): State<SignInRoutes>) -> Response {
    let oidc = state
        .oidc
        .as_ref()
        .map(|oidc| serde_json::json!({ "name": oidc.shown_name(), "url": "/auth/oidc/start" }));
    let mut response = axum::Json(serde_json::json!({
        "local": state.local_accounts,
        "oidc": oidc,
    }))
    .into_response();
    no_store(response.headers_mut());
    response
}

#[derive(Debug, Deserialize)]
struct StartQuery {
    /// `supervisor` to come back to the supervisor view.
    #[serde(default)]
    to: Option<String>,
}

async fn start(State(state): State<SignInRoutes>, Query(query): Query<StartQuery>) -> Response {
    let Some(oidc) = state.oidc.clone() else {
        return StatusCode::NOT_FOUND.into_response();
    };
    let return_to = match query.to.as_deref() {
        Some("supervisor") => ReturnTo::Supervisor,
        _ => ReturnTo::Desktop,
    };
    match oidc.begin(return_to).await {
        Ok((cookie, authorize)) => {
            let mut response = see_other(&authorize);
            response.headers_mut().append(
                header::SET_COOKIE,
                state.pending_cookie(&cookie, PENDING_LIFETIME.as_secs()),
            );
            response
        }
        Err(error) => failure_page(&state, error),
    }
}

async fn callback(
    State(state): State<SignInRoutes>,
    headers: HeaderMap,
    Query(callback): Query<Callback>,
) -> Response {
    let Some(oidc) = state.oidc.clone() else {
        return StatusCode::NOT_FOUND.into_response();
    };
    let Some(cookie) = state.pending_cookie_of(&headers).map(str::to_owned) else {
        return failure_page(&state, OidcError::Flow(FlowRefused::Unknown));
    };
    let (account, return_to) = match oidc.finish(&cookie, &callback).await {
        Ok(done) => done,
        Err(error) => return failure_page(&state, error),
    };
    let signed_in = match state.desk.open_session_via(&account, SignInMethod::Oidc) {
        Ok(signed_in) => signed_in,
        Err(error) => {
            tracing::error!(%error, "cannot start the desktop session");
            return page(
                &state,
                StatusCode::INTERNAL_SERVER_ERROR,
                "The session could not be started.",
            );
        }
    };
    tracing::info!(account = %signed_in.name, role = ?signed_in.role, "signed in through OIDC");
    let mut response = see_other(return_to.path());
    let headers = response.headers_mut();
    headers.append(
        header::SET_COOKIE,
        state.guard.session_cookie(&signed_in.session_id),
    );
    headers.append(header::SET_COOKIE, state.pending_cookie("", 0));
    response
}

fn see_other(location: &str) -> Response {
    let mut response = StatusCode::SEE_OTHER.into_response();
    if let Ok(location) = HeaderValue::from_str(location) {
        response.headers_mut().insert(header::LOCATION, location);
    }
    no_store(response.headers_mut());
    response
}

/// A failed sign-in: the detail is logged, the person is told the kind
/// and sent back to start again.
fn failure_page(state: &SignInRoutes, error: OidcError) -> Response {
    let (status, message) = match &error {
        OidcError::Unreachable(_) | OidcError::Issuer(_) => (
            StatusCode::BAD_GATEWAY,
            "The identity provider cannot be used right now. Try again later.",
        ),
        OidcError::Flow(FlowRefused::Busy) => (
            StatusCode::SERVICE_UNAVAILABLE,
            "Too many sign-ins are under way. Try again shortly.",
        ),
        OidcError::Flow(_) | OidcError::NoCode => (
            StatusCode::BAD_REQUEST,
            "This sign-in was not started here, was used already, or took too long. Start again.",
        ),
        OidcError::Denied(_) | OidcError::Exchange(_) | OidcError::Token(_) => (
            StatusCode::UNAUTHORIZED,
            "The identity provider did not confirm who you are.",
        ),
        OidcError::Identity(_) => (
            StatusCode::FORBIDDEN,
            "You are signed in at the identity provider, but have no role on this desk.",
        ),
    };
    tracing::warn!(%error, "desktop OIDC sign-in refused");
    page(state, status, message)
}

/// A small page of our own text only (nothing of the request is echoed).
fn page(state: &SignInRoutes, status: StatusCode, message: &'static str) -> Response {
    let html = format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <title>Sign-in failed · Baton Desk</title>\
         <link rel=\"stylesheet\" href=\"/assets/style.css\"></head><body><main>\
         <section class=\"card signin\"><h2 id=\"signin-title\">Sign-in failed</h2>\
         <p id=\"signin-error\" class=\"error\" role=\"alert\">{message}</p>\
         <p><a href=\"/\">Back to sign-in</a></p></section></main></body></html>"
    );
    let mut response = (
        status,
        [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
        html,
    )
        .into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'self'; script-src 'none'; frame-ancestors 'none'; base-uri 'none'",
        ),
    );
    no_store(headers);
    headers.append(header::SET_COOKIE, state.pending_cookie("", 0));
    response
}

fn no_store(headers: &mut HeaderMap) {
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
}
