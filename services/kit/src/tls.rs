//! TLS for every listener, with rustls: certificate and key from PEM files,
//! optionally a client-CA file that makes client certificates required and
//! verified (mTLS), and the files read again when they change, so that
//! certificates rotate without a restart.
//!
//! [`incoming`] turns a `TcpListener` into a stream of TLS connections for
//! `tonic::transport::Server::serve_with_incoming` (tonic's `Connected`
//! impl for rustls streams exposes the peer's certificates through
//! `Request::peer_certs`), and the same value is an `axum::serve::Listener`.
//! Handshakes run concurrently, each bounded in time, so a slow or silent
//! peer holds up nobody else.
//!
//! The server configuration is checked against the files' modification
//! time, length and inode at each accepted connection (three `stat`s), so
//! the first connection after a rotation gets the new certificate. Files
//! that fail to load (half written, or a key that does not match) leave
//! the previous configuration in force, and are logged.
//!
//! [`ClientTlsFiles`] is the client side: the CA to trust and, for mTLS,
//! the client's own certificate and key, as a tonic `ClientTlsConfig` or a
//! rustls `ClientConfig`.

pub mod dev_ca;

use std::io;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, SystemTime};

use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::WebPkiClientVerifier;
use serde::{Deserialize, Serialize};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, mpsc};
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;

/// Largest PEM file read.
const MAX_PEM_BYTES: u64 = 1024 * 1024;
/// Most TLS connections in handshake, or handshaken and waiting for the
/// server to take them, at once on one listener; connections beyond it are
/// closed at once.
const MAX_CONCURRENT_HANDSHAKES: usize = 1024;

/// A listener's TLS settings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsConfig {
    /// PEM file with the certificate chain, leaf first.
    pub cert_file: PathBuf,
    /// PEM file with the private key (PKCS#8, PKCS#1 or SEC1).
    pub key_file: PathBuf,
    /// PEM file with the CAs that sign client certificates. When set,
    /// every client must present a certificate they signed (mTLS).
    #[serde(default)]
    pub client_ca_file: Option<PathBuf>,
    /// Longest a TLS handshake may take. Default 10 s.
    #[serde(default = "default_handshake_timeout", with = "humantime_serde")]
    pub handshake_timeout: Duration,
}

fn default_handshake_timeout() -> Duration {
    Duration::from_secs(10)
}

impl TlsConfig {
    /// TLS with `cert_file` and `key_file`, without client certificates.
    pub fn new(cert_file: impl Into<PathBuf>, key_file: impl Into<PathBuf>) -> Self {
        Self {
            cert_file: cert_file.into(),
            key_file: key_file.into(),
            client_ca_file: None,
            handshake_timeout: default_handshake_timeout(),
        }
    }

    /// Requires client certificates signed by the CAs in `client_ca_file`.
    pub fn with_client_ca(mut self, client_ca_file: impl Into<PathBuf>) -> Self {
        self.client_ca_file = Some(client_ca_file.into());
        self
    }

    /// The same certificate without client certificates: for the HTTP
    /// listeners browsers reach (screen pops, the agent desktop), which
    /// authenticate people with context tokens and sessions, not with
    /// client certificates.
    pub fn without_client_ca(&self) -> Self {
        Self {
            client_ca_file: None,
            ..self.clone()
        }
    }
}

/// Why TLS settings cannot be used. Names the configuration key.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("tls.{key}: {path}: {source}")]
    Read {
        key: &'static str,
        path: PathBuf,
        source: io::Error,
    },
    #[error("tls.{key}: {path}: {problem}")]
    Pem {
        key: &'static str,
        path: PathBuf,
        problem: String,
    },
    #[error("tls.{key}: {source}")]
    Rustls {
        key: &'static str,
        source: rustls::Error,
    },
    #[error("tls.client_ca_file: {0}")]
    ClientVerifier(#[from] rustls::server::VerifierBuilderError),
    #[error("tls: {0}")]
    Tonic(String),
}

fn read_pem(key: &'static str, path: &Path) -> Result<Vec<u8>, TlsError> {
    use std::io::Read;
    let read_error = |source| TlsError::Read {
        key,
        path: path.to_owned(),
        source,
    };
    let mut bytes = Vec::new();
    std::fs::File::open(path)
        .map_err(read_error)?
        .take(MAX_PEM_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(read_error)?;
    if bytes.len() as u64 > MAX_PEM_BYTES {
        return Err(TlsError::Pem {
            key,
            path: path.to_owned(),
            problem: format!("larger than {MAX_PEM_BYTES} bytes"),
        });
    }
    Ok(bytes)
}

fn certificates(key: &'static str, path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let pem = read_pem(key, path)?;
    let certs = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| TlsError::Pem {
            key,
            path: path.to_owned(),
            problem: e.to_string(),
        })?;
    if certs.is_empty() {
        return Err(TlsError::Pem {
            key,
            path: path.to_owned(),
            problem: "no CERTIFICATE in the file".into(),
        });
    }
    Ok(certs)
}

