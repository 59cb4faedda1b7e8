//! Sign-in to the desktop through an OpenID Connect issuer: the
//! authorization-code flow with PKCE (S256).
//!
//! 1. `/auth/oidc/start` keeps a pending sign-in (state, nonce, PKCE
//!    verifier) server-side under a short-lived pre-session cookie
//!    ([`flow`]) and sends the browser to the issuer's authorization
//!    endpoint with the state, the nonce and the verifier's challenge.
//! 2. `/auth/oidc/callback` takes the pending sign-in out (single use),
//!    checks the state, exchanges the code with the verifier and the
//!    client's credentials at the token endpoint ([`discovery`]), verifies
//!    the ID token ([`verify`]) and maps its claims to a desk account
//!    ([`identity`]); the session it starts is the same as a password's.
//!
//! Nothing of the issuer is trusted that was not checked: the discovery
//! document must name the configured issuer, the keys come from its
//! `jwks_uri`, and every request to it is bounded in time and size.

pub mod config;
pub mod discovery;
pub mod flow;
pub mod identity;
pub mod routes;
pub mod verify;

use std::sync::Mutex;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

pub use config::{ClientSecret, OidcConfig};

use crate::accounts::Account;
use discovery::{CodeExchange, Issuer, form_encode};
use flow::{FlowRefused, PendingSignIns, ReturnTo};
use identity::IdentityRefused;
use verify::{Expected, TokenRefused};

/// Why an OIDC sign-in failed. The detail goes to the log; the browser is
/// told the kind only.
#[derive(Debug, thiserror::Error)]
pub enum OidcError {
    #[error("the issuer cannot be reached: {0}")]
    Unreachable(String),
    #[error("the issuer's answer is not usable: {0}")]
    Issuer(String),
    #[error("the issuer refused the code: {0}")]
    Exchange(String),
    #[error("the issuer ended the sign-in: {0}")]
    Denied(String),
    #[error("the callback has no code")]
    NoCode,
    #[error("the ID token is refused: {0}")]
    Token(#[from] TokenRefused),
    #[error(transparent)]
    Flow(#[from] FlowRefused),
    #[error("no desk account for this person: {0}")]
    Identity(#[from] IdentityRefused),
}

/// What the issuer sends the browser back with.
#[derive(Debug, Default, serde::Deserialize)]
pub struct Callback {
    #[serde(default)]
    pub code: Option<String>,
    #[serde(default)]
    pub state: Option<String>,
    #[serde(default)]
    pub error: Option<String>,
}

/// The configured issuer and the sign-ins under way.
#[derive(Debug)]
pub struct Oidc {
    config: OidcConfig,
    secret: Option<ClientSecret>,
    issuer: Issuer,
    pending: Mutex<PendingSignIns>,
}

impl Oidc {
    /// Reads the secret and builds the HTTPS client; the issuer is first
    /// asked at the first sign-in, so that the desk starts while it is
    /// away.
    pub fn new(config: &OidcConfig) -> Result<Self, String> {
        config.validate()?;
        Ok(Self {
            secret: config.load_secret()?,
            issuer: Issuer::new(config)?,
            config: config.clone(),
            pending: Mutex::new(PendingSignIns::default()),
        })
    }

    /// "Sign in with {this}".
    pub fn shown_name(&self) -> String {
        self.config.shown_name()
    }

    fn pending(&self) -> std::sync::MutexGuard<'_, PendingSignIns> {
        self.pending.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Starts a sign-in: the pre-session cookie's value and the issuer's
    /// authorization URL to send the browser to.
    pub async fn begin(&self, return_to: ReturnTo) -> Result<(String, String), OidcError> {
        let discovery = self.issuer.discovery().await?;
        let (cookie, pending) = self.pending().begin(return_to, Instant::now())?;
        let scope = self.config.scopes.join(" ");
        let challenge = pending.code_challenge();
        let query = [
            ("response_type", "code"),
            ("client_id", self.config.client_id.as_str()),
            ("redirect_uri", self.config.redirect_url.as_str()),
            ("scope", scope.as_str()),
            ("state", pending.state.as_str()),
            ("nonce", pending.nonce.as_str()),
            ("code_challenge", challenge.as_str()),
            ("code_challenge_method", "S256"),
        ]
        .iter()
        .map(|(k, v)| format!("{k}={}", form_encode(v)))
        .collect::<Vec<_>>()
        .join("&");
        let endpoint = &discovery.authorization_endpoint;
        let separator = if endpoint.contains('?') { '&' } else { '?' };
        Ok((cookie, format!("{endpoint}{separator}{query}")))
    }

    /// Finishes the sign-in of the browser with pre-session `cookie`: the
    /// account its ID token stands for, and where to send it.
    pub async fn finish(
        &self,
        cookie: &str,
        callback: &Callback,
    ) -> Result<(Account, ReturnTo), OidcError> {
        let state = callback.state.as_deref().unwrap_or_default();
        let pending = self.pending().finish(cookie, state, Instant::now())?;
        if let Some(error) = &callback.error {
            // The issuer's code (access_denied, login_required…); kept
            // short, it is the caller's input.
            return Err(OidcError::Denied(error.chars().take(64).collect()));
        }
        let code = callback.code.as_deref().ok_or(OidcError::NoCode)?;
        let id_token = self
            .issuer
            .exchange(&CodeExchange {
                code,
                code_verifier: &pending.code_verifier,
                redirect_uri: &self.config.redirect_url,
                client_id: &self.config.client_id,
                secret: self.secret.as_ref(),
                token_auth: self.config.token_auth,
            })
            .await?;
        let header = verify::header_of(&id_token)?;
        let key = self.issuer.key(&header).await?;
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let claims = verify::verify(
            &id_token,
            &header,
            &key,
            Expected {
                issuer: &self.config.issuer,
                client_id: &self.config.client_id,
                nonce: &pending.nonce,
                now,
            },
        )?;
        let account = identity::account_of(&claims, &self.config)?;
        Ok((account, pending.return_to))
    }
}
