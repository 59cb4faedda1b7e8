//! The gRPC server of a connector: ConnectorService, health and reflection.

use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use baton_proto::connector::v1::connector_service_server::{
    ConnectorService, ConnectorServiceServer,
};
use baton_proto::connector::v1::*;
use baton_service_kit::grpc::{
    GrpcLimits, add_standard_services_with_probe, report_not_serving, serve_probe,
};
use baton_service_kit::lifecycle::announce_ready;
use baton_service_kit::status::{FieldViolation, invalid_argument};
use baton_service_kit::tls::{Alpn, ServerTls, TlsConfig};
use tokio::net::TcpListener;
use tokio_stream::Stream;
use tokio_util::sync::CancellationToken;
use tonic::service::RoutesBuilder;
use tonic::{Request, Response, Status};

use crate::config::{ServerConfig, StoreConfig};
use crate::journal::{Journal, Journalled};
use crate::server::tenants::TenantScope;
use crate::transfer::{check_served, parse_target};
use crate::transfers::Transfers;
use crate::{AvailabilityQuery, Channel, Connector, ConnectorInfo};

const SERVICE_NAME: &str = "baton.connector.v1.ConnectorService";
/// The largest StartTransfer request accepted: the envelope's structured
/// context is bounded by the control service's own limits.
const MAX_REQUEST_BYTES: usize = 1024 * 1024;
/// How long a stopping connector lets its running transfers go on, by
/// default.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(30);

/// Where and how a connector serves.
#[derive(Debug, Clone)]
pub struct ServeOptions {
    pub listen: SocketAddr,
    /// More endpoints for the readiness line, besides `grpc` (e.g. the SIP
    /// address a connector bound), so that one line names every address.
    ready_endpoints: Vec<(String, SocketAddr)>,
    /// TLS of the gRPC listener (mTLS when it names a client CA); plain
    /// text when `None`.
    tls: Option<TlsConfig>,
    /// A plain-text listener serving only `grpc.health.v1`, for probes
    /// that cannot speak TLS (Kubernetes' gRPC probes).
    health_listen: Option<SocketAddr>,
    /// The transfer journal's file; in memory only when `None`.
    journal: Option<PathBuf>,
    drain_timeout: Duration,
    /// Connection limit and keepalive of the gRPC listener.
    grpc: GrpcLimits,
    /// `Some(why)` while the connector cannot work (its own store fails).
    failing: Option<tokio::sync::watch::Receiver<Option<String>>>,
    /// The tenants whose transfers it takes; every tenant when empty.
    tenants: Vec<String>,
}

impl ServeOptions {
    pub fn new(listen: SocketAddr) -> Self {
        Self {
            listen,
            ready_endpoints: Vec::new(),
            tls: None,
            health_listen: None,
            journal: None,
            drain_timeout: DRAIN_TIMEOUT,
            grpc: GrpcLimits::default(),
            failing: None,
            tenants: Vec::new(),
        }
    }

    /// The options a connector's shared configuration sections give:
    /// `[server]` (gRPC and health listeners, the gRPC limits, the drain),
    /// `[tls]` and `[store]` (the transfer journal in `data_dir`, if any).
    pub fn configured<D>(
        server: &ServerConfig<D>,
        tls: Option<&TlsConfig>,
        store: &StoreConfig<D>,
    ) -> Self {
        let mut options = Self::new(server.grpc_listen)
            .tls(tls.cloned())
            .health_listen(server.health_listen)
            .drain_timeout(server.drain_timeout)
            .grpc_limits(server.grpc.clone())
            .tenants(server.tenants.clone());
        options.journal = store.journal();
        options
    }

    /// Dedicates the connector to these tenants: a StartTransfer or
    /// CancelTransfer of any other is refused with INVALID_ARGUMENT naming
    /// `tenant` before the connector sees it. Empty (the default): shared
    /// by every tenant.
    pub fn tenants(mut self, tenants: Vec<String>) -> Self {
        self.tenants = tenants;
        self
    }

    /// Connection limit and keepalive of the gRPC listener (the defaults
    /// of [`GrpcLimits`] otherwise).
    pub fn grpc_limits(mut self, limits: GrpcLimits) -> Self {
        self.grpc = limits;
        self
    }

    /// Reports NOT_SERVING (the connector's service and the overall
    /// status) while `failing` holds a reason, SERVING again once it is
    /// `None`: e.g. while the connector's own store cannot save. The
    /// control service checks health before each transfer, so it routes
    /// elsewhere meanwhile.
    pub fn not_serving_while(
        mut self,
        failing: tokio::sync::watch::Receiver<Option<String>>,
    ) -> Self {
        self.failing = Some(failing);
        self
    }

