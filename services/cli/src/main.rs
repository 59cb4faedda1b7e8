//! `baton`: run Baton locally and drive handoffs from the shell.

mod auth;
mod config;
mod desk;
mod dev;
mod handoff;
mod health;
mod mcp;
mod store;

use clap::{Parser, Subcommand};

/// Baton: warm handoffs from AI agents to humans, with the context attached.
#[derive(Debug, Parser)]
#[command(name = "baton", version)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the control service and the embedded connectors on loopback,
    /// with SQLite in a local data directory. Every address takes port 0
    /// for "pick a free port"; the banner prints the addresses bound.
    Dev(dev::DevArgs),
    /// Create, inspect, watch and cancel handoffs on any control endpoint.
    #[command(subcommand)]
    Handoff(handoff::HandoffCommand),
    /// Serve Baton's handoff API as Model Context Protocol tools on stdin
    /// and stdout, for an LLM agent: evaluate_escalation,
    /// hand_off_to_human, get_handoff_status, cancel_handoff. They call
    /// the control service at --endpoint with --api-key.
    Mcp(mcp::McpArgs),
    /// Ask a Baton service (control or connector) whether it serves, over
    /// grpc.health.v1. Exit code: 0 SERVING, 5 otherwise.
    Health(health::HealthArgs),
    /// Mint and revoke API keys in a keys file.
    #[command(subcommand)]
    Auth(auth::AuthCommand),
    /// Accounts of the queue connector's agent desktop.
    #[command(subcommand)]
    Desk(desk::DeskCommand),
    /// Check configuration files, or print a commented reference.
    #[command(subcommand)]
    Config(config::ConfigCommand),
    /// Check a store or transfer journal offline, or back one up while
    /// its service runs.
    #[command(subcommand)]
    Store(store::StoreCommand),
    /// Write a throwaway CA, a server certificate (localhost, 127.0.0.1,
    /// ::1) and a client certificate into DIR, for trying TLS and mTLS.
    /// Never for production: the CA key lies next to what it signed.
    DevCa {
        /// Where to write ca.pem, server.pem, client.pem and their keys.
        dir: std::path::PathBuf,
    },
}

/// Exit codes that mean something to scripts.
pub mod exit {
    pub const OK: u8 = 0;
    pub const ERROR: u8 = 1;
    pub const NOT_FOUND: u8 = 3;
    pub const REJECTED: u8 = 4;
    pub const UNAVAILABLE: u8 = 5;
    pub const HANDOFF_FAILED: u8 = 6;
    pub const HANDOFF_CANCELLED: u8 = 7;
    /// `handoff update`: the context moved on since the version named.
    pub const CONTEXT_CONFLICT: u8 = 8;
}

fn main() -> std::process::ExitCode {
    match component_invoked_as() {
        Some(component) => component(),
        None => run_cli(),
    }
}

/// The container image ships this one binary with the components' names as
/// links to it (one copy of the shared code instead of eight, most of the
/// image's size): invoked as `baton-control` or `baton-connector-…`, it runs
/// that component exactly as its own binary does.
fn component_invoked_as() -> Option<fn() -> std::process::ExitCode> {
    use baton_connector_sdk::run;
    let invoked = std::env::args_os().next()?;
    let name = std::path::Path::new(&invoked).file_name()?.to_str()?;
    let component: fn() -> std::process::ExitCode = match name {
        "baton-control" => baton_control::command::main,
        "baton-connector-queue" => run::<baton_connector_queue::QueueConfig>,
        "baton-connector-sip" => run::<baton_connector_sip::SipConfig>,
        "baton-connector-webhook" => run::<baton_connector_webhook::WebhookConfig>,
        "baton-connector-twilio" => run::<baton_connector_twilio::TwilioConfig>,
        "baton-connector-amazon-connect" => run::<baton_connector_amazon_connect::ConnectConfig>,
        "baton-connector-script" => run::<baton_connector_script::ScriptConfig>,
        _ => return None,
    };
    Some(component)
}

#[tokio::main]
async fn run_cli() -> std::process::ExitCode {
    let cli = Cli::parse();
    let code = match cli.command {
        Command::Dev(args) => dev::run(args).await,
        Command::Handoff(command) => handoff::run(command).await,
        Command::Mcp(args) => mcp::run(args).await,
        Command::Health(args) => health::run(args).await,
        Command::Config(command) => config::run(command),
        Command::Auth(command) => auth::run(command),
        Command::Desk(command) => desk::run(command),
        Command::Store(command) => store::run(command),
        Command::DevCa { dir } => match baton_service_kit::tls::dev_ca::generate(&dir) {
            Ok(ca) => {
                println!(
                    "CA {}\nserver {} (key {})\nclient {} (key {})",
                    ca.ca_cert.display(),
                    ca.server_cert.display(),
                    ca.server_key.display(),
                    ca.client_cert.display(),
                    ca.client_key.display()
                );
                exit::OK
            }
            Err(error) => {
                eprintln!("baton dev-ca: {error}");
                exit::ERROR
            }
        },
    };
    std::process::ExitCode::from(code)
}
