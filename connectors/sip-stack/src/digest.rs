//! Digest authentication for trunks (RFC 3261 22.4, RFC 8760 for SHA-256):
//! answers a 401/407 challenge. The hashing is rsip's `DigestGenerator`;
//! this module reads the challenge's parameters and writes the credentials.

use std::collections::HashMap;

use rsip::headers::auth::{Algorithm, AuthQop};
use rsip::{Method, Uri};

/// The parameters of a `Digest` challenge, keys lower-cased.
#[derive(Debug, Clone, PartialEq)]
pub struct Challenge {
    params: HashMap<String, String>,
}

impl Challenge {
    /// Reads `Digest realm="…", nonce="…", algorithm=SHA-256, qop="auth"`.
    /// Only the `Digest` scheme is understood.
    pub fn parse(value: &str) -> Option<Self> {
        let (scheme, rest) = value.trim().split_once(char::is_whitespace)?;
        if !scheme.eq_ignore_ascii_case("digest") {
            return None;
        }
        let mut params = HashMap::new();
        let mut rest = rest.trim();
        while !rest.is_empty() {
            let (key, after) = rest.split_once('=')?;
            let after = after.trim_start();
            let (value, remaining) = if let Some(quoted) = after.strip_prefix('"') {
                let end = quoted.find('"')?;
                (&quoted[..end], &quoted[end + 1..])
            } else {
                let end = after.find(',').unwrap_or(after.len());
                (after[..end].trim(), &after[end..])
            };
            params.insert(key.trim().to_ascii_lowercase(), value.to_owned());
            rest = remaining.trim_start().trim_start_matches(',').trim_start();
        }
        params.contains_key("nonce").then_some(Self { params })
    }

    fn get(&self, key: &str) -> Option<&str> {
        self.params.get(key).map(String::as_str)
    }

    /// The algorithm, when it is one we answer: MD5 (the default) or SHA-256.
    fn algorithm(&self) -> Option<(Algorithm, &'static str)> {
        match self.get("algorithm") {
            None => Some((Algorithm::Md5, "MD5")),
            Some(a) if a.eq_ignore_ascii_case("md5") => Some((Algorithm::Md5, "MD5")),
            Some(a) if a.eq_ignore_ascii_case("sha-256") || a.eq_ignore_ascii_case("sha256") => {
                Some((Algorithm::Sha256, "SHA-256"))
            }
            Some(_) => None,
        }
    }

    /// The value of the Authorization (or Proxy-Authorization) header that
    /// answers this challenge, or None when its algorithm or qop is not one
    /// we support.
    pub fn answer(
        &self,
        username: &str,
        password: &str,
        method: &Method,
        uri: &Uri,
        cnonce: &str,
    ) -> Option<String> {
        let (algorithm, algorithm_name) = self.algorithm()?;
        let realm = self.get("realm").unwrap_or_default();
        let nonce = self.get("nonce")?;
        let qop = match self.get("qop") {
            None => None,
            Some(offered) if offered.split(',').any(|q| q.trim() == "auth") => {
                Some(AuthQop::Auth {
                    cnonce: cnonce.to_owned(),
                    nc: 1,
                })
            }
            Some(_) => return None,
        };
        let response = rsip::services::DigestGenerator {
            username,
            password,
            nonce,
            uri,
            realm,
            method,
            qop: qop.as_ref(),
            algorithm,
        }
        .compute();
        let mut value = format!(
            "Digest username=\"{username}\", realm=\"{realm}\", nonce=\"{nonce}\", uri=\"{uri}\", response=\"{response}\", algorithm={algorithm_name}"
        );
        if qop.is_some() {
            value.push_str(&format!(", qop=auth, cnonce=\"{cnonce}\", nc=00000001"));
        }
        if let Some(opaque) = self.get("opaque") {
            value.push_str(&format!(", opaque=\"{opaque}\""));
        }
        Some(value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_the_rfc_2617_example_with_md5() {
        // RFC 2617 3.5, with the method and URI of its example.
        let challenge = Challenge::parse(
            r#"Digest realm="testrealm@host.com", qop="auth,auth-int", nonce="dcd98b7102dd2f0e8b11d0f600bfb0c093", opaque="5ccc069c403ebaf9f0171e9517f40e41""#,
        )
        .expect("parses");
        let uri = rsip::Uri::try_from("sip:dir@host.com").expect("uri");
        let answer = challenge
            .answer(
                "Mufasa",
                "Circle Of Life",
                &Method::Invite,
                &uri,
                "0a4f113b",
            )
            .expect("answers");
        assert!(answer.contains("algorithm=MD5"), "{answer}");
        assert!(answer.contains("opaque=\"5ccc069c403ebaf9f0171e9517f40e41\""));
        assert!(answer.contains("qop=auth,"));
    }

    #[test]
    fn md5_with_qop_matches_an_independent_computation() {
        // Expected value computed with Python's hashlib from RFC 2617 3.2.2.
        let challenge =
            Challenge::parse(r#"Digest realm="trunk.test", nonce="n1", qop="auth", algorithm=MD5"#)
                .expect("parses");
        let uri = rsip::Uri::try_from("sip:+493012345678@127.0.0.1:5555;user=phone").expect("uri");
        let answer = challenge
            .answer("baton-trunk", "s3cret", &Method::Invite, &uri, "cn")
            .expect("answers");
        assert!(
            answer.contains("response=\"ae290c434f17472929b19d8966edc7f0\""),
            "{answer}"
        );
        assert!(answer.contains("uri=\"sip:+493012345678@127.0.0.1:5555;user=phone\""));
    }

    #[test]
    fn sha_256_is_named_as_rfc_8760_spells_it_and_unknown_algorithms_are_refused() {
        let sha =
            Challenge::parse(r#"Digest realm="r", nonce="n", algorithm=SHA-256"#).expect("parses");
        let uri = rsip::Uri::try_from("sip:+4930123@trunk").expect("uri");
        let answer = sha
            .answer("u", "p", &Method::Invite, &uri, "c")
            .expect("answers");
        assert!(answer.contains("algorithm=SHA-256"));
        // A SHA-256 response is 64 hex digits.
        let response = answer
            .split("response=\"")
            .nth(1)
            .and_then(|r| r.split('"').next());
        assert_eq!(response.map(str::len), Some(64));
        let other = Challenge::parse(r#"Digest realm="r", nonce="n", algorithm=SHA-512-256"#)
            .expect("parses");
        assert!(other.answer("u", "p", &Method::Invite, &uri, "c").is_none());
        assert!(Challenge::parse("Basic realm=\"r\"").is_none());
    }
}
