//! `baton-connector-script`: a connector that plays scripted events.

use std::net::SocketAddr;
use std::path::PathBuf;

use baton_connector_script::{ScriptConfig, ScriptConnector};
use baton_connector_sdk::{ServeOptions, serve, shutdown_signal};
use baton_service_kit::{config, telemetry};
use clap::Parser;

/// A Baton connector that answers every transfer with a scripted sequence
/// of events (queued, ringing, connected, busy…), for tests and demos.
#[derive(Debug, Parser)]
#[command(name = "baton-connector-script", version)]
struct Args {
    /// Configuration file (TOML or YAML); `BATON_SCRIPT_…` variables override it.
    #[arg(long, short)]
    config: Option<PathBuf>,
    /// gRPC listen address (overrides `listen`).
    #[arg(long)]
    listen: Option<SocketAddr>,
    /// Plain-text grpc.health.v1 listen address for probes that cannot speak
    /// TLS (overrides `health_listen`).
    #[arg(long)]
    health_listen: Option<SocketAddr>,
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let args = Args::parse();
    let mut config: ScriptConfig = match config::load(args.config.as_deref(), "BATON_SCRIPT") {
        Ok(config) => config,
        Err(error) => {
            eprintln!("baton-connector-script: {error}");
            return std::process::ExitCode::from(2);
        }
    };
    if let Some(listen) = args.listen {
        config.listen = listen;
    }
    if let Some(listen) = args.health_listen {
        config.health_listen = Some(listen);
    }
    let _telemetry = match telemetry::init("baton-connector-script", &config.telemetry) {
        Ok(telemetry) => telemetry,
        Err(error) => {
            eprintln!("baton-connector-script: {error}");
            return std::process::ExitCode::from(2);
        }
    };

    let connector = match ScriptConnector::new(&config) {
        Ok(connector) => connector,
        Err(error) => {
            eprintln!("baton-connector-script: {error}");
            return std::process::ExitCode::from(2);
        }
    };
    match serve(
        connector,
        ServeOptions::new(config.listen)
            .tls(config.tls.clone())
            .health_listen(config.health_listen),
        shutdown_signal(),
    )
    .await
    {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("baton-connector-script: {error:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
