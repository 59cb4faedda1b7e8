//! Password sessions end as soon as their account is removed from the
//! accounts file, or given another role or other tenants: the desk looks
//! at the file's identity (inode, size, modification time) before every
//! request and at every tick, and reads it again only when it changed.

use std::path::{Path, PathBuf};
use std::time::SystemTime;

use crate::accounts::Accounts;
use crate::session::{Session, SignInMethod};

/// What tells a changed file from the one read last.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Stamp {
    inode: u64,
    len: u64,
    modified: Option<SystemTime>,
}

fn stamp(path: &Path) -> Option<Stamp> {
    let meta = std::fs::metadata(path).ok()?;
    #[cfg(unix)]
    let inode = std::os::unix::fs::MetadataExt::ino(&meta);
    #[cfg(not(unix))]
    let inode = 0;
    Some(Stamp {
        inode,
        len: meta.len(),
        modified: meta.modified().ok(),
    })
}

/// The accounts file, as last seen.
#[derive(Debug)]
pub struct AccountsWatch {
    path: PathBuf,
    seen: Option<Stamp>,
}

impl AccountsWatch {
    /// Watches `path` from now on: the first change is the first one after
    /// this.
    pub fn new(path: &Path) -> Self {
        Self {
            path: path.to_owned(),
            seen: stamp(path),
        }
    }

    /// The accounts when the file changed since the last call: empty when
    /// it was removed. None when it is the same, or when it cannot be read
    /// or parsed (then sessions are left alone: a file being edited by
    /// hand must not sign everyone out; new sign-ins fail meanwhile).
    pub fn changed(&mut self) -> Option<Accounts> {
        let now = stamp(&self.path);
        if now == self.seen {
            return None;
        }
        self.seen = now.clone();
        if now.is_none() {
            return Some(Accounts::default());
        }
        match Accounts::load(&self.path) {
            Ok(accounts) => Some(accounts),
            Err(error) => {
                tracing::error!(%error, "cannot read the desk accounts; sessions are kept");
                None
            }
        }
    }
}

/// Whether a session no longer stands for an account of the file: a
/// password session whose account is gone, or whose role or tenants
/// changed. Sessions of the OIDC issuer are not the file's.
pub fn outdated(session: &Session, accounts: &Accounts) -> bool {
    if session.via != SignInMethod::Password {
        return false;
    }
    accounts
        .get(&session.account)
        .is_none_or(|account| account.role != session.role || account.tenants != session.tenants)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::accounts::{Account, Role, hash_password};

    fn account(name: &str, role: Role) -> Account {
        Account {
            name: name.into(),
            display_name: None,
            role,
            tenants: vec!["acme".into()],
            skills: vec!["support".into()],
            contact: String::new(),
            password: hash_password("pw").expect("hash"),
        }
    }

    fn session(name: &str, role: Role, via: SignInMethod) -> Session {
        Session {
            account: name.into(),
            role,
            tenants: vec!["acme".into()],
            created: 0,
            last_seen: 0,
            via,
        }
    }

    #[test]
    fn a_removed_or_changed_account_outdates_its_password_sessions_only() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("accounts.toml");
        let mut accounts = Accounts {
            accounts: vec![
                account("ann", Role::Agent),
                account("sue", Role::Supervisor),
            ],
        };
        accounts.save(&path).expect("save");
        let mut watch = AccountsWatch::new(&path);
        assert!(watch.changed().is_none(), "unchanged");

        accounts.accounts.retain(|a| a.name != "ann");
        accounts.upsert(account("sue", Role::Agent));
        accounts.save(&path).expect("save");
        let now = watch.changed().expect("changed");
        assert!(watch.changed().is_none(), "seen once");
        assert!(outdated(
            &session("ann", Role::Agent, SignInMethod::Password),
            &now
        ));
        assert!(
            outdated(
                &session("sue", Role::Supervisor, SignInMethod::Password),
                &now
            ),
            "demoted"
        );
        assert!(!outdated(
            &session("sue", Role::Agent, SignInMethod::Password),
            &now
        ));
        assert!(
            !outdated(&session("ann", Role::Agent, SignInMethod::Oidc), &now),
            "not the file's"
        );

        std::fs::write(&path, "not toml [").expect("write");
        assert!(watch.changed().is_none(), "unreadable: sessions kept");
        std::fs::remove_file(&path).expect("remove");
        assert!(watch.changed().expect("removed").accounts.is_empty());
    }

    #[test]
    fn a_removed_accounts_session_ends_at_its_next_request() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("accounts.toml");
        let mut accounts = Accounts {
            accounts: vec![account("ann", Role::Agent), account("bob", Role::Agent)],
        };
        accounts.save(&path).expect("save");
        let mut config = crate::config::QueueConfig::ephemeral(dir.path().join("queue"));
        config.desk.accounts_file = Some(path.clone());
        let desk = crate::desk::Desk::open(&config).expect("open");
        let sign_in = |name: &str| {
            desk.sign_in(&crate::desk::SignIn {
                name: name.into(),
                password: "pw".into(),
            })
            .expect("signed in")
            .session_id
        };
        let (ann, bob) = (sign_in("ann"), sign_in("bob"));
        let oidc_ann = desk
            .open_session_via(&account("ann", Role::Agent), SignInMethod::Oidc)
            .expect("signed in")
            .session_id;

        accounts.accounts.retain(|a| a.name != "ann");
        accounts.save(&path).expect("save");
        assert!(matches!(
            desk.session(&ann),
            Err(crate::desk::DeskFailure::Unauthenticated)
        ));
        assert!(desk.agent_view(&ann).is_none(), "its event stream ends");
        assert!(desk.session(&bob).is_ok(), "another account's stays");
        assert!(
            desk.session(&oidc_ann).is_ok(),
            "the issuer's session is not the file's"
        );
    }
}
