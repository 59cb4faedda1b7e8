//! JWTs: HS256 with a shared secret, RS256 and ES256 with public keys from a
//! JWKS file (RFC 7517), picked by the token's `kid`. The token's `exp` is
//! required, `nbf` is honoured, both with a small leeway for clock skew;
//! `iss` and `aud` are required and checked when configured. The tenant
//! comes from a configurable claim (`tenant`), the roles from `roles` (an
//! array, or one space-separated string); role names Baton does not know
//! are ignored, so one identity provider can serve several applications.

use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::time::Duration;

use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey, Validation, errors::ErrorKind};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::error::AuthError;
use crate::principal::{Principal, Role, is_valid_tenant};
use crate::reload::{LoadError, Reloading};

/// Longest token accepted, in bytes: a JWT is a header line, not a payload.
pub const MAX_TOKEN_BYTES: usize = 8 * 1024;
/// Shortest HS256 secret accepted, in bytes (RFC 7518 §3.2: at least the
/// hash's size).
pub const MIN_HS256_SECRET_BYTES: usize = 32;

/// How JWTs are checked.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct JwtConfig {
    /// File holding the HS256 shared secret (its bytes, trailing whitespace
    /// removed; at least 32). HS256 tokens are refused without it.
    pub hs256_secret_file: Option<PathBuf>,
    /// JWKS file with the public keys for RS256 and ES256; each key needs a
    /// `kid`. RS256 and ES256 tokens are refused without it.
    pub jwks_file: Option<PathBuf>,
    /// Required `iss`, when set.
    pub issuer: Option<String>,
    /// Required `aud` (one of the token's audiences), when set.
    pub audience: Option<String>,
    /// The claim naming the tenant. Default `tenant`.
    pub tenant_claim: String,
    /// The claim listing the roles. Default `roles`.
    pub roles_claim: String,
    /// Clock skew allowed on `exp` and `nbf`. Default 30 s.
    #[serde(with = "humantime_serde")]
    pub leeway: Duration,
}

impl Default for JwtConfig {
    fn default() -> Self {
        Self {
            hs256_secret_file: None,
            jwks_file: None,
            issuer: None,
            audience: None,
            tenant_claim: "tenant".into(),
            roles_claim: "roles".into(),
            leeway: Duration::from_secs(30),
        }
    }
}

struct PublicKey {
    algorithm: Option<Algorithm>,
    key: DecodingKey,
}

/// The JWKS file's usable keys by `kid`.
struct PublicKeys {
    by_kid: HashMap<String, PublicKey>,
}

fn parse_jwks(bytes: &[u8]) -> Result<PublicKeys, String> {
    let set: JwkSet = serde_json::from_slice(bytes).map_err(|e| format!("not a JWKS: {e}"))?;
    let mut by_kid = HashMap::new();
    for (index, jwk) in set.keys.iter().enumerate() {
        let Some(kid) = jwk.common.key_id.clone() else {
            return Err(format!("keys[{index}].kid: is required"));
        };
        let algorithm = match jwk.common.key_algorithm {
            Some(algorithm) => Some(
                Algorithm::try_from(algorithm)
                    .map_err(|_| format!("keys[{index}].alg: not a signing algorithm"))?,
            ),
            None => None,
        };
        let key = DecodingKey::from_jwk(jwk)
            .map_err(|e| format!("keys[{index}]: not a usable public key: {e}"))?;
        if by_kid.insert(kid, PublicKey { algorithm, key }).is_some() {
            return Err(format!("keys[{index}].kid: appears twice"));
        }
    }
    Ok(PublicKeys { by_kid })
}

fn parse_secret(bytes: &[u8]) -> Result<DecodingKey, String> {
    let secret = bytes.trim_ascii_end();
    if secret.len() < MIN_HS256_SECRET_BYTES {
        return Err(format!(
            "the HS256 secret must be at least {MIN_HS256_SECRET_BYTES} bytes"
        ));
    }
    Ok(DecodingKey::from_secret(secret))
}

