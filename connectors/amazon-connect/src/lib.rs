//! The Baton Amazon Connect connector: puts the handoff's context on the
//! live contact as contact attributes (what the agent workspace shows),
//! moves the contact to a queue or a quick connect's queue or agent, and
//! reports its place in the queue from the queue's real-time metrics until
//! an agent has it. It calls the Connect REST API directly (restJson1 over
//! reqwest, signed with `aws-sigv4`), each operation paced by Amazon
//! Connect's rate limit so that bursts queue instead of being throttled.

pub mod api;
pub mod attributes;
pub mod config;
pub mod connector;

use std::future::Future;
use std::sync::Arc;

use baton_connector_sdk::{BoundConnector, ServeOptions};

pub use config::ConnectConfig;
pub use connector::ConnectConnector;

/// Validates `config` and binds the gRPC listener (port 0 picks a free
/// port).
pub async fn bind(config: ConnectConfig) -> anyhow::Result<BoundConnector<ConnectConnector>> {
    config
        .validate()
        .map_err(|e| anyhow::anyhow!("configuration: {e}"))?;
    let api = Arc::new(api::ConnectApi::new(&config)?);
    let options = ServeOptions::new(config.listen)
        .tls(config.tls.clone())
        .health_listen(config.health_listen)
        .journal(config.data_dir.join(baton_connector_sdk::TRANSFER_JOURNAL))
        .drain_timeout(config.drain_timeout);
    let connector = ConnectConnector::new(Arc::new(config), api);
    baton_connector_sdk::bind(connector, options).await
}

/// Binds and serves until `shutdown`.
pub async fn serve(
    config: ConnectConfig,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    bind(config).await?.serve(shutdown).await
}
