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
/// when it names a client CA), plain text otherwise. At most
/// `max_connections` connections at once: when full, it stops accepting
/// until one closes (peers wait in the kernel's backlog).
pub async fn serve<L, ResBody>(
    router: tonic::transport::server::Router<L>,
    listener: tokio::net::TcpListener,
    tls: Option<std::sync::Arc<crate::tls::ServerTls>>,
    max_connections: usize,
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
            .serve_with_incoming_shutdown(limited(incoming(listener), max_connections), shutdown)
            .await
            .map_err(ServeError::Transport),
        Some(tls) => {
            let incoming = crate::tls::incoming(listener, tls).map_err(ServeError::Listener)?;
            router
                .serve_with_incoming_shutdown(limited(incoming, max_connections), shutdown)
                .await
                .map_err(ServeError::Transport)
        }
    }
}

/// Limits of a gRPC listener besides the per-connection stream limit:
/// how many connections, and how dead peers are found.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct GrpcLimits {
    /// Most connections open at once; beyond it the listener stops
    /// accepting until one closes. Default 1024.
    pub max_connections: usize,
    /// How often an HTTP/2 PING goes to a connection's peer. Default 30 s.
    #[serde(with = "humantime_serde")]
    pub keepalive_interval: std::time::Duration,
    /// A peer that does not answer a PING within this is disconnected,
    /// with its streams. Default 10 s.
    #[serde(with = "humantime_serde")]
    pub keepalive_timeout: std::time::Duration,
}

impl Default for GrpcLimits {
    fn default() -> Self {
        Self {
            max_connections: 1024,
            keepalive_interval: std::time::Duration::from_secs(30),
            keepalive_timeout: std::time::Duration::from_secs(10),
        }
    }
}

impl GrpcLimits {
    /// Checks the values; the error names the key under `section`.
    pub fn check(&self, section: &str) -> Result<(), String> {
        if self.max_connections == 0 || self.max_connections > tokio::sync::Semaphore::MAX_PERMITS {
            return Err(format!("{section}.max_connections: must be at least 1"));
        }
        if self.keepalive_interval < std::time::Duration::from_secs(1) {
            return Err(format!("{section}.keepalive_interval: must be at least 1s"));
        }
        if self.keepalive_timeout < std::time::Duration::from_millis(100) {
            return Err(format!(
                "{section}.keepalive_timeout: must be at least 100ms"
            ));
        }
        Ok(())
    }

    /// `builder` with these keepalive settings.
    pub fn apply<L>(&self, builder: tonic::transport::Server<L>) -> tonic::transport::Server<L> {
        builder
            .http2_keepalive_interval(Some(self.keepalive_interval))
            .http2_keepalive_timeout(Some(self.keepalive_timeout))
    }
}

/// `incoming`, yielding a connection only while fewer than
/// `max_connections` accepted ones are open.
fn limited<S, IO, E>(incoming: S, max_connections: usize) -> LimitedIncoming<S>
where
    S: tokio_stream::Stream<Item = Result<IO, E>> + Unpin,
{
    LimitedIncoming {
        inner: incoming,
        slots: tokio_util::sync::PollSemaphore::new(std::sync::Arc::new(
            tokio::sync::Semaphore::new(
                max_connections.clamp(1, tokio::sync::Semaphore::MAX_PERMITS),
            ),
        )),
        permit: None,
    }
}

struct LimitedIncoming<S> {
    inner: S,
    slots: tokio_util::sync::PollSemaphore,
    permit: Option<tokio::sync::OwnedSemaphorePermit>,
}

impl<S, IO, E> tokio_stream::Stream for LimitedIncoming<S>
where
    S: tokio_stream::Stream<Item = Result<IO, E>> + Unpin,
{
    type Item = Result<Limited<IO>, E>;

    fn poll_next(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Self::Item>> {
        use std::task::Poll;
        let this = self.get_mut();
        let permit = match this.permit.take() {
            Some(permit) => permit,
            None => match this.slots.poll_acquire(cx) {
                Poll::Ready(Some(permit)) => permit,
                Poll::Ready(None) => return Poll::Ready(None),
                Poll::Pending => return Poll::Pending,
            },
        };
        match std::pin::Pin::new(&mut this.inner).poll_next(cx) {
            Poll::Ready(Some(Ok(io))) => Poll::Ready(Some(Ok(Limited {
                io,
                _permit: permit,
            }))),
            Poll::Ready(Some(Err(error))) => {
                this.permit = Some(permit);
                Poll::Ready(Some(Err(error)))
            }
            Poll::Ready(None) => Poll::Ready(None),
            Poll::Pending => {
                this.permit = Some(permit);
                Poll::Pending
            }
        }
    }
}

/// An accepted connection holding its slot until it is dropped.
pub struct Limited<IO> {
    io: IO,
    _permit: tokio::sync::OwnedSemaphorePermit,
}

impl<IO: tonic::transport::server::Connected> tonic::transport::server::Connected for Limited<IO> {
    type ConnectInfo = IO::ConnectInfo;

    fn connect_info(&self) -> Self::ConnectInfo {
        self.io.connect_info()
    }
}

impl<IO: tokio::io::AsyncRead + Unpin> tokio::io::AsyncRead for Limited<IO> {
    fn poll_read(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.io).poll_read(cx, buf)
    }
}

impl<IO: tokio::io::AsyncWrite + Unpin> tokio::io::AsyncWrite for Limited<IO> {
    fn poll_write(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        std::pin::Pin::new(&mut self.io).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> std::task::Poll<std::io::Result<usize>> {
        std::pin::Pin::new(&mut self.io).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_shutdown(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.io).poll_shutdown(cx)
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

/// The address a gRPC call came from, when the server was given
/// connections it can tell (plain or TLS TCP, as [`serve`] accepts them).
pub fn peer_ip(extensions: &http::Extensions) -> Option<std::net::IpAddr> {
    use tonic::transport::server::{TcpConnectInfo, TlsConnectInfo};
    extensions
        .get::<TcpConnectInfo>()
        .or_else(|| {
            extensions
                .get::<TlsConnectInfo<TcpConnectInfo>>()
                .map(TlsConnectInfo::get_ref)
        })
        .and_then(TcpConnectInfo::remote_addr)
        .map(|addr| addr.ip())
}
