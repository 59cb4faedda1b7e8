//! The ID token's checks (OpenID Connect Core 3.1.3.7), in plain Rust:
//! the signature (RS256 or ES256, with a key of the issuer's JWKS), the
//! issuer, the audience and authorized party, the times, and the nonce
//! that ties the token to the sign-in this browser started.

use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, JwkSet, KeyAlgorithm, PublicKeyUse};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde_json::Value;
use subtle::ConstantTimeEq;

/// The claims of a verified ID token.
pub type Claims = serde_json::Map<String, Value>;

/// How far the issuer's clock may be from ours, in seconds.
pub const CLOCK_LEEWAY_SECS: u64 = 60;

/// An ID token issued longer ago than this (plus the leeway) is refused:
/// it comes straight from the token endpoint, so it is always fresh.
pub const MAX_TOKEN_AGE_SECS: u64 = 10 * 60;

/// Why an ID token was refused. Shown to nobody but the log: the person
/// is told only that the sign-in failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenRefused {
    #[error("not a well-formed JWT: {0}")]
    Malformed(String),
    #[error("signed with {0}; only RS256 and ES256 are accepted")]
    Algorithm(String),
    #[error("no key of the issuer's JWKS matches the token's kid and algorithm")]
    UnknownKey,
    #[error("the signature does not verify")]
    Signature,
    #[error("claim {0} is missing or not of the expected type")]
    MissingClaim(&'static str),
    #[error("issued by {0:?}, not by the configured issuer")]
    Issuer(String),
    #[error("not issued for this client (aud)")]
    Audience,
    #[error("issued for another party (azp)")]
    AuthorizedParty,
    #[error("expired")]
    Expired,
    #[error("not valid yet (nbf) or issued in the future (iat)")]
    NotYetValid,
    #[error("issued too long ago (iat)")]
    TooOld,
    #[error("the nonce is not this sign-in's")]
    Nonce,
}

/// What the token's header says about how it is signed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenHeader {
    pub alg: Algorithm,
    pub kid: Option<String>,
}

/// What the token must say to be accepted.
#[derive(Debug, Clone, Copy)]
pub struct Expected<'a> {
    pub issuer: &'a str,
    pub client_id: &'a str,
    pub nonce: &'a str,
    /// Now, in seconds since the epoch.
    pub now: u64,
}

/// Reads the header; refuses every algorithm but RS256 and ES256 (no
/// `none`, no HMAC with the public key as secret).
pub fn header_of(token: &str) -> Result<TokenHeader, TokenRefused> {
    let header =
        jsonwebtoken::decode_header(token).map_err(|e| TokenRefused::Malformed(e.to_string()))?;
    match header.alg {
        Algorithm::RS256 | Algorithm::ES256 => Ok(TokenHeader {
            alg: header.alg,
            kid: header.kid,
        }),
        other => Err(TokenRefused::Algorithm(format!("{other:?}"))),
    }
}

/// Whether the set has a key for the header's `kid` (any key of the
/// right type when the token names none).
pub fn has_key(keys: &JwkSet, header: &TokenHeader) -> bool {
    key_for(keys, header).is_ok()
}

/// The key of the set that verifies tokens with this header: the one of
/// its `kid`, of the algorithm's type (RSA; EC on P-256), meant for
/// signatures. Without a `kid`, the set must hold exactly one such key.
pub fn key_for(keys: &JwkSet, header: &TokenHeader) -> Result<DecodingKey, TokenRefused> {
    let fits = |jwk: &&jsonwebtoken::jwk::Jwk| {
        let kid_ok = match &header.kid {
            Some(kid) => jwk.common.key_id.as_deref() == Some(kid.as_str()),
            None => true,
        };
        let use_ok = matches!(
            jwk.common.public_key_use,
            None | Some(PublicKeyUse::Signature)
        );
        let (type_ok, wanted) = match header.alg {
            Algorithm::RS256 => (
                matches!(jwk.algorithm, AlgorithmParameters::RSA(_)),
                KeyAlgorithm::RS256,
            ),
            _ => (
                matches!(&jwk.algorithm, AlgorithmParameters::EllipticCurve(ec) if ec.curve == EllipticCurve::P256),
                KeyAlgorithm::ES256,
            ),
        };
        let alg_ok = jwk.common.key_algorithm.is_none_or(|a| a == wanted);
        kid_ok && use_ok && type_ok && alg_ok
    };
    let mut candidates = keys.keys.iter().filter(fits);
    let jwk = candidates.next().ok_or(TokenRefused::UnknownKey)?;
    if header.kid.is_none() && candidates.next().is_some() {
        return Err(TokenRefused::UnknownKey);
    }
    DecodingKey::from_jwk(jwk).map_err(|_| TokenRefused::UnknownKey)
}

