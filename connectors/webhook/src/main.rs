//! `baton-connector-webhook`: the webhook connector as a process.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use baton_connector_webhook::WebhookConfig;
use baton_service_kit::lifecycle;
use clap::Parser;

const BINARY: &str = "baton-connector-webhook";

/// A Baton connector that hands a customer to a CRM or agent desktop by
/// posting the handoff context to its HTTP endpoint, signed per Standard
/// Webhooks, retried with backoff, every request in a delivery log.
#[derive(Debug, Parser)]
#[command(name = BINARY, version)]
struct Args {
    /// Configuration file (TOML or YAML); `BATON_WEBHOOK_…` variables
    /// override it (e.g. `BATON_WEBHOOK_ENDPOINTS__CRM__SECRET`).
    #[arg(long, short)]
    config: Option<PathBuf>,
    /// gRPC listen address (overrides `listen`).
    #[arg(long)]
    listen: Option<SocketAddr>,
    /// HTTP listen address of the delivery log (overrides `http_listen`).
    #[arg(long)]
    http_listen: Option<SocketAddr>,
    /// SQLite file of the delivery log (overrides `delivery_log`).
    #[arg(long)]
    delivery_log: Option<PathBuf>,
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
        "BATON_WEBHOOK",
        |config: &WebhookConfig| &config.telemetry,
    ) {
        Ok(configured) => configured,
        Err(status) => return status,
    };
    if let Some(listen) = args.listen {
        config.listen = listen;
    }
    if let Some(listen) = args.http_listen {
        config.http_listen = listen;
    }
    if let Some(path) = args.delivery_log {
        config.delivery_log = path;
    }
    if let Some(dir) = args.data_dir {
        config.data_dir = dir;
    }
    let shutdown = lifecycle::shutdown_signal();
    let bound = match baton_connector_webhook::bind(config).await {
        Ok(bound) => bound,
        Err(error) => return lifecycle::cannot_start(BINARY, error),
    };
    lifecycle::exit_status(BINARY, bound.serve(shutdown).await)
}
