//! `baton auth …`: API keys for the control service's keys file.

use std::path::PathBuf;

use baton_auth::Role;
use baton_auth::api_key::KeysFile;

use crate::exit;

#[derive(Debug, clap::Subcommand)]
pub enum AuthCommand {
    /// Mint an API key, add its hash to the keys file (created when
    /// missing; the service reads it again on change) and print the key:
    /// it is shown once and cannot be recovered.
    NewKey {
        /// The keys file (auth.api_keys_file).
        #[arg(long)]
        keys_file: PathBuf,
        /// The tenant the key acts for.
        #[arg(long)]
        tenant: String,
        /// A role: ai_runtime, agent_desktop, supervisor or admin. Repeat
        /// for several.
        #[arg(long = "role", required = true, value_parser = parse_role)]
        roles: Vec<Role>,
        /// What the key is for (its subject in audit records).
        #[arg(long)]
        name: Option<String>,
        /// When the key stops working (RFC 3339, e.g. 2027-01-01T00:00:00Z).
        #[arg(long)]
        not_after: Option<humantime_serde::re::humantime::Timestamp>,
    },
    /// Remove a key from the keys file by its id (the 16 hex digits after
    /// `bk_`): it stops working at once.
    RevokeKey {
        #[arg(long)]
        keys_file: PathBuf,
        #[arg(long)]
        id: String,
    },
}

fn parse_role(name: &str) -> Result<Role, String> {
    Role::from_name(name).ok_or_else(|| {
        format!("unknown role {name:?}: ai_runtime, agent_desktop, supervisor or admin")
    })
}

pub fn run(command: AuthCommand) -> u8 {
    match command {
        AuthCommand::NewKey {
            keys_file,
            tenant,
            roles,
            name,
            not_after,
        } => match KeysFile::mint_into(
            &keys_file,
            &tenant,
            &roles,
            name.as_deref(),
            not_after.map(Into::into),
        ) {
            Ok(minted) => {
                eprintln!(
                    "baton: key {} added to {} (tenant {tenant}); it is shown once:",
                    minted.entry.id,
                    keys_file.display()
                );
                println!("{}", minted.key);
                exit::OK
            }
            Err(error) => {
                eprintln!("baton: {error}");
                exit::REJECTED
            }
        },
        AuthCommand::RevokeKey { keys_file, id } => match KeysFile::remove_from(&keys_file, &id) {
            Ok(true) => {
                eprintln!("baton: key {id} removed from {}", keys_file.display());
                exit::OK
            }
            Ok(false) => {
                eprintln!("baton: no key {id} in {}", keys_file.display());
                exit::NOT_FOUND
            }
            Err(error) => {
                eprintln!("baton: {error}");
                exit::ERROR
            }
        },
    }
}
