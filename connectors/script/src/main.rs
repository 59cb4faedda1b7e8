//! `baton-connector-script`: a connector that plays scripted events.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use baton_connector_script::{ScriptConfig, ScriptConnector};
use baton_connector_sdk::{ServeOptions, serve, shutdown_signal};
use baton_service_kit::lifecycle;
use clap::Parser;

const BINARY: &str = "baton-connector-script";

/// A Baton connector that answers every transfer with a scripted sequence
/// of events (queued, ringing, connected, busy…), for tests and demos.
#[derive(Debug, Parser)]
#[command(name = BINARY, version)]
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
async fn main() -> ExitCode {
    let args = Args::parse();
    let (mut config, _telemetry) = match lifecycle::configure(
        BINARY,
        args.config.as_deref(),
        "BATON_SCRIPT",
        |config: &ScriptConfig| &config.telemetry,
    ) {
        Ok(configured) => configured,
        Err(status) => return status,
    };
    if let Some(listen) = args.listen {
        config.listen = listen;
    }
    if let Some(listen) = args.health_listen {
        config.health_listen = Some(listen);
    }
    let connector = match ScriptConnector::new(&config) {
        Ok(connector) => connector,
        Err(error) => return lifecycle::cannot_start(BINARY, error),
    };
    let mut options = ServeOptions::new(config.listen)
        .tls(config.tls.clone())
        .health_listen(config.health_listen)
        .drain_timeout(config.drain_timeout);
    if let Some(dir) = &config.data_dir {
        options = options.journal(dir.join(baton_connector_sdk::TRANSFER_JOURNAL));
    }
    lifecycle::exit_status(BINARY, serve(connector, options, shutdown_signal()).await)
}
