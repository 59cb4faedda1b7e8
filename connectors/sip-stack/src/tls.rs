//! SIP over TLS (RFC 3261 26.2, RFC 5630), with the same certificate
//! checks as the gRPC side (`baton_service_kit::tls`: rustls, webpki, the
//! CAs of `sip.tls.ca_file`, the host dialled or `server_name` in the
//! peer's certificate).
//!
//! Outgoing: one TLS connection per peer address and verified name, opened
//! on the first request and kept; what arrives on it (responses, and the
//! peer's in-dialog NOTIFY and BYE, RFC 5923 style connection reuse) is
//! handled like any other SIP message and answered on it. Nothing asked to
//! go over TLS is ever sent another way: a failed handshake is the
//! request's error.
//!
//! Incoming: an optional listener (`sip.tls.bind`) for peers that open
//! their own connection to the `sips:` Contact, requiring a client
//! certificate from `ca_file` by default.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use baton_service_kit::tls::{Alpn, ClientTlsFiles, ServerTls, TlsConfig, TlsIncoming};
use rustls::pki_types::ServerName;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio_rustls::TlsConnector;
use tokio_stream::StreamExt;

use crate::config::SipTlsConfig;
use crate::stack::{SipError, SipStack};

/// The most peer names remembered (address → name dialled); beyond it the
/// table starts again, and a peer not in it is verified by its address.
const MAX_NAMES: usize = 10_000;

type Writer = mpsc::UnboundedSender<Vec<u8>>;

/// The TLS side of the SIP endpoint.
pub struct SipTls {
    connector: TlsConnector,
    server_name: Option<String>,
    handshake_timeout: Duration,
    /// Taken by `run`, which serves the accepted connections.
    incoming: Mutex<Option<TlsIncoming>>,
    local_addr: Option<SocketAddr>,
    /// `host:port` written in Via and in the `sips:` Contact.
    sent_by: String,
    /// Open outgoing connections, by address and the name verified.
    connections: Mutex<HashMap<(SocketAddr, String), Writer>>,
    /// The host each address was resolved from, to verify its certificate.
    names: Mutex<HashMap<SocketAddr, String>>,
}

impl std::fmt::Debug for SipTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SipTls")
            .field("local_addr", &self.local_addr)
            .field("sent_by", &self.sent_by)
            .finish_non_exhaustive()
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

impl SipTls {
    /// Loads the certificates (failing on a bad file, naming its key) and
    /// binds the listener if `bind` is set. `advertised` is the endpoint's
    /// `host:port` in Via and Contact, whose host TLS shares.
    pub async fn bind(config: &SipTlsConfig, advertised: &str) -> anyhow::Result<Arc<Self>> {
        let client = ClientTlsFiles {
            ca_file: config.ca_file.clone(),
            cert_file: config.cert_file.clone(),
            key_file: config.key_file.clone(),
            server_name: None,
        }
        .rustls_config()
        .map_err(|e| anyhow::anyhow!("sip.{e}"))?;
        let (incoming, local_addr) = match (config.bind, &config.cert_file, &config.key_file) {
            (Some(bind), Some(cert), Some(key)) => {
                let mut server = TlsConfig::new(cert, key);
                server.handshake_timeout = config.handshake_timeout;
                if config.require_client_cert {
                    server = server.with_client_ca(&config.ca_file);
                }
                let server =
                    ServerTls::load(&server, Alpn::None).map_err(|e| anyhow::anyhow!("sip.{e}"))?;
                let listener = TcpListener::bind(bind)
                    .await
                    .map_err(|e| anyhow::anyhow!("cannot bind SIP on tls {bind}: {e}"))?;
                let local = listener.local_addr()?;
                (
                    Some(baton_service_kit::tls::incoming(listener, server)?),
                    Some(local),
                )
            }
            (Some(_), _, _) => anyhow::bail!("sip.tls.bind needs sip.tls.cert_file and key_file"),
            _ => (None, None),
        };
        let sent_by = match (&config.public_address, local_addr) {
            (Some(address), _) => address.clone(),
            (None, Some(local)) => format!("{}:{}", without_port(advertised), local.port()),
            // No listener: the peer can only answer on our connection.
            (None, None) => advertised.to_owned(),
        };
        Ok(Arc::new(Self {
            connector: TlsConnector::from(Arc::new(client)),
            server_name: config.server_name.clone(),
            handshake_timeout: config.handshake_timeout,
            incoming: Mutex::new(incoming),
            local_addr,
            sent_by,
            connections: Mutex::new(HashMap::new()),
            names: Mutex::new(HashMap::new()),
        }))
    }

    /// The listener's address, if there is one.
    pub fn local_addr(&self) -> Option<SocketAddr> {
        self.local_addr
    }

