//! Twilio's request signatures (`X-Twilio-Signature`): the base64
//! HMAC-SHA1, keyed by the account's auth token, of the full URL Twilio
//! requested followed by every POST parameter sorted by name, each name
//! immediately followed by its value.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, Mac};
use sha1::Sha1;

/// The signature of a POST to `url` with form `params`.
pub fn sign(auth_token: &str, url: &str, params: &[(String, String)]) -> String {
    let mut sorted: Vec<&(String, String)> = params.iter().collect();
    // By name, then by value, as Twilio's helper libraries do for repeated names.
    sorted.sort();
    let mut mac =
        Hmac::<Sha1>::new_from_slice(auth_token.as_bytes()).expect("HMAC accepts any key");
    mac.update(url.as_bytes());
    for (name, value) in sorted {
        mac.update(name.as_bytes());
        mac.update(value.as_bytes());
    }
    STANDARD.encode(mac.finalize().into_bytes())
}

/// True when `signature` is the one Twilio would send; compared in
/// constant time.
pub fn verify(auth_token: &str, url: &str, params: &[(String, String)], signature: &str) -> bool {
    let Ok(given) = STANDARD.decode(signature) else {
        return false;
    };
    let mut sorted: Vec<&(String, String)> = params.iter().collect();
    sorted.sort();
    let mut mac =
        Hmac::<Sha1>::new_from_slice(auth_token.as_bytes()).expect("HMAC accepts any key");
    mac.update(url.as_bytes());
    for (name, value) in sorted {
        mac.update(name.as_bytes());
        mac.update(value.as_bytes());
    }
    mac.verify_slice(&given).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params() -> Vec<(String, String)> {
        [
            ("CallSid", "CA1234567890ABCDE"),
            ("Caller", "+12349013030"),
            ("Digits", "1234"),
            ("From", "+12349013030"),
            ("To", "+18005551212"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect()
    }

    /// The example of Twilio's security documentation and helper libraries'
    /// tests: auth token `12345`, this URL and these parameters.
    #[test]
    fn the_documented_example_signs_as_published() {
        let url = "https://mycompany.com/myapp.php?foo=1&bar=2";
        assert_eq!(
            sign("12345", url, &params()),
            "0/KCTR6DLpKmkAf8muzZqo1nDgQ="
        );
        assert!(verify(
            "12345",
            url,
            &params(),
            "0/KCTR6DLpKmkAf8muzZqo1nDgQ="
        ));
    }

    #[test]
    fn a_changed_parameter_url_or_token_fails_verification() {
        let url = "https://mycompany.com/myapp.php?foo=1&bar=2";
        let signature = sign("12345", url, &params());
        let mut changed = params();
        changed[2].1 = "9999".into();
        assert!(!verify("12345", url, &changed, &signature));
        assert!(!verify(
            "12345",
            "https://mycompany.com/myapp.php",
            &params(),
            &signature
        ));
        assert!(!verify("54321", url, &params(), &signature));
        assert!(!verify("12345", url, &params(), "not base64!"));
    }
}
