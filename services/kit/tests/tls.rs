//! TLS and mTLS listeners on loopback, called by real tonic, rustls and
//! HTTP/1.1 clients; certificates rotated under a running server.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use baton_service_kit::tls::{self, Alpn, ClientTlsFiles, ServerTls, TlsConfig, dev_ca};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tonic::transport::{Channel, Endpoint};
use tonic_health::pb::health_client::HealthClient;
use tonic_health::pb::{HealthCheckRequest, health_check_response::ServingStatus};

/// A gRPC server (health service) on a TLS listener.
struct GrpcServer {
    address: SocketAddr,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<()>,
}

impl GrpcServer {
    async fn start(config: &TlsConfig) -> GrpcServer {
        let tls = ServerTls::load(config, Alpn::Grpc).expect("TLS files load");
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("binds");
        let address = listener.local_addr().expect("address");
        let incoming = tls::incoming(listener, tls).expect("incoming");
        let (reporter, health) = tonic_health::server::health_reporter();
        reporter
            .set_service_status("", tonic_health::ServingStatus::Serving)
            .await;
        let (shutdown, stopped) = tokio::sync::oneshot::channel();
        let task = tokio::spawn(async move {
            tonic::transport::Server::builder()
                .add_service(health)
                .serve_with_incoming_shutdown(incoming, async {
                    let _ = stopped.await;
                })
                .await
                .expect("serves");
        });
        GrpcServer {
            address,
            shutdown: Some(shutdown),
            task,
        }
    }

    async fn stop(mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
        tokio::time::timeout(Duration::from_secs(10), self.task)
            .await
            .expect("stops in time")
            .expect("server task");
    }
}

/// One health check over a new connection, with `tls` (or plain text).
async fn check(address: SocketAddr, tls: Option<&ClientTlsFiles>) -> Result<(), String> {
    let endpoint = match tls {
        Some(files) => Endpoint::from_shared(format!("https://{address}"))
            .expect("endpoint")
            .tls_config(files.tonic_config().expect("client TLS"))
            .expect("tls config"),
        None => Endpoint::from_shared(format!("http://{address}")).expect("endpoint"),
    }
    .connect_timeout(Duration::from_secs(5))
    .timeout(Duration::from_secs(5));
    let channel: Channel = endpoint
        .connect()
        .await
        .map_err(|e| format!("connect: {e:?}"))?;
    let response = HealthClient::new(channel)
        .check(HealthCheckRequest::default())
        .await
        .map_err(|e| format!("call: {e:?}"))?;
    assert_eq!(response.into_inner().status, ServingStatus::Serving as i32);
    Ok(())
}

fn without_identity(files: &ClientTlsFiles) -> ClientTlsFiles {
    ClientTlsFiles {
        cert_file: None,
        key_file: None,
        ..files.clone()
    }
}

#[tokio::test]
async fn tls_server_answers_tls_clients_and_refuses_plain_text() {
    let dir = tempfile::tempdir().expect("tempdir");
    let ca = dev_ca::generate(dir.path()).expect("dev CA");
    let server = GrpcServer::start(&TlsConfig::new(&ca.server_cert, &ca.server_key)).await;

    let client = without_identity(&ca.client_files());
    check(server.address, Some(&client))
        .await
        .expect("TLS client");
    // By name too: the certificate covers localhost.
    let by_name = ClientTlsFiles {
        server_name: Some("localhost".into()),
        ..client.clone()
    };
    check(server.address, Some(&by_name))
        .await
        .expect("TLS client, by name");

    check(server.address, None)
        .await
        .expect_err("a plain-text client gets nothing");

    // A client that trusts another CA refuses the server.
    let other_dir = tempfile::tempdir().expect("tempdir");
    let other = dev_ca::generate(other_dir.path()).expect("dev CA");
    check(
        server.address,
        Some(&without_identity(&other.client_files())),
    )
    .await
    .expect_err("untrusted server certificate");
    // The server still serves after all that.
    check(server.address, Some(&client))
        .await
        .expect("TLS client");
    server.stop().await;
}