    /// `host:port` for Via and Contact over TLS.
    pub fn sent_by(&self) -> &str {
        &self.sent_by
    }

    /// Notes that `addr` was resolved from `host`, whose name its
    /// certificate must then carry.
    pub fn remember_name(&self, addr: SocketAddr, host: &str) {
        let mut names = lock(&self.names);
        if names.len() >= MAX_NAMES && !names.contains_key(&addr) {
            names.clear();
        }
        names.insert(addr, host.to_owned());
    }

    /// The name verified in the certificate of `addr`: `server_name`, else
    /// the host it was resolved from, else its IP address.
    fn name_for(&self, addr: SocketAddr) -> String {
        if let Some(name) = &self.server_name {
            return name.clone();
        }
        lock(&self.names)
            .get(&addr)
            .cloned()
            .unwrap_or_else(|| addr.ip().to_string())
    }

    /// Serves the connections accepted on the listener; run as a task.
    pub async fn accept(self: Arc<Self>, stack: Arc<SipStack>) {
        let Some(mut incoming) = lock(&self.incoming).take() else {
            return;
        };
        while let Some(accepted) = incoming.next().await {
            let Ok(stream) = accepted else { continue };
            let Ok(peer) = stream.get_ref().0.peer_addr() else {
                continue;
            };
            // Replies go back on the connection; nothing else is sent on it.
            stack.clone().serve_stream(stream, peer, |_| {});
        }
    }

    /// Sends `bytes` to `addr` on the open connection, or on a new one
    /// whose handshake verified the peer's certificate.
    pub async fn send(
        self: &Arc<Self>,
        stack: &Arc<SipStack>,
        bytes: &[u8],
        addr: SocketAddr,
    ) -> Result<(), SipError> {
        let name = self.name_for(addr);
        let key = (addr, name.clone());
        let open = lock(&self.connections).get(&key).cloned();
        let writer = match open {
            Some(writer) if !writer.is_closed() => writer,
            _ => {
                let stream = self.connect(addr, &name, stack.t1() * 64).await?;
                let tls = self.clone();
                let closed_key = key.clone();
                let writer = stack.clone().serve_stream(stream, addr, move |closed| {
                    let mut connections = lock(&tls.connections);
                    if connections
                        .get(&closed_key)
                        .is_some_and(|w| w.same_channel(closed))
                    {
                        connections.remove(&closed_key);
                    }
                });
                lock(&self.connections).insert(key, writer.clone());
                writer
            }
        };
        writer.send(bytes.to_vec()).map_err(|_| {
            SipError::Transport(std::io::Error::new(
                std::io::ErrorKind::BrokenPipe,
                "TLS connection closed",
            ))
        })
    }

    async fn connect(
        &self,
        addr: SocketAddr,
        name: &str,
        connect_timeout: Duration,
    ) -> Result<tokio_rustls::client::TlsStream<TcpStream>, SipError> {
        let server_name = ServerName::try_from(name.to_owned())
            .map_err(|_| SipError::Tls(format!("{name:?} is not a name TLS can verify")))?;
        let tcp = tokio::time::timeout(connect_timeout, TcpStream::connect(addr))
            .await
            .map_err(|_| SipError::Timeout(connect_timeout))??;
        if let Err(error) = tcp.set_nodelay(true) {
            tracing::debug!(%addr, %error, "could not turn Nagle off");
        }
        match tokio::time::timeout(
            self.handshake_timeout,
            self.connector.connect(server_name, tcp),
        )
        .await
        {
            Ok(Ok(stream)) => Ok(stream),
            Ok(Err(error)) => Err(SipError::Tls(format!(
                "TLS handshake with {addr} ({name}) failed: {error}"
            ))),
            Err(_) => Err(SipError::Tls(format!(
                "TLS handshake with {addr} ({name}) took more than {:?}",
                self.handshake_timeout
            ))),
        }
    }
}

/// `host:port`, `host`, `[v6]:port` or `[v6]` without the port.
fn without_port(host_port: &str) -> &str {
    match host_port.rsplit_once(':') {
        Some((host, port))
            if !port.is_empty()
                && port.bytes().all(|b| b.is_ascii_digit())
                && (!host.contains(':') || host.ends_with(']')) =>
        {
            host
        }
        _ => host_port,
    }
}