fn private_key(path: &Path) -> Result<PrivateKeyDer<'static>, TlsError> {
    let pem = read_pem("key_file", path)?;
    // The error names the file, never its contents.
    PrivateKeyDer::from_pem_slice(&pem).map_err(|_| TlsError::Pem {
        key: "key_file",
        path: path.to_owned(),
        problem: "no usable PRIVATE KEY in the file".into(),
    })
}

fn roots(key: &'static str, path: &Path) -> Result<rustls::RootCertStore, TlsError> {
    let mut roots = rustls::RootCertStore::empty();
    for cert in certificates(key, path)? {
        roots
            .add(cert)
            .map_err(|source| TlsError::Rustls { key, source })?;
    }
    Ok(roots)
}

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// The application protocols a listener speaks, offered in ALPN.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Alpn {
    /// gRPC: HTTP/2 only (tonic clients require `h2` to be negotiated).
    Grpc,
    /// HTTP/1.1 only (the axum servers).
    Http1,
    /// No ALPN: protocols that define no ALPN id, such as SIP over TLS.
    None,
}

impl Alpn {
    fn protocols(self) -> Vec<Vec<u8>> {
        match self {
            Alpn::Grpc => vec![b"h2".to_vec()],
            Alpn::Http1 => vec![b"http/1.1".to_vec()],
            Alpn::None => Vec::new(),
        }
    }
}

fn server_config(config: &TlsConfig, alpn: Alpn) -> Result<rustls::ServerConfig, TlsError> {
    let provider = provider();
    let builder = rustls::ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|source| TlsError::Rustls {
            key: "cert_file",
            source,
        })?;
    let builder = match &config.client_ca_file {
        Some(path) => {
            let verifier = WebPkiClientVerifier::builder_with_provider(
                Arc::new(roots("client_ca_file", path)?),
                provider,
            )
            .build()?;
            builder.with_client_cert_verifier(verifier)
        }
        None => builder.with_no_client_auth(),
    };
    let mut server = builder
        .with_single_cert(
            certificates("cert_file", &config.cert_file)?,
            private_key(&config.key_file)?,
        )
        .map_err(|source| TlsError::Rustls {
            key: "key_file",
            source,
        })?;
    server.alpn_protocols = alpn.protocols();
    Ok(server)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Stamp {
    modified: Option<SystemTime>,
    len: u64,
    inode: u64,
}

fn stamp(path: &Path) -> Option<Stamp> {
    let metadata = std::fs::metadata(path).ok()?;
    #[cfg(unix)]
    let inode = std::os::unix::fs::MetadataExt::ino(&metadata);
    #[cfg(not(unix))]
    let inode = 0;
    Some(Stamp {
        modified: metadata.modified().ok(),
        len: metadata.len(),
        inode,
    })
}

#[derive(Debug)]
struct Loaded {
    stamps: Vec<Option<Stamp>>,
    config: Arc<rustls::ServerConfig>,
}

/// A listener's rustls configuration, kept up to date with its files.
#[derive(Debug)]
pub struct ServerTls {
    config: TlsConfig,
    alpn: Alpn,
    loaded: Mutex<Loaded>,
}

impl ServerTls {
    /// Loads the files of an optional `[tls]` section.
    pub fn load_optional(
        config: Option<&TlsConfig>,
        alpn: Alpn,
    ) -> Result<Option<Arc<ServerTls>>, TlsError> {
        config.map(|config| Self::load(config, alpn)).transpose()
    }

    /// Loads the files; fails when they are not usable, naming the key.
    pub fn load(config: &TlsConfig, alpn: Alpn) -> Result<Arc<ServerTls>, TlsError> {
        let stamps = Self::stamps_of(config);
        let server = server_config(config, alpn)?;
        Ok(Arc::new(ServerTls {
            config: config.clone(),
            alpn,
            loaded: Mutex::new(Loaded {
                stamps,
                config: Arc::new(server),
            }),
        }))
    }

