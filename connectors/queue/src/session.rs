//! Desktop sessions: what a signed-in person's cookie stands for, until
//! when, and the CSRF token their page sends back with every change.
//!
//! A session id is 256 random bits, given to the browser once (in an
//! HttpOnly cookie) and kept here only as its SHA-256, so the store alone
//! signs nobody in. The CSRF token is derived from the id (a keyed hash
//! under a different label): a page that has the cookie's session gets it
//! at sign-in; another site, which can make the browser send the cookie
//! but never read it, cannot compute it.

use std::collections::HashMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use subtle::ConstantTimeEq;

use crate::accounts::{EVERY_TENANT, Role};
use crate::domain::Millis;

/// How long sessions last.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionLimits {
    /// A session unused this long ends.
    pub idle: Duration,
    /// A session ends this long after sign-in, used or not.
    pub lifetime: Duration,
}

/// Who a session belongs to, copied from the account at sign-in.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Session {
    pub account: String,
    pub role: Role,
    pub tenants: Vec<String>,
    pub created: Millis,
    pub last_seen: Millis,
    /// How the person signed in: a password session ends when its account
    /// leaves the accounts file (or changes role or tenants).
    #[serde(default)]
    pub via: SignInMethod,
}

/// How a session was started.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SignInMethod {
    /// A password of `desk.accounts_file` (sessions saved before this
    /// field existed were all of this kind).
    #[default]
    Password,
    /// An ID token of the `desk.oidc` issuer.
    Oidc,
}

impl Session {
    /// Whether the session may see `tenant`'s customers.
    pub fn sees(&self, tenant: &str) -> bool {
        self.tenants
            .iter()
            .any(|t| t == tenant || t == EVERY_TENANT)
    }

    fn expired(&self, limits: SessionLimits, now: Millis) -> bool {
        let idle = now.saturating_sub(self.last_seen) >= limits.idle.as_millis() as u64;
        let old = now.saturating_sub(self.created) >= limits.lifetime.as_millis() as u64;
        idle || old
    }
}

/// Why a session was not found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionRefused {
    Unknown,
    Expired,
}

/// The live sessions, by the hash of their id.
#[derive(Debug)]
pub struct Sessions {
    limits: SessionLimits,
    by_hash: HashMap<String, Session>,
}

/// The last use of a session is saved at most this often: often enough
/// that a restart does not cut an active session, rarely enough that a
/// desktop's requests do not each cost a write.
pub const LAST_SEEN_SAVED_EVERY: Duration = Duration::from_secs(5 * 60);

impl Sessions {
    pub fn new(limits: SessionLimits, saved: impl IntoIterator<Item = (String, Session)>) -> Self {
        Self {
            limits,
            by_hash: saved.into_iter().collect(),
        }
    }

    /// Starts a session; returns its id (for the cookie) and the hash it
    /// is kept under.
    pub fn create(&mut self, session: Session) -> (String, String) {
        let id = new_session_id();
        let hash = session_hash(&id);
        self.by_hash.insert(hash.clone(), session);
        (id, hash)
    }

    /// The session of `id` at `now`, its last use moved to now. An expired
    /// one is forgotten. The second value says whether the last use should
    /// be saved (see [`LAST_SEEN_SAVED_EVERY`]).
    pub fn touch(&mut self, id: &str, now: Millis) -> Result<(Session, bool), SessionRefused> {
        let hash = session_hash(id);
        let session = self.by_hash.get_mut(&hash).ok_or(SessionRefused::Unknown)?;
        if session.expired(self.limits, now) {
            self.by_hash.remove(&hash);
            return Err(SessionRefused::Expired);
        }
        let save =
            now.saturating_sub(session.last_seen) >= LAST_SEEN_SAVED_EVERY.as_millis() as u64;
        session.last_seen = now;
        Ok((session.clone(), save))
    }

    /// The session of `id` if it is live at `now`, without using it.
    pub fn peek(&self, id: &str, now: Millis) -> Option<&Session> {
        self.by_hash
            .get(&session_hash(id))
            .filter(|s| !s.expired(self.limits, now))
    }

    /// Ends the session of `id`; returns its hash and the session.
    pub fn remove(&mut self, id: &str) -> Option<(String, Session)> {
        let hash = session_hash(id);
        self.by_hash.remove(&hash).map(|s| (hash, s))
    }

