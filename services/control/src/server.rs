//! Assembles the control service: store, registry, dispatcher, gRPC and
//! HTTP listeners, and the shutdown sequence.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context;
use baton_proto::handoff::v1::handoff_service_server::HandoffServiceServer;
use baton_service_kit::grpc::{
    add_standard_services_with_probe, report_not_serving, serve as serve_grpc, serve_probe,
};
use baton_service_kit::lifecycle::announce_ready;
use baton_service_kit::message_size::MessageSizeLayer;
use baton_service_kit::metrics::MetricsEndpoint;
use baton_service_kit::tls::{Alpn, HttpListener, ServerTls, TlsConfig};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tonic::service::RoutesBuilder;

use baton_auth::{AuthLayer, AuthMode, RateLimitLayer};

use crate::api::HandoffApi;
use crate::config::ControlConfig;
use crate::connector::ConnectorRegistry;
use crate::dispatch::Dispatcher;
use crate::domain::message::CustomerMessages;
use crate::domain::routing::Router;
use crate::http::{HttpState, router};
use crate::hub::EventHub;
use crate::policy::PolicyEngine;
use crate::store::{HandoffStore, report_store_health};
use crate::token::TokenSigner;

const SERVICE_NAME: &str = "baton.handoff.v1.HandoffService";

/// A control service whose listeners are bound and whose in-flight
/// handoffs are known, ready to serve.
pub struct BoundControl {
    pub grpc_addr: SocketAddr,
    pub http_addr: SocketAddr,
    config: ControlConfig,
    grpc_listener: TcpListener,
    grpc_tls: Option<Arc<ServerTls>>,
    http_listener: HttpListener,
    metrics: MetricsEndpoint,
    probe_listener: Option<TcpListener>,
    api: HandoffApi,
    http_state: HttpState,
    dispatcher: Arc<Dispatcher>,
    registry: ConnectorRegistry,
    store: Arc<dyn HandoffStore>,
    auth: AuthLayer,
    rate_limit: RateLimitLayer,
}

impl std::fmt::Debug for BoundControl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BoundControl")
            .field("grpc_addr", &self.grpc_addr)
            .field("http_addr", &self.http_addr)
            .finish_non_exhaustive()
    }
}

/// The parts of the service a configuration yields once it is checked.
pub struct Checked {
    router: Router,
    messages: CustomerMessages,
    policy: Arc<PolicyEngine>,
}

/// Checks everything in a configuration that does not need the network or
/// the disk: connectors, routes, messages, policies, timeouts. The error
/// names the key. `baton config check` runs exactly this.
pub fn check(config: &ControlConfig) -> Result<Checked, String> {
    ConnectorRegistry::check_config(&config.connectors, config.connector_tls.as_ref())?;
    let connector_names: Vec<&str> = config.connectors.keys().map(String::as_str).collect();
    let router = Router::new(
        config.routes.clone(),
        config.default_connectors.clone(),
        &connector_names,
    )?;
    let messages = CustomerMessages::new(
        &config.messages.translations,
        &config.messages.default_language,
    )?;
    let policy = Arc::new(PolicyEngine::new(&config.policy)?);
    config.store.check()?;
    config.check_security()?;
    config.dispatch.check(&connector_names)?;
    if config.limits.max_watch_streams == 0 {
        return Err("limits.max_watch_streams: must be at least 1".into());
    }
    if config.handoff.default_timeout > config.handoff.max_timeout {
        return Err("handoff.default_timeout: must not exceed handoff.max_timeout".into());
    }
    Ok(Checked {
        router,
        messages,
        policy,
    })
}

