//! The control service's sockets: gRPC, HTTP, the optional health probe and
//! metrics listeners, with TLS where configured. All are bound before
//! anything serves, so that a port in use fails the start naming its key.

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context;
use baton_service_kit::metrics::MetricsEndpoint;
use baton_service_kit::tls::{Alpn, HttpListener, ServerTls, TlsConfig};
use tokio::net::TcpListener;

use crate::config::ControlConfig;

/// The certificates of both listeners, loaded before the store is opened
/// so that a bad certificate is reported before anything touches the disk.
pub(super) struct ListenerTls {
    grpc: Option<Arc<ServerTls>>,
    http: Option<TlsConfig>,
}

impl ListenerTls {
    pub(super) fn load(config: &ControlConfig) -> anyhow::Result<Self> {
        Ok(Self {
            grpc: ServerTls::load_optional(config.tls.as_ref(), Alpn::Grpc)?,
            // Browsers reach the HTTP listener: the same certificate, no
            // client certificate asked for.
            http: config.tls.as_ref().map(TlsConfig::without_client_ca),
        })
    }
}

/// Every listener of the service, bound.
pub(super) struct Listeners {
    pub grpc_addr: SocketAddr,
    pub http_addr: SocketAddr,
    pub grpc: TcpListener,
    pub grpc_tls: Option<Arc<ServerTls>>,
    pub http: HttpListener,
    pub metrics: MetricsEndpoint,
    pub probe: Option<TcpListener>,
}

impl Listeners {
    /// Binds every listener `config` names. With port 0 the HTTP address
    /// and the public URL written back into `config` name the port actually
    /// bound, since context links handed to connectors carry that URL.
    pub(super) async fn bind(config: &mut ControlConfig, tls: ListenerTls) -> anyhow::Result<Self> {
        let grpc = listen(config.server.grpc_listen, "server.grpc_listen").await?;
        let http = listen(config.server.http_listen, "server.http_listen").await?;
        let grpc_addr = grpc.local_addr()?;
        let http_addr = http.local_addr()?;
        let http = HttpListener::new(http, tls.http.as_ref())?;
        let metrics = MetricsEndpoint::bind(&config.metrics).await?;
        let probe = match config.server.health_listen {
            Some(addr) => Some(listen(addr, "server.health_listen").await?),
            None => None,
        };
        config.server.http_listen = http_addr;
        if config.server.public_url.is_none() {
            config.server.public_url = Some(format!("{}://{http_addr}", http.scheme()));
        }
        Ok(Self {
            grpc_addr,
            http_addr,
            grpc,
            grpc_tls: tls.grpc,
            http,
            metrics,
            probe,
        })
    }

    /// What `announce_ready` prints: every endpoint a supervisor may wait for.
    pub(super) fn endpoints(&self) -> anyhow::Result<Vec<(&'static str, SocketAddr)>> {
        let mut endpoints = vec![("grpc", self.grpc_addr), ("http", self.http_addr)];
        if let Some(probe) = &self.probe {
            endpoints.push(("health", probe.local_addr()?));
        }
        if let Some(addr) = self.metrics.local_addr() {
            endpoints.push(("metrics", addr));
        }
        Ok(endpoints)
    }
}

async fn listen(addr: SocketAddr, key: &str) -> anyhow::Result<TcpListener> {
    TcpListener::bind(addr)
        .await
        .with_context(|| format!("{key}: cannot listen on {addr}"))
}
