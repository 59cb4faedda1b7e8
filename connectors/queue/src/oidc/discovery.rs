//! The issuer over HTTPS: its discovery document and its signing keys
//! (JWKS), both cached, and the code exchange at its token endpoint.
//! Every request has a time limit and a size limit on the answer, follows
//! no redirect, and goes over rustls (Mozilla's roots, the system's
//! bundle and `ca_file`).

use std::time::{Duration, Instant};

use jsonwebtoken::DecodingKey;
use jsonwebtoken::jwk::JwkSet;
use serde::Deserialize;

use super::OidcError;
use super::config::{ClientSecret, OidcConfig, TokenAuth};
use super::verify::{self, TokenHeader, TokenRefused};

/// The largest answer read from the issuer.
pub const MAX_RESPONSE_BYTES: usize = 256 * 1024;

/// The discovery document and the keys are fetched again this often.
const CACHE_FOR: Duration = Duration::from_secs(60 * 60);

/// A token signed with a key the cached set does not have makes the set
/// be fetched again (the issuer rotated its keys), at most this often, so
/// that tokens with made-up `kid`s cannot make us hammer the issuer.
pub const KEYS_REFETCH_AT_MOST_EVERY: Duration = Duration::from_secs(30);

/// Where the system keeps its CA bundle, by distribution; the first one
/// present is trusted beside Mozilla's roots.
const SYSTEM_BUNDLES: &[&str] = &[
    "/etc/ssl/certs/ca-certificates.crt",
    "/etc/pki/tls/certs/ca-bundle.crt",
    "/etc/ssl/cert.pem",
];

/// What the desk uses of the discovery document.
#[derive(Debug, Clone, Deserialize)]
pub struct Discovery {
    pub issuer: String,
    pub authorization_endpoint: String,
    pub token_endpoint: String,
    pub jwks_uri: String,
    #[serde(default)]
    pub code_challenge_methods_supported: Vec<String>,
}

#[derive(Debug, Default)]
struct Cache {
    discovery: Option<(Discovery, Instant)>,
    keys: Option<(JwkSet, Instant)>,
}

/// The configured issuer.
#[derive(Debug)]
pub struct Issuer {
    issuer: String,
    http: reqwest::Client,
    cache: tokio::sync::Mutex<Cache>,
}

impl Issuer {
    pub fn new(config: &OidcConfig) -> Result<Self, String> {
        let loopback = super::config::is_loopback_url(&config.issuer);
        let mut builder = reqwest::Client::builder()
            .timeout(config.timeout)
            .connect_timeout(config.timeout)
            .redirect(reqwest::redirect::Policy::none())
            .https_only(!loopback)
            .tls_built_in_root_certs(true)
            .user_agent(concat!("baton-connector-queue/", env!("CARGO_PKG_VERSION")));
        if loopback {
            // A provider on this machine is never reached through a proxy.
            builder = builder.no_proxy();
        }
        let system = std::env::var_os("SSL_CERT_FILE")
            .map(std::path::PathBuf::from)
            .into_iter()
            .chain(SYSTEM_BUNDLES.iter().map(std::path::PathBuf::from))
            .find(|p| p.is_file());
        if let Some(path) = system {
            // A bundle that does not parse leaves Mozilla's roots alone.
            match std::fs::read(&path).map(|pem| reqwest::Certificate::from_pem_bundle(&pem)) {
                Ok(Ok(certificates)) => {
                    for certificate in certificates {
                        builder = builder.add_root_certificate(certificate);
                    }
                }
                _ => tracing::warn!(path = %path.display(), "cannot read the system's CA bundle"),
            }
        }
        if let Some(path) = &config.ca_file {
            let pem = std::fs::read(path)
                .map_err(|e| format!("desk.oidc.ca_file: {}: {e}", path.display()))?;
            let certificates = reqwest::Certificate::from_pem_bundle(&pem)
                .map_err(|e| format!("desk.oidc.ca_file: {}: {e}", path.display()))?;
            if certificates.is_empty() {
                return Err(format!(
                    "desk.oidc.ca_file: {}: no certificate",
                    path.display()
                ));
            }
            for certificate in certificates {
                builder = builder.add_root_certificate(certificate);
            }
        }
        let http = builder
            .build()
            .map_err(|e| format!("desk.oidc: cannot build the HTTPS client: {e}"))?;
        Ok(Self {
            issuer: config.issuer.clone(),
            http,
            cache: tokio::sync::Mutex::new(Cache::default()),
        })
    }

