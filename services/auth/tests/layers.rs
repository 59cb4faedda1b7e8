//! The auth and rate limit layers in front of a real tonic server on
//! loopback, called by a real tonic client.

mod common;

use std::time::Duration;

use baton_auth::api_key::{self, KeysFile, MintedKey};
use baton_auth::{AuthConfig, AuthLayer, RateLimitConfig, Role, StreamLimiter};
use baton_proto::handoff::v1 as pb;
use common::*;
use serde_json::json;
use tonic::{Code, Request};
use tonic_types::StatusExt;

#[tokio::test]
async fn missing_bad_and_expired_credentials_are_unauthenticated() {
    let credentials = Credentials::new();
    let key = credentials.add_key("acme", &[Role::AiRuntime]);
    let server = start(&credentials).await;

    // The good ones, each kind.
    assert_eq!(
        get(&server, bearer(&key.key)).await.expect("API key"),
        "acme"
    );
    assert_eq!(
        get(&server, with("x-api-key", &key.key))
            .await
            .expect("x-api-key"),
        "acme"
    );
    let hs = hs256_token(HS256_SECRET, claims(json!({"tenant": "globex"})));
    assert_eq!(get(&server, bearer(&hs)).await.expect("HS256"), "globex");
    let es = credentials.es256_token("idp-key-1", claims(json!({})));
    assert_eq!(get(&server, bearer(&es)).await.expect("ES256"), "acme");

    let unauthenticated = Code::Unauthenticated;
    assert_refused(
        get(&server, Request::new(pb::GetHandoffRequest::default())).await,
        unauthenticated,
        "CREDENTIAL_MISSING",
        "missing",
    );
    for (case, request) in [
        ("malformed bearer", bearer("not-a-credential")),
        ("basic scheme", with("authorization", "Basic dXNlcjpwYXNz")),
        ("malformed API key", bearer("bk_0123")),
        ("wrong API key secret", bearer(&tampered(&key.key))),
        (
            "unknown API key",
            bearer(
                &api_key::mint("acme", &[Role::Admin], None, None)
                    .expect("mints")
                    .key,
            ),
        ),
        (
            "wrong HS256 secret",
            bearer(&hs256_token(
                "another secret of sufficient length, 32+",
                claims(json!({})),
            )),
        ),
        (
            "wrong audience",
            bearer(&credentials.es256_token("idp-key-1", claims(json!({"aud": "other-app"})))),
        ),
        (
            "wrong issuer",
            bearer(
                &credentials.es256_token("idp-key-1", claims(json!({"iss": "https://evil.test"}))),
            ),
        ),
        (
            "other key id",
            bearer(&credentials.es256_token("idp-key-2", claims(json!({})))),
        ),
        (
            "altered payload",
            bearer(&{
                let parts: Vec<&str> = es.split('.').collect();
                let admin = base64::Engine::encode(
                    &base64::engine::general_purpose::URL_SAFE_NO_PAD,
                    serde_json::to_vec(&claims(json!({"roles": ["admin"]}))).expect("json"),
                );
                format!("{}.{admin}.{}", parts[0], parts[2])
            }),
        ),
    ] {
        assert_refused(
            get(&server, request).await,
            unauthenticated,
            "CREDENTIAL_INVALID",
            case,
        );
    }
    let expired = credentials.es256_token("idp-key-1", claims(json!({"exp": now() - 3600})));
    assert_refused(
        get(&server, bearer(&expired)).await,
        unauthenticated,
        "CREDENTIAL_EXPIRED",
        "expired JWT",
    );

    // Health stays open without a credential.
    let mut health = tonic_health::pb::health_client::HealthClient::new(server.channel.clone());
    let serving = health
        .check(tonic_health::pb::HealthCheckRequest::default())
        .await
        .expect("health needs no credential");
    assert_eq!(
        serving.into_inner().status,
        tonic_health::pb::health_check_response::ServingStatus::Serving as i32
    );
    server.stop().await;
}

#[tokio::test]
async fn roles_lacking_the_method_are_permission_denied() {
    let credentials = Credentials::new();
    let desktop = credentials.add_key("acme", &[Role::AgentDesktop]);
    let runtime = credentials.add_key("acme", &[Role::AiRuntime]);
    let supervisor = credentials.add_key("acme", &[Role::Supervisor]);
    let server = start(&credentials).await;
    let authorised = |key: &MintedKey| format!("Bearer {}", key.key);

    let mut client = server.client();
    let create = |key: &MintedKey| {
        let mut request = Request::new(pb::CreateHandoffRequest::default());
        request
            .metadata_mut()
            .insert("authorization", authorised(key).parse().expect("ascii"));
        request
    };
    let list = |key: &MintedKey| {
        let mut request = Request::new(pb::ListHandoffsRequest::default());
        request
            .metadata_mut()
            .insert("authorization", authorised(key).parse().expect("ascii"));
        request
    };
    let denied = client
        .create_handoff(create(&desktop))
        .await
        .expect_err("desktop creates");
    assert_eq!(denied.code(), Code::PermissionDenied);
    assert_eq!(reason(&denied), "PERMISSION_DENIED");
    assert!(denied.message().contains("CreateHandoff"), "{denied:?}");
    client
        .create_handoff(create(&runtime))
        .await
        .expect("runtime creates");

    let denied = client
        .list_handoffs(list(&runtime))
        .await
        .expect_err("runtime lists");
    assert_eq!(denied.code(), Code::PermissionDenied);
    client
        .list_handoffs(list(&supervisor))
        .await
        .expect("supervisor lists");

    // A JWT whose roles Baton does not know grants nothing.
    let stranger = hs256_token(HS256_SECRET, claims(json!({"roles": ["billing_admin"]})));
    assert_refused(
        get(&server, bearer(&stranger)).await,
        Code::PermissionDenied,
        "PERMISSION_DENIED",
        "unknown roles",
    );
    server.stop().await;
}

