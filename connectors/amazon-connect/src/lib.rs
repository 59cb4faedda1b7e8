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

use baton_connector_sdk::{BoundConnector, NoFlags, RunnableConnector, ServeOptions};

pub use config::ConnectConfig;
pub use connector::ConnectConnector;

/// Validates `config` and binds the gRPC listener (port 0 picks a free
/// port).
pub async fn bind(config: ConnectConfig) -> anyhow::Result<BoundConnector<ConnectConnector>> {
    config
        .validate()
        .map_err(|e| anyhow::anyhow!("configuration: {e}"))?;
    let api = Arc::new(api::ConnectApi::new(&config)?);
    let options = ServeOptions::configured(&config.server, config.tls.as_ref(), &config.store);
    let connector = ConnectConnector::new(Arc::new(config), api);
    baton_connector_sdk::bind(connector, options).await
}

impl RunnableConnector for ConnectConfig {
    const BINARY: &'static str = "baton-connector-amazon-connect";
    const VERSION: &'static str = env!("CARGO_PKG_VERSION");
    /// E.g. `BATON_AMAZON_CONNECT_CREDENTIALS__SECRET_ACCESS_KEY`; AWS's
    /// `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_SESSION_TOKEN`
    /// and `AWS_REGION` fill what neither the file nor these give.
    const ENV_PREFIX: &'static str = "BATON_AMAZON_CONNECT";
    const ABOUT: &'static str = "A Baton connector for Amazon Connect: the handoff context as \
        contact attributes for the agent workspace, transfers to a queue or quick connect, queue \
        position and wait from the real-time metrics. AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, \
        AWS_SESSION_TOKEN and AWS_REGION fill what the configuration does not give.";
    type Flags = NoFlags;
    type Bound = BoundConnector<ConnectConnector>;

    baton_connector_sdk::shared_sections!();

    fn with_environment(self) -> Self {
        self.with_aws_environment()
    }

    fn validate(&self) -> Result<(), String> {
        ConnectConfig::validate(self)
    }

    fn bind(self) -> impl Future<Output = anyhow::Result<Self::Bound>> + Send {
        bind(self)
    }
}

/// Binds and serves until `shutdown`.
pub async fn serve(
    config: ConnectConfig,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    bind(config).await?.serve(shutdown).await
}
