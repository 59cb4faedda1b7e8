//! What a connector serves beside its gRPC listener: an HTTP listener
//! (the queue's desktop, the webhook's delivery log, Twilio's callbacks)
//! and one shutdown that stops every server of the process together.

use std::future::Future;
use std::net::SocketAddr;

use baton_service_kit::http::HttpLimits;
use baton_service_kit::tls::{HttpListener, TlsConfig};
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::{BoundConnector, Connector};

/// A connector's HTTP listener, bound.
#[derive(Debug)]
pub struct HttpSide {
    /// Plain or TLS, as `[tls]` says.
    pub listener: HttpListener,
    /// The bound address (port 0 resolved).
    pub addr: SocketAddr,
}

impl HttpSide {
    /// Binds `listen` (`key` names it in the error, e.g.
    /// `server.http_listen`) with the connector's certificate when `tls` is
    /// set. Browsers and platforms reach this listener; they prove who they
    /// are by a signature or a session, never by a client certificate, so
    /// none is asked for even where the gRPC listener asks for one.
    pub async fn bind(
        key: &str,
        listen: SocketAddr,
        tls: Option<&TlsConfig>,
    ) -> anyhow::Result<Self> {
        let listener = TcpListener::bind(listen)
            .await
            .map_err(|e| anyhow::anyhow!("{key}: cannot listen on {listen}: {e}"))?;
        let addr = listener.local_addr()?;
        let tls = tls.map(TlsConfig::without_client_ca);
        let listener = HttpListener::new(listener, tls.as_ref())?;
        Ok(Self { listener, addr })
    }

    /// The URL others reach this listener at: `public_url` when configured
    /// (behind a proxy or a tunnel), else the scheme and the bound address.
    pub fn url(&self, public_url: Option<&str>) -> String {
        match public_url {
            Some(url) => url.to_owned(),
            None => format!("{}://{}", self.listener.scheme(), self.addr),
        }
    }

    /// Serves `router` here, within `limits`, and `connector`'s gRPC
    /// beside it, until `shutdown`; fails when either server fails.
    pub async fn serve_beside<C: Connector>(
        self,
        router: axum::Router,
        limits: HttpLimits,
        connector: BoundConnector<C>,
        shutdown: &SharedShutdown,
    ) -> anyhow::Result<()> {
        let http =
            baton_service_kit::http::serve(self.listener, router, limits, shutdown.signalled());
        let grpc = connector.serve(shutdown.signalled());
        let (http, grpc) = tokio::join!(http, grpc);
        http?;
        grpc
    }
}

/// One shutdown for the several servers of a connector process: each
/// server waits on [`signalled`](Self::signalled), and all of them stop
/// when the process's shutdown future completes.
#[derive(Debug, Clone)]
pub struct SharedShutdown(watch::Receiver<bool>);

impl SharedShutdown {
    /// Starts watching `shutdown` (on a task of its own, so that it is
    /// polled even while no server waits yet). Must be called within a
    /// Tokio runtime.
    pub fn new(shutdown: impl Future<Output = ()> + Send + 'static) -> Self {
        let (stop, stopped) = watch::channel(false);
        tokio::spawn(async move {
            shutdown.await;
            stop.send_replace(true);
        });
        Self(stopped)
    }

    /// Completes once the shutdown has come (at once if it already has).
    pub fn signalled(&self) -> impl Future<Output = ()> + Send + 'static {
        let mut stopped = self.0.clone();
        async move {
            // An error means the watching task is gone, which it only is
            // once it has signalled.
            let _ = stopped.wait_for(|stopped| *stopped).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn every_server_hears_the_one_shutdown() {
        let (trigger, triggered) = tokio::sync::oneshot::channel::<()>();
        let shutdown = SharedShutdown::new(async move {
            let _ = triggered.await;
        });
        let first = tokio::spawn(shutdown.signalled());
        let second = tokio::spawn(shutdown.signalled());
        tokio::task::yield_now().await;
        assert!(!first.is_finished() && !second.is_finished());
        trigger.send(()).expect("send");
        first.await.expect("first stops");
        second.await.expect("second stops");
        // A server that starts waiting after the shutdown stops at once.
        shutdown.signalled().await;
    }

    #[tokio::test]
    async fn the_url_is_the_public_one_when_configured() {
        let side = HttpSide::bind(
            "server.http_listen",
            "127.0.0.1:0".parse().expect("addr"),
            None,
        )
        .await
        .expect("binds");
        assert_eq!(side.url(None), format!("http://{}", side.addr));
        assert_eq!(
            side.url(Some("https://baton.example")),
            "https://baton.example"
        );
    }

    #[tokio::test]
    async fn a_taken_address_is_refused_naming_its_key() {
        let taken = TcpListener::bind("127.0.0.1:0").await.expect("binds");
        let addr = taken.local_addr().expect("addr");
        let error = HttpSide::bind("callbacks.listen", addr, None)
            .await
            .expect_err("refused");
        assert!(
            error
                .to_string()
                .starts_with("callbacks.listen: cannot listen on"),
            "{error}"
        );
    }
}
