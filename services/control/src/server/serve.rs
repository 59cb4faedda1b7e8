//! Serving a bound control service: the gRPC stack with its standard
//! services, the HTTP, probe and metrics servers, the background upkeep,
//! and the shutdown sequence (not-serving, end watch streams, drain, stop).

use std::future::Future;

use anyhow::Context;
use baton_proto::handoff::v1::handoff_service_server::HandoffServiceServer;
use baton_service_kit::grpc::{
    add_standard_services_with_probe, report_not_serving, serve as serve_grpc, serve_probe,
};
use baton_service_kit::lifecycle::announce_ready;
use baton_service_kit::message_size::MessageSizeLayer;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tonic::service::{Routes, RoutesBuilder};
use tonic_health::server::HealthReporter;

use super::BoundControl;
use crate::api::HandoffApi;
use crate::domain::validate::Limits;
use crate::http::router;
use crate::store::report_store_health;

const SERVICE_NAME: &str = "baton.handoff.v1.HandoffService";

impl BoundControl {
    /// Serves until `shutdown` completes, then reports not-serving, ends
    /// watch streams and drains in-flight calls. Handoffs keep their state
    /// in the store and resume at the next start.
    pub async fn serve(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        let BoundControl {
            config,
            listeners,
            api,
            http_state,
            dispatcher,
            registry,
            store,
            auth,
            rate_limit,
            ..
        } = self;
        let stop_streams = api.shutdown.clone();
        let upkeep = [
            tokio::spawn(api.policy.clone().maintain()),
            tokio::spawn(crate::retention::purge_periodically(
                store.clone(),
                config.retention.clone(),
            )),
        ];
        let (routes, health, probe_routes) = grpc_routes(api, &config.limits).await?;
        // Until shutdown: afterwards only not-serving may be reported.
        let health_reports = [
            tokio::spawn(report_store_health(
                store,
                health.clone(),
                vec![SERVICE_NAME],
            )),
            tokio::spawn(crate::circuit::report_circuit_health(
                dispatcher.breakers().clone(),
                health.clone(),
            )),
        ];
        let resumed = dispatcher.resume_in_flight().await?;
        registry.log_capabilities().await;
        let (grpc_addr, http_addr) = (listeners.grpc_addr, listeners.http_addr);
        tracing::info!(%grpc_addr, %http_addr, resumed, replica = dispatcher.replica(), "baton-control serving");
        announce_ready("baton-control", &listeners.endpoints()?);

        let stopping = CancellationToken::new();
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
            listeners.grpc,
            listeners.grpc_tls,
            config.server.grpc.max_connections,
            stopping.clone().cancelled_owned(),
        );
        let probe_stopped = stopping.clone().cancelled_owned();
        let probe = async move {
            match listeners.probe {
                Some(listener) => serve_probe(probe_routes, listener, probe_stopped).await,
                None => Ok(()),
            }
        };
        let http = baton_service_kit::http::serve(
            listeners.http,
            router(http_state).merge(listeners.metrics.on_service_listener()),
            config.server.http.clone(),
            stopping.clone().cancelled_owned(),
        );
        let metrics = listeners.metrics.serve(stopping.clone().cancelled_owned());

        let drain_started = stopping.clone();
        tokio::spawn(begin_shutdown(
            shutdown,
            health_reports,
            health,
            stop_streams,
            stopping,
        ));
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
            tokio::time::sleep(config.server.drain_timeout).await;
        };
        tokio::select! {
            result = servers => { result?; }
            () = drain_deadline => tracing::warn!("drain timeout reached; exiting with calls in flight"),
        }
        for task in upkeep {
            task.abort();
        }
        dispatcher.shutdown().await;
        drop(dispatcher);
        tracing::info!("baton-control stopped");
        Ok(())
    }
}

/// The handoff service behind its message-size limits, with health,
/// reflection and the plain-text probe's routes.
async fn grpc_routes(
    api: HandoffApi,
    limits: &Limits,
) -> anyhow::Result<(RoutesBuilder, HealthReporter, Routes)> {
    let mut routes = RoutesBuilder::default();
    // One value per direction, from [limits]: ListHandoffs pages by the
    // same max_response_bytes, and a request over max_request_bytes is
    // refused naming the key.
    routes.add_service(
        MessageSizeLayer::new("limits.max_request_bytes", limits.max_request_bytes).around(
            HandoffServiceServer::new(api)
                .max_decoding_message_size(limits.max_request_bytes)
                .max_encoding_message_size(limits.max_response_bytes),
        ),
    );
    let (health, probe_routes) =
        add_standard_services_with_probe(&mut routes, &[baton_proto::FILE_DESCRIPTOR_SET]).await?;
    health
        .set_service_status(SERVICE_NAME, tonic_health::ServingStatus::Serving)
        .await;
    Ok((routes, health, probe_routes))
}

/// Once `shutdown` completes: stop reporting health, report not-serving so
/// that load balancers send no new calls, end watch streams (they would
/// hold the drain open), then stop every server.
async fn begin_shutdown(
    shutdown: impl Future<Output = ()>,
    health_reports: [JoinHandle<()>; 2],
    health: HealthReporter,
    stop_streams: CancellationToken,
    stopping: CancellationToken,
) {
    shutdown.await;
    for task in health_reports {
        task.abort();
    }
    report_not_serving(&health, &[SERVICE_NAME]).await;
    stop_streams.cancel();
    stopping.cancel();
}