    /// Keeps every transfer in a journal at `path` (an SQLite file, created
    /// with its directory when missing), so that a restarted connector
    /// replays the transfers that ended and resumes (or fails, never
    /// repeats) those that did not: see the crate's documentation. A file
    /// that is empty, corrupt or not a journal makes [`bind`] fail naming
    /// it; it is never replaced. One process per file. Without a journal,
    /// transfers are kept in memory only.
    pub fn journal(mut self, path: impl Into<PathBuf>) -> Self {
        self.journal = Some(path.into());
        self
    }

    /// How long, once the shutdown future resolves, running transfers may
    /// go on before the connector stops (30 s by default); new transfers
    /// are refused meanwhile. Those still running are then handed over to
    /// the next process through the journal, never cancelled.
    pub fn drain_timeout(mut self, timeout: Duration) -> Self {
        self.drain_timeout = timeout;
        self
    }

    /// Also serves `grpc.health.v1` alone, in plain text, on `listen` (a
    /// connector config's `health_listen`); announced as `health`.
    pub fn health_listen(mut self, listen: Option<SocketAddr>) -> Self {
        self.health_listen = listen;
        self
    }

    /// Serves gRPC with TLS (a connector config's optional `[tls]`
    /// section); with `client_ca_file` set, the control service must
    /// present a client certificate that CA signed (mTLS).
    pub fn tls(mut self, tls: Option<TlsConfig>) -> Self {
        self.tls = tls;
        self
    }

    /// Adds `name: addr` to the readiness line printed when serving starts.
    pub fn ready_endpoint(mut self, name: impl Into<String>, addr: SocketAddr) -> Self {
        self.ready_endpoints.push((name.into(), addr));
        self
    }
}

struct Service<C> {
    info: ConnectorInfo,
    tenants: TenantScope,
    transfers: Arc<Transfers<C>>,
    shutdown: CancellationToken,
}

type EventStream = Pin<Box<dyn Stream<Item = Result<StartTransferResponse, Status>> + Send>>;

#[tonic::async_trait]
impl<C: Connector> ConnectorService for Service<C> {
    async fn get_connector_info(
        &self,
        _request: Request<GetConnectorInfoRequest>,
    ) -> Result<Response<GetConnectorInfoResponse>, Status> {
        Ok(Response::new(self.info.to_proto()))
    }

    type StartTransferStream = EventStream;

    async fn start_transfer(
        &self,
        request: Request<StartTransferRequest>,
    ) -> Result<Response<Self::StartTransferStream>, Status> {
        let request = request.into_inner();
        self.tenants.admit(&request.tenant)?;
        let log = self.transfers.start(request).await?;
        let shutdown = self.shutdown.clone();
        let stream = async_stream_events(log, shutdown);
        Ok(Response::new(Box::pin(stream)))
    }

    async fn cancel_transfer(
        &self,
        request: Request<CancelTransferRequest>,
    ) -> Result<Response<CancelTransferResponse>, Status> {
        let request = request.into_inner();
        self.tenants.admit(&request.tenant)?;
        let outcome = self
            .transfers
            .cancel(&request.tenant, &request.handoff_id, request.attempt)
            .await;
        tracing::info!(handoff_id = %request.handoff_id, attempt = request.attempt, outcome = outcome.as_str_name(), "CancelTransfer");
        Ok(Response::new(CancelTransferResponse {
            cancelled: outcome == CancelOutcome::Cancelled,
            outcome: outcome as i32,
        }))
    }

    async fn update_transfer(
        &self,
        request: Request<UpdateTransferRequest>,
    ) -> Result<Response<UpdateTransferResponse>, Status> {
        if !self.info.context_updates {
            return Err(Status::unimplemented(format!(
                "the {} connector does not take context updates",
                self.info.name
            )));
        }
        let request = request.into_inner();
        self.tenants.admit(&request.tenant)?;
        let (handoff_id, attempt, version) = (
            request.handoff_id.clone(),
            request.attempt,
            request.context_version,
        );
        let outcome = self.transfers.update(request).await?;
        tracing::info!(%handoff_id, attempt, context_version = version, outcome = outcome.as_str_name(), "UpdateTransfer");
        Ok(Response::new(UpdateTransferResponse {
            outcome: outcome as i32,
        }))
    }

    type ConverseTransferStream =
        Pin<Box<dyn Stream<Item = Result<ConverseTransferResponse, Status>> + Send>>;

    async fn converse_transfer(
        &self,
        request: Request<tonic::Streaming<ConverseTransferRequest>>,
    ) -> Result<Response<Self::ConverseTransferStream>, Status> {
        if !self.info.chat {
            return Err(Status::unimplemented(format!(
                "the {} connector does not relay chat",
                self.info.name
            )));
        }
        let (relay, stream) = crate::chat::accept(request.into_inner()).await?;
        self.tenants.admit(&relay.tenant)?;
        let connector = self.transfers.connector().clone();
        tokio::spawn(async move { connector.converse(relay).await });
        Ok(Response::new(stream))
    }