    fn stamps_of(config: &TlsConfig) -> Vec<Option<Stamp>> {
        [
            Some(&config.cert_file),
            Some(&config.key_file),
            config.client_ca_file.as_ref(),
        ]
        .into_iter()
        .flatten()
        .map(|path| stamp(path))
        .collect()
    }

    /// The configuration in force, loaded again first if a file changed.
    pub fn current(&self) -> Arc<rustls::ServerConfig> {
        let stamps = Self::stamps_of(&self.config);
        let mut loaded = self.loaded.lock().unwrap_or_else(|e| e.into_inner());
        if loaded.stamps != stamps {
            loaded.stamps = stamps;
            match server_config(&self.config, self.alpn) {
                Ok(server) => {
                    loaded.config = Arc::new(server);
                    tracing::info!(
                        cert_file = %self.config.cert_file.display(),
                        "TLS certificate reloaded"
                    );
                }
                Err(error) => tracing::warn!(
                    %error,
                    "TLS files not reloaded; the previous certificate stays in force"
                ),
            }
        }
        loaded.config.clone()
    }
}

type Accepted = (TlsStream<TcpStream>, SocketAddr);

/// The TLS connections accepted on a listener: a `Stream` for tonic's
/// `serve_with_incoming` and an `axum::serve::Listener`. Dropping it stops
/// accepting.
#[derive(Debug)]
pub struct TlsIncoming {
    accepted: mpsc::Receiver<Accepted>,
    local_addr: SocketAddr,
}

/// Accepts TCP connections on `listener` (Nagle off, see
/// [`crate::grpc::incoming`]) and completes their TLS handshakes with
/// `tls`'s current configuration. Must be called within a tokio runtime.
pub fn incoming(listener: TcpListener, tls: Arc<ServerTls>) -> io::Result<TlsIncoming> {
    let local_addr = listener.local_addr()?;
    let (sender, accepted) = mpsc::channel(64);
    tokio::spawn(accept_loop(listener, tls, sender));
    Ok(TlsIncoming {
        accepted,
        local_addr,
    })
}

async fn accept_loop(listener: TcpListener, tls: Arc<ServerTls>, sender: mpsc::Sender<Accepted>) {
    let handshakes = Arc::new(Semaphore::new(MAX_CONCURRENT_HANDSHAKES));
    loop {
        let (tcp, peer) = tokio::select! {
            _ = sender.closed() => return,
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    // Out of file descriptors, typically: pause rather than spin.
                    tracing::warn!(%error, "accepting a connection failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let Ok(permit) = handshakes.clone().try_acquire_owned() else {
            tracing::warn!(%peer, "too many TLS handshakes in progress; connection closed");
            continue;
        };
        if let Err(error) = tcp.set_nodelay(true) {
            tracing::debug!(%peer, %error, "could not turn Nagle off");
        }
        let acceptor = TlsAcceptor::from(tls.current());
        let timeout = tls.config.handshake_timeout;
        let sender = sender.clone();
        tokio::spawn(async move {
            match tokio::time::timeout(timeout, acceptor.accept(tcp)).await {
                Ok(Ok(stream)) => {
                    // The slot is held until the server takes the stream:
                    // a server that stopped accepting (its connection limit
                    // reached) must not leave handshaken streams piling up.
                    let _ = sender.send((stream, peer)).await;
                }
                Ok(Err(error)) => {
                    tracing::debug!(%peer, %error, "TLS handshake failed");
                    drop(permit);
                }
                Err(_) => tracing::debug!(%peer, "TLS handshake timed out"),
            }
        });
    }
}

impl TlsIncoming {
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }
}

impl tokio_stream::Stream for TlsIncoming {
    type Item = io::Result<TlsStream<TcpStream>>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.accepted
            .poll_recv(cx)
            .map(|accepted| accepted.map(|(stream, _)| Ok(stream)))
    }
}

impl axum::serve::Listener for TlsIncoming {
    type Io = TlsStream<TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        match self.accepted.recv().await {
            Some(accepted) => accepted,
            // The accept loop only ends when this receiver is dropped.
            None => std::future::pending().await,
        }
    }

    fn local_addr(&self) -> io::Result<Self::Addr> {
        Ok(self.local_addr)
    }
}

/// An HTTP listener, plain or TLS: an `axum::serve::Listener` either way.
#[derive(Debug)]
pub enum HttpListener {
    Plain(TcpListener),
    Tls(TlsIncoming),
}

