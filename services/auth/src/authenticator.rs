//! From request headers to a [`Principal`]: which credential was sent, and
//! which verifier checks it.

use std::path::PathBuf;
use std::time::SystemTime;

use http::HeaderMap;
use serde::{Deserialize, Serialize};

use crate::api_key::{self, ApiKey, KeyStore};
use crate::error::AuthError;
use crate::jwt::{JwtConfig, JwtConfigError, JwtVerifier};
use crate::principal::{Principal, Role};
use crate::reload::LoadError;

/// Whether calls need a credential.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AuthMode {
    /// No credential is checked; every call acts as an admin of
    /// `default_tenant`. For `baton dev` and single-tenant trials only.
    #[default]
    Off,
    /// Every call but health and reflection needs a valid credential.
    Required,
}

/// The `[auth]` section of a service's configuration.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AuthConfig {
    /// `off` (default) or `required`.
    pub mode: AuthMode,
    /// The API keys file (TOML, `[[key]]` tables); read again when it
    /// changes. Without it API keys are refused.
    pub api_keys_file: Option<PathBuf>,
    /// JWT settings. Without them JWTs are refused.
    pub jwt: Option<JwtConfig>,
    /// The tenant every call belongs to when `mode = "off"`. Default
    /// `default`.
    pub default_tenant: String,
}

impl Default for AuthConfig {
    fn default() -> Self {
        Self {
            mode: AuthMode::Off,
            api_keys_file: None,
            jwt: None,
            default_tenant: "default".into(),
        }
    }
}

/// Why an [`AuthConfig`] cannot be used. Names the key.
#[derive(Debug, thiserror::Error)]
pub enum AuthConfigError {
    #[error(
        "auth.mode = \"required\" needs auth.api_keys_file or auth.jwt: otherwise no call could succeed"
    )]
    NoVerifier,
    #[error("auth.api_keys_file: {0}")]
    KeysFile(LoadError),
    #[error("auth.{0}")]
    Jwt(#[from] JwtConfigError),
    #[error("auth.default_tenant: must be 1 to 128 bytes without control characters")]
    DefaultTenant,
}

/// Checks credentials: API keys against the keys file, JWTs against the
/// JWT settings.
#[derive(Debug)]
pub struct Authenticator {
    keys: Option<KeyStore>,
    jwt: Option<JwtVerifier>,
}

/// Longest credential header accepted, in bytes.
pub const MAX_CREDENTIAL_BYTES: usize = crate::jwt::MAX_TOKEN_BYTES + 16;

impl Authenticator {
    pub fn new(keys: Option<KeyStore>, jwt: Option<JwtVerifier>) -> Self {
        Self { keys, jwt }
    }

    /// The verifiers `config` names; `None` when `mode = "off"`.
    pub fn from_config(config: &AuthConfig) -> Result<Option<Self>, AuthConfigError> {
        if !crate::principal::is_valid_tenant(&config.default_tenant) {
            return Err(AuthConfigError::DefaultTenant);
        }
        if config.mode == AuthMode::Off {
            return Ok(None);
        }
        let keys = config
            .api_keys_file
            .as_deref()
            .map(KeyStore::open)
            .transpose()
            .map_err(AuthConfigError::KeysFile)?;
        let jwt = config.jwt.as_ref().map(JwtVerifier::new).transpose()?;
        if keys.is_none() && jwt.is_none() {
            return Err(AuthConfigError::NoVerifier);
        }
        Ok(Some(Self::new(keys, jwt)))
    }

    /// The principal a credential (an API key or a JWT) stands for.
    pub fn authenticate(&self, credential: &str) -> Result<Principal, AuthError> {
        if credential.starts_with(api_key::PREFIX) {
            let key =
                ApiKey::parse(credential).map_err(|_| AuthError::Invalid("malformed API key"))?;
            let keys = self
                .keys
                .as_ref()
                .ok_or(AuthError::Invalid("API keys are not accepted"))?;
            keys.verify(&key, SystemTime::now())
        } else {
            let jwt = self
                .jwt
                .as_ref()
                .ok_or(AuthError::Invalid("JWTs are not accepted"))?;
            jwt.verify(credential)
        }
    }

    /// The principal of a request's `authorization: Bearer …` or
    /// `x-api-key` header.
    pub fn authenticate_headers(&self, headers: &HeaderMap) -> Result<Principal, AuthError> {
        self.authenticate(credential(headers)?)
    }
}