    async fn get_availability(
        &self,
        request: Request<GetAvailabilityRequest>,
    ) -> Result<Response<GetAvailabilityResponse>, Status> {
        if !self.info.availability {
            return Err(Status::unimplemented(format!(
                "the {} connector does not report availability",
                self.info.name
            )));
        }
        let request = request.into_inner();
        self.tenants.admit(&request.tenant)?;
        let mut violations = Vec::new();
        let channel = request.channel();
        let target = parse_target(request.target, &mut violations);
        if request.language.len() > 64 {
            violations.push(FieldViolation::new("language", "is longer than 64 bytes"));
        }
        let Some(target) = target.filter(|_| violations.is_empty()) else {
            return Err(invalid_argument(&violations));
        };
        check_served(&target, &self.info)?;
        let query = AvailabilityQuery {
            tenant: request.tenant,
            target,
            language: request.language,
            channel: match channel {
                Channel::Unspecified => Channel::Voice,
                channel => channel,
            },
        };
        let availability = self.transfers.connector().availability(query).await?;
        Ok(Response::new(GetAvailabilityResponse {
            availability: Some(availability),
        }))
    }
}

/// Replays a transfer's log from the start and follows it to its terminal
/// event; ends with UNAVAILABLE when the connector shuts down first.
fn async_stream_events(
    log: Arc<crate::events::EventLog>,
    shutdown: CancellationToken,
) -> impl Stream<Item = Result<StartTransferResponse, Status>> + Send {
    let (sender, receiver) = tokio::sync::mpsc::channel(16);
    tokio::spawn(async move {
        let mut next = 0;
        loop {
            let batch = tokio::select! {
                batch = log.read_from(next) => batch,
                () = shutdown.cancelled() => {
                    let _ = sender.send(Err(Status::unavailable("connector shutting down; StartTransfer again to re-attach"))).await;
                    return;
                }
            };
            for event in batch {
                next += 1;
                let terminal = crate::events::is_terminal(event.kind);
                if sender.send(Ok(event)).await.is_err() || terminal {
                    return;
                }
            }
        }
    });
    tokio_stream::wrappers::ReceiverStream::new(receiver)
}

/// A connector with its listener bound, ready to serve.
pub struct BoundConnector<C> {
    pub addr: SocketAddr,
    listener: TcpListener,
    tls: Option<Arc<ServerTls>>,
    probe: Option<TcpListener>,
    connector: C,
    ready_endpoints: Vec<(String, SocketAddr)>,
    journal: Option<(Journal, Vec<Journalled>)>,
    drain_timeout: Duration,
    grpc: GrpcLimits,
    failing: Option<tokio::sync::watch::Receiver<Option<String>>>,
    tenants: TenantScope,
}

impl<C> std::fmt::Debug for BoundConnector<C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BoundConnector")
            .field("addr", &self.addr)
            .finish_non_exhaustive()
    }
}

/// Binds the connector's listener (port 0 picks a free port), loads its
/// TLS files, if any, and opens its transfer journal, if any.
pub async fn bind<C: Connector>(
    connector: C,
    options: ServeOptions,
) -> anyhow::Result<BoundConnector<C>> {
    let tls = ServerTls::load_optional(options.tls.as_ref(), Alpn::Grpc)?;
    let journal = match options.journal {
        Some(path) => Some(
            tokio::task::spawn_blocking(move || Journal::open(&path))
                .await
                .map_err(|e| anyhow::anyhow!("transfer journal: {e}"))??,
        ),
        None => None,
    };
    let listener = TcpListener::bind(options.listen)
        .await
        .map_err(|e| anyhow::anyhow!("cannot listen on {}: {e}", options.listen))?;
    let mut ready_endpoints = options.ready_endpoints;
    let probe = match options.health_listen {
        Some(listen) => {
            let probe = TcpListener::bind(listen)
                .await
                .map_err(|e| anyhow::anyhow!("health_listen: cannot listen on {listen}: {e}"))?;
            ready_endpoints.push(("health".into(), probe.local_addr()?));
            Some(probe)
        }
        None => None,
    };
    Ok(BoundConnector {
        addr: listener.local_addr()?,
        listener,
        tls,
        probe,
        connector,
        ready_endpoints,
        journal,
        drain_timeout: options.drain_timeout,
        grpc: options.grpc,
        failing: options.failing,
        tenants: TenantScope::new(options.tenants),
    })
}

impl<C> BoundConnector<C> {
    /// The addresses bound, named as in the readiness line: `grpc`, then
    /// the ready endpoints (e.g. `sip`, `http`, `health`).
    pub fn endpoints(&self) -> Vec<(String, SocketAddr)> {
        let mut endpoints = vec![("grpc".to_owned(), self.addr)];
        endpoints.extend(self.ready_endpoints.iter().cloned());
        endpoints
    }
}

