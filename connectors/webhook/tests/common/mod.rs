//! A receiving endpoint that enforces the Standard Webhooks contract the
//! way a receiver built on the spec's reference libraries does: POST with
//! `application/json`, the three `webhook-*` headers, a timestamp within
//! five minutes, a valid `v1` signature, a JSON body with `type`,
//! `timestamp` and `data`; anything else is refused (400/401/415). It can
//! enforce a rate limit (429 with `Retry-After`) and answers as a test
//! scripts it (5xx, 429, a hang, a 4xx) to drive the retries.

#![allow(dead_code)]

use std::collections::{BTreeMap, VecDeque};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use baton_connector_sdk::config::StoreConfig;
use baton_connector_webhook::WebhookConfig;
use baton_connector_webhook::config::{Completion, EndpointConfig, RetryConfig};
use baton_connector_webhook::signature::SigningSecret;
use baton_tests::InProcess;
use hmac::{Hmac, Mac};
use sha2::Sha256;

pub const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
pub const OTHER_SECRET: &str = "whsec_dGhpcyBpcyBub3QgdGhlIGVuZHBvaW50J3Mgc2VjcmV0";
/// How far a webhook-timestamp may be from the receiver's clock.
pub const TOLERANCE_SECS: i64 = 5 * 60;

/// How the endpoint answers one valid request.
#[derive(Debug, Clone, Copy)]
pub enum Answer {
    Status(u16),
    /// 429 with `Retry-After: 0` (seconds).
    Throttle,
    /// Answers 200 only after this long (longer than the connector's timeout).
    Hang(Duration),
}

/// One request the endpoint received.
#[derive(Debug, Clone)]
pub struct Received {
    pub endpoint: String,
    pub id: String,
    pub body: serde_json::Value,
    pub status: u16,
    /// The W3C `traceparent` header, when the connector sent one.
    pub traceparent: Option<String>,
}

#[derive(Debug, Default)]
pub struct Endpoint {
    pub secret: Vec<u8>,
    pub script: VecDeque<Answer>,
    /// Token bucket: (tokens, last refill).
    pub bucket: Option<(f64, std::time::Instant)>,
}

/// The receiving side: one or more endpoints at `/hooks/{name}`.
#[derive(Debug, Default)]
pub struct Receiver {
    pub endpoints: Mutex<BTreeMap<String, Endpoint>>,
    pub received: Mutex<Vec<Received>>,
    /// The rate limit of every endpoint: (per second, bucket capacity).
    pub rate: Option<(f64, f64)>,
    pub throttled: Mutex<u32>,
}

impl Receiver {
    pub fn received(&self) -> Vec<Received> {
        self.received.lock().expect("lock").clone()
    }

    pub fn throttled(&self) -> u32 {
        *self.throttled.lock().expect("lock")
    }
}

pub fn secret_bytes(secret: &str) -> Vec<u8> {
    STANDARD
        .decode(secret.trim_start_matches("whsec_"))
        .expect("test secret is base64")
}

/// Verifies a request the way the Standard Webhooks reference verifier
/// does, then answers it per the endpoint's script.
pub async fn hook(
    State(receiver): State<Arc<Receiver>>,
    Path(name): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    if header("content-type").as_deref() != Some("application/json") {
        return (
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "expected application/json",
        )
            .into_response();
    }
    let (Some(id), Some(timestamp), Some(signatures)) = (
        header("webhook-id"),
        header("webhook-timestamp"),
        header("webhook-signature"),
    ) else {
        return (StatusCode::BAD_REQUEST, "missing required headers").into_response();
    };
    let Ok(timestamp) = timestamp.parse::<i64>() else {
        return (StatusCode::BAD_REQUEST, "invalid signature headers").into_response();
    };
    let now = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .expect("clock")
        .as_secs() as i64;
    if (now - timestamp).abs() > TOLERANCE_SECS {
        return (
            StatusCode::UNAUTHORIZED,
            "message timestamp too old or too new",
        )
            .into_response();
    }
    let answer = {
        let mut endpoints = receiver.endpoints.lock().expect("lock");
        let Some(endpoint) = endpoints.get_mut(&name) else {
            return (StatusCode::NOT_FOUND, "no such endpoint").into_response();
        };
        let mut mac = Hmac::<Sha256>::new_from_slice(&endpoint.secret).expect("key");
        mac.update(format!("{id}.{timestamp}.").as_bytes());
        mac.update(&body);
        let expected = STANDARD.encode(mac.finalize().into_bytes());
        let valid = signatures
            .split(' ')
            .filter_map(|s| s.split_once(','))
            .any(|(version, signature)| version == "v1" && signature == expected);
        if !valid {
            return (StatusCode::UNAUTHORIZED, "no matching signature found").into_response();
        }
        if let Some((rate, capacity)) = receiver.rate {
            let now = std::time::Instant::now();
            let (tokens, last) = endpoint.bucket.get_or_insert((capacity, now));
            *tokens = (*tokens + now.duration_since(*last).as_secs_f64() * rate).min(capacity);
            *last = now;
            if *tokens < 1.0 {
                *receiver.throttled.lock().expect("lock") += 1;
                return (
                    StatusCode::TOO_MANY_REQUESTS,
                    [("retry-after", "1")],
                    "rate limited",
                )
                    .into_response();
            }
            *tokens -= 1.0;
        }
        endpoint.script.pop_front().unwrap_or(Answer::Status(200))
    };
    let Ok(parsed) = serde_json::from_slice::<serde_json::Value>(&body) else {
        return (StatusCode::BAD_REQUEST, "body is not JSON").into_response();
    };
    if !(parsed["type"].is_string()
        && parsed["timestamp"].is_string()
        && parsed["data"].is_object())
    {
        return (StatusCode::BAD_REQUEST, "not a Standard Webhooks payload").into_response();
    }
    let status = match answer {
        Answer::Status(status) => status,
        Answer::Throttle => 429,
        Answer::Hang(_) => 200,
    };
    // Recorded before a hang: the connector gives up on the request and
    // the handler is dropped with the connection.
    receiver.received.lock().expect("lock").push(Received {
        endpoint: name,
        traceparent: header("traceparent"),
        id,
        body: parsed,
        status,
    });
    if let Answer::Hang(duration) = answer {
        tokio::time::sleep(duration).await;
    }
    let status = StatusCode::from_u16(status).expect("scripted status");
    if matches!(answer, Answer::Throttle) {
        return (status, [("retry-after", "0")]).into_response();
    }
    status.into_response()
}