#[tokio::test]
async fn mtls_requires_a_client_certificate_from_the_client_ca() {
    let dir = tempfile::tempdir().expect("tempdir");
    let ca = dev_ca::generate(dir.path()).expect("dev CA");
    let server = GrpcServer::start(&ca.server_config()).await;

    check(server.address, Some(&ca.client_files()))
        .await
        .expect("client with its certificate");
    check(server.address, Some(&without_identity(&ca.client_files())))
        .await
        .expect_err("client without a certificate");

    // A client certificate from another CA, the server trusted as before.
    let other_dir = tempfile::tempdir().expect("tempdir");
    let other = dev_ca::generate(other_dir.path()).expect("dev CA");
    let stranger = ClientTlsFiles {
        cert_file: other.client_files().cert_file,
        key_file: other.client_files().key_file,
        ..ca.client_files()
    };
    check(server.address, Some(&stranger))
        .await
        .expect_err("client certificate from another CA");

    check(server.address, None)
        .await
        .expect_err("a plain-text client gets nothing");
    server.stop().await;
}

fn pem_certificate(path: &Path) -> CertificateDer<'static> {
    CertificateDer::from_pem_file(path).expect("certificate")
}

/// The certificate a new TLS connection to `address` is served, by a
/// client trusting every CA in `trusted`.
async fn served_certificate(address: SocketAddr, trusted: &[&Path]) -> CertificateDer<'static> {
    let mut roots = rustls::RootCertStore::empty();
    for ca in trusted {
        roots.add(pem_certificate(ca)).expect("root");
    }
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .expect("versions")
    .with_root_certificates(roots)
    .with_no_client_auth();
    let tcp = TcpStream::connect(address).await.expect("connects");
    let stream = tokio_rustls::TlsConnector::from(Arc::new(config))
        .connect(ServerName::try_from("localhost").expect("name"), tcp)
        .await
        .expect("handshake");
    stream
        .get_ref()
        .1
        .peer_certificates()
        .expect("certificates")[0]
        .clone()
}

fn replace(from: &Path, to: &Path) {
    let aside = to.with_extension("new");
    std::fs::copy(from, &aside).expect("copy");
    std::fs::rename(&aside, to).expect("rename");
}

#[tokio::test]
async fn rotated_certificates_are_served_to_new_connections() {
    let first_dir = tempfile::tempdir().expect("tempdir");
    let first = dev_ca::generate(first_dir.path()).expect("dev CA");
    let second_dir = tempfile::tempdir().expect("tempdir");
    let second = dev_ca::generate(second_dir.path()).expect("dev CA");
    let live = tempfile::tempdir().expect("tempdir");
    let cert = live.path().join("server.pem");
    let key = live.path().join("server-key.pem");
    replace(&first.server_cert, &cert);
    replace(&first.server_key, &key);

    let server = GrpcServer::start(&TlsConfig::new(&cert, &key)).await;
    let trusted = [first.ca_cert.as_path(), second.ca_cert.as_path()];
    assert_eq!(
        served_certificate(server.address, &trusted).await,
        pem_certificate(&first.server_cert)
    );

    // Half a rotation (the new certificate, the old key): refused, the old
    // pair stays in force.
    replace(&second.server_cert, &cert);
    assert_eq!(
        served_certificate(server.address, &trusted).await,
        pem_certificate(&first.server_cert)
    );

    replace(&second.server_key, &key);
    assert_eq!(
        served_certificate(server.address, &trusted).await,
        pem_certificate(&second.server_cert)
    );
    let rotated = ClientTlsFiles {
        ca_file: second.ca_cert.clone(),
        cert_file: None,
        key_file: None,
        server_name: None,
    };
    check(server.address, Some(&rotated))
        .await
        .expect("gRPC after rotation");
    server.stop().await;
}