fn open<T>(
    key: &'static str,
    path: &Option<PathBuf>,
    parse: fn(&[u8]) -> Result<T, String>,
) -> Result<Option<Reloading<T>>, JwtConfigError> {
    path.as_deref()
        .map(|path: &Path| Reloading::open(path, parse))
        .transpose()
        .map_err(|source| JwtConfigError::File { key, source })
}

/// Checks JWTs against the configured secret and keys.
pub struct JwtVerifier {
    config: JwtConfig,
    secret: Option<Reloading<DecodingKey>>,
    public_keys: Option<Reloading<PublicKeys>>,
}

impl std::fmt::Debug for JwtVerifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JwtVerifier")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

/// Why the JWT settings cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum JwtConfigError {
    #[error("jwt: set hs256_secret_file or jwks_file (or both)")]
    NoKeys,
    #[error("jwt.{key}: {source}")]
    File {
        key: &'static str,
        source: LoadError,
    },
    #[error("jwt.{0}: must not be empty")]
    EmptyClaim(&'static str),
}

impl JwtVerifier {
    pub fn new(config: &JwtConfig) -> Result<JwtVerifier, JwtConfigError> {
        if config.tenant_claim.is_empty() {
            return Err(JwtConfigError::EmptyClaim("tenant_claim"));
        }
        if config.roles_claim.is_empty() {
            return Err(JwtConfigError::EmptyClaim("roles_claim"));
        }
        let secret = open("hs256_secret_file", &config.hs256_secret_file, parse_secret)?;
        let public_keys = open("jwks_file", &config.jwks_file, parse_jwks)?;
        if secret.is_none() && public_keys.is_none() {
            return Err(JwtConfigError::NoKeys);
        }
        Ok(JwtVerifier {
            config: config.clone(),
            secret,
            public_keys,
        })
    }

    /// The principal `token` stands for.
    pub fn verify(&self, token: &str) -> Result<Principal, AuthError> {
        if token.len() > MAX_TOKEN_BYTES {
            return Err(AuthError::Invalid("JWT too long"));
        }
        let header =
            jsonwebtoken::decode_header(token).map_err(|_| AuthError::Invalid("malformed JWT"))?;
        let claims = match header.alg {
            Algorithm::HS256 => {
                let secret = self
                    .secret
                    .as_ref()
                    .ok_or(AuthError::Invalid("HS256 JWTs are not accepted"))?
                    .current();
                self.decode(token, Algorithm::HS256, &secret)?
            }
            Algorithm::RS256 | Algorithm::ES256 => {
                let keys = self
                    .public_keys
                    .as_ref()
                    .ok_or(AuthError::Invalid("RS256/ES256 JWTs are not accepted"))?
                    .current();
                let kid = header
                    .kid
                    .as_deref()
                    .ok_or(AuthError::Invalid("JWT without kid"))?;
                let public = keys
                    .by_kid
                    .get(kid)
                    .ok_or(AuthError::Invalid("JWT signed by an unknown kid"))?;
                if public.algorithm.is_some_and(|alg| alg != header.alg) {
                    return Err(AuthError::Invalid("JWT alg differs from its key's"));
                }
                self.decode(token, header.alg, &public.key)?
            }
            _ => return Err(AuthError::Invalid("JWT algorithm not accepted")),
        };
        let credential_id = match (&header.alg, &header.kid) {
            (Algorithm::HS256, _) => "jwt:hs256".to_string(),
            (_, Some(kid)) => format!("jwt:{kid}"),
            (_, None) => "jwt".to_string(),
        };
        self.principal(&claims, credential_id)
    }

