//! A small OpenID Connect provider for the tests, on 127.0.0.1: discovery,
//! JWKS, an authorization endpoint with a login form a browser fills in,
//! and a token endpoint that checks what a real one checks: the code
//! (single use, short-lived, issued to this client for this redirect URI),
//! the client's secret (Basic or in the form) and the PKCE verifier
//! against the challenge (RFC 7636, S256). ID tokens are signed RS256
//! with the test-only key of `tests/fixtures/oidc/` or ES256 with a key
//! made at start, per user.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::Context;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use jsonwebtoken::jwk::{Jwk, JwkSet, PublicKeyUse};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde::Deserialize;
use sha2::Digest;

/// The test-only RSA key (never used anywhere but these tests).
const RSA_TEST_KEY: &str = include_str!("../fixtures/oidc/rsa-test-key.pem");

/// A code is good this long after it is issued.
const CODE_LIFETIME: Duration = Duration::from_secs(60);

/// How a user's ID tokens are signed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Signing {
    Rs256,
    Es256,
}

/// Someone who can sign in at the provider.
#[derive(Debug, Clone)]
pub struct ProviderUser {
    pub username: String,
    pub password: String,
    pub name: String,
    /// The `groups` claim.
    pub groups: Vec<String>,
    /// The `tenant` claim: a string for one, an array for several.
    pub tenants: Vec<String>,
    pub signing: Signing,
}

/// The one client registered at the provider.
#[derive(Debug, Clone)]
pub struct ProviderClient {
    pub client_id: String,
    pub client_secret: String,
    pub redirect_uri: String,
}

#[derive(Debug, Clone)]
struct IssuedCode {
    client_id: String,
    redirect_uri: String,
    challenge: String,
    nonce: Option<String>,
    username: String,
    issued: Instant,
}

struct Keys {
    rsa: EncodingKey,
    ec: EncodingKey,
    jwks: JwkSet,
}

struct Provider {
    issuer: String,
    client: ProviderClient,
    users: Vec<ProviderUser>,
    keys: Keys,
    codes: Mutex<HashMap<String, IssuedCode>>,
    /// Why token requests were refused, in order.
    refusals: Mutex<Vec<String>>,
    /// ID tokens issued.
    issued: Mutex<u32>,
}

/// The running provider; stops when dropped.
pub struct OidcProvider {
    pub issuer: String,
    provider: Arc<Provider>,
    _stop: tokio::sync::oneshot::Sender<()>,
}

impl OidcProvider {
    pub async fn start(
        client: ProviderClient,
        users: Vec<ProviderUser>,
    ) -> anyhow::Result<OidcProvider> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr: SocketAddr = listener.local_addr()?;
        let issuer = format!("http://{addr}");
        let provider = Arc::new(Provider {
            issuer: issuer.clone(),
            client,
            users,
            keys: keys()?,
            codes: Mutex::new(HashMap::new()),
            refusals: Mutex::new(Vec::new()),
            issued: Mutex::new(0),
        });
        let router = Router::new()
            .route("/.well-known/openid-configuration", get(discovery))
            .route("/jwks", get(jwks))
            .route("/authorize", get(authorize_form).post(authorize_login))
            .route("/token", axum::routing::post(token))
            .with_state(provider.clone());
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(async move {
            let _ = axum::serve(listener, router)
                .with_graceful_shutdown(async {
                    let _ = stopped.await;
                })
                .await;
        });
        Ok(OidcProvider {
            issuer,
            provider,
            _stop: stop,
        })
    }

    /// Why token requests were refused so far.
    pub fn refusals(&self) -> Vec<String> {
        lock(&self.provider.refusals).clone()
    }

    /// How many ID tokens were issued.
    pub fn tokens_issued(&self) -> u32 {
        *lock(&self.provider.issued)
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

fn keys() -> anyhow::Result<Keys> {
    let rsa = EncodingKey::from_rsa_pem(RSA_TEST_KEY.as_bytes()).context("the RSA test key")?;
    let pair = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)?;
    let ec = EncodingKey::from_ec_pem(pair.serialize_pem().as_bytes())?;
    let jwk = |key: &EncodingKey, alg, kid: &str| -> anyhow::Result<Jwk> {
        let mut jwk = Jwk::from_encoding_key(key, alg)?;
        jwk.common.key_id = Some(kid.into());
        jwk.common.public_key_use = Some(PublicKeyUse::Signature);
        Ok(jwk)
    };
    let jwks = JwkSet {
        keys: vec![
            jwk(&rsa, Algorithm::RS256, "rsa-1")?,
            jwk(&ec, Algorithm::ES256, "ec-1")?,
        ],
    };
    Ok(Keys { rsa, ec, jwks })
}

async fn discovery(State(provider): State<Arc<Provider>>) -> Response {
    let issuer = &provider.issuer;
    axum::Json(serde_json::json!({
        "issuer": issuer,
        "authorization_endpoint": format!("{issuer}/authorize"),
        "token_endpoint": format!("{issuer}/token"),
        "jwks_uri": format!("{issuer}/jwks"),
        "response_types_supported": ["code"],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": ["RS256", "ES256"],
        "code_challenge_methods_supported": ["S256"],
        "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
        "scopes_supported": ["openid", "profile", "email"],
    }))
    .into_response()
}

