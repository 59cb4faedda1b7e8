//! `baton-connector-sip`: the SIP connector as a process.

use std::net::SocketAddr;
use std::path::PathBuf;

use baton_connector_sip::SipConfig;
use baton_service_kit::lifecycle::shutdown_signal;
use baton_service_kit::{config, telemetry};
use clap::Parser;

/// A Baton connector that transfers calls in SIP (warm with REFER/Replaces,
/// blind with REFER, phone numbers through trunks), carrying the handoff
/// context in User-to-User, Call-Info and X-Baton-* headers.
#[derive(Debug, Parser)]
#[command(name = "baton-connector-sip", version)]
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
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let args = Args::parse();
    let mut config: SipConfig = match config::load(args.config.as_deref(), "BATON_SIP") {
        Ok(config) => config,
        Err(error) => {
            eprintln!("baton-connector-sip: {error}");
            return std::process::ExitCode::from(2);
        }
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
    let _telemetry = match telemetry::init("baton-connector-sip", &config.telemetry) {
        Ok(telemetry) => telemetry,
        Err(error) => {
            eprintln!("baton-connector-sip: {error}");
            return std::process::ExitCode::from(2);
        }
    };

    let bound = match baton_connector_sip::bind(config).await {
        Ok(bound) => bound,
        Err(error) => {
            eprintln!("baton-connector-sip: {error:#}");
            return std::process::ExitCode::from(2);
        }
    };
    match bound.serve(shutdown_signal()).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("baton-connector-sip: {error:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