    fn decode(
        &self,
        token: &str,
        algorithm: Algorithm,
        key: &DecodingKey,
    ) -> Result<Map<String, Value>, AuthError> {
        let mut validation = Validation::new(algorithm);
        validation.leeway = self.config.leeway.as_secs();
        validation.validate_nbf = true;
        let mut required = vec!["exp"];
        match &self.config.issuer {
            Some(issuer) => {
                validation.set_issuer(&[issuer]);
                required.push("iss");
            }
            None => validation.iss = None,
        }
        match &self.config.audience {
            Some(audience) => {
                validation.set_audience(&[audience]);
                required.push("aud");
            }
            None => validation.validate_aud = false,
        }
        validation.set_required_spec_claims(&required);
        jsonwebtoken::decode::<Map<String, Value>>(token, key, &validation)
            .map(|data| data.claims)
            .map_err(|error| match error.kind() {
                ErrorKind::ExpiredSignature => AuthError::Expired,
                ErrorKind::ImmatureSignature => AuthError::Invalid("JWT not valid yet (nbf)"),
                ErrorKind::InvalidAudience => AuthError::Invalid("JWT for another audience"),
                ErrorKind::InvalidIssuer => AuthError::Invalid("JWT from another issuer"),
                ErrorKind::InvalidSignature => AuthError::Invalid("JWT signature does not verify"),
                ErrorKind::MissingRequiredClaim(_) => {
                    AuthError::Invalid("JWT lacks exp, iss or aud")
                }
                _ => AuthError::Invalid("malformed JWT"),
            })
    }

    fn principal(
        &self,
        claims: &Map<String, Value>,
        credential_id: String,
    ) -> Result<Principal, AuthError> {
        let tenant = claims
            .get(&self.config.tenant_claim)
            .and_then(Value::as_str)
            .filter(|tenant| is_valid_tenant(tenant))
            .ok_or(AuthError::Invalid("JWT without a valid tenant claim"))?;
        let names: Vec<&str> = match claims.get(&self.config.roles_claim) {
            Some(Value::Array(items)) => items.iter().filter_map(Value::as_str).collect(),
            Some(Value::String(text)) => text.split_whitespace().collect(),
            _ => Vec::new(),
        };
        let roles: BTreeSet<Role> = names.into_iter().filter_map(Role::from_name).collect();
        let subject = claims
            .get("sub")
            .and_then(Value::as_str)
            .filter(|sub| sub.len() <= 256 && !sub.chars().any(char::is_control))
            .unwrap_or("")
            .to_string();
        Ok(Principal {
            tenant: tenant.to_string(),
            subject,
            credential_id,
            roles,
        })
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use std::time::{SystemTime, UNIX_EPOCH};

    use jsonwebtoken::jwk::Jwk;
    use jsonwebtoken::{EncodingKey, Header};
    use serde_json::json;

    use super::*;

    pub const SECRET: &[u8] = b"an HS256 secret of at least thirty-two bytes";

    pub fn now() -> u64 {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .expect("after 1970")
            .as_secs()
    }

    /// An ES256 key pair made for the test: the signing key and its JWK.
    pub fn es256_key(kid: &str) -> (EncodingKey, Jwk) {
        let pair = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).expect("keygen");
        let key = EncodingKey::from_ec_pem(pair.serialize_pem().as_bytes()).expect("pem");
        let mut jwk = Jwk::from_encoding_key(&key, Algorithm::ES256).expect("jwk");
        jwk.common.key_id = Some(kid.to_string());
        (key, jwk)
    }

    /// The RSA test key (tests/fixtures/rsa-test-key.pem): generating one
    /// in a debug build takes too long.
    pub fn rs256_key(kid: &str) -> (EncodingKey, Jwk) {
        let pem = include_bytes!("../tests/fixtures/rsa-test-key.pem");
        let key = EncodingKey::from_rsa_pem(pem).expect("pem");
        let mut jwk = Jwk::from_encoding_key(&key, Algorithm::RS256).expect("jwk");
        jwk.common.key_id = Some(kid.to_string());
        (key, jwk)
    }

    pub fn sign(alg: Algorithm, kid: Option<&str>, key: &EncodingKey, claims: &Value) -> String {
        let mut header = Header::new(alg);
        header.kid = kid.map(str::to_string);
        jsonwebtoken::encode(&header, claims, key).expect("signs")
    }