/// What a chat message to the platform must hold, per its `type`: the
/// fields of `data` and the JSON type of each (as the connector's README
/// documents them).
/// A field of `data` and the check of its JSON type.
type FieldCheck = (&'static str, fn(&serde_json::Value) -> bool);

fn chat_shape_problem(body: &serde_json::Value) -> Option<String> {
    use serde_json::Value;
    let data = &body["data"];
    let common: &[FieldCheck] = &[
        ("handoff_id", Value::is_string),
        ("attempt", Value::is_u64),
        ("reply_url", Value::is_string),
    ];
    let specific: &[FieldCheck] = match body["type"].as_str() {
        Some("baton.chat.message") => &[
            ("sequence", Value::is_u64),
            ("author", |v| {
                matches!(v.as_str(), Some("customer" | "human" | "system"))
            }),
            ("author_name", Value::is_string),
            ("id", Value::is_string),
            ("text", Value::is_string),
            ("attachments", Value::is_array),
            ("create_time", Value::is_string),
        ],
        Some("baton.chat.ended") => &[
            ("sequence", Value::is_u64),
            ("reason", |v| {
                matches!(
                    v.as_str(),
                    Some("completed" | "cancelled" | "failed" | "handed_back")
                )
            }),
            ("text", Value::is_string),
        ],
        Some("baton.chat.typing") => &[("author", Value::is_string), ("active", Value::is_boolean)],
        Some("baton.chat.read") => &[
            ("author", Value::is_string),
            ("through_sequence", Value::is_u64),
        ],
        other => return Some(format!("unknown type {other:?}")),
    };
    let expected: Vec<&str> = common.iter().chain(specific).map(|(k, _)| *k).collect();
    if let Some((key, _)) = common
        .iter()
        .chain(specific)
        .find(|(key, valid)| !valid(&data[*key]))
    {
        return Some(format!("data.{key} is missing or of the wrong type"));
    }
    let extra: Vec<&String> = data
        .as_object()?
        .keys()
        .filter(|k| !expected.contains(&k.as_str()))
        .collect();
    (!extra.is_empty()).then(|| format!("data has undocumented fields {extra:?}"))
}

/// The platform's chat endpoint: the same Standard Webhooks checks as
/// [`hook`], then the chat message's documented shape (400 otherwise).
pub async fn chat_hook(
    state: State<Arc<Receiver>>,
    path: Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if let Ok(parsed) = serde_json::from_slice::<serde_json::Value>(&body)
        && let Some(problem) = chat_shape_problem(&parsed)
    {
        return (StatusCode::BAD_REQUEST, problem).into_response();
    }
    hook(state, path, headers, body).await
}

pub async fn start_receiver(receiver: Arc<Receiver>) -> SocketAddr {
    let app = Router::new()
        .route("/hooks/{name}", post(hook))
        .route("/chat/{name}", post(chat_hook))
        .with_state(receiver);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("receiver binds");
    let addr = listener.local_addr().expect("receiver address");
    tokio::spawn(async move { axum::serve(listener, app).await });
    addr
}

pub fn receiver(endpoints: &[(&str, Vec<Answer>)], rate: Option<(f64, f64)>) -> Arc<Receiver> {
    Arc::new(Receiver {
        endpoints: Mutex::new(
            endpoints
                .iter()
                .map(|(name, script)| {
                    (
                        (*name).to_owned(),
                        Endpoint {
                            secret: secret_bytes(SECRET),
                            script: script.iter().copied().collect(),
                            bucket: None,
                        },
                    )
                })
                .collect(),
        ),
        rate,
        ..Default::default()
    })
}

/// An endpoint of the receiver at `receiver`, `/hooks/{name}`, signed with
/// `secret`: done once accepted, tried for 300 ms.
pub fn endpoint(receiver: SocketAddr, name: &str, secret: &str) -> EndpointConfig {
    EndpointConfig {
        url: format!("http://{receiver}/hooks/{name}"),
        secret: SigningSecret::parse(secret).expect("secret"),
        // Room for every try of a retrying test back to back: a jittered
        // backoff shorter than the rate's interval must not add a QUEUED
        // event to the transfers these tests count.
        rate_per_second: 100.0,
        burst: 10,
        timeout: Duration::from_millis(300),
        completion: Completion::Accepted,
        chat_url: None,
    }
}

/// [`endpoint`], taking chats at the receiver's `/chat/{chat_name}`.
pub fn chat_endpoint(receiver: SocketAddr, name: &str, chat_name: &str) -> EndpointConfig {
    EndpointConfig {
        chat_url: Some(format!("http://{receiver}/chat/{chat_name}")),
        ..endpoint(receiver, name, SECRET)
    }
}

/// The connector's configuration: its delivery log and journal in `dir`,
/// gRPC and HTTP on free loopback ports, `endpoints`, each of `queues`
/// posting to the endpoints it names, up to `max_attempts` tries of a
/// delivery with short backoffs.
pub fn connector_config(
    dir: &std::path::Path,
    endpoints: Vec<(&str, EndpointConfig)>,
    queues: &[(&str, &[&str])],
    max_attempts: u32,
) -> WebhookConfig {
    let mut config = WebhookConfig {
        delivery_log: dir.join("deliveries.sqlite3"),
        store: StoreConfig::at(Some(dir.join("data"))),
        endpoints: endpoints
            .into_iter()
            .map(|(name, config)| (name.to_owned(), config))
            .collect(),
        queues: queues
            .iter()
            .map(|(queue, names)| {
                (
                    (*queue).to_owned(),
                    names.iter().map(|n| (*n).to_owned()).collect(),
                )
            })
            .collect(),
        retry: RetryConfig {
            max_attempts,
            initial_backoff: Duration::from_millis(20),
            max_backoff: Duration::from_millis(80),
            max_retry_after: Duration::from_secs(2),
        },
        ..Default::default()
    };
    config.server.grpc_listen = "127.0.0.1:0".parse().expect("address");
    config.server.http_listen = Some("127.0.0.1:0".parse().expect("address"));
    config
}

static NEXT_REPORT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// Posts a report as the receiving system would, signed with `secret` per
/// Standard Webhooks (by this module, not the connector's own signing);
/// the status it is answered with.
pub async fn post_report(url: &str, body: &str, secret: &str) -> u16 {
    post_signed(url, body, secret).await.0
}

/// Posts `body` to `url` signed with `secret` as a platform does; the
/// status and the answer's body.
pub async fn post_signed(url: &str, body: &str, secret: &str) -> (u16, String) {
    let id = format!(
        "rep_{}",
        NEXT_REPORT.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
    );
    let timestamp = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .expect("clock")
        .as_secs();
    let mut mac = Hmac::<Sha256>::new_from_slice(&secret_bytes(secret)).expect("key");
    mac.update(format!("{id}.{timestamp}.{body}").as_bytes());
    let signature = format!("v1,{}", STANDARD.encode(mac.finalize().into_bytes()));
    let response = reqwest::Client::new()
        .post(url)
        .header("content-type", "application/json")
        .header("webhook-id", id)
        .header("webhook-timestamp", timestamp.to_string())
        .header("webhook-signature", signature)
        .body(body.to_owned())
        .send()
        .await
        .expect("the request is answered");
    let status = response.status().as_u16();
    (status, response.text().await.unwrap_or_default())
}

/// A connector process: its own runtime, dropped at once to crash it.
pub struct Process {
    connector: InProcess,
    pub grpc: SocketAddr,
    pub http: SocketAddr,
}

impl Process {
    pub fn start(config: WebhookConfig) -> Process {
        let (connector, (grpc, http)) = InProcess::start(move || {
            let config = config.clone();
            async move {
                let bound = baton_connector_webhook::bind(config).await?;
                let addresses = (bound.grpc_addr, bound.http_addr);
                Ok((addresses, bound.serve(std::future::pending())))
            }
        });
        Process {
            connector,
            grpc,
            http,
        }
    }

    /// Ends the process as kill -9 would: every task dropped where it is.
    pub fn crash(self) {
        self.connector.crash();
    }
}

/// The same process again: the same addresses and journal.
pub fn again(config: &WebhookConfig, first: &Process) -> WebhookConfig {
    let mut config = config.clone();
    config.server.grpc_listen = first.grpc;
    config.server.http_listen = Some(first.http);
    config
}