/// Checks the configuration, opens the store and binds both listeners.
/// Every configuration error names its key.
pub async fn bind(mut config: ControlConfig) -> anyhow::Result<BoundControl> {
    let Checked {
        router,
        messages,
        policy,
    } = check(&config).map_err(anyhow::Error::msg)?;
    crate::metrics::set_known_names(&config.routes);
    let registry = ConnectorRegistry::new(&config.connectors, config.connector_tls.as_ref())
        .map_err(anyhow::Error::msg)?;
    let grpc_tls = ServerTls::load_optional(config.tls.as_ref(), Alpn::Grpc)?;
    // Browsers reach the HTTP listener: the same certificate, no client
    // certificate asked for.
    let http_tls = config.tls.as_ref().map(TlsConfig::without_client_ca);

    let failures =
        baton_auth::FailureLimiter::new(&config.failed_auth).map_err(anyhow::Error::msg)?;
    let auth = auth_layer(&config)?.with_failure_limit(failures.clone());
    let rate_limit = RateLimitLayer::new(&config.rate_limit).map_err(anyhow::Error::msg)?;
    let store = crate::store::open(&config.store).await?;
    let key_file = config
        .store
        .token_key_file
        .clone()
        .unwrap_or_else(|| config.store.data_dir.join("context-token.key"));
    let tokens = TokenSigner::load_or_create(&key_file)
        .with_context(|| format!("store.token_key_file: cannot read {}", key_file.display()))?;

    let grpc_listener = TcpListener::bind(config.server.grpc_listen)
        .await
        .with_context(|| {
            format!(
                "server.grpc_listen: cannot listen on {}",
                config.server.grpc_listen
            )
        })?;
    let http_listener = TcpListener::bind(config.server.http_listen)
        .await
        .with_context(|| {
            format!(
                "server.http_listen: cannot listen on {}",
                config.server.http_listen
            )
        })?;
    let grpc_addr = grpc_listener.local_addr()?;
    let http_addr = http_listener.local_addr()?;
    let http_listener = HttpListener::new(http_listener, http_tls.as_ref())?;
    let metrics = MetricsEndpoint::bind(&config.metrics).await?;
    let probe_listener = match config.server.health_listen {
        Some(listen) => Some(
            TcpListener::bind(listen)
                .await
                .with_context(|| format!("server.health_listen: cannot listen on {listen}"))?,
        ),
        None => None,
    };
    // With port 0 the public URL must name the port actually bound.
    config.server.http_listen = http_addr;
    if config.server.public_url.is_none() {
        config.server.public_url = Some(format!("{}://{http_addr}", http_listener.scheme()));
    }

    let hub = Arc::new(EventHub::new(config.limits.max_watch_streams));
    // With a shared store, events recorded by other replicas reach this
    // one's watchers too.
    if let Some(notices) = store
        .listen()
        .await
        .context("store: cannot listen for events")?
    {
        hub.follow(store.clone(), notices);
    }
    let dispatcher = Arc::new(
        Dispatcher::new(
            store.clone(),
            hub.clone(),
            registry.clone(),
            tokens.clone(),
            config.public_url(),
            config.handoff.context_token_ttl,
        )
        .with_lease_ttl(config.store.lease_ttl)
        .with_dispatch(config.dispatch.clone()),
    );
    let api = HandoffApi {
        store: store.clone(),
        hub,
        dispatcher: dispatcher.clone(),
        router,
        messages,
        policy,
        limits: config.limits.clone(),
        default_timeout: config.handoff.default_timeout,
        max_timeout: config.handoff.max_timeout,
        shutdown: CancellationToken::new(),
        watch_streams: baton_auth::StreamLimiter::new(config.limits.max_watch_streams_per_tenant),
    };
    Ok(BoundControl {
        grpc_addr,
        http_addr,
        http_state: HttpState {
            store: store.clone(),
            tokens,
            ended_token_grace: config.handoff.ended_token_grace,
            reads: crate::http::ReadLimiter::new(&config.context_reads)
                .map_err(anyhow::Error::msg)?,
            failures,
        },
        store,
        config,
        grpc_listener,
        grpc_tls,
        http_listener,
        metrics,
        probe_listener,
        api,
        dispatcher,
        registry,
        auth,
        rate_limit,
    })
}

/// The auth layer of `config`. With `mode = "required"` and no keys file
/// named, the default keys file is created empty when missing, so that the
/// service starts and refuses every call until a key is added.
fn auth_layer(config: &ControlConfig) -> anyhow::Result<AuthLayer> {
    let mut auth = config.auth.clone();
    if auth.mode == AuthMode::Required {
        auth.api_keys_file = config.api_keys_file();
        if config.auth.api_keys_file.is_none()
            && let Some(path) = &auth.api_keys_file
            && !path.exists()
        {
            if let Some(dir) = path.parent() {
                std::fs::create_dir_all(dir)
                    .with_context(|| format!("store.data_dir: cannot create {}", dir.display()))?;
            }
            baton_auth::api_key::KeysFile::default()
                .write(path)
                .with_context(|| format!("auth.api_keys_file: cannot create {}", path.display()))?;
            tracing::warn!(
                keys_file = %path.display(),
                "authentication is required and no API key exists yet: add one with `baton auth new-key`"
            );
        }
    }
    AuthLayer::from_config(&auth).map_err(anyhow::Error::msg)
}