#[tokio::test]
async fn rate_limit_answers_resource_exhausted_with_retry_info() {
    let credentials = Credentials::new();
    let acme = credentials.add_key("acme", &[Role::AiRuntime]);
    let globex = credentials.add_key("globex", &[Role::AiRuntime]);
    // One call per 1000 s after a burst of 2: the third call within the
    // test is refused however slow the machine.
    let server = Server::start(
        AuthLayer::from_config(&credentials.config()).expect("auth layer"),
        RateLimitConfig {
            requests_per_second: 0.001,
            burst: 2,
            max_tenants: 100,
        },
        StreamLimiter::new(10),
    )
    .await;
    get(&server, bearer(&acme.key)).await.expect("first");
    get(&server, bearer(&acme.key)).await.expect("second");
    let refused = get(&server, bearer(&acme.key)).await.expect_err("third");
    assert_eq!(refused.code(), Code::ResourceExhausted);
    assert_eq!(reason(&refused), "RATE_LIMITED");
    let retry = refused
        .get_error_details()
        .retry_info()
        .expect("retry info")
        .retry_delay
        .expect("retry delay");
    assert!(
        retry > Duration::from_secs(900) && retry <= Duration::from_secs(1000),
        "{retry:?}"
    );
    // Another tenant has its own bucket.
    assert_eq!(
        get(&server, bearer(&globex.key)).await.expect("globex"),
        "globex"
    );
    // A refused credential does not spend the tenant's tokens: the auth
    // layer answers before the limiter.
    assert_refused(
        get(&server, bearer("bk_nonsense")).await,
        Code::Unauthenticated,
        "CREDENTIAL_INVALID",
        "bad key",
    );
    server.stop().await;
}

#[tokio::test]
async fn keys_rotate_by_rewriting_the_keys_file() {
    let credentials = Credentials::new();
    let old = credentials.add_key("acme", &[Role::AiRuntime]);
    let server = start(&credentials).await;
    assert_eq!(
        get(&server, bearer(&old.key)).await.expect("old key"),
        "acme"
    );

    // Rotation: add the new key, then remove the old one.
    let new = credentials.add_key("acme", &[Role::AiRuntime]);
    assert_eq!(
        get(&server, bearer(&new.key)).await.expect("new key"),
        "acme"
    );
    assert_eq!(
        get(&server, bearer(&old.key))
            .await
            .expect("both, during rotation"),
        "acme"
    );
    assert!(KeysFile::remove_from(&credentials.keys_file, &old.entry.id).expect("removes"));
    assert_refused(
        get(&server, bearer(&old.key)).await,
        Code::Unauthenticated,
        "CREDENTIAL_INVALID",
        "removed key",
    );
    assert_eq!(
        get(&server, bearer(&new.key)).await.expect("new key"),
        "acme"
    );

    // A broken keys file keeps the keys in force.
    write_file(&credentials.keys_file, "[[key]]\nid = ");
    assert_eq!(get(&server, bearer(&new.key)).await.expect("kept"), "acme");
    server.stop().await;
}

#[tokio::test]
async fn watch_streams_are_capped_per_tenant() {
    let credentials = Credentials::new();
    let key = credentials.add_key("acme", &[Role::AiRuntime]);
    let streams = StreamLimiter::new(1);
    let server = Server::start(
        AuthLayer::from_config(&credentials.config()).expect("auth layer"),
        RateLimitConfig::default(),
        streams.clone(),
    )
    .await;
    let watch = || {
        let mut request = Request::new(pb::WatchHandoffRequest::default());
        request.metadata_mut().insert(
            "authorization",
            format!("Bearer {}", key.key).parse().expect("ascii"),
        );
        request
    };
    let mut client = server.client();
    let mut first = client
        .watch_handoff(watch())
        .await
        .expect("first")
        .into_inner();
    first
        .message()
        .await
        .expect("first event")
        .expect("an event");
    let refused = client.watch_handoff(watch()).await.expect_err("second");
    assert_eq!(refused.code(), Code::ResourceExhausted);
    assert_eq!(reason(&refused), "TOO_MANY_STREAMS");

    // Closing the first frees the slot once the server sees it go.
    drop(first);
    let mut reopened = None;
    for _ in 0..200 {
        match client.watch_handoff(watch()).await {
            Ok(stream) => {
                reopened = Some(stream);
                break;
            }
            Err(status) => assert_eq!(status.code(), Code::ResourceExhausted),
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert!(reopened.is_some(), "the slot was never freed");
    assert_eq!(streams.active("acme"), 1);
    drop(reopened);
    server.stop().await;
}

#[tokio::test]
async fn with_auth_off_every_call_is_an_admin_of_the_default_tenant() {
    let server = Server::start(
        AuthLayer::from_config(&AuthConfig {
            default_tenant: "solo".into(),
            ..AuthConfig::default()
        })
        .expect("auth layer"),
        RateLimitConfig::default(),
        StreamLimiter::new(10),
    )
    .await;
    let response = server
        .client()
        .list_handoffs(pb::ListHandoffsRequest::default())
        .await
        .expect("no credential needed");
    assert_eq!(response.metadata().get("x-tenant").expect("tenant"), "solo");
    assert_eq!(
        response.metadata().get("x-credential").expect("credential"),
        "none"
    );
    server.stop().await;
}
