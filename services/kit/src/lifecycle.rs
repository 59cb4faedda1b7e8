//! Process lifecycle: shutdown on SIGTERM or Ctrl-C, and the readiness line
//! that tells a supervisor (or a test) which addresses a service bound.

use std::net::SocketAddr;

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
