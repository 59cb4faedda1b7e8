//! The Baton webhook connector, for CRMs and agent desktops that take an
//! HTTP call (Salesforce Open CTI adapters, Zendesk, in-house tools): a
//! transfer to a queue posts the handoff to the queue's configured
//! endpoints, signed per Standard Webhooks, paced by each endpoint's rate
//! limit, retried with jittered exponential backoff, every request written
//! to a delivery log served at `GET /v1/deliveries`.

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
    BoundConnector, RunnableConnector, Sections, ServeConnector, ServeOptions,
};
use baton_service_kit::metrics::MetricsEndpoint;
use baton_service_kit::tls::HttpListener;
use tokio::net::TcpListener;

pub use config::WebhookConfig;
pub use connector::WebhookConnector;
pub use log::DeliveryLog;

/// The connector with its gRPC and HTTP listeners bound.
pub struct Bound {
    /// The ConnectorService address.
    pub grpc_addr: SocketAddr,
    /// The delivery log's HTTP address.
    pub http_addr: SocketAddr,
    connector: BoundConnector<WebhookConnector>,
    http: HttpListener,
    http_limits: baton_service_kit::http::HttpLimits,
    metrics: MetricsEndpoint,
    log: DeliveryLog,
    reports: Arc<report::Reports>,
}

impl std::fmt::Debug for Bound {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Bound")
            .field("grpc_addr", &self.grpc_addr)
            .field("http_addr", &self.http_addr)
            .finish_non_exhaustive()
    }
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
    let http = TcpListener::bind(http_listen)
        .await
        .map_err(|e| anyhow::anyhow!("server.http_listen: cannot listen on {http_listen}: {e}"))?;
    let http_addr = http.local_addr()?;
    let metrics = MetricsEndpoint::bind(&config.metrics).await?;
    // Receivers post reports here with the endpoint's secret, not with a
    // client certificate: the same certificate, none asked for.
    let tls = config.tls.as_ref().map(|tls| tls.without_client_ca());
    let http = HttpListener::new(http, tls.as_ref())?;
    let public_url = config
        .server
        .public_url
        .clone()
        .unwrap_or_else(|| format!("{}://{http_addr}", http.scheme()));
    let reports = report::Reports::new(
        config
            .endpoints
            .iter()
            .map(|(name, endpoint)| (name.clone(), endpoint.secret.clone()))
            .collect(),
    );
    let connector = WebhookConnector::new(
        &config,
        log.clone(),
        reports.clone(),
        format!("{}/v1/reports", public_url.trim_end_matches('/')),
    )?;
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
    })
}

impl Bound {
    /// Serves gRPC and the delivery log until `shutdown`.
    pub async fn serve(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        let (stop, stopped) = tokio::sync::watch::channel(false);
        tokio::spawn(async move {
            shutdown.await;
            stop.send_replace(true);
        });
        let wait = |mut stopped: tokio::sync::watch::Receiver<bool>| async move {
            let _ = stopped.wait_for(|s| *s).await;
        };
        let http = baton_service_kit::http::serve(
            self.http,
            http::router(self.log, self.reports).merge(self.metrics.on_service_listener()),
            self.http_limits,
            wait(stopped.clone()),
        );
        let metrics = self.metrics.serve(wait(stopped.clone()));
        let grpc = self.connector.serve(wait(stopped));
        let (http, metrics, grpc) = tokio::join!(http, metrics, grpc);
        http?;
        metrics?;
        grpc
    }
}

impl ServeConnector for Bound {
    fn endpoints(&self) -> Vec<(String, SocketAddr)> {
        self.connector.endpoints()
    }

    fn serve(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> impl Future<Output = anyhow::Result<()>> + Send {
        Bound::serve(self, shutdown)
    }
}

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

    fn sections(&mut self) -> Sections<'_, Self> {
        Sections {
            server: &mut self.server,
            store: &mut self.store,
            telemetry: &mut self.telemetry,
            tls: &mut self.tls,
        }
    }

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