    pub fn claims(extra: Value) -> Value {
        let mut claims = json!({
            "sub": "bot-1",
            "tenant": "acme",
            "roles": ["ai_runtime", "some_other_app_role"],
            "iss": "https://idp.test",
            "aud": "baton",
            "exp": now() + 600,
        });
        if let (Some(base), Value::Object(extra)) = (claims.as_object_mut(), extra) {
            base.extend(extra);
        }
        claims
    }

    struct Fixture {
        _dir: tempfile::TempDir,
        verifier: JwtVerifier,
        es: EncodingKey,
        rs: EncodingKey,
    }

    fn fixture() -> Fixture {
        let dir = tempfile::tempdir().expect("tempdir");
        let (es, es_jwk) = es256_key("es-1");
        let (rs, rs_jwk) = rs256_key("rs-1");
        let jwks = dir.path().join("jwks.json");
        let set = JwkSet {
            keys: vec![es_jwk, rs_jwk],
        };
        std::fs::write(&jwks, serde_json::to_vec(&set).expect("json")).expect("write");
        let secret = dir.path().join("secret");
        std::fs::write(&secret, [SECRET, b"\n"].concat()).expect("write");
        let verifier = JwtVerifier::new(&JwtConfig {
            hs256_secret_file: Some(secret),
            jwks_file: Some(jwks),
            issuer: Some("https://idp.test".into()),
            audience: Some("baton".into()),
            ..JwtConfig::default()
        })
        .expect("configures");
        Fixture {
            _dir: dir,
            verifier,
            es,
            rs,
        }
    }

    #[test]
    fn each_algorithm_verifies_and_maps_claims() {
        let f = fixture();
        let hs = sign(
            Algorithm::HS256,
            None,
            &EncodingKey::from_secret(SECRET),
            &claims(json!({})),
        );
        let es = sign(Algorithm::ES256, Some("es-1"), &f.es, &claims(json!({})));
        let rs = sign(
            Algorithm::RS256,
            Some("rs-1"),
            &f.rs,
            &claims(json!({"roles": "supervisor admin"})),
        );
        let principal = f.verifier.verify(&hs).expect("HS256");
        assert_eq!(principal.tenant, "acme");
        assert_eq!(principal.subject, "bot-1");
        assert_eq!(principal.credential_id, "jwt:hs256");
        assert_eq!(principal.roles, BTreeSet::from([Role::AiRuntime]));
        assert_eq!(
            f.verifier.verify(&es).expect("ES256").credential_id,
            "jwt:es-1"
        );
        assert_eq!(
            f.verifier.verify(&rs).expect("RS256").roles,
            BTreeSet::from([Role::Supervisor, Role::Admin])
        );
    }

