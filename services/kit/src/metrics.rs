//! Where Prometheus scrapes `/metrics`, the same for every service that
//! has an HTTP listener (the control service, the queue and webhook
//! connectors).
//!
//! Metrics mix every tenant's and every customer's traffic, so they are
//! not served to whoever reaches a service's public HTTP listener (context
//! pages, the agent desktop, webhook reports). A service either opens a
//! listener of their own (`[metrics] listen`, for a scraper on the pod
//! network), or, without one, answers `/metrics` on its HTTP listener to
//! loopback callers only (`403` to anyone else).

use std::future::Future;
use std::io;
use std::net::SocketAddr;

use axum::Router;
use axum::extract::ConnectInfo;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde::Deserialize;
use tokio::net::TcpListener;

use crate::http::HttpLimits;
use crate::telemetry::prometheus_scrape;
use crate::tls::HttpListener;

/// The `[metrics]` section of a service's configuration.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MetricsConfig {
    /// A plain-HTTP listener of its own for `/metrics` (e.g. `0.0.0.0:9464`
    /// for a scraper on the pod network). Unset: `/metrics` is served on
    /// the service's HTTP listener to loopback callers only.
    pub listen: Option<SocketAddr>,
    /// That listener's limits.
    pub http: HttpLimits,
}

impl MetricsConfig {
    /// Checks the values; the error names the key.
    pub fn check(&self) -> Result<(), String> {
        self.http.check("metrics.http")
    }
}

/// The metrics endpoint of a service, with its own listener bound when
/// `metrics.listen` asks for one.
#[derive(Debug)]
pub struct MetricsEndpoint {
    listener: Option<TcpListener>,
    limits: HttpLimits,
}

impl MetricsEndpoint {
    /// Binds `metrics.listen`, if set (port 0 picks a free port).
    pub async fn bind(config: &MetricsConfig) -> io::Result<Self> {
        let listener = match config.listen {
            Some(listen) => Some(TcpListener::bind(listen).await.map_err(|error| {
                io::Error::new(
                    error.kind(),
                    format!("metrics.listen: cannot listen on {listen}: {error}"),
                )
            })?),
            None => None,
        };
        Ok(Self {
            listener,
            limits: config.http.clone(),
        })
    }

    /// The address of the listener of its own, if any: the readiness
    /// line's `metrics`.
    pub fn local_addr(&self) -> Option<SocketAddr> {
        self.listener
            .as_ref()
            .and_then(|listener| listener.local_addr().ok())
    }

    /// The routes to merge into the service's own HTTP router: `/metrics`
    /// for loopback callers when there is no listener of its own, nothing
    /// otherwise (a public listener then answers `/metrics` with 404).
    pub fn on_service_listener(&self) -> Router {
        match self.listener {
            Some(_) => Router::new(),
            None => Router::new().route("/metrics", get(loopback_only)),
        }
    }

    /// Serves `/metrics` on the listener of its own until `shutdown`;
    /// returns at once without one.
    pub async fn serve(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> io::Result<()> {
        match self.listener {
            Some(listener) => {
                crate::http::serve(
                    HttpListener::Plain(listener),
                    Router::new().route("/metrics", get(prometheus_scrape)),
                    self.limits,
                    shutdown,
                )
                .await
            }
            None => Ok(()),
        }
    }
}

/// `/metrics` for the host itself. The peer comes from the
/// `ConnectInfo` that [`crate::http::serve`] records on every request; a
/// request without one (no peer known) is refused too.
async fn loopback_only(peer: Option<axum::Extension<ConnectInfo<SocketAddr>>>) -> Response {
    match peer {
        Some(axum::Extension(ConnectInfo(peer))) if peer.ip().is_loopback() => {
            prometheus_scrape().await
        }
        _ => (
            StatusCode::FORBIDDEN,
            "metrics are served to loopback callers only here; set metrics.listen",
        )
            .into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tower::ServiceExt;

    async fn scrape(router: Router, peer: Option<SocketAddr>) -> StatusCode {
        let mut request = axum::http::Request::get("/metrics")
            .body(axum::body::Body::empty())
            .expect("request");
        if let Some(peer) = peer {
            request.extensions_mut().insert(ConnectInfo(peer));
        }
        router.oneshot(request).await.expect("response").status()
    }

    #[tokio::test]
    async fn without_a_listener_of_its_own_only_loopback_callers_scrape() {
        let endpoint = MetricsEndpoint::bind(&MetricsConfig::default())
            .await
            .expect("bind");
        assert_eq!(endpoint.local_addr(), None);
        let routes = endpoint.on_service_listener();
        let loopback: SocketAddr = "127.0.0.1:40000".parse().expect("address");
        let loopback_v6: SocketAddr = "[::1]:40000".parse().expect("address");
        let pod_network: SocketAddr = "10.1.2.3:40000".parse().expect("address");
        assert_eq!(scrape(routes.clone(), Some(loopback)).await, StatusCode::OK);
        assert_eq!(
            scrape(routes.clone(), Some(loopback_v6)).await,
            StatusCode::OK
        );
        assert_eq!(
            scrape(routes.clone(), Some(pod_network)).await,
            StatusCode::FORBIDDEN
        );
        assert_eq!(scrape(routes, None).await, StatusCode::FORBIDDEN);
    }

    #[tokio::test]
    async fn with_a_listener_of_its_own_the_service_listener_has_no_metrics() {
        let config = MetricsConfig {
            listen: Some("127.0.0.1:0".parse().expect("address")),
            ..Default::default()
        };
        let endpoint = MetricsEndpoint::bind(&config).await.expect("bind");
        let addr = endpoint.local_addr().expect("bound");
        assert_ne!(addr.port(), 0);
        let loopback: SocketAddr = "127.0.0.1:40000".parse().expect("address");
        assert_eq!(
            scrape(endpoint.on_service_listener(), Some(loopback)).await,
            StatusCode::NOT_FOUND
        );

        let stop = tokio_util::sync::CancellationToken::new();
        let stopping = stop.clone();
        let served = tokio::spawn(endpoint.serve(async move { stopping.cancelled().await }));
        let mut stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        stream
            .write_all(b"GET /metrics HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n")
            .await
            .expect("write");
        let mut response = String::new();
        stream.read_to_string(&mut response).await.expect("read");
        assert!(response.starts_with("HTTP/1.1 200"), "{response}");
        stop.cancel();
        served.await.expect("join").expect("served");
    }

    #[tokio::test]
    async fn a_listener_that_cannot_bind_names_the_key() {
        let taken = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let config = MetricsConfig {
            listen: Some(taken.local_addr().expect("address")),
            ..Default::default()
        };
        let error = MetricsEndpoint::bind(&config).await.expect_err("taken");
        assert!(error.to_string().starts_with("metrics.listen:"), "{error}");
    }
}