    /// Forgets expired sessions; returns them with their hashes.
    pub fn expire(&mut self, now: Millis) -> Vec<(String, Session)> {
        let limits = self.limits;
        let expired: Vec<String> = self
            .by_hash
            .iter()
            .filter(|(_, s)| s.expired(limits, now))
            .map(|(hash, _)| hash.clone())
            .collect();
        expired
            .into_iter()
            .filter_map(|hash| self.by_hash.remove(&hash).map(|s| (hash, s)))
            .collect()
    }

    /// Ends every session for which `ends` holds; returns them with their
    /// hashes.
    pub fn end_where(&mut self, ends: impl Fn(&Session) -> bool) -> Vec<(String, Session)> {
        let ending: Vec<String> = self
            .by_hash
            .iter()
            .filter(|(_, s)| ends(s))
            .map(|(hash, _)| hash.clone())
            .collect();
        ending
            .into_iter()
            .filter_map(|hash| self.by_hash.remove(&hash).map(|s| (hash, s)))
            .collect()
    }

    /// Whether any live session is the account's (an agent who signs out
    /// of one desktop stays signed in on another).
    pub fn has_account(&self, account: &str, now: Millis) -> bool {
        self.by_hash
            .values()
            .any(|s| s.account == account && !s.expired(self.limits, now))
    }
}

/// The id's hash, as kept.
pub fn session_hash(id: &str) -> String {
    hex_sha256(&["baton-desk-session:", id])
}

/// The CSRF token of the session `id`.
pub fn csrf_token(id: &str) -> String {
    hex_sha256(&["baton-desk-csrf:", id])
}

/// Whether `given` is the CSRF token of session `id`, compared in
/// constant time.
pub fn csrf_matches(id: &str, given: &str) -> bool {
    csrf_token(id).as_bytes().ct_eq(given.as_bytes()).into()
}

fn hex_sha256(parts: &[&str]) -> String {
    use sha2::Digest;
    let mut hasher = sha2::Sha256::new();
    for part in parts {
        hasher.update(part.as_bytes());
    }
    hasher
        .finalize()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// 256 random bits, hex.
fn new_session_id() -> String {
    use rand::RngCore;
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const HOUR: Millis = 3_600_000;

    fn sessions() -> Sessions {
        Sessions::new(
            SessionLimits {
                idle: Duration::from_secs(8 * 3600),
                lifetime: Duration::from_secs(12 * 3600),
            },
            [],
        )
    }

    fn ann(at: Millis) -> Session {
        Session {
            account: "ann".into(),
            role: Role::Agent,
            tenants: vec!["acme".into()],
            created: at,
            last_seen: at,
            via: SignInMethod::Password,
        }
    }

    #[test]
    fn a_session_ends_when_idle_or_old_and_its_id_is_not_what_is_kept() {
        let mut sessions = sessions();
        let (id, hash) = sessions.create(ann(0));
        assert_eq!(id.len(), 64, "256 bits");
        assert_ne!(id, hash);
        assert!(sessions.touch(&id, 7 * HOUR).is_ok());
        assert!(sessions.touch(&id, 11 * HOUR).is_ok(), "used within 8h");
        assert_eq!(
            sessions.touch(&id, 12 * HOUR).map(|_| ()),
            Err(SessionRefused::Expired),
            "12h after sign-in"
        );
        assert_eq!(
            sessions.touch(&id, 12 * HOUR).map(|_| ()),
            Err(SessionRefused::Unknown)
        );

        let (idle, _) = sessions.create(ann(0));
        assert!(sessions.peek(&idle, 8 * HOUR - 1).is_some());
        assert_eq!(sessions.expire(8 * HOUR).len(), 1);
        assert!(sessions.peek(&idle, 8 * HOUR).is_none());
    }

    #[test]
    fn the_csrf_token_belongs_to_its_session() {
        let mut sessions = sessions();
        let (one, _) = sessions.create(ann(0));
        let (two, _) = sessions.create(ann(0));
        assert!(csrf_matches(&one, &csrf_token(&one)));
        assert!(!csrf_matches(&one, &csrf_token(&two)));
        assert!(!csrf_matches(&one, ""));
        assert_ne!(csrf_token(&one), session_hash(&one));
    }

    #[test]
    fn an_admin_of_every_tenant_sees_any_and_an_agent_only_their_own() {
        let agent = ann(0);
        assert!(agent.sees("acme"));
        assert!(!agent.sees("globex"));
        let admin = Session {
            role: Role::Admin,
            tenants: vec![EVERY_TENANT.into()],
            ..ann(0)
        };
        assert!(admin.sees("globex"));
    }
}
