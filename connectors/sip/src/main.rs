//! `baton-connector-sip`: the SIP connector as a process.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use baton_connector_sip::SipConfig;
use baton_service_kit::lifecycle;
use clap::Parser;

const BINARY: &str = "baton-connector-sip";

/// A Baton connector that transfers calls in SIP (warm with REFER/Replaces,
/// blind with REFER, phone numbers through trunks), carrying the handoff
/// context in User-to-User, Call-Info and X-Baton-* headers.
#[derive(Debug, Parser)]
#[command(name = BINARY, version)]
struct Args {
    /// Configuration file (TOML or YAML); `BATON_SIP_…` variables override it.
    #[arg(long, short)]
    config: Option<PathBuf>,
    /// gRPC listen address (overrides `listen`).
    #[arg(long)]
    listen: Option<SocketAddr>,
    /// Plain-text grpc.health.v1 listen address for probes that cannot speak
    /// TLS (overrides `health_listen`).
    #[arg(long)]
    health_listen: Option<SocketAddr>,
    /// SIP (UDP) bind address (overrides `sip.bind`).
    #[arg(long)]
    sip_bind: Option<SocketAddr>,
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
        "BATON_SIP",
        |config: &SipConfig| &config.telemetry,
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
    if let Some(bind) = args.sip_bind {
        config.sip.bind = bind;
    }
    if let Some(dir) = args.data_dir {
        config.data_dir = Some(dir);
    }
    let bound = match baton_connector_sip::bind(config).await {
        Ok(bound) => bound,
        Err(error) => return lifecycle::cannot_start(BINARY, error),
    };
    lifecycle::exit_status(BINARY, bound.serve(lifecycle::shutdown_signal()).await)
}
