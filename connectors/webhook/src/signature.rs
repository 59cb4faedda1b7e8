//! Standard Webhooks signatures (<https://www.standardwebhooks.com/>): the
//! `webhook-signature` header is `v1,` and the base64 HMAC-SHA256 of
//! `{webhook-id}.{webhook-timestamp}.{body}`, keyed by the secret's bytes
//! (the base64 after `whsec_`).

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, Mac};
use sha2::Sha256;

/// A signing secret. Its Debug output is redacted, so it never reaches a log.
#[derive(Clone, PartialEq, Eq, serde::Deserialize)]
#[serde(try_from = "String")]
pub struct SigningSecret(Vec<u8>);

impl std::fmt::Debug for SigningSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SigningSecret(redacted)")
    }
}

impl TryFrom<String> for SigningSecret {
    type Error = String;

    fn try_from(text: String) -> Result<Self, Self::Error> {
        Self::parse(&text)
    }
}

impl SigningSecret {
    /// Parses `whsec_<base64>`; the message never repeats the secret.
    pub fn parse(text: &str) -> Result<Self, String> {
        let encoded = text
            .strip_prefix("whsec_")
            .ok_or("a signing secret is written whsec_<base64>")?;
        let bytes = STANDARD
            .decode(encoded)
            .map_err(|_| "the part after whsec_ is not base64")?;
        // The spec asks for 24 to 64 bytes of key material.
        if bytes.len() < 24 || bytes.len() > 64 {
            return Err(format!(
                "a whsec_ secret holds 24 to 64 bytes; this one holds {}",
                bytes.len()
            ));
        }
        Ok(Self(bytes))
    }

    /// The `webhook-signature` header value for one request.
    pub fn sign(&self, message_id: &str, timestamp: i64, body: &[u8]) -> String {
        let mut mac =
            Hmac::<Sha256>::new_from_slice(&self.0).expect("HMAC accepts keys of any length");
        mac.update(message_id.as_bytes());
        mac.update(b".");
        mac.update(timestamp.to_string().as_bytes());
        mac.update(b".");
        mac.update(body);
        format!("v1,{}", STANDARD.encode(mac.finalize().into_bytes()))
    }
}

impl SigningSecret {
    /// Verifies a request signed the same way (a report from the receiving
    /// system): one of the space-separated `v1,…` signatures must match,
    /// compared in constant time.
    pub fn verify(&self, message_id: &str, timestamp: i64, body: &[u8], header: &str) -> bool {
        header
            .split(' ')
            .filter_map(|s| s.strip_prefix("v1,"))
            .filter_map(|s| STANDARD.decode(s).ok())
            .any(|given| {
                let mut mac = Hmac::<Sha256>::new_from_slice(&self.0)
                    .expect("HMAC accepts keys of any length");
                mac.update(message_id.as_bytes());
                mac.update(b".");
                mac.update(timestamp.to_string().as_bytes());
                mac.update(b".");
                mac.update(body);
                mac.verify_slice(&given).is_ok()
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The example of the Standard Webhooks specification and of its
    /// reference libraries.
    #[test]
    fn the_specification_example_signs_as_published() {
        let secret =
            SigningSecret::parse("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").expect("parses");
        assert_eq!(
            secret.sign(
                "msg_p5jXN8AQM9LWM0D4loKWxJek",
                1614265330,
                br#"{"test": 2432232314}"#
            ),
            "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
        );
    }

    #[test]
    fn a_signature_verifies_among_several_and_a_changed_body_does_not() {
        let secret =
            SigningSecret::parse("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").expect("parses");
        let signature = secret.sign("msg_1", 1700000000, b"{}");
        let header = format!("v1,c29tZXRoaW5nIGVsc2U= {signature}");
        assert!(secret.verify("msg_1", 1700000000, b"{}", &header));
        assert!(!secret.verify("msg_1", 1700000000, b"{ }", &header));
        assert!(!secret.verify("msg_2", 1700000000, b"{}", &header));
        assert!(!secret.verify("msg_1", 1700000000, b"{}", "v1,not base64"));
    }

    #[test]
    fn malformed_secrets_are_refused_without_echoing_them() {
        let error = SigningSecret::parse("whsec_!!!not-base64!!!").expect_err("refused");
        assert!(!error.contains("not-base64"));
        assert!(SigningSecret::parse("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").is_err());
        assert!(SigningSecret::parse("whsec_c2hvcnQ=").is_err());
    }
}
