//! `baton-connector-amazon-connect`: the Amazon Connect connector as a
//! process.

use std::net::SocketAddr;
use std::path::PathBuf;

use baton_connector_amazon_connect::ConnectConfig;
use baton_service_kit::lifecycle::shutdown_signal;
use baton_service_kit::{config, telemetry};
use clap::Parser;

/// A Baton connector for Amazon Connect: the handoff context as contact
/// attributes for the agent workspace, transfers to a queue or quick
/// connect, queue position and wait from the real-time metrics.
#[derive(Debug, Parser)]
#[command(name = "baton-connector-amazon-connect", version)]
struct Args {
    /// Configuration file (TOML or YAML); `BATON_AMAZON_CONNECT_…`
    /// variables override it (e.g.
    /// `BATON_AMAZON_CONNECT_CREDENTIALS__SECRET_ACCESS_KEY`); AWS's
    /// `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_SESSION_TOKEN`
    /// and `AWS_REGION` fill what neither gives.
    #[arg(long, short)]
    config: Option<PathBuf>,
    /// gRPC listen address (overrides `listen`).
    #[arg(long)]
    listen: Option<SocketAddr>,
    /// A plain-text listener serving only grpc.health.v1 (overrides
    /// `health_listen`).
    #[arg(long)]
    health_listen: Option<SocketAddr>,
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let args = Args::parse();
    let config: ConnectConfig = match config::load(args.config.as_deref(), "BATON_AMAZON_CONNECT") {
        Ok(config) => config,
        Err(error) => {
            eprintln!("baton-connector-amazon-connect: {error}");
            return std::process::ExitCode::from(2);
        }
    };
    let mut config = config.with_aws_environment();
    let _telemetry = match telemetry::init("baton-connector-amazon-connect", &config.telemetry) {
        Ok(telemetry) => telemetry,
        Err(error) => {
            eprintln!("baton-connector-amazon-connect: {error}");
            return std::process::ExitCode::from(2);
        }
    };
    if let Some(listen) = args.listen {
        config.listen = listen;
    }
    if let Some(listen) = args.health_listen {
        config.health_listen = Some(listen);
    }
    match baton_connector_amazon_connect::serve(config, shutdown_signal()).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("baton-connector-amazon-connect: {error:#}");
            std::process::ExitCode::from(2)
        }
    }
}
