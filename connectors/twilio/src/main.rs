//! `baton-connector-twilio`: the Twilio connector as a process.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use baton_connector_twilio::TwilioConfig;
use baton_service_kit::lifecycle;
use clap::Parser;

const BINARY: &str = "baton-connector-twilio";

/// A Baton connector for Twilio Programmable Voice and Flex: moves the
/// live call with TwiML (Dial Number, Dial Sip with context headers, Enqueue
/// into a TaskRouter workflow with the context as task attributes) and
/// follows it through signed status callbacks.
#[derive(Debug, Parser)]
#[command(name = BINARY, version)]
struct Args {
    /// Configuration file (TOML or YAML); `BATON_TWILIO_…` variables
    /// override it (e.g. `BATON_TWILIO_CREDENTIALS__AUTH_TOKEN`).
    #[arg(long, short)]
    config: Option<PathBuf>,
    /// gRPC listen address (overrides `listen`).
    #[arg(long)]
    listen: Option<SocketAddr>,
    /// Callback endpoint listen address (overrides `callbacks.listen`).
    #[arg(long)]
    callbacks_listen: Option<SocketAddr>,
    /// State directory for the transfer journal (overrides `data_dir`).
    #[arg(long)]
    data_dir: Option<PathBuf>,
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = Args::parse();
    let (mut config, _telemetry) = match lifecycle::configure(
        BINARY,
        args.config.as_deref(),
        "BATON_TWILIO",
        |config: &TwilioConfig| &config.telemetry,
    ) {
        Ok(configured) => configured,
        Err(status) => return status,
    };
    if let Some(listen) = args.listen {
        config.listen = listen;
    }
    if let Some(listen) = args.callbacks_listen {
        config.callbacks.listen = listen;
    }
    if let Some(dir) = args.data_dir {
        config.data_dir = dir;
    }
    let shutdown = lifecycle::shutdown_signal();
    let bound = match baton_connector_twilio::bind(config).await {
        Ok(bound) => bound,
        Err(error) => return lifecycle::cannot_start(BINARY, error),
    };
    lifecycle::exit_status(BINARY, bound.serve(shutdown).await)
}