impl HttpListener {
    /// Serves `listener` with TLS when `tls` is set (HTTP/1.1 in ALPN),
    /// plain text otherwise. Loads the files now, so that a bad one fails
    /// the start and names its key. Must be called within a tokio runtime.
    pub fn new(listener: TcpListener, tls: Option<&TlsConfig>) -> Result<Self, TlsError> {
        match tls {
            None => Ok(HttpListener::Plain(listener)),
            Some(config) => {
                let tls = ServerTls::load(config, Alpn::Http1)?;
                let incoming = incoming(listener, tls).map_err(|source| TlsError::Read {
                    key: "cert_file",
                    path: config.cert_file.clone(),
                    source,
                })?;
                Ok(HttpListener::Tls(incoming))
            }
        }
    }

    /// `https` or `http`, for the URLs a service prints.
    pub fn scheme(&self) -> &'static str {
        match self {
            HttpListener::Plain(_) => "http",
            HttpListener::Tls(_) => "https",
        }
    }
}

impl axum::serve::Listener for HttpListener {
    type Io = tokio_util::either::Either<TcpStream, TlsStream<TcpStream>>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        use tokio_util::either::Either;
        match self {
            HttpListener::Plain(listener) => {
                let (stream, peer) = axum::serve::Listener::accept(listener).await;
                // Server-Sent Events are small writes: without this, Nagle
                // holds each behind the client's delayed ACK (~40 ms).
                if let Err(error) = stream.set_nodelay(true) {
                    tracing::debug!(%error, "cannot set TCP_NODELAY");
                }
                (Either::Left(stream), peer)
            }
            HttpListener::Tls(incoming) => {
                let (stream, peer) = axum::serve::Listener::accept(incoming).await;
                (Either::Right(stream), peer)
            }
        }
    }

    fn local_addr(&self) -> io::Result<Self::Addr> {
        match self {
            HttpListener::Plain(listener) => listener.local_addr(),
            HttpListener::Tls(incoming) => Ok(incoming.local_addr()),
        }
    }
}

/// A client's TLS settings: the CA that signs the server's certificate,
/// and for mTLS the client's own certificate and key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClientTlsFiles {
    /// PEM file with the CAs to trust for the server's certificate.
    pub ca_file: PathBuf,
    /// PEM file with the client's certificate chain (mTLS).
    #[serde(default)]
    pub cert_file: Option<PathBuf>,
    /// PEM file with the client's private key (mTLS).
    #[serde(default)]
    pub key_file: Option<PathBuf>,
    /// The name to verify the server's certificate against, when it is
    /// not the host of the address dialled.
    #[serde(default)]
    pub server_name: Option<String>,
}

impl ClientTlsFiles {
    fn identity_files(&self) -> Result<Option<(&Path, &Path)>, TlsError> {
        match (&self.cert_file, &self.key_file) {
            (Some(cert), Some(key)) => Ok(Some((cert, key))),
            (None, None) => Ok(None),
            _ => Err(TlsError::Tonic(
                "cert_file and key_file go together (client certificate for mTLS)".into(),
            )),
        }
    }

    /// The tonic client configuration (for an `https://` `Endpoint`).
    pub fn tonic_config(&self) -> Result<tonic::transport::ClientTlsConfig, TlsError> {
        use tonic::transport::{Certificate, ClientTlsConfig, Identity};
        let mut config = ClientTlsConfig::new()
            .ca_certificate(Certificate::from_pem(read_pem("ca_file", &self.ca_file)?));
        if let Some((cert, key)) = self.identity_files()? {
            // Parse first, so that a bad file is named now and not at connect.
            certificates("cert_file", cert)?;
            private_key(key)?;
            config = config.identity(Identity::from_pem(
                read_pem("cert_file", cert)?,
                read_pem("key_file", key)?,
            ));
        }
        if let Some(name) = &self.server_name {
            config = config.domain_name(name);
        }
        Ok(config)
    }

    /// A rustls client configuration, for clients other than tonic's.
    pub fn rustls_config(&self) -> Result<rustls::ClientConfig, TlsError> {
        let builder = rustls::ClientConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .map_err(|source| TlsError::Rustls {
                key: "ca_file",
                source,
            })?
            .with_root_certificates(roots("ca_file", &self.ca_file)?);
        match self.identity_files()? {
            Some((cert, key)) => builder
                .with_client_auth_cert(certificates("cert_file", cert)?, private_key(key)?)
                .map_err(|source| TlsError::Rustls {
                    key: "key_file",
                    source,
                }),
            None => Ok(builder.with_no_client_auth()),
        }
    }
}