async fn jwks(State(provider): State<Arc<Provider>>) -> Response {
    axum::Json(&provider.keys.jwks).into_response()
}

/// The authorization request's parameters, carried through the form.
#[derive(Debug, Clone, Default, Deserialize, serde::Serialize)]
struct AuthorizeParams {
    #[serde(default)]
    response_type: String,
    #[serde(default)]
    client_id: String,
    #[serde(default)]
    redirect_uri: String,
    #[serde(default)]
    scope: String,
    #[serde(default)]
    state: Option<String>,
    #[serde(default)]
    nonce: Option<String>,
    #[serde(default)]
    code_challenge: String,
    #[serde(default)]
    code_challenge_method: String,
}

impl Provider {
    /// The answer refusing the request, if it is refused: a bad client or
    /// redirect URI gets an error page (never a redirect to an
    /// unregistered URI), the rest an error redirect.
    fn refusal(&self, params: &AuthorizeParams) -> Option<Response> {
        if params.client_id != self.client.client_id {
            return Some((StatusCode::BAD_REQUEST, "unknown client_id").into_response());
        }
        if params.redirect_uri != self.client.redirect_uri {
            return Some(
                (StatusCode::BAD_REQUEST, "redirect_uri is not registered").into_response(),
            );
        }
        let problem = if params.response_type != "code" {
            Some("unsupported_response_type")
        } else if !params.scope.split(' ').any(|s| s == "openid") {
            Some("invalid_scope")
        } else if params.code_challenge_method != "S256" || params.code_challenge.len() != 43 {
            Some("invalid_request")
        } else {
            None
        };
        problem.map(|error| redirect_back(params, &[("error", error)]))
    }
}

fn redirect_back(params: &AuthorizeParams, pairs: &[(&str, &str)]) -> Response {
    let mut query: Vec<(&str, &str)> = pairs.to_vec();
    if let Some(state) = &params.state {
        query.push(("state", state));
    }
    let query = serde_urlencoded::to_string(&query).unwrap_or_default();
    let location = format!("{}?{query}", params.redirect_uri);
    (StatusCode::SEE_OTHER, [(header::LOCATION, location)]).into_response()
}

async fn authorize_form(
    State(provider): State<Arc<Provider>>,
    Query(params): Query<AuthorizeParams>,
) -> Response {
    if let Some(refused) = provider.refusal(&params) {
        return refused;
    }
    login_page(&params, "")
}

fn login_page(params: &AuthorizeParams, error: &str) -> Response {
    let hidden = serde_json::to_value(params)
        .ok()
        .and_then(|v| v.as_object().cloned())
        .unwrap_or_default()
        .into_iter()
        .filter_map(|(k, v)| v.as_str().map(|v| (k, v.to_owned())))
        .map(|(k, v)| {
            format!(
                "<input type=\"hidden\" name=\"{}\" value=\"{}\">",
                escape(&k),
                escape(&v)
            )
        })
        .collect::<String>();
    Html(format!(
        "<!doctype html><html><head><title>Test IdP</title></head><body>\
         <h1>Test IdP</h1><form method=\"post\" action=\"/authorize\">{hidden}\
         <label>Username <input id=\"username\" name=\"username\"></label>\
         <label>Password <input id=\"password\" name=\"password\" type=\"password\"></label>\
         <button id=\"login\" type=\"submit\">Log in</button>\
         <p id=\"login-error\">{}</p></form></body></html>",
        escape(error)
    ))
    .into_response()
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

#[derive(Debug, Deserialize)]
struct Login {
    #[serde(flatten)]
    params: AuthorizeParams,
    username: String,
    password: String,
}

async fn authorize_login(State(provider): State<Arc<Provider>>, body: Bytes) -> Response {
    let Ok(login) = serde_urlencoded::from_bytes::<Login>(&body) else {
        return (StatusCode::BAD_REQUEST, "malformed form").into_response();
    };
    if let Some(refused) = provider.refusal(&login.params) {
        return refused;
    }
    let known = provider
        .users
        .iter()
        .any(|u| u.username == login.username && u.password == login.password);
    if !known {
        return login_page(&login.params, "wrong username or password");
    }
    let code = random();
    lock(&provider.codes).insert(
        code.clone(),
        IssuedCode {
            client_id: login.params.client_id.clone(),
            redirect_uri: login.params.redirect_uri.clone(),
            challenge: login.params.code_challenge.clone(),
            nonce: login.params.nonce.clone(),
            username: login.username,
            issued: Instant::now(),
        },
    );
    redirect_back(&login.params, &[("code", &code)])
}

#[derive(Debug, Deserialize)]
struct TokenRequest {
    #[serde(default)]
    grant_type: String,
    #[serde(default)]
    code: String,
    #[serde(default)]
    redirect_uri: String,
    #[serde(default)]
    code_verifier: String,
    #[serde(default)]
    client_id: Option<String>,
    #[serde(default)]
    client_secret: Option<String>,
}

fn token_error(provider: &Provider, status: StatusCode, error: &str, why: &str) -> Response {
    lock(&provider.refusals).push(why.to_owned());
    (status, axum::Json(serde_json::json!({ "error": error }))).into_response()
}

/// RFC 6749 2.3.1: Basic credentials are form-encoded before base64.
fn basic_credentials(headers: &HeaderMap) -> Option<(String, String)> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let encoded = value.strip_prefix("Basic ")?;
    let decoded = String::from_utf8(STANDARD.decode(encoded).ok()?).ok()?;
    let (id, secret) = decoded.split_once(':')?;
    let decode = |s: &str| -> Option<String> {
        let pairs: Vec<(String, String)> = serde_urlencoded::from_str(&format!("v={}", s)).ok()?;
        pairs.into_iter().next().map(|(_, v)| v)
    };
    Some((decode(id)?, decode(secret)?))
}

