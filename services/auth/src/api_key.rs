//! API keys: `bk_<id>_<secret>`, where the id (16 hex digits) names the key
//! and the secret is 32 random bytes in base64url. Only the SHA-256 of the
//! secret is stored: a secret of 256 random bits needs no slow hash, since
//! there is nothing to guess, and comparing digests in constant time keeps
//! timing from telling how much of a guess was right.
//!
//! Keys live in a TOML keys file, one `[[key]]` table each:
//!
//! ```toml
//! [[key]]
//! id = "3f9a0c2b7d1e4a58"
//! tenant = "acme"
//! roles = ["ai_runtime"]
//! secret_sha256 = "…64 hex digits…"
//! name = "voice bot, production"      # optional
//! not_after = "2027-01-01T00:00:00Z"  # optional
//! ```
//!
//! Rotation: add a new key, move callers to it, remove the old one. The file
//! is read again when it changes (see [`crate::reload`]).

use std::collections::{BTreeSet, HashMap, HashSet};
use std::path::Path;
use std::time::SystemTime;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::error::AuthError;
use crate::principal::{Principal, Role, is_valid_tenant};
use crate::reload::{LoadError, Reloading};

/// What every API key starts with, so that it is recognisable (and secret
/// scanners can find a leaked one).
pub const PREFIX: &str = "bk_";
const ID_BYTES: usize = 8;
const ID_CHARS: usize = ID_BYTES * 2;
const SECRET_BYTES: usize = 32;
/// base64url without padding of 32 bytes.
const SECRET_CHARS: usize = 43;
/// `bk_` + id + `_` + secret.
pub const KEY_CHARS: usize = PREFIX.len() + ID_CHARS + 1 + SECRET_CHARS;

/// An API key as presented by a caller, split into its parts. Its `Debug`
/// shows the id only.
#[derive(Clone, PartialEq, Eq)]
pub struct ApiKey {
    id: String,
    secret: String,
}

impl std::fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApiKey")
            .field("id", &self.id)
            .field("secret", &"<redacted>")
            .finish()
    }
}

/// Why a string is not an API key. Never contains the string.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum MalformedKey {
    #[error("an API key starts with `bk_`")]
    Prefix,
    #[error("an API key is {KEY_CHARS} characters long")]
    Length,
    #[error("an API key's id is {ID_CHARS} lower-case hex digits")]
    Id,
    #[error("an API key's secret is {SECRET_BYTES} bytes in base64url")]
    Secret,
}

/// Whether `id` is a well-formed key id (16 lower-case hex digits).
pub fn is_valid_id(id: &str) -> bool {
    id.len() == ID_CHARS && id.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

impl ApiKey {
    /// Splits `text` into id and secret, checking the format only.
    pub fn parse(text: &str) -> Result<ApiKey, MalformedKey> {
        let rest = text.strip_prefix(PREFIX).ok_or(MalformedKey::Prefix)?;
        if text.len() != KEY_CHARS {
            return Err(MalformedKey::Length);
        }
        // The secret's alphabet contains `_`, the id's does not: split at the
        // first `_` after the prefix.
        let (id, secret) = rest.split_once('_').ok_or(MalformedKey::Id)?;
        if !is_valid_id(id) {
            return Err(MalformedKey::Id);
        }
        match URL_SAFE_NO_PAD.decode(secret) {
            Ok(bytes) if bytes.len() == SECRET_BYTES => {}
            _ => return Err(MalformedKey::Secret),
        }
        Ok(ApiKey {
            id: id.to_string(),
            secret: secret.to_string(),
        })
    }

    pub fn id(&self) -> &str {
        &self.id
    }

    /// SHA-256 of the secret part, as stored in the keys file.
    pub fn secret_sha256(&self) -> [u8; 32] {
        Sha256::digest(self.secret.as_bytes()).into()
    }
}

/// One key of the keys file. Holds no secret, only its hash.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeyEntry {
    /// The key's id: the part between `bk_` and the secret.
    pub id: String,
    /// The tenant the key acts for.
    pub tenant: String,
    /// What the key may do.
    pub roles: BTreeSet<Role>,
    /// Lower-case hex SHA-256 of the secret part.
    pub secret_sha256: String,
    /// What the key is for, e.g. "voice bot, production". The principal's
    /// subject; the id when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// When the key stops working (RFC 3339, e.g. `2027-01-01T00:00:00Z`).
    #[serde(
        default,
        with = "humantime_serde",
        skip_serializing_if = "Option::is_none"
    )]
    pub not_after: Option<SystemTime>,
}