    /// The discovery document, cached; its `issuer` must be the configured
    /// one exactly, and its endpoints https (loopback http aside).
    pub async fn discovery(&self) -> Result<Discovery, OidcError> {
        let mut cache = self.cache.lock().await;
        if let Some((discovery, at)) = &cache.discovery
            && at.elapsed() < CACHE_FOR
        {
            return Ok(discovery.clone());
        }
        let url = format!(
            "{}/.well-known/openid-configuration",
            self.issuer.trim_end_matches('/')
        );
        let discovery: Discovery = self.get_json(&url).await?;
        if discovery.issuer != self.issuer {
            return Err(OidcError::Issuer(format!(
                "the discovery document names issuer {:?}",
                discovery.issuer
            )));
        }
        for (key, url) in [
            ("authorization_endpoint", &discovery.authorization_endpoint),
            ("token_endpoint", &discovery.token_endpoint),
            ("jwks_uri", &discovery.jwks_uri),
        ] {
            super::config::check_url(url)
                .map_err(|e| OidcError::Issuer(format!("discovery {key}: {e}")))?;
        }
        if !discovery.code_challenge_methods_supported.is_empty()
            && !discovery
                .code_challenge_methods_supported
                .iter()
                .any(|m| m == "S256")
        {
            return Err(OidcError::Issuer(
                "the issuer does not support PKCE S256".into(),
            ));
        }
        cache.discovery = Some((discovery.clone(), Instant::now()));
        Ok(discovery)
    }

    /// The key that verifies a token with `header`: from the cached set,
    /// else from the set fetched again (when old, or at most every
    /// [`KEYS_REFETCH_AT_MOST_EVERY`] for an unknown `kid`).
    pub async fn key(&self, header: &TokenHeader) -> Result<DecodingKey, OidcError> {
        let jwks_uri = self.discovery().await?.jwks_uri;
        let mut cache = self.cache.lock().await;
        let refetch = match &cache.keys {
            None => true,
            Some((_, at)) if at.elapsed() >= CACHE_FOR => true,
            Some((keys, at)) => {
                !verify::has_key(keys, header) && at.elapsed() >= KEYS_REFETCH_AT_MOST_EVERY
            }
        };
        if refetch {
            let keys: JwkSet = self.get_json(&jwks_uri).await?;
            cache.keys = Some((keys, Instant::now()));
        }
        let keys = cache
            .keys
            .as_ref()
            .map(|(keys, _)| keys)
            .ok_or(OidcError::Token(TokenRefused::UnknownKey))?;
        verify::key_for(keys, header).map_err(OidcError::Token)
    }

