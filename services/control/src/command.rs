//! The `baton-control` command line: what its binary runs.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use baton_service_kit::{config, lifecycle, telemetry};
use clap::Parser;

use crate::ControlConfig;

/// Baton control service: the gRPC HandoffService AI runtimes call to hand
/// a live customer to a human, with the context the human needs.
#[derive(Debug, Parser)]
#[command(name = "baton-control", version)]
struct Args {
    /// Configuration file (TOML or YAML). `BATON_…` environment variables
    /// override it (e.g. BATON_SERVER__GRPC_LISTEN=0.0.0.0:50051).
    #[arg(long, short)]
    config: Option<PathBuf>,
    /// gRPC listen address (overrides server.grpc_listen).
    #[arg(long)]
    grpc_listen: Option<SocketAddr>,
    /// HTTP listen address for context and screen pops (overrides server.http_listen).
    #[arg(long)]
    http_listen: Option<SocketAddr>,
    /// Data directory of the embedded store (overrides store.data_dir).
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// Plain-text grpc.health.v1 listen address for probes that cannot speak
    /// TLS (overrides `server.health_listen`).
    #[arg(long)]
    health_listen: Option<SocketAddr>,
}

/// Runs the control service as its binary does: flags, configuration,
/// telemetry, serve until SIGTERM. Exposed so that the image's multi-call
/// `baton` runs it when invoked as `baton-control`.
pub fn main() -> ExitCode {
    let args = Args::parse();
    match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime.block_on(run(args)),
        Err(error) => {
            eprintln!("baton-control: cannot start the runtime: {error}");
            ExitCode::FAILURE
        }
    }
}

async fn run(args: Args) -> ExitCode {
    let mut config: ControlConfig = match config::load(args.config.as_deref(), "BATON") {
        Ok(config) => config,
        Err(error) => {
            eprintln!("baton-control: {error}");
            return ExitCode::from(2);
        }
    };
    if let Some(address) = args.grpc_listen {
        config.server.grpc_listen = address;
    }
    if let Some(address) = args.http_listen {
        config.server.http_listen = address;
    }
    if let Some(dir) = args.data_dir {
        config.store.data_dir = dir;
    }
    if let Some(address) = args.health_listen {
        config.server.health_listen = Some(address);
    }
    let _telemetry = match telemetry::init("baton-control", &config.telemetry) {
        Ok(telemetry) => telemetry,
        Err(error) => {
            eprintln!("baton-control: {error}");
            return ExitCode::from(2);
        }
    };
    // Installed before anything is bound, so that a SIGTERM at any point
    // after start-up is a graceful stop.
    let shutdown = lifecycle::shutdown_signal();
    let result = async {
        let bound = crate::bind(config).await?;
        bound.serve(shutdown).await
    }
    .await;
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            tracing::error!("{error:#}");
            eprintln!("baton-control: {error:#}");
            ExitCode::FAILURE
        }
    }
}