/// The host of `host:port` (any form [`without_port`] takes), without
/// brackets: the name for certificate checks.
pub fn host_of(host_port: &str) -> &str {
    without_port(host_port)
        .trim_start_matches('[')
        .trim_end_matches(']')
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Transport;
    use crate::stack::Peer;

    async fn stack() -> Arc<SipStack> {
        SipStack::bind(
            "127.0.0.1:0".parse().expect("addr"),
            Transport::Udp,
            None,
            "baton".into(),
            Duration::from_millis(500),
            None,
        )
        .await
        .expect("binds")
    }

    fn tls_config(ca: &baton_service_kit::tls::dev_ca::DevCa) -> SipTlsConfig {
        SipTlsConfig {
            ca_file: ca.ca_cert.clone(),
            cert_file: Some(ca.server_cert.clone()),
            key_file: Some(ca.server_key.clone()),
            server_name: None,
            bind: Some("127.0.0.1:0".parse().expect("addr")),
            require_client_cert: true,
            public_address: None,
            handshake_timeout: Duration::from_secs(1),
        }
    }

    #[tokio::test]
    async fn without_tls_configured_a_tls_uri_is_refused_not_sent_another_way() {
        let stack = stack().await;
        for uri in ["sips:desk@127.0.0.1", "sip:desk@127.0.0.1;transport=tls"] {
            assert!(
                matches!(stack.resolve(uri).await, Err(SipError::Tls(_))),
                "{uri}"
            );
        }
        let peer = Peer {
            addr: "127.0.0.1:9".parse().expect("addr"),
            transport: Transport::Tls,
        };
        assert!(matches!(
            stack.send(b"OPTIONS", peer).await,
            Err(SipError::Tls(_))
        ));
    }

    #[tokio::test]
    async fn sips_and_transport_tls_choose_tls_on_port_5061_with_a_sips_contact() {
        let dir = tempfile::tempdir().expect("tempdir");
        let ca = baton_service_kit::tls::dev_ca::generate(dir.path()).expect("CA");
        let stack = stack().await;
        let tls = SipTls::bind(&tls_config(&ca), stack.advertised())
            .await
            .expect("TLS loads");
        let listener = tls.local_addr().expect("a listener");
        stack.enable_tls(tls);
        let sips = stack
            .resolve("sips:desk@127.0.0.1")
            .await
            .expect("resolves");
        assert_eq!((sips.transport, sips.addr.port()), (Transport::Tls, 5061));
        // sips: is TLS whatever its transport parameter says.
        let forced = stack
            .resolve("sips:desk@127.0.0.1:5070;transport=udp")
            .await
            .expect("resolves");
        assert_eq!(
            (forced.transport, forced.addr.port()),
            (Transport::Tls, 5070)
        );
        let param = stack
            .resolve("sip:desk@127.0.0.1;transport=TLS")
            .await
            .expect("resolves");
        assert_eq!(param.transport, Transport::Tls);
        assert_eq!(
            stack.contact(Transport::Tls),
            format!("<sips:baton@127.0.0.1:{}>", listener.port())
        );
        assert!(
            stack
                .via("z9hG4bKx", Transport::Tls)
                .starts_with(&format!("SIP/2.0/TLS 127.0.0.1:{};", listener.port()))
        );
    }

    #[tokio::test]
    async fn a_peer_whose_certificate_names_another_host_is_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let ca = baton_service_kit::tls::dev_ca::generate(dir.path()).expect("CA");
        // The peer: a listener with the dev CA's server certificate
        // (localhost, 127.0.0.1, ::1) and no client certificate asked.
        let server = stack().await;
        let mut peer_config = tls_config(&ca);
        peer_config.require_client_cert = false;
        let peer_tls = SipTls::bind(&peer_config, server.advertised())
            .await
            .expect("TLS loads");
        let peer_addr = peer_tls.local_addr().expect("listener");
        server.enable_tls(peer_tls);
        tokio::spawn(server.clone().run());
        let mut client_config = tls_config(&ca);
        client_config.bind = None;
        client_config.server_name = Some("sbc.example.net".into());
        let client = stack().await;
        let client_tls = SipTls::bind(&client_config, client.advertised())
            .await
            .expect("TLS loads");
        client.enable_tls(client_tls.clone());
        let error = client_tls
            .send(&client, b"OPTIONS", peer_addr)
            .await
            .expect_err("the name does not match");
        assert!(error.to_string().contains("certificate"), "{error}");
        // The right name gets through.
        client_config.server_name = None;
        let right = SipTls::bind(&client_config, client.advertised())
            .await
            .expect("TLS loads");
        right
            .send(&client, b"OPTIONS", peer_addr)
            .await
            .expect("127.0.0.1 is in the certificate");
    }

    #[test]
    fn the_host_is_taken_from_every_form_of_address() {
        assert_eq!(host_of("sip.example.net:5061"), "sip.example.net");
        assert_eq!(host_of("sip.example.net"), "sip.example.net");
        assert_eq!(host_of("127.0.0.1:5062"), "127.0.0.1");
        assert_eq!(host_of("[::1]:5061"), "::1");
        assert_eq!(host_of("[::1]"), "::1");
        assert_eq!(host_of("::1"), "::1");
        assert_eq!(without_port("[::1]:5062"), "[::1]");
    }
}
