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

use baton_connector_sdk::{BoundConnector, ServeOptions};
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
    let http = TcpListener::bind(config.http_listen)
        .await
        .map_err(|e| anyhow::anyhow!("cannot listen on {}: {e}", config.http_listen))?;
    let http_addr = http.local_addr()?;
    // Receivers post reports here with the endpoint's secret, not with a
    // client certificate: the same certificate, none asked for.
    let tls = config.tls.as_ref().map(|tls| tls.without_client_ca());
    let http = HttpListener::new(http, tls.as_ref())?;
    let public_url = config
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
    let options = ServeOptions::new(config.listen)
        .ready_endpoint("http", http_addr)
        .tls(config.tls.clone())
        .health_listen(config.health_listen)
        .journal(config.data_dir.join(baton_connector_sdk::TRANSFER_JOURNAL))
        .drain_timeout(config.drain_timeout);
    let connector = baton_connector_sdk::bind(connector, options).await?;
    Ok(Bound {
        grpc_addr: connector.addr,
        http_addr,
        connector,
        http,
        http_limits: config.http.clone(),
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
            http::router(self.log, self.reports),
            self.http_limits,
            wait(stopped.clone()),
        );
        let grpc = self.connector.serve(wait(stopped));
        let (http, grpc) = tokio::join!(http, grpc);
        http?;
        grpc
    }
}