async fn token(State(provider): State<Arc<Provider>>, headers: HeaderMap, body: Bytes) -> Response {
    let Ok(request) = serde_urlencoded::from_bytes::<TokenRequest>(&body) else {
        return token_error(
            &provider,
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "malformed form",
        );
    };
    // The client: Basic, or its secret in the form; never both, never neither.
    let client = match (basic_credentials(&headers), &request.client_secret) {
        (Some(basic), None) => Some(basic),
        (None, Some(secret)) => request.client_id.clone().map(|id| (id, secret.clone())),
        _ => None,
    };
    let authenticated = client.is_some_and(|(id, secret)| {
        id == provider.client.client_id && secret == provider.client.client_secret
    });
    if !authenticated {
        return token_error(
            &provider,
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            "client authentication failed",
        );
    }
    if request.grant_type != "authorization_code" {
        return token_error(
            &provider,
            StatusCode::BAD_REQUEST,
            "unsupported_grant_type",
            "grant type",
        );
    }
    // A code is used once: taken out whatever happens next.
    let Some(code) = lock(&provider.codes).remove(&request.code) else {
        return token_error(
            &provider,
            StatusCode::BAD_REQUEST,
            "invalid_grant",
            "unknown or used code",
        );
    };
    let refused = |why: &str| token_error(&provider, StatusCode::BAD_REQUEST, "invalid_grant", why);
    if code.issued.elapsed() > CODE_LIFETIME {
        return refused("expired code");
    }
    if code.client_id != provider.client.client_id || code.redirect_uri != request.redirect_uri {
        return refused("code issued to another client or redirect_uri");
    }
    // RFC 7636 4.1 and 4.6: 43 to 128 unreserved characters, whose
    // S256 is the challenge.
    let verifier = &request.code_verifier;
    let well_formed = (43..=128).contains(&verifier.len())
        && verifier
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~'));
    let challenge = URL_SAFE_NO_PAD.encode(sha2::Sha256::digest(verifier.as_bytes()));
    if !well_formed || challenge != code.challenge {
        return refused("PKCE verifier does not match the challenge");
    }
    let Some(user) = provider.users.iter().find(|u| u.username == code.username) else {
        return refused("unknown user");
    };
    match provider.id_token(user, code.nonce.as_deref()) {
        Ok(id_token) => {
            *lock(&provider.issued) += 1;
            axum::Json(serde_json::json!({
                "access_token": random(),
                "token_type": "Bearer",
                "expires_in": 300,
                "id_token": id_token,
            }))
            .into_response()
        }
        Err(error) => (StatusCode::INTERNAL_SERVER_ERROR, error.to_string()).into_response(),
    }
}

impl Provider {
    fn id_token(&self, user: &ProviderUser, nonce: Option<&str>) -> anyhow::Result<String> {
        let now = SystemTime::now().duration_since(UNIX_EPOCH)?.as_secs();
        let tenant = match user.tenants.as_slice() {
            [one] => serde_json::json!(one),
            many => serde_json::json!(many),
        };
        let mut claims = serde_json::json!({
            "iss": self.issuer,
            "sub": format!("user-{}", user.username),
            "aud": self.client.client_id,
            "exp": now + 300,
            "iat": now,
            "auth_time": now,
            "preferred_username": user.username,
            "name": user.name,
            "groups": user.groups,
            "tenant": tenant,
        });
        if let Some(nonce) = nonce {
            claims["nonce"] = nonce.into();
        }
        let (alg, kid, key) = match user.signing {
            Signing::Rs256 => (Algorithm::RS256, "rsa-1", &self.keys.rsa),
            Signing::Es256 => (Algorithm::ES256, "ec-1", &self.keys.ec),
        };
        let mut header = Header::new(alg);
        header.kid = Some(kid.into());
        Ok(jsonwebtoken::encode(&header, &claims, key)?)
    }
}

fn random() -> String {
    use rand::RngCore;
    let mut bytes = [0u8; 24];
    rand::rng().fill_bytes(&mut bytes);
    URL_SAFE_NO_PAD.encode(bytes)
}