/// A freshly minted key: the key itself, to be shown once and never
/// stored, and the entry to add to the keys file.
pub struct MintedKey {
    /// The whole key, `bk_<id>_<secret>`. Give it to the caller; it cannot
    /// be recovered later.
    pub key: String,
    pub entry: KeyEntry,
}

impl std::fmt::Debug for MintedKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MintedKey")
            .field("key", &"<redacted>")
            .field("entry", &self.entry)
            .finish()
    }
}

/// Why a key could not be minted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MintError {
    #[error("tenant: must be 1 to 128 bytes without control characters")]
    Tenant,
    #[error("roles: at least one role is required")]
    NoRoles,
}

/// Makes a new random key for `tenant` with `roles`.
pub fn mint(
    tenant: &str,
    roles: &[Role],
    name: Option<&str>,
    not_after: Option<SystemTime>,
) -> Result<MintedKey, MintError> {
    if !is_valid_tenant(tenant) {
        return Err(MintError::Tenant);
    }
    if roles.is_empty() {
        return Err(MintError::NoRoles);
    }
    let id: [u8; ID_BYTES] = rand::random();
    let secret: [u8; SECRET_BYTES] = rand::random();
    let id = crate::hex::encode(&id);
    let secret = URL_SAFE_NO_PAD.encode(secret);
    let key = format!("{PREFIX}{id}_{secret}");
    let secret_sha256 = crate::hex::encode(&Sha256::digest(secret.as_bytes()));
    Ok(MintedKey {
        key,
        entry: KeyEntry {
            id,
            tenant: tenant.to_string(),
            roles: roles.iter().copied().collect(),
            secret_sha256,
            name: name.map(str::to_string),
            not_after,
        },
    })
}

/// The keys file.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeysFile {
    #[serde(default, rename = "key")]
    pub keys: Vec<KeyEntry>,
}

