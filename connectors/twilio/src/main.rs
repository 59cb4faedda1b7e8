//! `baton-connector-twilio`: the Twilio connector as a process.

use std::net::SocketAddr;
use std::path::PathBuf;

use baton_connector_twilio::TwilioConfig;
use baton_service_kit::lifecycle::shutdown_signal;
use baton_service_kit::{config, telemetry};
use clap::Parser;

/// A Baton connector for Twilio Programmable Voice and Flex: moves the
/// live call with TwiML (Dial Number, Dial Sip with context headers, Enqueue
/// into a TaskRouter workflow with the context as task attributes) and
/// follows it through signed status callbacks.
#[derive(Debug, Parser)]
#[command(name = "baton-connector-twilio", version)]
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
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let args = Args::parse();
    let mut config: TwilioConfig = match config::load(args.config.as_deref(), "BATON_TWILIO") {
        Ok(config) => config,
        Err(error) => {
            eprintln!("baton-connector-twilio: {error}");
            return std::process::ExitCode::from(2);
        }
    };
    let _telemetry = match telemetry::init("baton-connector-twilio", &config.telemetry) {
        Ok(telemetry) => telemetry,
        Err(error) => {
            eprintln!("baton-connector-twilio: {error}");
            return std::process::ExitCode::from(2);
        }
    };
    if let Some(listen) = args.listen {
        config.listen = listen;
    }
    if let Some(listen) = args.callbacks_listen {
        config.callbacks.listen = listen;
    }
    let shutdown = shutdown_signal();
    let bound = match baton_connector_twilio::bind(config).await {
        Ok(bound) => bound,
        Err(error) => {
            eprintln!("baton-connector-twilio: {error:#}");
            return std::process::ExitCode::from(2);
        }
    };
    match bound.serve(shutdown).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("baton-connector-twilio: {error:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
