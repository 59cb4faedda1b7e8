//! `baton-connector-amazon-connect`: the Amazon Connect connector as a
//! process.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use baton_connector_amazon_connect::ConnectConfig;
use baton_service_kit::lifecycle;
use clap::Parser;

const BINARY: &str = "baton-connector-amazon-connect";

/// A Baton connector for Amazon Connect: the handoff context as contact
/// attributes for the agent workspace, transfers to a queue or quick
/// connect, queue position and wait from the real-time metrics.
#[derive(Debug, Parser)]
#[command(name = BINARY, version)]
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
    /// State directory for the transfer journal (overrides `data_dir`).
    #[arg(long)]
    data_dir: Option<PathBuf>,
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = Args::parse();
    let (config, _telemetry) = match lifecycle::configure(
        BINARY,
        args.config.as_deref(),
        "BATON_AMAZON_CONNECT",
        |config: &ConnectConfig| &config.telemetry,
    ) {
        Ok(configured) => configured,
        Err(status) => return status,
    };
    let mut config = config.with_aws_environment();
    if let Some(listen) = args.listen {
        config.listen = listen;
    }
    if let Some(listen) = args.health_listen {
        config.health_listen = Some(listen);
    }
    if let Some(dir) = args.data_dir {
        config.data_dir = dir;
    }
    // `serve` binds too: its failures, binding's among them, exit 2.
    match baton_connector_amazon_connect::serve(config, lifecycle::shutdown_signal()).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => lifecycle::cannot_start(BINARY, error),
    }
}
