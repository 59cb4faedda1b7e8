//! `baton-connector-queue`: the embedded contact-center queue and agent
//! desktop.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use baton_connector_queue::QueueConfig;
use baton_service_kit::lifecycle;
use clap::Parser;

const BINARY: &str = "baton-connector-queue";

/// A Baton connector that queues handoffs for human agents, who take them
/// in a browser desktop that screen-pops the AI's context.
#[derive(Debug, Parser)]
#[command(name = BINARY, version)]
struct Args {
    /// Configuration file (TOML or YAML); `BATON_QUEUE_…` variables override it.
    #[arg(long, short)]
    config: Option<PathBuf>,
    /// gRPC listen address (overrides `grpc_listen`).
    #[arg(long)]
    grpc_listen: Option<SocketAddr>,
    /// Desktop listen address (overrides `http_listen`).
    #[arg(long)]
    http_listen: Option<SocketAddr>,
    /// State directory (overrides `data_dir`).
    #[arg(long)]
    data_dir: Option<PathBuf>,
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
        "BATON_QUEUE",
        |config: &QueueConfig| &config.telemetry,
    ) {
        Ok(configured) => configured,
        Err(status) => return status,
    };
    if let Some(listen) = args.grpc_listen {
        config.grpc_listen = listen;
    }
    if let Some(listen) = args.http_listen {
        config.http_listen = listen;
    }
    if let Some(dir) = args.data_dir {
        config.data_dir = dir;
    }
    if let Some(listen) = args.health_listen {
        config.health_listen = Some(listen);
    }
    let bound = match baton_connector_queue::bind(config).await {
        Ok(bound) => bound,
        Err(error) => return lifecycle::cannot_start(BINARY, error),
    };
    tracing::info!(desktop = %format!("http://{}/", bound.http_addr), "agent desktop");
    lifecycle::exit_status(BINARY, bound.serve(lifecycle::shutdown_signal()).await)
}
