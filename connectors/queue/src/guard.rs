//! The desktop's front door: the session cookie, the CSRF and Origin
//! checks on every state-changing request, and the limit on failed
//! sign-ins per source address. Plain functions over headers, so that the
//! HTTP handlers stay a thin translation and each rule is tested here.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use axum::http::{HeaderMap, HeaderValue, header};
use baton_auth::{FailedAuthConfig, FailureLimiter};

use crate::desk::DeskFailure;
use crate::session::csrf_matches;

/// The header a page sends its session's CSRF token in.
pub const CSRF_HEADER: &str = "x-csrf-token";

/// The session cookie's name over plain HTTP.
pub const COOKIE: &str = "baton_desk_session";
/// Its name over TLS: the `__Host-` prefix makes the browser refuse it
/// unless Secure, for this host only, with Path=/.
pub const SECURE_COOKIE: &str = "__Host-baton_desk_session";

/// How the guard is set up.
#[derive(Debug, Clone)]
pub struct GuardOptions {
    /// The desktop is served over TLS: the cookie is Secure.
    pub secure: bool,
    /// Origins besides the request's own (scheme and Host) from which a
    /// browser may send a change.
    pub allowed_origins: Vec<String>,
    pub failed_sign_ins: FailedAuthConfig,
    /// The cookie's Max-Age: the sessions' absolute lifetime.
    pub session_lifetime: Duration,
}

#[derive(Debug)]
pub struct Guard {
    options: GuardOptions,
    failures: FailureLimiter,
    /// Sources whose failures ran out, until when: their sign-ins are
    /// refused before any password is checked, so the limit bounds
    /// guessing and not only the log.
    blocked: Mutex<HashMap<IpAddr, Instant>>,
}

impl Guard {
    pub fn new(options: GuardOptions) -> Result<Self, String> {
        let failures = FailureLimiter::new(&options.failed_sign_ins)
            .map_err(|e| format!("desk.{}", e.replace("failed_auth", "failed_sign_ins")))?;
        Ok(Self {
            options,
            failures,
            blocked: Mutex::new(HashMap::new()),
        })
    }

    fn cookie_name(&self) -> &'static str {
        if self.options.secure {
            SECURE_COOKIE
        } else {
            COOKIE
        }
    }

    /// The session id in the request's cookie, if any.
    pub fn session_id<'a>(&self, headers: &'a HeaderMap) -> Option<&'a str> {
        cookie(headers, self.cookie_name())
    }

    /// `Set-Cookie` for a new session: HttpOnly (no script reads it),
    /// SameSite=Strict (no other site's page sends it), Secure with TLS.
    pub fn session_cookie(&self, session_id: &str) -> HeaderValue {
        let secure = if self.options.secure { "; Secure" } else { "" };
        let cookie = format!(
            "{}={session_id}; Path=/; HttpOnly; SameSite=Strict; Max-Age={}{secure}",
            self.cookie_name(),
            self.options.session_lifetime.as_secs()
        );
        HeaderValue::from_str(&cookie).unwrap_or_else(|_| HeaderValue::from_static(""))
    }

    /// `Set-Cookie` that removes the session cookie.
    pub fn cleared_cookie(&self) -> HeaderValue {
        let secure = if self.options.secure { "; Secure" } else { "" };
        let cookie = format!(
            "{}=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0{secure}",
            self.cookie_name()
        );
        HeaderValue::from_str(&cookie).unwrap_or_else(|_| HeaderValue::from_static(""))
    }

    /// A state-changing request must come from the desktop's own pages:
    /// an `Origin` header, when the browser sends one, must be this
    /// origin (the scheme and the request's Host) or an allowed one.
    pub fn check_origin(&self, headers: &HeaderMap) -> Result<(), DeskFailure> {
        let Some(origin) = headers.get(header::ORIGIN) else {
            // Not a browser's cross-origin request; the CSRF token (or the
            // password at sign-in) still has to be right.
            return Ok(());
        };
        let origin = origin.to_str().unwrap_or_default();
        let scheme = if self.options.secure { "https" } else { "http" };
        let own = headers
            .get(header::HOST)
            .and_then(|h| h.to_str().ok())
            .map(|host| format!("{scheme}://{host}"));
        let allowed = own.as_deref() == Some(origin)
            || self.options.allowed_origins.iter().any(|o| o == origin);
        if allowed {
            Ok(())
        } else {
            Err(DeskFailure::Forbidden(
                "this origin may not change the desktop".into(),
            ))
        }
    }

    /// A state-changing request carries the session's CSRF token in
    /// `X-CSRF-Token`, compared in constant time.
    pub fn check_csrf(&self, headers: &HeaderMap, session_id: &str) -> Result<(), DeskFailure> {
        let given = headers
            .get(CSRF_HEADER)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default();
        if csrf_matches(session_id, given) {
            Ok(())
        } else {
            Err(DeskFailure::Forbidden(
                "missing or wrong CSRF token (X-CSRF-Token)".into(),
            ))
        }
    }

    /// Refuses a sign-in from a source whose failures ran out, before
    /// its password is checked.
    pub fn admit(&self, source: Option<IpAddr>) -> Result<(), DeskFailure> {
        let Some(source) = source else {
            return Ok(());
        };
        let mut blocked = self.blocked.lock().unwrap_or_else(|e| e.into_inner());
        let now = Instant::now();
        match blocked.get(&source) {
            Some(until) if *until > now => Err(DeskFailure::TooManyAttempts(*until - now)),
            Some(_) => {
                blocked.remove(&source);
                Ok(())
            }
            None => Ok(()),
        }
    }

    /// Counts a failed sign-in from `source`; the failure to answer.
    pub fn failed(&self, source: Option<IpAddr>) -> DeskFailure {
        let Some(source) = source else {
            return DeskFailure::WrongCredentials;
        };
        match self.failures.failed(source) {
            Ok(()) => DeskFailure::WrongCredentials,
            Err(wait) => {
                let mut blocked = self.blocked.lock().unwrap_or_else(|e| e.into_inner());
                let now = Instant::now();
                // Bounded like the limiter: forget the ones whose time is up.
                if blocked.len() >= self.options.failed_sign_ins.max_sources {
                    blocked.retain(|_, until| *until > now);
                }
                if blocked.len() < self.options.failed_sign_ins.max_sources {
                    blocked.insert(source, now + wait);
                }
                tracing::warn!(%source, "too many failed desktop sign-ins");
                DeskFailure::TooManyAttempts(wait)
            }
        }
    }
}

