//! The gRPC services every Baton server carries besides its own: health
//! (`grpc.health.v1`) and reflection (v1 and v1alpha, so that grpcurl works).

use tonic::service::RoutesBuilder;
use tonic_health::server::HealthReporter;

/// Adds health and reflection to `routes`, and returns the health reporter
/// with the overall status ("") set to serving.
pub async fn add_standard_services(
    routes: &mut RoutesBuilder,
    descriptor_sets: &[&[u8]],
) -> Result<HealthReporter, tonic_reflection::server::Error> {
    add_standard_services_with_probe(routes, descriptor_sets)
        .await
        .map(|(reporter, _)| reporter)
}

/// Like [`add_standard_services`], and also returns routes holding the same
/// health service alone, for a plain-text probe listener ([`serve_probe`]).
pub async fn add_standard_services_with_probe(
    routes: &mut RoutesBuilder,
    descriptor_sets: &[&[u8]],
) -> Result<(HealthReporter, tonic::service::Routes), tonic_reflection::server::Error> {
    let (reporter, health) = tonic_health::server::health_reporter();
    reporter
        .set_service_status("", tonic_health::ServingStatus::Serving)
        .await;
    let probe = tonic::service::Routes::new(health.clone());
    routes.add_service(health);

    let mut v1 = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET);
    let mut v1alpha = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET);
    for set in descriptor_sets {
        v1 = v1.register_encoded_file_descriptor_set(set);
        v1alpha = v1alpha.register_encoded_file_descriptor_set(set);
    }
    routes.add_service(v1.build_v1()?);
    routes.add_service(v1alpha.build_v1alpha()?);
    Ok((reporter, probe))
}

/// Serves `grpc.health.v1` alone, in plain text, until `shutdown`: for
/// probes that cannot speak TLS (Kubernetes' gRPC probes) when the main
/// listener requires it. It tells whether the service is serving and
/// nothing else, so it needs no certificate.
pub async fn serve_probe(
    probe: tonic::service::Routes,
    listener: tokio::net::TcpListener,
    shutdown: impl std::future::Future<Output = ()>,
) -> Result<(), ServeError> {
    tonic::transport::Server::builder()
        .add_routes(probe)
        .serve_with_incoming_shutdown(incoming(listener), shutdown)
        .await
        .map_err(ServeError::Transport)
}

/// Marks every service not serving, so that load balancers stop sending
/// new calls while in-flight ones drain.
pub async fn report_not_serving(reporter: &HealthReporter, services: &[&str]) {
    for service in services.iter().copied().chain([""]) {
        reporter
            .set_service_status(service, tonic_health::ServingStatus::NotServing)
            .await;
    }
}

/// The connections accepted on `listener`, with Nagle's algorithm off.
///
/// gRPC sends small frames; with Nagle on, a response waits for the peer's
/// delayed ACK (about 40 ms on Linux) before it leaves. Serving from a
/// listener (rather than an address) bypasses tonic's own `tcp_nodelay`.
pub fn incoming(
    listener: tokio::net::TcpListener,
) -> impl tokio_stream::Stream<Item = std::io::Result<tokio::net::TcpStream>> {
    use tokio_stream::StreamExt;
    tokio_stream::wrappers::TcpListenerStream::new(listener).map(|accepted| {
        let stream = accepted?;
        stream.set_nodelay(true)?;
        Ok(stream)
    })
}

/// Serves `router` on `listener` until `shutdown`: with TLS when `tls` is
/// set (loaded with [`crate::tls::ServerTls::load`] and `Alpn::Grpc`, at
/// bind time so that a bad file fails the start and names its key; mTLS
/// when it names a client CA), plain text otherwise.
pub async fn serve<L, ResBody>(
    router: tonic::transport::server::Router<L>,
    listener: tokio::net::TcpListener,
    tls: Option<std::sync::Arc<crate::tls::ServerTls>>,
    shutdown: impl std::future::Future<Output = ()>,
) -> Result<(), ServeError>
where
    L: tower::Layer<tonic::service::Routes>,
    L::Service: tower::Service<http::Request<tonic::body::Body>, Response = http::Response<ResBody>>
        + Clone
        + Send
        + 'static,
    <L::Service as tower::Service<http::Request<tonic::body::Body>>>::Future: Send,
    <L::Service as tower::Service<http::Request<tonic::body::Body>>>::Error:
        Into<Box<dyn std::error::Error + Send + Sync>> + Send,
    ResBody: http_body::Body<Data = bytes::Bytes> + Send + 'static,
    ResBody::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    match tls {
        None => router
            .serve_with_incoming_shutdown(incoming(listener), shutdown)
            .await
            .map_err(ServeError::Transport),
        Some(tls) => {
            let incoming = crate::tls::incoming(listener, tls).map_err(ServeError::Listener)?;
            router
                .serve_with_incoming_shutdown(incoming, shutdown)
                .await
                .map_err(ServeError::Transport)
        }
    }
}

/// Why a gRPC server stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error("listener: {0}")]
    Listener(std::io::Error),
    #[error("gRPC server: {0}")]
    Transport(tonic::transport::Error),
}
