//! Credential headers through the whole authenticator (API keys and HS256 /
//! ES256 JWTs): never a panic, and no altered token is ever accepted as
//! anything but what was signed.
//!
//! The first byte picks the case: raw bytes as an `authorization` or
//! `x-api-key` header, or a valid JWT or API key with the rest of the input
//! spliced in (position, then bytes), which reaches the signature and claim
//! checks that random bytes never would.
//!
//! The keys are fixed, so that a crash's input replays the same way.

#![no_main]

use std::sync::OnceLock;

use baton_auth::api_key::{ApiKey, KeyEntry, KeysFile};
use baton_auth::jwt::JwtConfig;
use baton_auth::{AuthConfig, AuthMode, Authenticator, Role};
use http::{HeaderMap, HeaderValue};
use jsonwebtoken::jwk::{Jwk, JwkSet};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use libfuzzer_sys::fuzz_target;

/// A P-256 key made for this target only (PKCS#8); it signs nothing else.
const ES256_KEY: &str = "-----BEGIN PRIVATE KEY-----
MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQg+F533ELSpc/4OkOU
LEoR7UFN/vNPo+Fo7Hg9KiMoYgmhRANCAAQLHYLLtos0hB8774mu9EFqgGnirH/x
itOqDAOpTyndtT/lYvlUx95mGP3e+Q9giIV/6BuUi0U3PZEMV0n1G3xa
-----END PRIVATE KEY-----
";

/// An API key made for this target only: `bk_<id>_<43 base64url chars>`.
const API_KEY: &str = "bk_0123456789abcdef_ZnV6emluZy1vbmx5LWtleS1vZi1iYXRvbi1iZWFyZXI";

struct Fixture {
    _dir: tempfile::TempDir,
    authenticator: Authenticator,
    valid: Vec<String>,
}

fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let dir = tempfile::tempdir().expect("tempdir");
        let secret = "a fuzzing secret of at least thirty-two bytes";
        std::fs::write(dir.path().join("secret"), secret).expect("write");
        let es256 = EncodingKey::from_ec_pem(ES256_KEY.as_bytes()).expect("pem");
        let mut jwk = Jwk::from_encoding_key(&es256, Algorithm::ES256).expect("jwk");
        jwk.common.key_id = Some("k1".into());
        std::fs::write(
            dir.path().join("jwks.json"),
            serde_json::to_vec(&JwkSet { keys: vec![jwk] }).expect("json"),
        )
        .expect("write");
        let api_key = ApiKey::parse(API_KEY).expect("a well-formed key");
        let entry = KeyEntry {
            id: api_key.id().to_string(),
            tenant: "acme".into(),
            roles: [Role::AiRuntime].into(),
            secret_sha256: api_key
                .secret_sha256()
                .iter()
                .map(|byte| format!("{byte:02x}"))
                .collect(),
            name: None,
            not_after: None,
        };
        let keys_file = dir.path().join("keys.toml");
        KeysFile::add_to(&keys_file, entry).expect("adds");
        let authenticator = Authenticator::from_config(&AuthConfig {
            mode: AuthMode::Required,
            api_keys_file: Some(keys_file),
            jwt: Some(JwtConfig {
                hs256_secret_file: Some(dir.path().join("secret")),
                jwks_file: Some(dir.path().join("jwks.json")),
                audience: Some("baton".into()),
                ..JwtConfig::default()
            }),
            ..AuthConfig::default()
        })
        .expect("configures")
        .expect("required");
        let claims = serde_json::json!({
            "tenant": "acme", "roles": ["ai_runtime"], "aud": "baton", "exp": 4_000_000_000u64
        });
        let hs = jsonwebtoken::encode(
            &Header::new(Algorithm::HS256),
            &claims,
            &EncodingKey::from_secret(secret.as_bytes()),
        )
        .expect("signs");
        let mut header = Header::new(Algorithm::ES256);
        header.kid = Some("k1".into());
        let es = jsonwebtoken::encode(&header, &claims, &es256).expect("signs");
        Fixture {
            _dir: dir,
            authenticator,
            valid: vec![hs, es, API_KEY.to_string()],
        }
    })
}

fuzz_target!(|data: &[u8]| {
    let fixture = fixture();
    let Some((&case, rest)) = data.split_first() else {
        return;
    };
    match case % 4 {
        0 | 1 => {
            let Ok(value) = HeaderValue::from_bytes(rest) else {
                return;
            };
            let mut headers = HeaderMap::new();
            headers.insert(
                if case % 4 == 0 {
                    "authorization"
                } else {
                    "x-api-key"
                },
                value,
            );
            if let Ok(principal) = fixture.authenticator.authenticate_headers(&headers) {
                panic!("random bytes authenticated as {principal:?}");
            }
        }
        _ => {
            let Some((&at, splice)) = rest.split_first() else {
                return;
            };
            let original = &fixture.valid[usize::from(case / 4) % fixture.valid.len()];
            let mut token = original.as_bytes().to_vec();
            let at = usize::from(at) * token.len() / 256;
            let end = (at + splice.len()).min(token.len());
            token.splice(at..end, splice.iter().copied());
            let Ok(token) = String::from_utf8(token) else {
                return;
            };
            if let Ok(principal) = fixture.authenticator.authenticate(&token) {
                // Accepted: then it says exactly what was signed.
                assert_eq!(principal.tenant, "acme", "{token}");
                assert_eq!(principal.roles, [Role::AiRuntime].into(), "{token}");
            }
        }
    }
});