/// Why a keys file is not acceptable.
#[derive(Debug, thiserror::Error)]
pub enum KeysFileError {
    #[error("{0}")]
    Toml(String),
    #[error("key[{index}].{field}: {problem}")]
    Entry {
        index: usize,
        field: &'static str,
        problem: &'static str,
    },
    #[error(transparent)]
    Load(#[from] LoadError),
    #[error(transparent)]
    Mint(#[from] MintError),
    #[error("{path}: {source}")]
    Write {
        path: String,
        source: std::io::Error,
    },
}

impl KeysFile {
    /// Parses and checks a keys file's text.
    pub fn parse(text: &str) -> Result<KeysFile, KeysFileError> {
        let file: KeysFile =
            toml::from_str(text).map_err(|e| KeysFileError::Toml(e.to_string()))?;
        file.check()?;
        Ok(file)
    }

    fn check(&self) -> Result<(), KeysFileError> {
        let mut ids = HashSet::new();
        for (index, key) in self.keys.iter().enumerate() {
            let problem = |field, problem| KeysFileError::Entry {
                index,
                field,
                problem,
            };
            if !is_valid_id(&key.id) {
                return Err(problem("id", "must be 16 lower-case hex digits"));
            }
            if !ids.insert(key.id.as_str()) {
                return Err(problem("id", "appears twice"));
            }
            if !is_valid_tenant(&key.tenant) {
                return Err(problem(
                    "tenant",
                    "must be 1 to 128 bytes without control characters",
                ));
            }
            if key.roles.is_empty() {
                return Err(problem("roles", "at least one role is required"));
            }
            if crate::hex::decode::<32>(&key.secret_sha256).is_none() {
                return Err(problem("secret_sha256", "must be 64 hex digits"));
            }
            if key
                .name
                .as_deref()
                .is_some_and(|n| n.chars().any(char::is_control))
            {
                return Err(problem("name", "must not contain control characters"));
            }
        }
        Ok(())
    }

    /// Reads and checks the keys file at `path`; a missing file is empty.
    pub fn read(path: &Path) -> Result<KeysFile, KeysFileError> {
        match std::fs::read_to_string(path) {
            Ok(text) => KeysFile::parse(&text),
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(KeysFile::default()),
            Err(source) => Err(KeysFileError::Write {
                path: path.display().to_string(),
                source,
            }),
        }
    }

    /// Writes the file to `path` atomically (aside, then renamed), so that
    /// a server reading it never sees half of it.
    pub fn write(&self, path: &Path) -> Result<(), KeysFileError> {
        let text = toml::to_string(self).map_err(|e| KeysFileError::Toml(e.to_string()))?;
        let write_error = |source| KeysFileError::Write {
            path: path.display().to_string(),
            source,
        };
        let aside = path.with_extension("tmp");
        std::fs::write(&aside, text).map_err(write_error)?;
        std::fs::rename(&aside, path).map_err(write_error)
    }

    /// Adds `entry` to the keys file at `path` (created when missing).
    pub fn add_to(path: &Path, entry: KeyEntry) -> Result<(), KeysFileError> {
        let mut file = KeysFile::read(path)?;
        file.keys.push(entry);
        file.check()?;
        file.write(path)
    }

    /// Mints a key and adds its entry to the keys file at `path` (created
    /// when missing): what `baton auth new-key` does. Show the returned
    /// key once; only its hash is kept.
    pub fn mint_into(
        path: &Path,
        tenant: &str,
        roles: &[Role],
        name: Option<&str>,
        not_after: Option<SystemTime>,
    ) -> Result<MintedKey, KeysFileError> {
        let minted = mint(tenant, roles, name, not_after)?;
        KeysFile::add_to(path, minted.entry.clone())?;
        Ok(minted)
    }

    /// Removes the key `id` from the keys file at `path`; false when absent.
    pub fn remove_from(path: &Path, id: &str) -> Result<bool, KeysFileError> {
        let mut file = KeysFile::read(path)?;
        let before = file.keys.len();
        file.keys.retain(|key| key.id != id);
        let removed = file.keys.len() != before;
        if removed {
            file.write(path)?;
        }
        Ok(removed)
    }
}

struct IndexedKey {
    entry: KeyEntry,
    secret_sha256: [u8; 32],
}

/// The keys file's keys by id.
pub struct KeyIndex {
    keys: HashMap<String, IndexedKey>,
}

impl KeyIndex {
    pub fn new(file: KeysFile) -> KeyIndex {
        let keys = file
            .keys
            .into_iter()
            .filter_map(|entry| {
                let secret_sha256 = crate::hex::decode::<32>(&entry.secret_sha256)?;
                Some((
                    entry.id.clone(),
                    IndexedKey {
                        entry,
                        secret_sha256,
                    },
                ))
            })
            .collect();
        KeyIndex { keys }
    }

    pub fn len(&self) -> usize {
        self.keys.len()
    }

    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// The principal `key` stands for at `now`.
    pub fn verify(&self, key: &ApiKey, now: SystemTime) -> Result<Principal, AuthError> {
        let Some(known) = self.keys.get(&key.id) else {
            return Err(AuthError::Invalid("unknown API key id"));
        };
        if !bool::from(key.secret_sha256().ct_eq(&known.secret_sha256)) {
            return Err(AuthError::Invalid("wrong API key secret"));
        }
        if known
            .entry
            .not_after
            .is_some_and(|not_after| now > not_after)
        {
            return Err(AuthError::Expired);
        }
        Ok(Principal {
            tenant: known.entry.tenant.clone(),
            subject: known.entry.name.clone().unwrap_or_else(|| key.id.clone()),
            credential_id: format!("key:{}", key.id),
            roles: known.entry.roles.clone(),
        })
    }
}

/// The keys file, read again when it changes.
#[derive(Debug)]
pub struct KeyStore {
    file: Reloading<KeyIndex>,
}

fn parse_index(bytes: &[u8]) -> Result<KeyIndex, String> {
    let text = std::str::from_utf8(bytes).map_err(|_| "not UTF-8".to_string())?;
    KeysFile::parse(text)
        .map(KeyIndex::new)
        .map_err(|e| e.to_string())
}

impl KeyStore {
    pub fn open(path: &Path) -> Result<KeyStore, LoadError> {
        Ok(KeyStore {
            file: Reloading::open(path, parse_index)?,
        })
    }

    pub fn verify(&self, key: &ApiKey, now: SystemTime) -> Result<Principal, AuthError> {
        self.file.current().verify(key, now)
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn minted_keys_parse_and_verify_against_their_entry_only() {
        let minted = mint("acme", &[Role::AiRuntime], Some("bot"), None).expect("mints");
        assert_eq!(minted.key.len(), KEY_CHARS);
        let key = ApiKey::parse(&minted.key).expect("parses");
        assert_eq!(key.id(), minted.entry.id);
        assert!(!format!("{key:?}{minted:?}").contains(&minted.key[PREFIX.len() + ID_CHARS + 1..]));

        let other = mint("acme", &[Role::AiRuntime], None, None).expect("mints");
        let index = KeyIndex::new(KeysFile {
            keys: vec![minted.entry.clone(), other.entry.clone()],
        });
        let principal = index.verify(&key, SystemTime::now()).expect("verifies");
        assert_eq!(principal.tenant, "acme");
        assert_eq!(principal.subject, "bot");
        assert_eq!(principal.credential_id, format!("key:{}", minted.entry.id));
        assert_eq!(principal.roles, BTreeSet::from([Role::AiRuntime]));

        // The right id with another key's secret.
        let other_secret = &other.key[PREFIX.len() + ID_CHARS + 1..];
        let forged = ApiKey::parse(&format!("{PREFIX}{}_{other_secret}", minted.entry.id))
            .expect("well formed");
        assert_eq!(
            index.verify(&forged, SystemTime::now()),
            Err(AuthError::Invalid("wrong API key secret"))
        );
        let unknown = mint("acme", &[Role::Admin], None, None).expect("mints");
        let unknown = ApiKey::parse(&unknown.key).expect("parses");
        assert_eq!(
            index.verify(&unknown, SystemTime::now()),
            Err(AuthError::Invalid("unknown API key id"))
        );
    }

    #[test]
    fn keys_past_not_after_are_expired() {
        let now = SystemTime::now();
        let minted = mint("acme", &[Role::Supervisor], None, Some(now)).expect("mints");
        let key = ApiKey::parse(&minted.key).expect("parses");
        let index = KeyIndex::new(KeysFile {
            keys: vec![minted.entry],
        });
        assert!(index.verify(&key, now).is_ok());
        assert_eq!(
            index.verify(&key, now + Duration::from_secs(1)),
            Err(AuthError::Expired)
        );
    }

    #[test]
    fn malformed_keys_are_refused_by_part() {
        let minted = mint("acme", &[Role::AiRuntime], None, None).expect("mints");
        let key = minted.key.as_str();
        assert_eq!(ApiKey::parse("Bearer x"), Err(MalformedKey::Prefix));
        assert_eq!(
            ApiKey::parse(&key[..key.len() - 1]),
            Err(MalformedKey::Length)
        );
        assert_eq!(ApiKey::parse(&format!("{key}A")), Err(MalformedKey::Length));
        let upper_id = format!("{PREFIX}{}{}", key[3..19].to_uppercase(), &key[19..]);
        if upper_id != key {
            assert_eq!(ApiKey::parse(&upper_id), Err(MalformedKey::Id));
        }
        let bad_secret = format!("{}!{}", &key[..20], &key[21..]);
        assert_eq!(ApiKey::parse(&bad_secret), Err(MalformedKey::Secret));
        assert_eq!(ApiKey::parse(""), Err(MalformedKey::Prefix));
        assert_eq!(ApiKey::parse("bk_"), Err(MalformedKey::Length));
        // Multi-byte characters must not panic a byte-indexed split.
        let wide = format!("bk_{}", "é".repeat((KEY_CHARS - 3) / 2));
        assert!(ApiKey::parse(&wide).is_err());
    }

    #[test]
    fn keys_file_round_trips_and_names_the_bad_field() {
        let minted = mint(
            "acme",
            &[Role::AiRuntime, Role::Supervisor],
            Some("x"),
            Some(SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000)),
        )
        .expect("mints");
        let file = KeysFile {
            keys: vec![minted.entry],
        };
        let text = toml::to_string(&file).expect("serialises");
        assert!(
            text.contains("not_after = \"2027-01-15T08:00:00Z\""),
            "{text}"
        );
        assert!(
            text.contains("roles = [\"ai_runtime\", \"supervisor\"]"),
            "{text}"
        );
        assert_eq!(KeysFile::parse(&text).expect("parses"), file);

        let wrong_hash = text.replace("secret_sha256 = \"", "secret_sha256 = \"zz");
        let error = KeysFile::parse(&wrong_hash).expect_err("refused");
        assert!(
            error.to_string().starts_with("key[0].secret_sha256"),
            "{error}"
        );

        let duplicated = format!("{text}\n{text}");
        let error = KeysFile::parse(&duplicated).expect_err("refused");
        assert_eq!(error.to_string(), "key[1].id: appears twice");

        let unknown_field = format!("{text}colour = \"red\"\n");
        let error = KeysFile::parse(&unknown_field).expect_err("refused");
        assert!(error.to_string().contains("colour"), "{error}");
    }

    #[test]
    fn add_and_remove_rewrite_the_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("keys.toml");
        let first = KeysFile::mint_into(&path, "acme", &[Role::AiRuntime], None, None)
            .expect("mints into a new file");
        let second = mint("acme", &[Role::AiRuntime], None, None).expect("mints");
        KeysFile::add_to(&path, second.entry.clone()).expect("adds");
        assert!(matches!(
            KeysFile::mint_into(&path, "acme", &[], None, None),
            Err(KeysFileError::Mint(MintError::NoRoles))
        ));
        assert!(KeysFile::add_to(&path, second.entry.clone()).is_err());
        assert!(KeysFile::remove_from(&path, &first.entry.id).expect("removes"));
        assert!(!KeysFile::remove_from(&path, &first.entry.id).expect("reads"));
        assert_eq!(KeysFile::read(&path).expect("reads").keys, [second.entry]);
    }
}