#[tokio::test]
async fn axum_serves_http1_over_the_same_listener_type() {
    let dir = tempfile::tempdir().expect("tempdir");
    let ca = dev_ca::generate(dir.path()).expect("dev CA");
    let tls = ServerTls::load(
        &TlsConfig::new(&ca.server_cert, &ca.server_key),
        Alpn::Http1,
    )
    .expect("TLS files load");
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("binds");
    let address = listener.local_addr().expect("address");
    let incoming = tls::incoming(listener, tls).expect("incoming");
    let router = axum::Router::new().route("/ping", axum::routing::get(|| async { "pong" }));
    let server = tokio::spawn(async move { axum::serve(incoming, router).await });

    let config = without_identity(&ca.client_files())
        .rustls_config()
        .expect("client config");
    let tcp = TcpStream::connect(address).await.expect("connects");
    let mut stream = tokio_rustls::TlsConnector::from(Arc::new(config))
        .connect(ServerName::try_from("127.0.0.1").expect("name"), tcp)
        .await
        .expect("handshake");
    stream
        .write_all(b"GET /ping HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        .await
        .expect("request");
    let mut response = String::new();
    tokio::time::timeout(
        Duration::from_secs(10),
        stream.read_to_string(&mut response),
    )
    .await
    .expect("answers in time")
    .expect("reads");
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    assert!(response.ends_with("pong"), "{response}");
    server.abort();
}

#[test]
fn unusable_files_are_refused_naming_the_key() {
    let dir = tempfile::tempdir().expect("tempdir");
    let ca = dev_ca::generate(dir.path()).expect("dev CA");
    let error = |config: TlsConfig| {
        ServerTls::load(&config, Alpn::Grpc)
            .expect_err("refused")
            .to_string()
    };
    let missing = error(TlsConfig::new(dir.path().join("nope.pem"), &ca.server_key));
    assert!(missing.starts_with("tls.cert_file: "), "{missing}");
    let not_a_key = error(TlsConfig::new(&ca.server_cert, &ca.server_cert));
    assert!(not_a_key.starts_with("tls.key_file: "), "{not_a_key}");
    let mismatched = error(TlsConfig::new(&ca.server_cert, &ca.client_key));
    assert!(mismatched.starts_with("tls.key_file: "), "{mismatched}");
    let not_a_ca =
        error(TlsConfig::new(&ca.server_cert, &ca.server_key).with_client_ca(&ca.server_key));
    assert!(not_a_ca.starts_with("tls.client_ca_file: "), "{not_a_ca}");
    // The key's contents never appear in an error.
    let key_pem = std::fs::read_to_string(&ca.server_key).expect("key");
    let body = key_pem.lines().nth(1).expect("a line of base64");
    for message in [missing, not_a_key, mismatched, not_a_ca] {
        assert!(!message.contains(body), "{message}");
    }
}

#[test]
fn dev_ca_writes_private_keys_readable_by_the_owner_only() {
    let dir = tempfile::tempdir().expect("tempdir");
    let ca = dev_ca::generate(dir.path()).expect("dev CA");
    #[cfg(unix)]
    for key in [&ca.ca_key, &ca.server_key, &ca.client_key] {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(key)
            .expect("metadata")
            .permissions()
            .mode();
        assert_eq!(mode & 0o077, 0, "{}", key.display());
    }
    let config: TlsConfig = toml::from_str(&format!(
        "cert_file = {:?}\nkey_file = {:?}\nclient_ca_file = {:?}\nhandshake_timeout = \"3s\"\n",
        ca.server_cert, ca.server_key, ca.ca_cert
    ))
    .expect("parses");
    assert_eq!(config.handshake_timeout, Duration::from_secs(3));
    ServerTls::load(&config, Alpn::Grpc).expect("loads");
}
