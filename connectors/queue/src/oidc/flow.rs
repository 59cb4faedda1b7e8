//! The sign-ins started but not finished: what the browser is sent to the
//! issuer with (`state`, `nonce`, the PKCE challenge) and what only the
//! server keeps (the PKCE `code_verifier`), under a short-lived
//! pre-session cookie. A pending sign-in is taken out at the callback,
//! whatever happens next, so that a state is used once.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sha2::Digest;
use subtle::ConstantTimeEq;

/// How long a browser has to come back from the issuer.
pub const PENDING_LIFETIME: Duration = Duration::from_secs(10 * 60);

/// At most this many sign-ins wait at once; beyond, new ones are refused
/// (so a flood of started sign-ins costs bounded memory).
pub const MAX_PENDING: usize = 10_000;

/// Where the browser goes once signed in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReturnTo {
    Desktop,
    Supervisor,
}

impl ReturnTo {
    pub fn path(self) -> &'static str {
        match self {
            ReturnTo::Desktop => "/",
            ReturnTo::Supervisor => "/supervisor",
        }
    }
}

/// One sign-in on its way through the issuer.
#[derive(Debug, Clone)]
pub struct PendingSignIn {
    /// Sent to the issuer and back: ties the callback to this browser.
    pub state: String,
    /// Sent to the issuer, back inside the ID token.
    pub nonce: String,
    /// Kept here; only its hash (the challenge) went out.
    pub code_verifier: String,
    pub return_to: ReturnTo,
    started: Instant,
}

impl PendingSignIn {
    /// The PKCE S256 challenge of the verifier.
    pub fn code_challenge(&self) -> String {
        code_challenge(&self.code_verifier)
    }
}

/// Why a callback was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum FlowRefused {
    #[error("no sign-in was started in this browser, or it was used already")]
    Unknown,
    #[error("the sign-in took too long; start again")]
    Expired,
    #[error("the state does not match this browser's sign-in")]
    WrongState,
    #[error("too many sign-ins are under way; try again shortly")]
    Busy,
}

/// The pending sign-ins, by the hash of their pre-session cookie.
#[derive(Debug, Default)]
pub struct PendingSignIns {
    by_cookie: HashMap<String, PendingSignIn>,
}

impl PendingSignIns {
    /// Starts a sign-in; returns the pre-session cookie's value and the
    /// sign-in.
    pub fn begin(
        &mut self,
        return_to: ReturnTo,
        now: Instant,
    ) -> Result<(String, PendingSignIn), FlowRefused> {
        if self.by_cookie.len() >= MAX_PENDING {
            self.by_cookie
                .retain(|_, p| now.duration_since(p.started) < PENDING_LIFETIME);
            if self.by_cookie.len() >= MAX_PENDING {
                return Err(FlowRefused::Busy);
            }
        }
        let cookie = random_token();
        let pending = PendingSignIn {
            state: random_token(),
            nonce: random_token(),
            code_verifier: random_token(),
            return_to,
            started: now,
        };
        self.by_cookie.insert(cookie_hash(&cookie), pending.clone());
        Ok((cookie, pending))
    }

    /// Takes out the cookie's sign-in (it cannot be used again, whatever
    /// the outcome) and checks that the issuer sent back its state.
    pub fn finish(
        &mut self,
        cookie: &str,
        state: &str,
        now: Instant,
    ) -> Result<PendingSignIn, FlowRefused> {
        let pending = self
            .by_cookie
            .remove(&cookie_hash(cookie))
            .ok_or(FlowRefused::Unknown)?;
        if now.duration_since(pending.started) >= PENDING_LIFETIME {
            return Err(FlowRefused::Expired);
        }
        if !bool::from(pending.state.as_bytes().ct_eq(state.as_bytes())) {
            return Err(FlowRefused::WrongState);
        }
        Ok(pending)
    }

    pub fn len(&self) -> usize {
        self.by_cookie.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_cookie.is_empty()
    }
}

/// RFC 7636 S256: BASE64URL(SHA-256(ASCII(code_verifier))).
pub fn code_challenge(verifier: &str) -> String {
    URL_SAFE_NO_PAD.encode(sha2::Sha256::digest(verifier.as_bytes()))
}

/// 256 random bits, base64url (43 characters: a valid PKCE verifier).
fn random_token() -> String {
    use rand::RngCore;
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    URL_SAFE_NO_PAD.encode(bytes)
}

/// The cookie is kept only as its hash, as session ids are.
fn cookie_hash(cookie: &str) -> String {
    URL_SAFE_NO_PAD.encode(sha2::Sha256::digest(
        format!("baton-desk-oidc-pending:{cookie}").as_bytes(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_challenge_is_rfc_7636s_s256() {
        // SHA-256("abc") is FIPS 180-2's first example (ba7816bf…15ad),
        // here in base64url without padding.
        assert_eq!(
            code_challenge("abc"),
            "ungWv48Bz-pBQUDeXa4iI7ADYaOWF3qctBD_YfIAFa0"
        );
    }

    #[test]
    fn a_state_is_used_once_by_its_own_browser_within_its_time() {
        let mut pending = PendingSignIns::default();
        let now = Instant::now();
        let (cookie, started) = pending.begin(ReturnTo::Desktop, now).expect("begin");
        assert_eq!(started.code_verifier.len(), 43);
        assert_ne!(started.state, started.nonce);
        assert_ne!(started.code_challenge(), started.code_verifier);

        let (other_cookie, _) = pending.begin(ReturnTo::Supervisor, now).expect("begin");
        assert_eq!(
            pending
                .finish(&other_cookie, &started.state, now)
                .map(|_| ()),
            Err(FlowRefused::WrongState),
            "another browser's state"
        );
        assert_eq!(
            pending
                .finish(&other_cookie, &started.state, now)
                .map(|_| ()),
            Err(FlowRefused::Unknown),
            "taken out even when refused"
        );
        let finished = pending.finish(&cookie, &started.state, now).expect("ok");
        assert_eq!(finished.code_verifier, started.code_verifier);
        assert_eq!(
            pending.finish(&cookie, &started.state, now).map(|_| ()),
            Err(FlowRefused::Unknown),
            "replayed"
        );
        assert!(pending.is_empty());

        let (late, started) = pending.begin(ReturnTo::Desktop, now).expect("begin");
        assert_eq!(
            pending
                .finish(&late, &started.state, now + PENDING_LIFETIME)
                .map(|_| ()),
            Err(FlowRefused::Expired)
        );
    }
}
