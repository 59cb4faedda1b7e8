//! The Baton webhook connector, for CRMs and agent desktops that take an
//! HTTP call (Salesforce Open CTI adapters, Zendesk, in-house tools): a
//! transfer to a queue posts the handoff to the queue's configured
//! endpoints, signed per Standard Webhooks, paced by each endpoint's rate
//! limit, retried with jittered exponential backoff, every request written
//! to a delivery log served at `GET /v1/deliveries`. A chat handoff to an
//! endpoint with a `chat_url` is relayed both ways (see [`chat`]).

pub mod chat;
pub mod config;
pub mod connector;
pub mod delivery;
pub mod http;
pub mod log;
pub mod message;
pub mod report;
pub mod retry;
pub mod signature;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use baton_connector_sdk::{
    BoundConnector, HttpSide, RunnableConnector, ServeOptions, SharedShutdown,
};
use baton_service_kit::metrics::MetricsEndpoint;

pub use config::WebhookConfig;
pub use connector::WebhookConnector;
pub use log::DeliveryLog;

/// The connector with its gRPC and HTTP listeners bound.
#[derive(Debug)]
pub struct Bound {
    /// The ConnectorService address.
    pub grpc_addr: SocketAddr,
    /// The delivery log's HTTP address.
    pub http_addr: SocketAddr,
    connector: BoundConnector<WebhookConnector>,
    http: HttpSide,
    http_limits: baton_service_kit::http::HttpLimits,
    metrics: MetricsEndpoint,
    log: DeliveryLog,
    reports: Arc<report::Reports>,
    chats: Arc<chat::Chats>,
}

/// Validates `config`, opens the delivery log and binds both listeners
/// (port 0 picks a free port); `serve` prints one readiness line naming
/// `grpc` and `http`.
pub async fn bind(config: WebhookConfig) -> anyhow::Result<Bound> {
    config
        .validate()
        .map_err(|e| anyhow::anyhow!("configuration: {e}"))?;
    let log = DeliveryLog::open(&config.delivery_log)?;
    let http_listen = config.server.http_listen().map_err(anyhow::Error::msg)?;
    // Receivers post reports here with the endpoint's secret.
    let http = HttpSide::bind("server.http_listen", http_listen, config.tls.as_ref()).await?;
    let http_addr = http.addr;
    let metrics = MetricsEndpoint::bind(&config.metrics).await?;
    let public_url = http.url(config.server.public_url.as_deref());
    let reports = report::Reports::new(
        config
            .endpoints
            .iter()
            .map(|(name, endpoint)| (name.clone(), endpoint.secret.clone()))
            .collect(),
    );
    let chat_store = chat::store::ChatStore::open(&config.delivery_log)?;
    let connector = WebhookConnector::new(
        &config,
        log.clone(),
        reports.clone(),
        chat_store,
        &public_url,
    )?;
    let chats = connector.chats();
    let mut options = ServeOptions::configured(&config.server, config.tls.as_ref(), &config.store)
        .ready_endpoint("http", http_addr);
    if let Some(addr) = metrics.local_addr() {
        options = options.ready_endpoint("metrics", addr);
    }
    let connector = baton_connector_sdk::bind(connector, options).await?;
    Ok(Bound {
        grpc_addr: connector.addr,
        http_addr,
        connector,
        http,
        http_limits: config.server.http.clone(),
        metrics,
        log,
        reports,
        chats,
    })
}

impl Bound {
    /// Serves gRPC and the delivery log until `shutdown`.
    pub async fn serve(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        let shutdown = SharedShutdown::new(shutdown);
        let router = http::router(self.log, self.reports, self.chats)
            .merge(self.metrics.on_service_listener());
        let metrics = self.metrics.serve(shutdown.signalled());
        let served = self
            .http
            .serve_beside(router, self.http_limits, self.connector, &shutdown);
        let (metrics, served) = tokio::join!(metrics, served);
        metrics?;
        served
    }
}

baton_connector_sdk::serve_connector!(Bound);

/// The webhook connector's own flag.
#[derive(Debug, clap::Args)]
pub struct WebhookFlags {
    /// SQLite file of the delivery log (overrides `delivery_log`).
    #[arg(long)]
    delivery_log: Option<std::path::PathBuf>,
}

impl RunnableConnector for WebhookConfig {
    const BINARY: &'static str = "baton-connector-webhook";
    const VERSION: &'static str = env!("CARGO_PKG_VERSION");
    /// E.g. `BATON_WEBHOOK_ENDPOINTS__CRM__SECRET`.
    const ENV_PREFIX: &'static str = "BATON_WEBHOOK";
    const ABOUT: &'static str = "A Baton connector that hands a customer to a CRM or agent \
        desktop by posting the handoff context to its HTTP endpoint, signed per Standard \
        Webhooks, retried with backoff, every request in a delivery log. Secrets are best given \
        as BATON_WEBHOOK_ENDPOINTS__<NAME>__SECRET.";
    type Flags = WebhookFlags;
    type Bound = Bound;

    baton_connector_sdk::shared_sections!();

    fn apply_flags(&mut self, flags: WebhookFlags) {
        if let Some(path) = flags.delivery_log {
            self.delivery_log = path;
        }
    }

    fn validate(&self) -> Result<(), String> {
        WebhookConfig::validate(self)
    }

    fn bind(self) -> impl Future<Output = anyhow::Result<Self::Bound>> + Send {
        bind(self)
    }
}