    /// Exchanges the authorization code, with the PKCE verifier, for the
    /// ID token.
    pub async fn exchange(&self, exchange: &CodeExchange<'_>) -> Result<String, OidcError> {
        let token_endpoint = self.discovery().await?.token_endpoint;
        let mut form = vec![
            ("grant_type", "authorization_code"),
            ("code", exchange.code),
            ("redirect_uri", exchange.redirect_uri),
            ("code_verifier", exchange.code_verifier),
            ("client_id", exchange.client_id),
        ];
        let mut request = self
            .http
            .post(&token_endpoint)
            .header(reqwest::header::ACCEPT, "application/json");
        match (exchange.secret, exchange.token_auth) {
            (Some(secret), TokenAuth::Basic) => {
                // RFC 6749 2.3.1: both parts form-encoded, then Basic.
                request = request.basic_auth(
                    form_encode(exchange.client_id),
                    Some(form_encode(secret.expose())),
                );
            }
            (Some(secret), TokenAuth::Post) => form.push(("client_secret", secret.expose())),
            (None, _) => {}
        }
        let response = request
            .form(&form)
            .send()
            .await
            .map_err(|e| OidcError::Unreachable(without_url(e)))?;
        let status = response.status();
        let body = read_bounded(response).await?;
        if !status.is_success() {
            // The issuer's error code (invalid_grant, invalid_client…) says
            // why; its description may echo input, so only the code is kept.
            let code = serde_json::from_slice::<serde_json::Value>(&body)
                .ok()
                .and_then(|v| v["error"].as_str().map(str::to_owned))
                .unwrap_or_default();
            return Err(OidcError::Exchange(format!("{status} {code}")));
        }
        #[derive(Deserialize)]
        struct TokenResponse {
            id_token: Option<String>,
        }
        let token: TokenResponse = serde_json::from_slice(&body)
            .map_err(|e| OidcError::Issuer(format!("token response: {e}")))?;
        token
            .id_token
            .ok_or_else(|| OidcError::Issuer("the token response has no id_token".into()))
    }

    async fn get_json<T: serde::de::DeserializeOwned>(&self, url: &str) -> Result<T, OidcError> {
        let response = self
            .http
            .get(url)
            .header(reqwest::header::ACCEPT, "application/json")
            .send()
            .await
            .map_err(|e| OidcError::Unreachable(without_url(e)))?;
        if !response.status().is_success() {
            return Err(OidcError::Issuer(format!("{url}: {}", response.status())));
        }
        let body = read_bounded(response).await?;
        serde_json::from_slice(&body).map_err(|e| OidcError::Issuer(format!("{url}: {e}")))
    }
}

/// What the token endpoint is sent.
#[derive(Debug)]
pub struct CodeExchange<'a> {
    pub code: &'a str,
    pub code_verifier: &'a str,
    pub redirect_uri: &'a str,
    pub client_id: &'a str,
    pub secret: Option<&'a ClientSecret>,
    pub token_auth: TokenAuth,
}

/// The body, refused past [`MAX_RESPONSE_BYTES`].
async fn read_bounded(mut response: reqwest::Response) -> Result<Vec<u8>, OidcError> {
    if response
        .content_length()
        .is_some_and(|n| n > MAX_RESPONSE_BYTES as u64)
    {
        return Err(OidcError::Issuer("the answer is too large".into()));
    }
    let mut body = Vec::new();
    while let Some(chunk) = response
        .chunk()
        .await
        .map_err(|e| OidcError::Unreachable(without_url(e)))?
    {
        if body.len() + chunk.len() > MAX_RESPONSE_BYTES {
            return Err(OidcError::Issuer("the answer is too large".into()));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// The error without its URL (the token endpoint's has no secret, but the
/// message stays short and the same for every request).
fn without_url(error: reqwest::Error) -> String {
    let kind = if error.is_timeout() {
        "timed out"
    } else if error.is_connect() {
        "cannot connect"
    } else {
        "request failed"
    };
    format!("{kind}: {}", error.without_url())
}

/// `application/x-www-form-urlencoded` of one value.
pub fn form_encode(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for byte in value.bytes() {
        match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'*' => {
                out.push(byte as char)
            }
            b' ' => out.push('+'),
            _ => out.push_str(&format!("%{byte:02X}")),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_credentials_are_form_encoded_before_basic() {
        assert_eq!(form_encode("desk client"), "desk+client");
        assert_eq!(form_encode("a:b/c%"), "a%3Ab%2Fc%25");
        assert_eq!(form_encode("plain-id_1.x"), "plain-id_1.x");
    }
}
