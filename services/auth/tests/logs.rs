//! No credential, whole or in part, reaches the logs of a server that
//! accepted and refused calls carrying them.

mod common;

use std::sync::{Arc, Mutex};

use baton_auth::Role;
use baton_proto::handoff::v1 as pb;
use common::*;
use serde_json::json;
use tonic::Request;

/// Everything logged while the guard lives on this thread.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().expect("lock").extend_from_slice(bytes);
        Ok(bytes.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for Captured {
    type Writer = Captured;
    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}

/// All logs of the process, at every level and from every crate (tonic,
/// h2, hyper included): this test has its own binary, so that the global
/// subscriber sees nothing but it.
#[tokio::test]
async fn no_credential_reaches_the_logs() {
    let captured = Captured::default();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_writer(captured.clone())
        .with_ansi(false)
        .finish();
    tracing::subscriber::set_global_default(subscriber).expect("the only subscriber");

    let credentials = Credentials::new();
    let key = credentials.add_key("acme", &[Role::AgentDesktop]);
    let server = start(&credentials).await;
    let hs = hs256_token(HS256_SECRET, claims(json!({})));
    let expired = credentials.es256_token("idp-key-1", claims(json!({"exp": now() - 3600})));
    let wrong_secret = tampered(&key.key);
    let secrets = [
        key.key.clone(),
        key.key[20..].to_string(),
        hs.clone(),
        expired.clone(),
        wrong_secret.clone(),
        HS256_SECRET.to_string(),
    ];
    get(&server, bearer(&key.key)).await.expect("valid key");
    get(&server, bearer(&hs)).await.expect("valid JWT");
    let _ = get(&server, bearer(&expired)).await.expect_err("expired");
    let _ = get(&server, bearer(&wrong_secret))
        .await
        .expect_err("wrong secret");
    let _ = get(&server, with("x-api-key", &hs))
        .await
        .expect_err("JWT as an API key");
    let mut client = server.client();
    let mut create = Request::new(pb::CreateHandoffRequest::default());
    create.metadata_mut().insert(
        "authorization",
        format!("Bearer {}", key.key).parse().expect("ascii"),
    );
    let _ = client
        .create_handoff(create)
        .await
        .expect_err("desktop may not create");
    server.stop().await;

    let logs = String::from_utf8(captured.0.lock().expect("lock").clone()).expect("utf-8");
    assert!(logs.contains("call refused: not authenticated"), "{logs}");
    assert!(
        logs.contains("call refused: the caller's roles do not allow"),
        "{logs}"
    );
    for secret in &secrets {
        assert!(!logs.contains(secret.as_str()), "a credential was logged");
    }
    // Nor any part of a JWT's signature.
    let signature = hs.rsplit('.').next().expect("signature");
    assert!(!logs.contains(signature), "a JWT signature was logged");
}
