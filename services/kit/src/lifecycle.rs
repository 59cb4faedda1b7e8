//! Process lifecycle: configuration and telemetry at start, shutdown on
//! SIGTERM or Ctrl-C, the readiness line that tells a supervisor (or a
//! test) which addresses a service bound, and the exit status.

use std::fmt::Display;
use std::net::SocketAddr;
use std::path::Path;
use std::process::ExitCode;

use serde::de::DeserializeOwned;

use crate::config;
use crate::telemetry::{self, Telemetry, TelemetryConfig};

/// Loads a binary's configuration ([`config::load`] of `file` and the
/// `prefix` variables) and installs its telemetry, `binary` naming the
/// service. Keep the [`Telemetry`] until the process ends: dropping it
/// flushes what is buffered.
///
/// # Errors
/// The status to exit with, once the reason is on stderr (see
/// [`cannot_start`]).
pub fn configure<T: DeserializeOwned>(
    binary: &str,
    file: Option<&Path>,
    prefix: &str,
    telemetry_of: impl FnOnce(&T) -> &TelemetryConfig,
) -> Result<(T, Telemetry), ExitCode> {
    let config: T = config::load(file, prefix).map_err(|error| cannot_start(binary, error))?;
    let telemetry = telemetry::init(binary, telemetry_of(&config))
        .map_err(|error| cannot_start(binary, error))?;
    Ok((config, telemetry))
}

/// Says on stderr why `binary` cannot start (`binary: error`, an error's
/// causes too) and returns exit status 2, the status of a usage error, so
/// that a supervisor can tell a configuration to fix from a crash.
pub fn cannot_start(binary: &str, error: impl Display) -> ExitCode {
    eprintln!("{binary}: {error:#}");
    ExitCode::from(2)
}

/// The exit status of a service that has stopped serving: success after a
/// graceful stop, else 1 with the error on stderr as [`cannot_start`] says it.
pub fn exit_status(binary: &str, served: Result<(), impl Display>) -> ExitCode {
    match served {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("{binary}: {error:#}");
            ExitCode::FAILURE
        }
    }
}

/// A future that completes when the process receives SIGTERM or SIGINT.
///
/// The handlers are installed when this is called, not when the future is
/// first polled, so that a SIGTERM arriving between start-up and serving
/// still means a graceful stop. Call it inside the Tokio runtime, before
/// announcing readiness.
pub fn shutdown_signal() -> impl std::future::Future<Output = ()> + Send + 'static {
    #[cfg(unix)]
    let signals = {
        use tokio::signal::unix::{SignalKind, signal};
        (
            signal(SignalKind::terminate()),
            signal(SignalKind::interrupt()),
        )
    };
    async move {
        #[cfg(unix)]
        match signals {
            (Ok(mut term), Ok(mut interrupt)) => {
                tokio::select! {
                    _ = term.recv() => {},
                    _ = interrupt.recv() => {},
                }
            }
            (term, interrupt) => {
                tracing::warn!(
                    term_ok = term.is_ok(),
                    interrupt_ok = interrupt.is_ok(),
                    "cannot listen for signals; falling back to Ctrl-C"
                );
                let _ = tokio::signal::ctrl_c().await;
            }
        }
        #[cfg(not(unix))]
        let _ = tokio::signal::ctrl_c().await;
        tracing::info!("shutdown requested");
    }
}

/// Prints one JSON line to stdout naming the bound addresses, e.g.
/// `{"ready":{"service":"baton-control","grpc":"127.0.0.1:50051"}}`.
/// Listening on port 0 and reading this line is how tests get ephemeral ports.
pub fn announce_ready(service: &str, endpoints: &[(&str, SocketAddr)]) {
    let mut ready = serde_json::Map::new();
    ready.insert("service".into(), service.into());
    for (name, address) in endpoints {
        ready.insert((*name).into(), address.to_string().into());
    }
    println!("{}", serde_json::json!({ "ready": ready }));
}