/// The non-empty value of the cookie `name` among the request's `Cookie`
/// headers, if any.
pub fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(key, _)| *key == name)
        .map(|(_, value)| value)
        .filter(|value| !value.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::session::csrf_token;

    fn guard(secure: bool) -> Guard {
        Guard::new(GuardOptions {
            secure,
            allowed_origins: vec!["https://desk.example.com".into()],
            failed_sign_ins: FailedAuthConfig {
                per_minute: 1.0,
                burst: 2,
                max_sources: 10,
            },
            session_lifetime: Duration::from_secs(3600),
        })
        .expect("valid")
    }

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for (name, value) in pairs {
            headers.append(
                axum::http::HeaderName::from_bytes(name.as_bytes()).expect("name"),
                HeaderValue::from_str(value).expect("value"),
            );
        }
        headers
    }

    #[test]
    fn the_cookie_is_http_only_strict_and_secure_with_tls() {
        let plain = guard(false).session_cookie("abc");
        let plain = plain.to_str().expect("ascii");
        assert!(plain.starts_with("baton_desk_session=abc; Path=/; HttpOnly; SameSite=Strict"));
        assert!(!plain.contains("Secure"));
        let tls = guard(true).session_cookie("abc");
        let tls = tls.to_str().expect("ascii");
        assert!(tls.starts_with("__Host-baton_desk_session=abc;"), "{tls}");
        assert!(tls.ends_with("; Secure"), "{tls}");
        assert!(tls.contains("Max-Age=3600"), "{tls}");

        let request = headers(&[("cookie", "other=1; baton_desk_session=abc; x=2")]);
        assert_eq!(guard(false).session_id(&request), Some("abc"));
        assert_eq!(guard(true).session_id(&request), None, "not the TLS name");
    }

    #[test]
    fn changes_need_the_sessions_csrf_token_and_a_known_origin() {
        let guard = guard(false);
        let token = csrf_token("s1");
        assert!(
            guard
                .check_csrf(&headers(&[(CSRF_HEADER, &token)]), "s1")
                .is_ok()
        );
        assert!(guard.check_csrf(&headers(&[]), "s1").is_err());
        assert!(
            guard
                .check_csrf(&headers(&[(CSRF_HEADER, &csrf_token("s2"))]), "s1")
                .is_err()
        );

        let own = headers(&[
            ("host", "127.0.0.1:8090"),
            ("origin", "http://127.0.0.1:8090"),
        ]);
        assert!(guard.check_origin(&own).is_ok());
        let listed = headers(&[("host", "10.0.0.1"), ("origin", "https://desk.example.com")]);
        assert!(guard.check_origin(&listed).is_ok());
        let evil = headers(&[
            ("host", "127.0.0.1:8090"),
            ("origin", "http://evil.example"),
        ]);
        assert!(guard.check_origin(&evil).is_err());
        let null = headers(&[("host", "127.0.0.1:8090"), ("origin", "null")]);
        assert!(guard.check_origin(&null).is_err());
        assert!(guard.check_origin(&headers(&[("host", "x")])).is_ok());
    }

    #[test]
    fn a_source_out_of_failures_is_refused_before_its_password_is_checked() {
        let guard = guard(false);
        let source: IpAddr = "192.0.2.7".parse().expect("ip");
        let other: IpAddr = "192.0.2.8".parse().expect("ip");
        for _ in 0..2 {
            guard.admit(Some(source)).expect("admitted");
            assert!(matches!(
                guard.failed(Some(source)),
                DeskFailure::WrongCredentials
            ));
        }
        assert!(matches!(
            guard.failed(Some(source)),
            DeskFailure::TooManyAttempts(_)
        ));
        assert!(matches!(
            guard.admit(Some(source)),
            Err(DeskFailure::TooManyAttempts(_))
        ));
        guard
            .admit(Some(other))
            .expect("another address is not affected");
    }
}