impl<C: Connector> BoundConnector<C> {
    /// Serves until `shutdown`, then drains: reports not-serving, refuses
    /// new transfers and lets running ones go on until they end or the
    /// drain timeout passes; then ends the remaining streams with
    /// UNAVAILABLE (the control service re-attaches elsewhere or later)
    /// and returns without cancelling what still runs (with a journal, the
    /// next process takes it over).
    pub async fn serve(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        let info = self.connector.info();
        let name = info.name.clone();
        let transfers = Transfers::new(Arc::new(self.connector), self.journal);
        let stop = CancellationToken::new();
        let service = Service {
            info,
            tenants: self.tenants,
            transfers: transfers.clone(),
            shutdown: stop.clone(),
        };
        let mut routes = RoutesBuilder::default();
        routes.add_service(
            ConnectorServiceServer::new(service)
                .max_decoding_message_size(MAX_REQUEST_BYTES)
                .max_encoding_message_size(MAX_REQUEST_BYTES),
        );
        let (health, probe_routes) =
            add_standard_services_with_probe(&mut routes, &[baton_proto::FILE_DESCRIPTOR_SET])
                .await?;
        health
            .set_service_status(SERVICE_NAME, tonic_health::ServingStatus::Serving)
            .await;

        let tls = match &self.tls {
            Some(_) => "tls",
            None => "plain text",
        };
        tracing::info!(connector = %name, addr = %self.addr, tls, "connector serving");
        let mut endpoints = vec![("grpc", self.addr)];
        endpoints.extend(
            self.ready_endpoints
                .iter()
                .map(|(name, addr)| (name.as_str(), *addr)),
        );
        announce_ready(&format!("baton-connector-{name}"), &endpoints);
        // True once draining: nothing reports SERVING after that.
        let draining = Arc::new(tokio::sync::Mutex::new(false));
        if let Some(failing) = self.failing {
            tokio::spawn(follow_failing(failing, health.clone(), draining.clone()));
        }
        let stopping = stop.clone();
        let drain_timeout = self.drain_timeout;
        tokio::spawn(async move {
            shutdown.await;
            // Refusing first, so that whoever sees NOT_SERVING is refused.
            transfers.drain();
            *draining.lock().await = true;
            report_not_serving(&health, &[SERVICE_NAME]).await;
            tracing::info!(
                active = transfers.active(),
                ?drain_timeout,
                "connector draining"
            );
            let remaining = transfers.drained(drain_timeout).await;
            if remaining == 0 {
                tracing::info!("connector drained: no transfer runs");
            } else if transfers.has_journal() {
                tracing::info!(
                    handed_over = remaining,
                    "drain timeout passed; running transfers handed over through the journal (the next process resumes them when the control service re-attaches)"
                );
            } else {
                tracing::warn!(
                    abandoned = remaining,
                    "drain timeout passed; running transfers stop with the process (no journal to hand them over)"
                );
            }
            stopping.cancel();
        });
        let server_stop = stop.clone();
        let router = self
            .grpc
            .apply(tonic::transport::Server::builder())
            .trace_fn(baton_service_kit::telemetry::grpc_server_span)
            .add_routes(routes.routes());
        let server = baton_service_kit::grpc::serve(
            router,
            self.listener,
            self.tls,
            self.grpc.max_connections,
            async move { server_stop.cancelled().await },
        );
        match self.probe {
            Some(probe) => {
                let probe_stop = stop.clone();
                tokio::try_join!(
                    server,
                    serve_probe(
                        probe_routes,
                        probe,
                        async move { probe_stop.cancelled().await }
                    )
                )?;
            }
            None => server.await?,
        }
        tracing::info!(connector = %name, "connector stopped");
        Ok(())
    }
}

/// Keeps health in step with `failing` until the connector drains.
async fn follow_failing(
    mut failing: tokio::sync::watch::Receiver<Option<String>>,
    health: tonic_health::server::HealthReporter,
    draining: Arc<tokio::sync::Mutex<bool>>,
) {
    loop {
        let problem = failing.borrow_and_update().clone();
        {
            let draining = draining.lock().await;
            if *draining {
                return;
            }
            let status = match &problem {
                None => tonic_health::ServingStatus::Serving,
                Some(_) => tonic_health::ServingStatus::NotServing,
            };
            for service in [SERVICE_NAME, ""] {
                health.set_service_status(service, status).await;
            }
        }
        if failing.changed().await.is_err() {
            return;
        }
    }
}

/// Binds and serves in one call: what a connector's `main` needs.
pub async fn serve<C: Connector>(
    connector: C,
    options: ServeOptions,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    bind(connector, options).await?.serve(shutdown).await
}

mod tenants;

#[cfg(test)]
mod tests;
