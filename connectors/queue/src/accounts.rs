//! Who may sign in to the desktop: local accounts with argon2id-hashed
//! passwords, kept in a TOML file (`[desk] accounts_file`) that
//! `baton desk account add` writes. Each account has a role and the
//! tenants whose customers it may see; an agent's skills and contact
//! address route contacts to them as the `agents` config does.
//!
//! The file is read again at every sign-in, so an account added or
//! changed takes effect without a restart.

use std::collections::BTreeSet;
use std::path::Path;

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2};
use serde::{Deserialize, Serialize};

use crate::config::valid_agent_id;

/// What an account may do on the desktop.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Takes contacts of their one tenant.
    Agent,
    /// Watches the queues, agents and handoffs of their tenants.
    Supervisor,
    /// A supervisor who may also be given every tenant (`tenants = ["*"]`).
    Admin,
}

impl Role {
    /// Whether the role may open the supervisor view.
    pub fn supervises(self) -> bool {
        matches!(self, Role::Supervisor | Role::Admin)
    }
}

/// The tenant list entry that stands for every tenant (admins only).
pub const EVERY_TENANT: &str = "*";

/// One account in the accounts file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Account {
    /// What the person signs in with; also the agent's id in the queue.
    pub name: String,
    /// Shown on the desktop; `name` when unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display_name: Option<String>,
    pub role: Role,
    /// The tenants whose customers the account sees: exactly one for an
    /// agent; `"*"` (every tenant) for an admin only.
    pub tenants: Vec<String>,
    /// An agent's skills; when empty, the `agents` config entry's.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub skills: Vec<String>,
    /// An agent's SIP URI or number for the voice leg; when empty, the
    /// `agents` config entry's.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub contact: String,
    /// The argon2id hash as a PHC string (`$argon2id$v=19$m=…`), never the
    /// password itself.
    pub password: String,
}

/// The accounts file: `[[accounts]]` tables.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Accounts {
    #[serde(default)]
    pub accounts: Vec<Account>,
}

impl Accounts {
    /// Reads and checks the file; the error names the file and the entry.
    pub fn load(path: &Path) -> Result<Self, String> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("accounts file {}: {e}", path.display()))?;
        let accounts: Accounts =
            toml::from_str(&text).map_err(|e| format!("accounts file {}: {e}", path.display()))?;
        accounts
            .validate()
            .map_err(|e| format!("accounts file {}: {e}", path.display()))?;
        Ok(accounts)
    }

    /// Reads the file, or an empty list where there is none yet.
    pub fn load_or_empty(path: &Path) -> Result<Self, String> {
        if path.exists() {
            Self::load(path)
        } else {
            Ok(Self::default())
        }
    }

    /// Checks what serde cannot; the error names the entry and key.
    pub fn validate(&self) -> Result<(), String> {
        let mut names = BTreeSet::new();
        for (i, account) in self.accounts.iter().enumerate() {
            let at = |key: &str| format!("accounts[{i}].{key}");
            if !valid_agent_id(&account.name) {
                return Err(format!(
                    "{}: 1 to 64 letters, digits, '.', '_', '-' or '@'",
                    at("name")
                ));
            }
            if !names.insert(account.name.as_str()) {
                return Err(format!("{}: {:?} appears twice", at("name"), account.name));
            }
            check_tenants(account.role, &account.tenants)
                .map_err(|e| format!("{}: {e}", at("tenants")))?;
            let hash = PasswordHash::new(&account.password)
                .map_err(|e| format!("{}: not a PHC string ({e})", at("password")))?;
            if hash.algorithm != Algorithm::Argon2id.ident() {
                return Err(format!("{}: must be an argon2id hash", at("password")));
            }
        }
        Ok(())
    }

    pub fn get(&self, name: &str) -> Option<&Account> {
        self.accounts.iter().find(|a| a.name == name)
    }

    /// The account when `password` is its password. An unknown name costs
    /// as much as a wrong password (a hash is verified either way), so
    /// that timing does not tell which names exist.
    pub fn verify(&self, name: &str, password: &str) -> Option<&Account> {
        let account = self.get(name);
        let hash = account.map_or(decoy_hash(), |a| a.password.as_str());
        let matches = PasswordHash::new(hash).is_ok_and(|hash| {
            Argon2::default()
                .verify_password(password.as_bytes(), &hash)
                .is_ok()
        });
        account.filter(|_| matches)
    }

    /// Adds the account, or replaces the one of the same name.
    pub fn upsert(&mut self, account: Account) {
        match self.accounts.iter_mut().find(|a| a.name == account.name) {
            Some(existing) => *existing = account,
            None => self.accounts.push(account),
        }
    }

    /// Writes the file readable by its owner only, replacing it whole
    /// (written beside it, then renamed) so a reader never sees half.
    pub fn save(&self, path: &Path) -> Result<(), String> {
        self.validate()?;
        let text = toml::to_string(self).map_err(|e| e.to_string())?;
        let mut temporary = path.as_os_str().to_owned();
        temporary.push(".new");
        let temporary = std::path::PathBuf::from(temporary);
        let write = || -> std::io::Result<()> {
            if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
                std::fs::create_dir_all(parent)?;
            }
            let mut options = std::fs::OpenOptions::new();
            options.write(true).create(true).truncate(true);
            #[cfg(unix)]
            std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
            let mut file = options.open(&temporary)?;
            std::io::Write::write_all(&mut file, text.as_bytes())?;
            file.sync_all()?;
            std::fs::rename(&temporary, path)
        };
        write().map_err(|e| format!("accounts file {}: {e}", path.display()))
    }
}