impl BoundControl {
    /// Serves until `shutdown` completes, then reports not-serving, ends
    /// watch streams and drains in-flight calls. Handoffs keep their state
    /// in the store and resume at the next start.
    pub async fn serve(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        let BoundControl {
            grpc_addr,
            http_addr,
            config,
            grpc_listener,
            grpc_tls,
            http_listener,
            metrics,
            probe_listener,
            api,
            http_state,
            dispatcher,
            registry,
            store,
            auth,
            rate_limit,
        } = self;
        let stop_streams = api.shutdown.clone();
        let policy_upkeep = tokio::spawn(api.policy.clone().maintain());
        let retention = tokio::spawn(crate::retention::purge_periodically(
            store.clone(),
            config.retention.clone(),
        ));
        let mut routes = RoutesBuilder::default();
        // One value per direction, from [limits]: ListHandoffs pages by the
        // same max_response_bytes, and a request over max_request_bytes is
        // refused naming the key.
        routes.add_service(
            MessageSizeLayer::new("limits.max_request_bytes", config.limits.max_request_bytes)
                .around(
                    HandoffServiceServer::new(api)
                        .max_decoding_message_size(config.limits.max_request_bytes)
                        .max_encoding_message_size(config.limits.max_response_bytes),
                ),
        );
        let (health, probe_routes) =
            add_standard_services_with_probe(&mut routes, &[baton_proto::FILE_DESCRIPTOR_SET])
                .await?;
        health
            .set_service_status(SERVICE_NAME, tonic_health::ServingStatus::Serving)
            .await;

        let store_health = tokio::spawn(report_store_health(
            store,
            health.clone(),
            vec![SERVICE_NAME],
        ));
        let circuit_health = tokio::spawn(crate::circuit::report_circuit_health(
            dispatcher.breakers().clone(),
            health.clone(),
        ));
        let resumed = dispatcher.resume_in_flight().await?;
        registry.log_capabilities().await;
        tracing::info!(%grpc_addr, %http_addr, resumed, replica = dispatcher.replica(), "baton-control serving");
        let mut endpoints = vec![("grpc", grpc_addr), ("http", http_addr)];
        if let Some(probe) = &probe_listener {
            endpoints.push(("health", probe.local_addr()?));
        }
        if let Some(addr) = metrics.local_addr() {
            endpoints.push(("metrics", addr));
        }
        announce_ready("baton-control", &endpoints);

        let stopping = CancellationToken::new();
        let grpc_stopping = stopping.clone();
        let grpc_router = config
            .server
            .grpc
            .apply(tonic::transport::Server::builder())
            .trace_fn(baton_service_kit::telemetry::grpc_server_span)
            .concurrency_limit_per_connection(256)
            // Authentication first, so that the rate limit knows the tenant.
            .layer(auth)
            .layer(rate_limit)
            .add_routes(routes.routes());
        let grpc = serve_grpc(
            grpc_router,
            grpc_listener,
            grpc_tls,
            config.server.grpc.max_connections,
            async move {
                grpc_stopping.cancelled().await;
            },
        );
        let probe_stopping = stopping.clone();
        let probe = async move {
            match probe_listener {
                Some(listener) => {
                    serve_probe(probe_routes, listener, probe_stopping.cancelled()).await
                }
                None => Ok(()),
            }
        };
        let http_stopping = stopping.clone();
        let http = baton_service_kit::http::serve(
            http_listener,
            router(http_state).merge(metrics.on_service_listener()),
            config.server.http.clone(),
            async move { http_stopping.cancelled().await },
        );
        let metrics_stopping = stopping.clone();
        let metrics = metrics.serve(async move { metrics_stopping.cancelled().await });

        let drain_timeout = config.server.drain_timeout;
        let drain_started = stopping.clone();
        tokio::spawn(async move {
            shutdown.await;
            store_health.abort();
            circuit_health.abort();
            report_not_serving(&health, &[SERVICE_NAME]).await;
            stop_streams.cancel();
            stopping.cancel();
        });
        let servers = async {
            tokio::try_join!(
                async { grpc.await.context("gRPC server") },
                async { http.await.context("HTTP server") },
                async { probe.await.context("health probe server") },
                async { metrics.await.context("metrics server") },
            )
        };
        let drain_deadline = async {
            drain_started.cancelled().await;
            tokio::time::sleep(drain_timeout).await;
        };
        tokio::select! {
            result = servers => { result?; }
            () = drain_deadline => tracing::warn!("drain timeout reached; exiting with calls in flight"),
        }
        policy_upkeep.abort();
        retention.abort();
        dispatcher.shutdown().await;
        drop(dispatcher);
        tracing::info!("baton-control stopped");
        Ok(())
    }
}
