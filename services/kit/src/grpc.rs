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
    let (reporter, health) = tonic_health::server::health_reporter();
    reporter
        .set_service_status("", tonic_health::ServingStatus::Serving)
        .await;
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
    Ok(reporter)
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
