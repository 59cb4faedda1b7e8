//! Process lifecycle: shutdown on SIGTERM or Ctrl-C, and the readiness line
//! that tells a supervisor (or a test) which addresses a service bound.

use std::net::SocketAddr;

/// Completes when the process receives SIGTERM or SIGINT.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(error) => {
                tracing::warn!(%error, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
    tracing::info!("shutdown requested");
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