/// Hashes `password` into `account` and adds it to `file` (created when
/// missing), replacing the account of the same name.
pub fn add_account(file: &Path, mut account: Account, password: &str) -> Result<(), String> {
    if password.is_empty() {
        return Err("the password must not be empty".into());
    }
    account.password = hash_password(password)?;
    let mut accounts = Accounts::load_or_empty(file)?;
    accounts.upsert(account);
    accounts.save(file)
}

/// An agent sees one tenant; supervisors and admins one or more; only an
/// admin may be given every tenant.
pub fn check_tenants(role: Role, tenants: &[String]) -> Result<(), String> {
    if tenants.is_empty() {
        return Err("at least one tenant".into());
    }
    if role == Role::Agent && tenants.len() != 1 {
        return Err("an agent belongs to exactly one tenant".into());
    }
    for tenant in tenants {
        if tenant == EVERY_TENANT {
            if role != Role::Admin {
                return Err("\"*\" (every tenant) is for admins only".into());
            }
        } else if !baton_auth::principal::is_valid_tenant(tenant) {
            return Err(format!("{tenant:?} is not a valid tenant name"));
        }
    }
    Ok(())
}

/// Hashes a password with argon2id (the crate's default cost: 19 MiB,
/// two passes) and a random 128-bit salt, as a PHC string.
pub fn hash_password(password: &str) -> Result<String, String> {
    use rand::RngCore;
    let mut salt = [0u8; 16];
    rand::rng().fill_bytes(&mut salt);
    let salt = SaltString::encode_b64(&salt).map_err(|e| e.to_string())?;
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|hash| hash.to_string())
        .map_err(|e| e.to_string())
}

/// The hash verified for a name that has no account: a valid argon2id
/// hash of a random password, made once.
fn decoy_hash() -> &'static str {
    static DECOY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    DECOY.get_or_init(|| {
        use rand::RngCore;
        let mut password = [0u8; 32];
        rand::rng().fill_bytes(&mut password);
        let password: String = password.iter().map(|b| format!("{b:02x}")).collect();
        hash_password(&password).unwrap_or_default()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn account(name: &str, role: Role, tenants: &[&str], password: &str) -> Account {
        Account {
            name: name.into(),
            display_name: None,
            role,
            tenants: tenants.iter().map(|t| (*t).to_owned()).collect(),
            skills: vec!["support".into()],
            contact: String::new(),
            password: hash_password(password).expect("hash"),
        }
    }

    #[test]
    fn a_password_verifies_only_against_its_own_account_and_the_file_keeps_no_password() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("accounts.toml");
        let mut accounts = Accounts::default();
        accounts.upsert(account("ann", Role::Agent, &["acme"], "correct horse"));
        accounts.upsert(account(
            "sue",
            Role::Supervisor,
            &["acme", "globex"],
            "battery",
        ));
        accounts.save(&path).expect("save");
        let text = std::fs::read_to_string(&path).expect("read");
        assert!(text.contains("$argon2id$v=19$"), "{text}");
        assert!(!text.contains("correct horse"));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).expect("meta").permissions().mode();
            assert_eq!(mode & 0o077, 0, "readable by its owner only");
        }

        let accounts = Accounts::load(&path).expect("load");
        assert_eq!(
            accounts.verify("ann", "correct horse").map(|a| a.role),
            Some(Role::Agent)
        );
        assert!(accounts.verify("ann", "battery").is_none());
        assert!(accounts.verify("nobody", "correct horse").is_none());
        assert!(accounts.verify("sue", "battery").is_some());

        // A new password replaces the old one.
        let mut accounts = accounts;
        accounts.upsert(account("ann", Role::Agent, &["acme"], "new one"));
        assert!(accounts.verify("ann", "correct horse").is_none());
        assert!(accounts.verify("ann", "new one").is_some());
        assert_eq!(accounts.accounts.len(), 2);
    }

    #[test]
    fn bad_entries_are_named() {
        let bad = |account: Account| {
            Accounts {
                accounts: vec![account],
            }
            .validate()
            .expect_err("refused")
        };
        let error = bad(account("ann", Role::Agent, &["acme", "globex"], "x"));
        assert!(
            error.starts_with("accounts[0].tenants: an agent"),
            "{error}"
        );
        let error = bad(account("sue", Role::Supervisor, &["*"], "x"));
        assert!(error.contains("admins only"), "{error}");
        bad(account("root", Role::Admin, &[], "x"));
        let mut plain = account("ann", Role::Agent, &["acme"], "x");
        plain.password = "hunter2".into();
        assert!(bad(plain).starts_with("accounts[0].password"));
        let error = bad(account("<b>", Role::Agent, &["acme"], "x"));
        assert!(error.starts_with("accounts[0].name"), "{error}");
        Accounts {
            accounts: vec![account("root", Role::Admin, &["*"], "x")],
        }
        .validate()
        .expect("an admin of every tenant");
    }
}
