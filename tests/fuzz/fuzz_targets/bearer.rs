//! Credential headers through the whole authenticator (API keys and HS256 /
//! ES256 JWTs): never a panic, and no altered token is ever accepted as
//! anything but what was signed.
//!
//! The first byte picks the case: raw bytes as an `authorization` or
//! `x-api-key` header, or a valid JWT or API key with the rest of the input
//! spliced in (position, then bytes), which reaches the signature and claim
//! checks that random bytes never would.

#![no_main]

use std::sync::OnceLock;

use baton_auth::api_key::{self, KeysFile};
use baton_auth::jwt::JwtConfig;
use baton_auth::{AuthConfig, AuthMode, Authenticator, Role};
use jsonwebtoken::jwk::{Jwk, JwkSet};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use libfuzzer_sys::fuzz_target;
use tonic::codegen::http::{HeaderMap, HeaderValue};

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
        let pair = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).expect("keygen");
        let es256 = EncodingKey::from_ec_pem(pair.serialize_pem().as_bytes()).expect("pem");
        let mut jwk = Jwk::from_encoding_key(&es256, Algorithm::ES256).expect("jwk");
        jwk.common.key_id = Some("k1".into());
        std::fs::write(
            dir.path().join("jwks.json"),
            serde_json::to_vec(&JwkSet { keys: vec![jwk] }).expect("json"),
        )
        .expect("write");
        let minted = api_key::mint("acme", &[Role::AiRuntime], None, None).expect("mints");
        let keys_file = dir.path().join("keys.toml");
        KeysFile::add_to(&keys_file, minted.entry).expect("adds");
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
            valid: vec![hs, es, minted.key],
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
