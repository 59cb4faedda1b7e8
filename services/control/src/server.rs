//! Assembles the control service: store, registry, dispatcher, gRPC and
//! HTTP listeners, and the shutdown sequence.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context;
use baton_proto::handoff::v1::handoff_service_server::HandoffServiceServer;
use baton_service_kit::grpc::{add_standard_services, incoming, report_not_serving};
use baton_service_kit::lifecycle::announce_ready;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tonic::service::RoutesBuilder;

use crate::api::HandoffApi;
use crate::config::ControlConfig;
use crate::dispatch::Dispatcher;
use crate::domain::message::CustomerMessages;
use crate::domain::routing::Router;
use crate::http::{HttpState, router};
use crate::hub::EventHub;
use crate::policy::PolicyEngine;
use crate::registry::ConnectorRegistry;
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
    http_listener: TcpListener,
    api: HandoffApi,
    http_state: HttpState,
    dispatcher: Arc<Dispatcher>,
    registry: ConnectorRegistry,
    store: Arc<dyn HandoffStore>,
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
    registry: ConnectorRegistry,
    router: Router,
    messages: CustomerMessages,
    policy: Arc<PolicyEngine>,
}

/// Checks everything in a configuration that does not need the network or
/// the disk: connectors, routes, messages, policies, timeouts. The error
/// names the key. `baton config check` runs exactly this.
pub fn check(config: &ControlConfig) -> Result<Checked, String> {
    let registry = ConnectorRegistry::new(&config.connectors)?;
    let router = Router::new(
        config.routes.clone(),
        config.default_connectors.clone(),
        &registry.names(),
    )?;
    let messages = CustomerMessages::new(
        &config.messages.translations,
        &config.messages.default_language,
    )?;
    let policy = Arc::new(PolicyEngine::new(&config.policy)?);
    config.store.check()?;
    config.dispatch.check(&registry.names())?;
    if config.limits.max_watch_streams == 0 {
        return Err("limits.max_watch_streams: must be at least 1".into());
    }
    if config.handoff.default_timeout > config.handoff.max_timeout {
        return Err("handoff.default_timeout: must not exceed handoff.max_timeout".into());
    }
    Ok(Checked {
        registry,
        router,
        messages,
        policy,
    })
}

/// Checks the configuration, opens the store and binds both listeners.
/// Every configuration error names its key.
pub async fn bind(mut config: ControlConfig) -> anyhow::Result<BoundControl> {
    let Checked {
        registry,
        router,
        messages,
        policy,
    } = check(&config).map_err(anyhow::Error::msg)?;

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
    // With port 0 the public URL must name the port actually bound.
    config.server.http_listen = http_addr;

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
    };
    Ok(BoundControl {
        grpc_addr,
        http_addr,
        http_state: HttpState {
            store: store.clone(),
            tokens,
        },
        store,
        config,
        grpc_listener,
        http_listener,
        api,
        dispatcher,
        registry,
    })
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
            http_listener,
            api,
            http_state,
            dispatcher,
            registry,
            store,
        } = self;
        let stop_streams = api.shutdown.clone();
        let policy_upkeep = tokio::spawn(api.policy.clone().maintain());
        let max_request = config.limits.max_request_bytes + 16 * 1024;

        let mut routes = RoutesBuilder::default();
        routes.add_service(
            HandoffServiceServer::new(api)
                .max_decoding_message_size(max_request)
                .max_encoding_message_size(max_request),
        );
        let health =
            add_standard_services(&mut routes, &[baton_proto::FILE_DESCRIPTOR_SET]).await?;
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
        announce_ready("baton-control", &[("grpc", grpc_addr), ("http", http_addr)]);

        let stopping = CancellationToken::new();
        let grpc_stopping = stopping.clone();
        let grpc = tonic::transport::Server::builder()
            .trace_fn(baton_service_kit::telemetry::grpc_server_span)
            .concurrency_limit_per_connection(256)
            .add_routes(routes.routes())
            .serve_with_incoming_shutdown(incoming(grpc_listener), async move {
                grpc_stopping.cancelled().await;
            });
        let http_stopping = stopping.clone();
        let http = axum::serve(http_listener, router(http_state))
            .with_graceful_shutdown(async move { http_stopping.cancelled().await });

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
            tokio::try_join!(async { grpc.await.context("gRPC server") }, async {
                http.await.context("HTTP server")
            },)
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
        dispatcher.shutdown().await;
        drop(dispatcher);
        tracing::info!("baton-control stopped");
        Ok(())
    }
}
