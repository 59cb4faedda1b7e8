//! A fake OpenAI-compatible endpoint on an ephemeral loopback port. Every
//! request is checked against the chat-completions request contract
//! ([`contract`]); a request that breaks it gets OpenAI's 400 and is
//! recorded. Otherwise the endpoint answers as its [`Behaviour`] says.

#![allow(dead_code)] // each test binary uses a part of it

pub mod contract;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

use contract::ApiError;

/// What the endpoint does with a request that meets the contract.
#[derive(Debug, Clone)]
pub enum Behaviour {
    /// A chat completion whose content is the verdict decided from the user
    /// message: `explicit_request` when it says "speak to a person",
    /// `distress` when it says "furious".
    Decide,
    /// Waits, then decides.
    Sleep(Duration),
    /// This status, with an OpenAI error body.
    Status(u16),
    /// A well-formed chat completion with this `choices[0].message.content`.
    Content(Value),
    /// This body, as `application/json`, status 200.
    Body(String),
}

#[derive(Debug)]
struct Shared {
    behaviour: Behaviour,
    api_key: Option<String>,
    requests: AtomicUsize,
    paths: Mutex<Vec<String>>,
    bodies: Mutex<Vec<Value>>,
    rejections: Mutex<Vec<Value>>,
}

pub struct FakeOpenAi {
    pub addr: SocketAddr,
    shared: Arc<Shared>,
}

impl FakeOpenAi {
    /// Starts the endpoint; `api_key` is the key it demands, if any.
    pub async fn start(behaviour: Behaviour, api_key: Option<&str>) -> Self {
        let shared = Arc::new(Shared {
            behaviour,
            api_key: api_key.map(str::to_owned),
            requests: AtomicUsize::new(0),
            paths: Mutex::default(),
            bodies: Mutex::default(),
            rejections: Mutex::default(),
        });
        let app = Router::new()
            .route("/v1/chat/completions", post(chat_completions))
            .route("/chat/completions", post(chat_completions))
            .fallback(not_found)
            .with_state(shared.clone());
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind loopback");
        let addr = listener.local_addr().expect("local address");
        tokio::spawn(async move {
            axum::serve(listener, app)
                .await
                .expect("fake endpoint serves");
        });
        Self { addr, shared }
    }

    /// The base URL, as a tenant would configure it.
    pub fn base_url(&self) -> String {
        format!("http://{}/v1", self.addr)
    }

    /// Requests that reached the endpoint, whatever became of them.
    pub fn requests(&self) -> usize {
        self.shared.requests.load(Ordering::SeqCst)
    }

    pub fn paths(&self) -> Vec<String> {
        lock(&self.shared.paths).clone()
    }

    /// Bodies of the requests that met the contract.
    pub fn bodies(&self) -> Vec<Value> {
        lock(&self.shared.bodies).clone()
    }

    /// The error bodies of the requests that broke it.
    pub fn rejections(&self) -> Vec<Value> {
        lock(&self.shared.rejections).clone()
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|p| p.into_inner())
}

async fn chat_completions(
    State(shared): State<Arc<Shared>>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    shared.requests.fetch_add(1, Ordering::SeqCst);
    lock(&shared.paths).push(uri.path().to_owned());
    let checked = contract::check_headers(&headers, shared.api_key.as_deref())
        .and_then(|()| contract::check_body(&body));
    let request = match checked {
        Ok(request) => request,
        Err(error) => {
            lock(&shared.rejections).push(error.body());
            return error_response(&error);
        }
    };
    let model = request.get("model").cloned().unwrap_or(Value::Null);
    let user_text = request["messages"]
        .as_array()
        .and_then(|m| m.iter().rev().find(|m| m["role"] == "user"))
        .and_then(|m| m["content"].as_str())
        .unwrap_or("")
        .to_lowercase();
    lock(&shared.bodies).push(Value::Object(request));
    let content = match &shared.behaviour {
        Behaviour::Decide => decide(&user_text),
        Behaviour::Sleep(pause) => {
            tokio::time::sleep(*pause).await;
            decide(&user_text)
        }
        Behaviour::Status(status) => {
            let status = StatusCode::from_u16(*status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            let body = json!({"error": {
                "message": "The server had an error while processing your request.",
                "type": "server_error", "param": null, "code": null,
            }});
            return (status, axum::Json(body)).into_response();
        }
        Behaviour::Content(content) => content.clone(),
        Behaviour::Body(body) => {
            return ([(header::CONTENT_TYPE, "application/json")], body.clone()).into_response();
        }
    };
    axum::Json(completion(model, content)).into_response()
}

async fn not_found(State(shared): State<Arc<Shared>>, uri: Uri) -> Response {
    shared.requests.fetch_add(1, Ordering::SeqCst);
    lock(&shared.paths).push(uri.path().to_owned());
    let error = ApiError {
        status: StatusCode::NOT_FOUND,
        message: format!("Invalid URL (POST {})", uri.path()),
        param: None,
        code: None,
    };
    lock(&shared.rejections).push(error.body());
    error_response(&error)
}

fn error_response(error: &ApiError) -> Response {
    (error.status, axum::Json(error.body())).into_response()
}

fn decide(user_text: &str) -> Value {
    let verdict = json!({
        "explicit_request": user_text.contains("speak to a person"),
        "distress": user_text.contains("furious"),
        "reason": "fake judge: keyword match",
    });
    Value::String(verdict.to_string())
}

/// A `CreateChatCompletionResponse` with one choice.
pub fn completion(model: Value, content: Value) -> Value {
    let created = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    json!({
        "id": "chatcmpl-fake",
        "object": "chat.completion",
        "created": created,
        "model": model,
        "choices": [{
            "index": 0,
            "message": {"role": "assistant", "content": content, "refusal": null},
            "logprobs": null,
            "finish_reason": "stop",
        }],
        "usage": {"prompt_tokens": 120, "completion_tokens": 20, "total_tokens": 140},
    })
}

/// A raw HTTP/1.1 endpoint that answers 200 with a chunked body that never
/// ends (no Content-Length), so only a limit enforced while reading stops
/// the client. Returns its address and the bytes it managed to write.
pub async fn endless_endpoint() -> (SocketAddr, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind loopback");
    let addr = listener.local_addr().expect("local address");
    let written = Arc::new(AtomicUsize::new(0));
    let counter = written.clone();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            let counter = counter.clone();
            tokio::spawn(async move {
                let mut request = vec![0; 16 * 1024];
                let _ = stream.read(&mut request).await;
                let head = "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ntransfer-encoding: chunked\r\n\r\n";
                if stream.write_all(head.as_bytes()).await.is_err() {
                    return;
                }
                let chunk = format!("2000\r\n{}\r\n", " ".repeat(0x2000));
                // Until the client hangs up, or far past any sane limit.
                for _ in 0..4096 {
                    if stream.write_all(chunk.as_bytes()).await.is_err() {
                        return;
                    }
                    counter.fetch_add(0x2000, Ordering::SeqCst);
                }
            });
        }
    });
    (addr, written)
}