/// Verifies the token's signature with `key`, then its claims against
/// `expected`; its claims when all hold.
pub fn verify(
    token: &str,
    header: &TokenHeader,
    key: &DecodingKey,
    expected: Expected<'_>,
) -> Result<Claims, TokenRefused> {
    // The library checks the signature only; every claim is checked below,
    // against `expected.now`, so that each rule is visible and tested here.
    let mut validation = Validation::new(header.alg);
    validation.validate_exp = false;
    validation.validate_nbf = false;
    validation.validate_aud = false;
    validation.required_spec_claims.clear();
    let data =
        jsonwebtoken::decode::<Claims>(token, key, &validation).map_err(|e| match e.kind() {
            jsonwebtoken::errors::ErrorKind::InvalidSignature => TokenRefused::Signature,
            jsonwebtoken::errors::ErrorKind::InvalidAlgorithm => {
                TokenRefused::Algorithm(format!("{:?}", header.alg))
            }
            _ => TokenRefused::Malformed(e.to_string()),
        })?;
    check_claims(&data.claims, expected)?;
    Ok(data.claims)
}

fn check_claims(claims: &Claims, expected: Expected<'_>) -> Result<(), TokenRefused> {
    let string = |name: &'static str| {
        claims
            .get(name)
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .ok_or(TokenRefused::MissingClaim(name))
    };
    let seconds = |name: &'static str| claims.get(name).and_then(Value::as_u64);

    let issuer = string("iss")?;
    if issuer != expected.issuer {
        return Err(TokenRefused::Issuer(issuer.to_owned()));
    }
    string("sub")?;

    let audiences: Vec<&str> = match claims.get("aud") {
        Some(Value::String(one)) => vec![one.as_str()],
        Some(Value::Array(many)) => many.iter().filter_map(Value::as_str).collect(),
        _ => return Err(TokenRefused::MissingClaim("aud")),
    };
    if !audiences.contains(&expected.client_id) {
        return Err(TokenRefused::Audience);
    }
    // With other audiences beside us, the party the token was issued to
    // must be named, and be us; when named at all, it must be us.
    match claims.get("azp").and_then(Value::as_str) {
        Some(azp) if azp != expected.client_id => return Err(TokenRefused::AuthorizedParty),
        None if audiences.len() > 1 => return Err(TokenRefused::AuthorizedParty),
        _ => {}
    }

    let now = expected.now;
    let expires = seconds("exp").ok_or(TokenRefused::MissingClaim("exp"))?;
    if expires.saturating_add(CLOCK_LEEWAY_SECS) <= now {
        return Err(TokenRefused::Expired);
    }
    let issued = seconds("iat").ok_or(TokenRefused::MissingClaim("iat"))?;
    if issued > now.saturating_add(CLOCK_LEEWAY_SECS) {
        return Err(TokenRefused::NotYetValid);
    }
    if issued.saturating_add(MAX_TOKEN_AGE_SECS + CLOCK_LEEWAY_SECS) < now {
        return Err(TokenRefused::TooOld);
    }
    if let Some(not_before) = seconds("nbf")
        && not_before > now.saturating_add(CLOCK_LEEWAY_SECS)
    {
        return Err(TokenRefused::NotYetValid);
    }

    let nonce = string("nonce").map_err(|_| TokenRefused::Nonce)?;
    if !bool::from(nonce.as_bytes().ct_eq(expected.nonce.as_bytes())) {
        return Err(TokenRefused::Nonce);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use jsonwebtoken::jwk::Jwk;
    use jsonwebtoken::{EncodingKey, Header};

    use super::*;

    const RSA_KEY: &str = include_str!("testdata/rsa-test-key.pem");
    const NOW: u64 = 1_800_000_000;

    /// A signing key and its public JWK under `kid`.
    struct Signer {
        key: EncodingKey,
        alg: Algorithm,
        jwk: Jwk,
    }

    fn signer(alg: Algorithm, kid: &str) -> Signer {
        let key = match alg {
            Algorithm::RS256 => EncodingKey::from_rsa_pem(RSA_KEY.as_bytes()).expect("rsa"),
            _ => {
                let pair =
                    rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).expect("p-256");
                EncodingKey::from_ec_pem(pair.serialize_pem().as_bytes()).expect("ec")
            }
        };
        let mut jwk = Jwk::from_encoding_key(&key, alg).expect("jwk");
        jwk.common.key_id = Some(kid.into());
        jwk.common.public_key_use = Some(PublicKeyUse::Signature);
        Signer { key, alg, jwk }
    }

    impl Signer {
        fn sign(&self, claims: &Value) -> String {
            let mut header = Header::new(self.alg);
            header.kid = self.jwk.common.key_id.clone();
            jsonwebtoken::encode(&header, claims, &self.key).expect("sign")
        }
    }

    fn claims() -> Value {
        serde_json::json!({
            "iss": "https://idp.example.com",
            "sub": "user-1",
            "aud": "desk",
            "exp": NOW + 300,
            "iat": NOW - 5,
            "nonce": "n-123",
            "preferred_username": "ann",
        })
    }

    fn expected() -> Expected<'static> {
        Expected {
            issuer: "https://idp.example.com",
            client_id: "desk",
            nonce: "n-123",
            now: NOW,
        }
    }

    fn check(keys: &JwkSet, token: &str, expected: Expected<'_>) -> Result<Claims, TokenRefused> {
        let header = header_of(token)?;
        let key = key_for(keys, &header)?;
        verify(token, &header, &key, expected)
    }

    fn set(signers: &[&Signer]) -> JwkSet {
        JwkSet {
            keys: signers.iter().map(|s| s.jwk.clone()).collect(),
        }
    }

    #[test]
    fn tokens_signed_with_rs256_and_es256_by_a_key_of_the_set_verify() {
        let rsa = signer(Algorithm::RS256, "rsa-1");
        let ec = signer(Algorithm::ES256, "ec-1");
        let keys = set(&[&rsa, &ec]);
        for signer in [&rsa, &ec] {
            let claims = check(&keys, &signer.sign(&claims()), expected()).expect("valid");
            assert_eq!(claims["preferred_username"], "ann");
        }
        // Several audiences, with us as the authorized party.
        let mut many = claims();
        many["aud"] = serde_json::json!(["desk", "api"]);
        many["azp"] = "desk".into();
        check(&keys, &ec.sign(&many), expected()).expect("azp is us");
    }

    #[test]
    fn a_tampered_or_foreign_signature_and_other_algorithms_are_refused() {
        let rsa = signer(Algorithm::RS256, "rsa-1");
        let ec = signer(Algorithm::ES256, "ec-1");
        let keys = set(&[&rsa, &ec]);
        let token = rsa.sign(&claims());

        // The payload changed after signing (another account).
        let mut parts: Vec<String> = token.split('.').map(str::to_owned).collect();
        let mut forged = claims();
        forged["preferred_username"] = "root".into();
        parts[1] = base64_url(&serde_json::to_vec(&forged).expect("json"));
        assert_eq!(
            check(&keys, &parts.join("."), expected()).map(|_| ()),
            Err(TokenRefused::Signature)
        );
        // A key of the same kid that is not the issuer's.
        let impostor = signer(Algorithm::ES256, "ec-1");
        assert_eq!(
            check(&keys, &impostor.sign(&claims()), expected()).map(|_| ()),
            Err(TokenRefused::Signature)
        );
        // A kid the set does not have.
        let stranger = signer(Algorithm::ES256, "ec-9");
        assert_eq!(
            check(&keys, &stranger.sign(&claims()), expected()).map(|_| ()),
            Err(TokenRefused::UnknownKey)
        );
        // An RS256 header naming the EC key.
        let mut header = Header::new(Algorithm::RS256);
        header.kid = Some("ec-1".into());
        let mixed = jsonwebtoken::encode(&header, &claims(), &rsa.key).expect("sign");
        assert_eq!(
            check(&keys, &mixed, expected()).map(|_| ()),
            Err(TokenRefused::UnknownKey)
        );
        // HMAC (a public key used as a shared secret) and `none`.
        let hmac = jsonwebtoken::encode(
            &Header::new(Algorithm::HS256),
            &claims(),
            &EncodingKey::from_secret(b"public"),
        )
        .expect("sign");
        assert!(matches!(
            check(&keys, &hmac, expected()),
            Err(TokenRefused::Algorithm(_))
        ));
        let none = format!(
            "{}.{}.",
            base64_url(br#"{"alg":"none"}"#),
            base64_url(&serde_json::to_vec(&claims()).expect("json"))
        );
        assert!(check(&keys, &none, expected()).is_err());
    }

    #[test]
    fn wrong_issuer_audience_party_times_and_nonce_are_refused() {
        let ec = signer(Algorithm::ES256, "ec-1");
        let keys = set(&[&ec]);
        let refused = |edit: &dyn Fn(&mut Value)| {
            let mut claims = claims();
            edit(&mut claims);
            check(&keys, &ec.sign(&claims), expected())
                .map(|_| ())
                .expect_err("refused")
        };
        assert!(matches!(
            refused(&|c| c["iss"] = "https://evil.example".into()),
            TokenRefused::Issuer(_)
        ));
        assert!(matches!(
            refused(&|c| c["iss"] = "https://idp.example.com/".into()),
            TokenRefused::Issuer(_)
        ));
        assert_eq!(
            refused(&|c| c["aud"] = "another-client".into()),
            TokenRefused::Audience
        );
        assert_eq!(
            refused(&|c| c["aud"] = serde_json::json!(["desk", "api"])),
            TokenRefused::AuthorizedParty,
            "several audiences and no azp"
        );
        assert_eq!(
            refused(&|c| c["azp"] = "api".into()),
            TokenRefused::AuthorizedParty
        );
        assert_eq!(
            refused(&|c| c["exp"] = (NOW - CLOCK_LEEWAY_SECS).into()),
            TokenRefused::Expired
        );
        assert_eq!(
            refused(&|c| c["iat"] = (NOW + CLOCK_LEEWAY_SECS + 1).into()),
            TokenRefused::NotYetValid
        );
        assert_eq!(
            refused(&|c| c["iat"] = (NOW - MAX_TOKEN_AGE_SECS - CLOCK_LEEWAY_SECS - 1).into()),
            TokenRefused::TooOld
        );
        assert_eq!(
            refused(&|c| c["nonce"] = "n-124".into()),
            TokenRefused::Nonce
        );
        assert_eq!(
            refused(&|c| {
                c.as_object_mut().expect("object").remove("nonce");
            }),
            TokenRefused::Nonce
        );
        assert_eq!(
            refused(&|c| {
                c.as_object_mut().expect("object").remove("sub");
            }),
            TokenRefused::MissingClaim("sub")
        );
        // Within the leeway, a slightly early clock is tolerated.
        let mut early = claims();
        early["iat"] = (NOW + 30).into();
        early["exp"] = (NOW - 30).into();
        check(&keys, &ec.sign(&early), expected()).expect("within the leeway");
    }

    fn base64_url(bytes: &[u8]) -> String {
        use base64::Engine;
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
    }
}
