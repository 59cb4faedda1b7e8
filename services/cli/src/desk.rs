//! `baton desk …`: accounts of the queue connector's agent desktop (the
//! file `[desk] accounts_file` names). Passwords are read from standard
//! input, never from the command line, where other users and the shell
//! history would see them.

use std::io::{BufRead, IsTerminal, Write};
use std::path::{Path, PathBuf};

pub use baton_connector_queue::accounts::add_account;
use baton_connector_queue::accounts::{Account, Accounts, Role};

use crate::exit;

#[derive(Debug, clap::Subcommand)]
pub enum DeskCommand {
    /// Desktop accounts: agents, supervisors and admins.
    #[command(subcommand)]
    Account(AccountCommand),
}

#[derive(Debug, clap::Subcommand)]
pub enum AccountCommand {
    /// Create an account, or replace the one of the same name (a new
    /// password, role or tenants). The password is read from standard
    /// input (one line; prompted for, without echo, on a terminal). The
    /// connector reads the file again at the next sign-in.
    Add {
        /// The accounts file (`[desk] accounts_file`); created when missing.
        #[arg(long)]
        file: PathBuf,
        /// What the person signs in with (an agent's id in the queue).
        #[arg(long)]
        name: String,
        /// agent, supervisor or admin.
        #[arg(long, value_parser = parse_role)]
        role: Role,
        /// The tenant whose customers the account sees: one for an agent;
        /// repeat for a supervisor or admin of several; `*` (admins only)
        /// for every tenant.
        #[arg(long = "tenant", required = true)]
        tenants: Vec<String>,
        /// An agent's skill; repeat for several.
        #[arg(long = "skill")]
        skills: Vec<String>,
        /// An agent's SIP URI or number for voice legs.
        #[arg(long, default_value = "")]
        contact: String,
        /// The name the desktop shows.
        #[arg(long)]
        display_name: Option<String>,
    },
    /// Remove an account: nobody can sign in with it any more (sessions
    /// already open end at their expiry).
    Remove {
        #[arg(long)]
        file: PathBuf,
        #[arg(long)]
        name: String,
    },
    /// List the accounts (never their password hashes).
    List {
        #[arg(long)]
        file: PathBuf,
    },
}

fn parse_role(name: &str) -> Result<Role, String> {
    match name {
        "agent" => Ok(Role::Agent),
        "supervisor" => Ok(Role::Supervisor),
        "admin" => Ok(Role::Admin),
        _ => Err(format!("unknown role {name:?}: agent, supervisor or admin")),
    }
}

pub fn run(command: DeskCommand) -> u8 {
    let DeskCommand::Account(command) = command;
    let result = match command {
        AccountCommand::Add {
            file,
            name,
            role,
            tenants,
            skills,
            contact,
            display_name,
        } => read_password(&name).and_then(|password| {
            add_account(
                &file,
                Account {
                    name: name.clone(),
                    display_name,
                    role,
                    tenants,
                    skills,
                    contact,
                    password: String::new(),
                },
                &password,
            )
            .map(|()| eprintln!("account {name} saved in {}", file.display()))
        }),
        AccountCommand::Remove { file, name } => remove_account(&file, &name),
        AccountCommand::List { file } => Accounts::load_or_empty(&file).map(|accounts| {
            for a in accounts.accounts {
                println!("{}\t{:?}\t{}", a.name, a.role, a.tenants.join(","));
            }
        }),
    };
    match result {
        Ok(()) => exit::OK,
        Err(error) => {
            eprintln!("baton desk account: {error}");
            exit::ERROR
        }
    }
}

fn remove_account(file: &Path, name: &str) -> Result<(), String> {
    let mut accounts = Accounts::load(file)?;
    let before = accounts.accounts.len();
    accounts.accounts.retain(|a| a.name != name);
    if accounts.accounts.len() == before {
        return Err(format!("no account {name:?} in {}", file.display()));
    }
    accounts.save(file)
}

/// One line of standard input; on a terminal, prompted for with echo off.
fn read_password(name: &str) -> Result<String, String> {
    let stdin = std::io::stdin();
    let terminal = stdin.is_terminal();
    if terminal {
        eprint!("password for {name}: ");
        let _ = std::io::stderr().flush();
        set_echo(false);
    }
    let mut line = String::new();
    let read = stdin.lock().read_line(&mut line);
    if terminal {
        set_echo(true);
        eprintln!();
    }
    read.map_err(|e| format!("reading the password: {e}"))?;
    Ok(line.trim_end_matches(['\r', '\n']).to_owned())
}

fn set_echo(on: bool) {
    let _ = std::process::Command::new("stty")
        .arg(if on { "echo" } else { "-echo" })
        .stdin(std::process::Stdio::inherit())
        .status();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_added_account_signs_in_with_its_password_and_a_removed_one_is_gone() {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("accounts.toml");
        let ann = Account {
            name: "ann".into(),
            display_name: None,
            role: Role::Agent,
            tenants: vec!["acme".into()],
            skills: vec!["support".into()],
            contact: String::new(),
            password: String::new(),
        };
        add_account(&file, ann.clone(), "s3cret").expect("add");
        let accounts = Accounts::load(&file).expect("load");
        assert!(accounts.verify("ann", "s3cret").is_some());
        assert!(add_account(&file, ann, "").is_err());
        remove_account(&file, "ann").expect("remove");
        assert!(Accounts::load(&file).expect("load").accounts.is_empty());
        assert!(remove_account(&file, "ann").is_err());
    }
}