/// The one credential a request carries. Two different ones are refused
/// rather than one picked, so that a proxy adding its own cannot be
/// confused with the caller's.
pub fn credential(headers: &HeaderMap) -> Result<&str, AuthError> {
    let mut found = None;
    for value in headers
        .get_all("authorization")
        .iter()
        .map(|value| (value, true))
        .chain(
            headers
                .get_all("x-api-key")
                .iter()
                .map(|value| (value, false)),
        )
    {
        let (value, is_authorization) = value;
        if value.len() > MAX_CREDENTIAL_BYTES {
            return Err(AuthError::Invalid("credential header too long"));
        }
        let text = value
            .to_str()
            .map_err(|_| AuthError::Invalid("credential header not ASCII"))?
            .trim();
        let token = if is_authorization {
            let (scheme, token) = text
                .split_once(' ')
                .ok_or(AuthError::Invalid("authorization without a scheme"))?;
            if !scheme.eq_ignore_ascii_case("bearer") {
                return Err(AuthError::Invalid("authorization scheme is not Bearer"));
            }
            token.trim()
        } else if text.starts_with(api_key::PREFIX) {
            text
        } else {
            return Err(AuthError::Invalid("x-api-key holds no API key"));
        };
        if token.is_empty() {
            return Err(AuthError::Invalid("empty credential"));
        }
        match found {
            None => found = Some(token),
            Some(previous) if previous == token => {}
            Some(_) => return Err(AuthError::Invalid("several different credentials")),
        }
    }
    found.ok_or(AuthError::Missing)
}

/// The principal every call acts as when authentication is off.
pub fn unauthenticated_principal(tenant: &str) -> Principal {
    Principal {
        tenant: tenant.to_string(),
        subject: "anonymous".into(),
        credential_id: "none".into(),
        roles: [Role::Admin].into(),
    }
}

#[cfg(test)]
mod tests {
    use http::HeaderValue;

    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(*name, HeaderValue::from_str(value).expect("header value"));
        }
        map
    }

    #[test]
    fn credential_comes_from_bearer_or_x_api_key() {
        let invalid = |why| Err(AuthError::Invalid(why));
        let long = format!("Bearer {}", "a".repeat(MAX_CREDENTIAL_BYTES));
        // The request's headers, and the credential taken from them.
        type Case<'a> = (&'a [(&'static str, &'a str)], Result<&'a str, AuthError>);
        let cases: [Case; 10] = [
            (&[("authorization", "Bearer abc")], Ok("abc")),
            (&[("authorization", "bearer  abc ")], Ok("abc")),
            (&[("x-api-key", "bk_x")], Ok("bk_x")),
            (
                &[("x-api-key", "eyJhbGciOi.x.y")],
                invalid("x-api-key holds no API key"),
            ),
            (
                &[("authorization", "Bearer bk_x"), ("x-api-key", "bk_x")],
                Ok("bk_x"),
            ),
            (&[], Err(AuthError::Missing)),
            (
                &[("authorization", "Basic abc")],
                invalid("authorization scheme is not Bearer"),
            ),
            (
                &[("authorization", "Bearer")],
                invalid("authorization without a scheme"),
            ),
            (
                &[("authorization", "Bearer a"), ("x-api-key", "bk_b")],
                invalid("several different credentials"),
            ),
            (
                &[("authorization", &long)],
                invalid("credential header too long"),
            ),
        ];
        for (pairs, expected) in cases {
            assert_eq!(credential(&headers(pairs)), expected, "{pairs:?}");
        }
    }

    #[test]
    fn required_mode_needs_a_verifier_and_off_mode_needs_none() {
        let required = AuthConfig {
            mode: AuthMode::Required,
            ..AuthConfig::default()
        };
        assert!(matches!(
            Authenticator::from_config(&required),
            Err(AuthConfigError::NoVerifier)
        ));
        assert!(matches!(
            Authenticator::from_config(&AuthConfig::default()),
            Ok(None)
        ));
        let parsed: AuthConfig = toml::from_str(
            "mode = \"required\"\napi_keys_file = \"/k\"\n[jwt]\naudience = \"baton\"\nleeway = \"10s\"\n",
        )
        .expect("parses");
        assert_eq!(parsed.mode, AuthMode::Required);
        assert_eq!(
            parsed.jwt.expect("jwt").leeway,
            std::time::Duration::from_secs(10)
        );
        assert!(toml::from_str::<AuthConfig>("mode = \"maybe\"\n").is_err());
        let missing_file = AuthConfig {
            mode: AuthMode::Required,
            api_keys_file: Some("/nonexistent/keys.toml".into()),
            ..AuthConfig::default()
        };
        let error = Authenticator::from_config(&missing_file).expect_err("refused");
        assert!(
            error.to_string().starts_with("auth.api_keys_file"),
            "{error}"
        );
    }
}