    #[test]
    fn wrong_tokens_are_refused_for_the_right_reason() {
        let f = fixture();
        let hs = |claims: Value| {
            sign(
                Algorithm::HS256,
                None,
                &EncodingKey::from_secret(SECRET),
                &claims,
            )
        };
        let invalid = |reason| Err(AuthError::Invalid(reason));
        let verify = |token: &str| f.verifier.verify(token);

        assert_eq!(
            verify(&hs(claims(json!({"exp": now() - 120})))),
            Err(AuthError::Expired)
        );
        // Within the leeway an expired token still passes.
        assert!(verify(&hs(claims(json!({"exp": now() - 5})))).is_ok());
        assert_eq!(
            verify(&hs(claims(json!({"nbf": now() + 600})))),
            invalid("JWT not valid yet (nbf)")
        );
        assert_eq!(
            verify(&hs(claims(json!({"aud": "other"})))),
            invalid("JWT for another audience")
        );
        assert_eq!(
            verify(&hs(claims(json!({"iss": "https://evil.test"})))),
            invalid("JWT from another issuer")
        );
        let mut no_aud = claims(json!({}));
        no_aud.as_object_mut().expect("object").remove("aud");
        assert_eq!(verify(&hs(no_aud)), invalid("JWT lacks exp, iss or aud"));
        let mut no_exp = claims(json!({}));
        no_exp.as_object_mut().expect("object").remove("exp");
        assert_eq!(verify(&hs(no_exp)), invalid("JWT lacks exp, iss or aud"));
        assert_eq!(
            verify(&hs(claims(json!({"tenant": ""})))),
            invalid("JWT without a valid tenant claim")
        );
        assert_eq!(
            verify(&hs(claims(json!({"tenant": 7})))),
            invalid("JWT without a valid tenant claim")
        );

        let wrong_secret = sign(
            Algorithm::HS256,
            None,
            &EncodingKey::from_secret(b"another secret, also thirty-two bytes long"),
            &claims(json!({})),
        );
        assert_eq!(
            verify(&wrong_secret),
            invalid("JWT signature does not verify")
        );

        let (other_es, _) = es256_key("es-1");
        let forged = sign(
            Algorithm::ES256,
            Some("es-1"),
            &other_es,
            &claims(json!({})),
        );
        assert_eq!(verify(&forged), invalid("JWT signature does not verify"));
        let unknown_kid = sign(Algorithm::ES256, Some("es-2"), &f.es, &claims(json!({})));
        assert_eq!(
            verify(&unknown_kid),
            invalid("JWT signed by an unknown kid")
        );
        let no_kid = sign(Algorithm::ES256, None, &f.es, &claims(json!({})));
        assert_eq!(verify(&no_kid), invalid("JWT without kid"));
        // An RS256 header on the EC key's kid: the key's alg decides.
        let confused = sign(Algorithm::RS256, Some("es-1"), &f.rs, &claims(json!({})));
        assert_eq!(verify(&confused), invalid("JWT alg differs from its key's"));
        let hs512 = sign(
            Algorithm::HS512,
            None,
            &EncodingKey::from_secret(SECRET),
            &claims(json!({})),
        );
        assert_eq!(verify(&hs512), invalid("JWT algorithm not accepted"));

        // `alg: none`, altered payloads and garbage.
        let good = hs(claims(json!({})));
        let parts: Vec<&str> = good.split('.').collect();
        let none_header = base64::Engine::encode(
            &base64::engine::general_purpose::URL_SAFE_NO_PAD,
            br#"{"alg":"none","typ":"JWT"}"#,
        );
        assert_eq!(
            verify(&format!("{none_header}.{}.", parts[1])),
            invalid("malformed JWT")
        );
        let admin_payload = base64::Engine::encode(
            &base64::engine::general_purpose::URL_SAFE_NO_PAD,
            serde_json::to_vec(&claims(json!({"roles": ["admin"]}))).expect("json"),
        );
        assert_eq!(
            verify(&format!("{}.{admin_payload}.{}", parts[0], parts[2])),
            invalid("JWT signature does not verify")
        );
        assert_eq!(verify("not.a.jwt"), invalid("malformed JWT"));
        assert_eq!(verify(""), invalid("malformed JWT"));
        assert_eq!(
            verify(&"a".repeat(MAX_TOKEN_BYTES + 1)),
            invalid("JWT too long")
        );
    }

    #[test]
    fn config_without_keys_or_with_a_short_secret_is_refused() {
        assert!(matches!(
            JwtVerifier::new(&JwtConfig::default()),
            Err(JwtConfigError::NoKeys)
        ));
        let dir = tempfile::tempdir().expect("tempdir");
        let secret = dir.path().join("secret");
        std::fs::write(&secret, "short").expect("write");
        let error = JwtVerifier::new(&JwtConfig {
            hs256_secret_file: Some(secret),
            ..JwtConfig::default()
        })
        .expect_err("refused");
        assert!(
            error.to_string().starts_with("jwt.hs256_secret_file"),
            "{error}"
        );
        assert!(!error.to_string().contains("short"), "{error}");
    }
}
