//! The Twilio connector against a local server that implements the part of
//! Twilio's REST API and call behaviour it uses, as Twilio documents it:
//!
//! - `POST /2010-04-01/Accounts/{AccountSid}/Calls/{CallSid}.json`, HTTP
//!   Basic auth with the account SID and auth token or an API key SID and
//!   secret (401, error 20003, otherwise), form-encoded parameters of the
//!   Calls resource only, `Twiml` of at most 4000 characters; 404 with
//!   error 20404 for an unknown call, 400 with 21220 for a call no longer in
//!   progress, 400 with 12100 for TwiML that does not parse or uses verbs,
//!   nouns or attributes Twilio does not have; 429 with 20429 beyond the
//!   account's rate limit. Errors carry Twilio's JSON error body.
//! - then it plays the call as Twilio would: the `<Number>`/`<Sip>` status
//!   callbacks for the events asked for, Dial's `action`, or Enqueue's
//!   `action` with the `QueueResult`, each POSTed form-encoded with a valid
//!   `X-Twilio-Signature`, and checks the TwiML the connector answers.
//!   SIP URI header problems Twilio reports as warnings (13252 header name,
//!   21227 headers part of 1024 characters or more) are recorded.

use std::collections::{BTreeMap, HashMap};
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
use baton_connector_twilio::TwilioConfig;
use baton_connector_twilio::config::{CallbackConfig, Credentials};
use baton_connector_twilio::signature;
use baton_proto::connector::v1::connector_service_client::ConnectorServiceClient;
use baton_proto::connector::v1::{
    ContextEnvelope, ContextMechanism, ContextPayload, ContextReference, StartTransferRequest,
    StartTransferResponse, TransferEventKind,
};
use baton_proto::types::v1::{
    CallReference, Channel, Conversation, FailureReason, HandoffContext, QueueTarget, Target,
    TransferMode, target,
};
use serde_json::{Value, json};

const ACCOUNT_SID: &str = "AC0123456789abcdef0123456789abcdef";
const AUTH_TOKEN: &str = "auth-token-of-the-test-account";
const API_KEY_SID: &str = "SKfedcba9876543210fedcba9876543210";
const API_KEY_SECRET: &str = "api-key-secret-of-the-test-account";
const WORKFLOW_SID: &str = "WW00112233445566778899aabbccddeeff";
const ALLOWED_CALL_PARAMS: &[&str] = &[
    "Twiml",
    "Url",
    "Method",
    "Status",
    "FallbackUrl",
    "FallbackMethod",
    "StatusCallback",
    "StatusCallbackMethod",
    "TimeLimit",
];

/// How a simulated destination behaves once the call is sent to it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    Answer,
    Busy,
    /// Rings until Dial's timeout.
    NoAnswer,
    /// A Flex agent accepts the task and the call is bridged.
    Bridged,
    /// Nothing happens (the callbacks come from the test).
    Silent,
}

/// One valid call update.
#[derive(Debug, Clone)]
struct Update {
    call_sid: String,
    twiml: String,
    instruction: Instruction,
}

impl Update {
    /// The task attributes of an Enqueue, as TaskRouter sends them back.
    fn instruction_attributes(&self) -> String {
        match &self.instruction {
            Instruction::Enqueue { attributes, .. } => attributes.to_string(),
            _ => String::new(),
        }
    }
}

/// What a valid TwiML document asks for.
#[derive(Debug, Clone, PartialEq)]
enum Instruction {
    Dial {
        target: String,
        action: Option<String>,
        status_callback: Option<String>,
        events: Vec<String>,
    },
    Enqueue {
        workflow_sid: String,
        action: Option<String>,
        wait_url: Option<String>,
        attributes: Value,
        priority: u32,
    },
    /// Pause, Say, Hangup…: nothing to simulate.
    Other,
}

/// One callback POSTed to the connector and how it answered.
#[derive(Debug, Clone)]
struct Delivered {
    url: String,
    params: Vec<(String, String)>,
    status: u16,
    body: String,
}

#[derive(Debug, Default)]
struct Twilio {
    calls: Mutex<HashMap<String, &'static str>>,
    outcomes: Mutex<BTreeMap<String, Outcome>>,
    updates: Mutex<Vec<Update>>,
    delivered: Mutex<Vec<Delivered>>,
    warnings: Mutex<Vec<String>>,
    /// Account rate limit: (per second, bucket capacity) and the bucket.
    rate: Option<(f64, f64)>,
    bucket: Mutex<Option<(f64, std::time::Instant)>>,
    throttled: Mutex<u32>,
    /// The TaskRouter workspace's Event Callback URL.
    event_callback_url: Mutex<Option<String>>,
}

impl Twilio {
    /// The callbacks delivered so far, once at least `count` were (the
    /// connector may report the outcome before Twilio records its answer).
    async fn delivered_at_least(&self, count: usize) -> Vec<Delivered> {
        for _ in 0..400 {
            let delivered = self.delivered();
            if delivered.len() >= count {
                return delivered;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        panic!("fewer than {count} callbacks were delivered");
    }

    fn updates(&self) -> Vec<Update> {
        self.updates.lock().expect("lock").clone()
    }

    fn delivered(&self) -> Vec<Delivered> {
        self.delivered.lock().expect("lock").clone()
    }
}

fn error(status: StatusCode, code: u32, message: &str) -> Response {
    (
        status,
        axum::Json(json!({
            "code": code,
            "message": message,
            "more_info": format!("https://www.twilio.com/docs/errors/{code}"),
            "status": status.as_u16(),
        })),
    )
        .into_response()
}

fn authenticated(headers: &HeaderMap) -> bool {
    let Some(credentials) = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Basic "))
        .and_then(|v| STANDARD.decode(v).ok())
        .and_then(|v| String::from_utf8(v).ok())
    else {
        return false;
    };
    let Some((user, password)) = credentials.split_once(':') else {
        return false;
    };
    (user == ACCOUNT_SID && password == AUTH_TOKEN)
        || (user == API_KEY_SID && password == API_KEY_SECRET)
}

fn is_absolute_url(url: &str) -> bool {
    url.starts_with("http://") || url.starts_with("https://")
}

fn is_e164(number: &str) -> bool {
    number.len() >= 3
        && number.len() <= 16
        && number.starts_with('+')
        && number[1..].bytes().all(|b| b.is_ascii_digit())
        && !number[1..].starts_with('0')
}

fn check_attributes(node: roxmltree::Node, allowed: &[&str]) -> Result<(), String> {
    for attribute in node.attributes() {
        if !allowed.contains(&attribute.name()) {
            return Err(format!(
                "<{}> has no attribute {}",
                node.tag_name().name(),
                attribute.name()
            ));
        }
        if attribute.name().ends_with("ethod") && !matches!(attribute.value(), "GET" | "POST") {
            return Err(format!("{} must be GET or POST", attribute.name()));
        }
        if matches!(attribute.name(), "action" | "statusCallback" | "waitUrl")
            && !is_absolute_url(attribute.value())
        {
            return Err(format!("{} must be an absolute URL here", attribute.name()));
        }
    }
    Ok(())
}

fn elements<'a>(node: roxmltree::Node<'a, 'a>) -> Vec<roxmltree::Node<'a, 'a>> {
    node.children().filter(|n| n.is_element()).collect()
}

/// Validates a TwiML document as Twilio's parser would for these verbs;
/// records SIP URI header warnings.
fn parse_twiml(twiml: &str, warnings: &Mutex<Vec<String>>) -> Result<Instruction, String> {
    let document = roxmltree::Document::parse(twiml).map_err(|e| format!("not XML: {e}"))?;
    let root = document.root_element();
    if root.tag_name().name() != "Response" || root.attributes().len() > 0 {
        return Err("the root element must be <Response>".into());
    }
    let verbs = elements(root);
    let mut instruction = Instruction::Other;
    for verb in &verbs {
        match verb.tag_name().name() {
            "Dial" => {
                check_attributes(
                    *verb,
                    &[
                        "action",
                        "method",
                        "timeout",
                        "callerId",
                        "answerOnBridge",
                        "hangupOnStar",
                        "timeLimit",
                        "record",
                        "ringTone",
                    ],
                )?;
                if let Some(timeout) = verb.attribute("timeout") {
                    let seconds: u32 = timeout.parse().map_err(|_| "timeout is not a number")?;
                    if !(5..=600).contains(&seconds) {
                        return Err("timeout must be 5 to 600".into());
                    }
                }
                if let Some(caller_id) = verb.attribute("callerId")
                    && !is_e164(caller_id)
                {
                    return Err("callerId must be E.164".into());
                }
                let nouns = elements(*verb);
                let [noun] = nouns.as_slice() else {
                    return Err("<Dial> needs exactly one noun here".into());
                };
                let target = noun.text().unwrap_or_default().trim().to_owned();
                match noun.tag_name().name() {
                    "Number" => {
                        check_attributes(
                            *noun,
                            &[
                                "statusCallbackEvent",
                                "statusCallback",
                                "statusCallbackMethod",
                                "sendDigits",
                                "url",
                                "method",
                            ],
                        )?;
                        if !is_e164(&target) {
                            return Err(format!("<Number> {target:?} is not E.164"));
                        }
                    }
                    "Sip" => {
                        check_attributes(
                            *noun,
                            &[
                                "statusCallbackEvent",
                                "statusCallback",
                                "statusCallbackMethod",
                                "username",
                                "password",
                                "url",
                                "method",
                            ],
                        )?;
                        if !(target.starts_with("sip:") || target.starts_with("sips:")) {
                            return Err("<Sip> must hold a sip: or sips: URI".into());
                        }
                        if let Some((_, headers)) = target.split_once('?') {
                            if headers.len() >= 1024 {
                                warnings.lock().expect("lock").push("21227".into());
                            }
                            for pair in headers.split('&') {
                                let name = pair.split('=').next().unwrap_or_default();
                                let valid_name = name.to_ascii_lowercase().starts_with("x-")
                                    || matches!(
                                        name,
                                        "User-to-User"
                                            | "Remote-Party-ID"
                                            | "P-Preferred-Identity"
                                            | "P-Called-Party-ID"
                                    );
                                if !valid_name
                                    || !name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
                                {
                                    warnings.lock().expect("lock").push(format!("13252 {name}"));
                                }
                            }
                        }
                    }
                    other => return Err(format!("<{other}> is not a noun used here")),
                }
                let events: Vec<String> = noun
                    .attribute("statusCallbackEvent")
                    .unwrap_or("completed")
                    .split_whitespace()
                    .map(str::to_owned)
                    .collect();
                if let Some(bad) = events.iter().find(|e| {
                    !matches!(
                        e.as_str(),
                        "initiated" | "ringing" | "answered" | "completed"
                    )
                }) {
                    return Err(format!("statusCallbackEvent {bad:?} is not an event"));
                }
                instruction = Instruction::Dial {
                    target,
                    action: verb.attribute("action").map(str::to_owned),
                    status_callback: noun.attribute("statusCallback").map(str::to_owned),
                    events,
                };
            }
            "Enqueue" => {
                check_attributes(
                    *verb,
                    &[
                        "action",
                        "method",
                        "waitUrl",
                        "waitUrlMethod",
                        "workflowSid",
                    ],
                )?;
                let tasks = elements(*verb);
                let workflow_sid = verb.attribute("workflowSid").unwrap_or_default().to_owned();
                let (attributes, priority) = match tasks.as_slice() {
                    [] => (Value::Null, 0),
                    [task] if task.tag_name().name() == "Task" => {
                        check_attributes(*task, &["priority", "timeout"])?;
                        if !(workflow_sid.len() == 34 && workflow_sid.starts_with("WW")) {
                            return Err(
                                "<Task> needs the workflowSid of a TaskRouter workflow".into()
                            );
                        }
                        let attributes: Value =
                            serde_json::from_str(task.text().unwrap_or_default())
                                .map_err(|_| "<Task> must hold a JSON object")?;
                        if !attributes.is_object() {
                            return Err("<Task> must hold a JSON object".into());
                        }
                        let priority = task
                            .attribute("priority")
                            .map_or(Ok(0), str::parse)
                            .map_err(|_| "priority is not a number")?;
                        (attributes, priority)
                    }
                    _ => return Err("<Enqueue> holds at most one <Task>".into()),
                };
                instruction = Instruction::Enqueue {
                    workflow_sid,
                    action: verb.attribute("action").map(str::to_owned),
                    wait_url: verb.attribute("waitUrl").map(str::to_owned),
                    attributes,
                    priority,
                };
            }
            "Pause" => check_attributes(*verb, &["length"])?,
            "Hangup" | "Leave" => check_attributes(*verb, &[])?,
            "Say" => check_attributes(*verb, &["voice", "language", "loop"])?,
            "Play" => check_attributes(*verb, &["loop", "digits"])?,
            other => return Err(format!("<{other}> is not a TwiML verb")),
        }
    }
    Ok(instruction)
}

async fn update_call(
    State(twilio): State<Arc<Twilio>>,
    Path((account, call)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if !authenticated(&headers) {
        return error(StatusCode::UNAUTHORIZED, 20003, "Authenticate");
    }
    let resource = format!("/2010-04-01/Accounts/{account}/Calls/{call}");
    let Some(call_sid) = call.strip_suffix(".json") else {
        return error(
            StatusCode::NOT_FOUND,
            20404,
            &format!("The requested resource {resource} was not found"),
        );
    };
    if account != ACCOUNT_SID {
        return error(
            StatusCode::NOT_FOUND,
            20404,
            &format!("The requested resource {resource} was not found"),
        );
    }
    if let Some((rate, capacity)) = twilio.rate {
        let mut bucket = twilio.bucket.lock().expect("lock");
        let now = std::time::Instant::now();
        let (tokens, last) = bucket.get_or_insert((capacity, now));
        *tokens = (*tokens + now.duration_since(*last).as_secs_f64() * rate).min(capacity);
        *last = now;
        if *tokens < 1.0 {
            *twilio.throttled.lock().expect("lock") += 1;
            return error(StatusCode::TOO_MANY_REQUESTS, 20429, "Too Many Requests");
        }
        *tokens -= 1.0;
    }
    if headers.get("content-type").and_then(|v| v.to_str().ok())
        != Some("application/x-www-form-urlencoded")
    {
        return error(
            StatusCode::BAD_REQUEST,
            20001,
            "Parameters must be form-encoded (application/x-www-form-urlencoded)",
        );
    }
    let Ok(params) = serde_urlencoded::from_bytes::<Vec<(String, String)>>(&body) else {
        return error(StatusCode::BAD_REQUEST, 20001, "Invalid form encoding");
    };
    if let Some((name, _)) = params
        .iter()
        .find(|(name, _)| !ALLOWED_CALL_PARAMS.contains(&name.as_str()))
    {
        return error(
            StatusCode::BAD_REQUEST,
            20001,
            &format!("Invalid parameter: {name}"),
        );
    }
    let Some(twiml) = params
        .iter()
        .find(|(name, _)| name == "Twiml")
        .map(|(_, v)| v.clone())
    else {
        return error(
            StatusCode::BAD_REQUEST,
            20001,
            "One of Twiml, Url or Status is required",
        );
    };
    if twiml.chars().count() > 4000 {
        return error(
            StatusCode::BAD_REQUEST,
            20001,
            "Twiml must be 4000 characters or fewer",
        );
    }
    match twilio.calls.lock().expect("lock").get(call_sid) {
        None => {
            return error(
                StatusCode::NOT_FOUND,
                20404,
                &format!("The requested resource {resource} was not found"),
            );
        }
        Some(&"completed") => {
            return error(
                StatusCode::BAD_REQUEST,
                21220,
                "Call is not in-progress. Cannot redirect.",
            );
        }
        Some(_) => {}
    }
    let instruction = match parse_twiml(&twiml, &twilio.warnings) {
        Ok(instruction) => instruction,
        Err(reason) => {
            return error(
                StatusCode::BAD_REQUEST,
                12100,
                &format!("Document parse failure: {reason}"),
            );
        }
    };
    twilio.updates.lock().expect("lock").push(Update {
        call_sid: call_sid.to_owned(),
        twiml,
        instruction: instruction.clone(),
    });
    tokio::spawn(play(twilio.clone(), call_sid.to_owned(), instruction));
    (
        StatusCode::OK,
        axum::Json(json!({
            "sid": call_sid,
            "account_sid": ACCOUNT_SID,
            "api_version": "2010-04-01",
            "status": "in-progress",
            "direction": "inbound",
            "uri": resource,
        })),
    )
        .into_response()
}

/// POSTs one signed callback, as Twilio does, and records the answer.
async fn callback(twilio: &Twilio, url: &str, params: Vec<(String, String)>) {
    let signature = signature::sign(AUTH_TOKEN, url, &params);
    let response = reqwest::Client::new()
        .post(url)
        .header("x-twilio-signature", signature)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(serde_urlencoded::to_string(&params).expect("form"))
        .send()
        .await
        .expect("the connector answers callbacks");
    let status = response.status().as_u16();
    let body = response.text().await.unwrap_or_default();
    twilio.delivered.lock().expect("lock").push(Delivered {
        url: url.to_owned(),
        params,
        status,
        body,
    });
}

fn form(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

/// Plays the call as Twilio would after a successful update.
async fn play(twilio: Arc<Twilio>, call_sid: String, instruction: Instruction) {
    match instruction {
        Instruction::Dial {
            target,
            action,
            status_callback,
            events,
        } => {
            let key = target.split('?').next().unwrap_or_default().to_owned();
            let outcome = twilio
                .outcomes
                .lock()
                .expect("lock")
                .get(&key)
                .copied()
                .unwrap_or(Outcome::Answer);
            if outcome == Outcome::Silent {
                return;
            }
            let child = format!("CA{}", "f".repeat(32));
            let progress: &[(&str, &str)] = match outcome {
                Outcome::Busy => &[
                    ("initiated", "initiated"),
                    ("ringing", "ringing"),
                    ("completed", "busy"),
                ],
                Outcome::NoAnswer => &[
                    ("initiated", "initiated"),
                    ("ringing", "ringing"),
                    ("completed", "no-answer"),
                ],
                _ => &[
                    ("initiated", "initiated"),
                    ("ringing", "ringing"),
                    ("answered", "in-progress"),
                    ("completed", "completed"),
                ],
            };
            if let Some(url) = &status_callback {
                for (sequence, (event, status)) in progress.iter().enumerate() {
                    if !events.iter().any(|e| e == event) {
                        continue;
                    }
                    let sequence = sequence.to_string();
                    callback(
                        &twilio,
                        url,
                        form(&[
                            ("AccountSid", ACCOUNT_SID),
                            ("ApiVersion", "2010-04-01"),
                            ("CallSid", &child),
                            ("ParentCallSid", &call_sid),
                            ("CallStatus", status),
                            ("CallbackSource", "call-progress-events"),
                            ("Direction", "outbound-dial"),
                            ("SequenceNumber", &sequence),
                            ("To", &key),
                        ]),
                    )
                    .await;
                }
            }
            if let Some(url) = &action {
                let dial_status = match outcome {
                    Outcome::Busy => "busy",
                    Outcome::NoAnswer => "no-answer",
                    _ => "completed",
                };
                callback(
                    &twilio,
                    url,
                    form(&[
                        ("AccountSid", ACCOUNT_SID),
                        ("CallSid", &call_sid),
                        ("CallStatus", "in-progress"),
                        ("DialCallSid", &child),
                        ("DialCallStatus", dial_status),
                        ("DialCallDuration", "42"),
                    ]),
                )
                .await;
            }
        }
        Instruction::Enqueue {
            action,
            wait_url,
            attributes,
            ..
        } => {
            let queue = attributes["queue"].as_str().unwrap_or_default().to_owned();
            let outcome = twilio
                .outcomes
                .lock()
                .expect("lock")
                .get(&queue)
                .copied()
                .unwrap_or(Outcome::Bridged);
            if outcome == Outcome::Silent {
                return;
            }
            // The caller waits: Twilio requests the waitUrl with the
            // queue's figures and plays what it answers.
            if let Some(url) = &wait_url {
                callback(
                    &twilio,
                    url,
                    form(&[
                        ("AccountSid", ACCOUNT_SID),
                        ("CallSid", &call_sid),
                        ("QueueSid", "QU00000000000000000000000000000000"),
                        ("QueuePosition", "2"),
                        ("QueueTime", "0"),
                        ("AvgQueueTime", "45"),
                        ("CurrentQueueSize", "2"),
                        ("MaxQueueSize", "1000"),
                    ]),
                )
                .await;
            }
            // An agent is offered the task and accepts it: the workspace's
            // events, then the call leaves the queue bridged.
            let events_url = twilio.event_callback_url.lock().expect("lock").clone();
            if let Some(url) = events_url {
                let task_attributes = attributes.to_string();
                for event in ["reservation.created", "reservation.accepted"] {
                    callback(
                        &twilio,
                        &url,
                        form(&[
                            ("AccountSid", ACCOUNT_SID),
                            ("WorkspaceSid", "WS00000000000000000000000000000000"),
                            ("EventType", event),
                            ("ResourceType", "reservation"),
                            ("TaskSid", "WT00000000000000000000000000000000"),
                            ("ReservationSid", "WR00000000000000000000000000000000"),
                            ("TaskAttributes", &task_attributes),
                            ("Timestamp", "1700000000"),
                        ]),
                    )
                    .await;
                }
            }
            if let Some(url) = &action {
                callback(
                    &twilio,
                    url,
                    form(&[
                        ("AccountSid", ACCOUNT_SID),
                        ("CallSid", &call_sid),
                        ("QueueResult", "bridged"),
                        ("QueueSid", "QU00000000000000000000000000000000"),
                        ("QueueTime", "12"),
                    ]),
                )
                .await;
            }
        }
        Instruction::Other => {}
    }
}

async fn start_twilio(twilio: Arc<Twilio>) -> SocketAddr {
    let app = Router::new()
        .route(
            "/2010-04-01/Accounts/{account}/Calls/{call}",
            post(update_call),
        )
        .with_state(twilio);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("binds");
    let addr = listener.local_addr().expect("address");
    tokio::spawn(async move { axum::serve(listener, app).await });
    addr
}

fn call_sid(n: u32) -> String {
    format!("CA{n:032x}")
}

fn twilio(
    calls: &[(String, &'static str)],
    outcomes: &[(&str, Outcome)],
    rate: Option<(f64, f64)>,
) -> Arc<Twilio> {
    Arc::new(Twilio {
        calls: Mutex::new(calls.iter().cloned().collect()),
        outcomes: Mutex::new(
            outcomes
                .iter()
                .map(|(k, v)| ((*k).to_owned(), *v))
                .collect(),
        ),
        rate,
        ..Default::default()
    })
}

fn config(api: SocketAddr) -> TwilioConfig {
    TwilioConfig {
        listen: "127.0.0.1:0".parse().expect("address"),
        api_base: format!("http://{api}"),
        credentials: Credentials {
            account_sid: ACCOUNT_SID.into(),
            auth_token: AUTH_TOKEN.into(),
            api_key_sid: Some(API_KEY_SID.into()),
            api_key_secret: Some(API_KEY_SECRET.into()),
        },
        callbacks: CallbackConfig {
            listen: "127.0.0.1:0".parse().expect("address"),
            public_url: None,
        },
        rate_per_second: 50.0,
        workflow_sid: Some(WORKFLOW_SID.into()),
        ..Default::default()
    }
}

async fn start_connector(config: TwilioConfig) -> SocketAddr {
    start_connector_with_callbacks(config).await.0
}

/// The connector's gRPC and callback addresses.
async fn start_connector_with_callbacks(config: TwilioConfig) -> (SocketAddr, SocketAddr) {
    let bound = baton_connector_twilio::bind(config).await.expect("binds");
    let grpc = (bound.grpc_addr, bound.callbacks_addr);
    tokio::spawn(bound.serve(std::future::pending()));
    grpc
}

fn request(handoff_id: &str, call: &str, target: target::Kind) -> StartTransferRequest {
    StartTransferRequest {
        handoff_id: handoff_id.into(),
        attempt: 1,
        target: Some(Target { kind: Some(target) }),
        mode: TransferMode::Warm as i32,
        envelope: Some(ContextEnvelope {
            reference: Some(ContextReference {
                handoff_id: handoff_id.into(),
                token: "signed.token".into(),
                context_url: format!("https://baton.example/v1/handoffs/{handoff_id}/context?token=t"),
                screen_pop_url: format!("https://baton.example/v1/handoffs/{handoff_id}/screen-pop?token=t"),
            }),
            conversation: Some(Conversation {
                channel: Channel::Voice as i32,
                call: Some(CallReference {
                    platform_contact_id: call.into(),
                    caller_number: "+14155550123".into(),
                    ..Default::default()
                }),
                language: "en-US".into(),
            }),
            context: Some(HandoffContext {
                priority: 7,
                ..Default::default()
            }),
            payloads: vec![
                ContextPayload {
                    mechanism: ContextMechanism::TaskAttributes as i32,
                    content: r#"{"token":"signed.token","intent":"billing.dispute","summary":"Charged twice in March","entities":{"issue_type":"double charge"}}"#.into(),
                    omitted_fields: vec!["entities.account_number".into()],
                },
                ContextPayload {
                    mechanism: ContextMechanism::SipHeaders as i32,
                    content: r#"{"token":"signed.token","intent":"billing.dispute","reason":"explicit_request","language":"en-US","priority":7}"#.into(),
                    omitted_fields: vec![],
                },
            ],
            ..Default::default()
        }),
        deadline: Some((SystemTime::now() + Duration::from_secs(30)).into()),
    }
}

async fn transfer(grpc: SocketAddr, request: StartTransferRequest) -> Vec<StartTransferResponse> {
    let mut client = ConnectorServiceClient::connect(format!("http://{grpc}"))
        .await
        .expect("connects");
    let mut stream = client
        .start_transfer(request)
        .await
        .expect("StartTransfer accepted")
        .into_inner();
    let mut events = Vec::new();
    while let Some(event) = tokio::time::timeout(Duration::from_secs(35), stream.message())
        .await
        .expect("an event before the deadline")
        .expect("stream healthy")
    {
        events.push(event);
    }
    events
}

fn kinds(events: &[StartTransferResponse]) -> Vec<TransferEventKind> {
    events
        .iter()
        .filter_map(|e| TransferEventKind::try_from(e.kind).ok())
        .collect()
}

fn queue(name: &str) -> target::Kind {
    target::Kind::Queue(QueueTarget {
        name: name.into(),
        skills: vec!["disputes".into()],
    })
}

#[tokio::test]
async fn a_queue_transfer_enqueues_a_flex_task_with_the_context_and_connects_when_bridged() {
    let call = call_sid(1);
    let twilio = twilio(&[(call.clone(), "in-progress")], &[], None);
    let api = start_twilio(twilio.clone()).await;
    let (grpc, callbacks) = start_connector_with_callbacks(config(api)).await;
    *twilio.event_callback_url.lock().expect("lock") =
        Some(format!("http://{callbacks}/v1/taskrouter/events"));

    let events = transfer(grpc, request("h-queue", &call, queue("billing"))).await;
    assert_eq!(
        kinds(&events),
        [
            TransferEventKind::Queued,
            TransferEventKind::Offered,
            TransferEventKind::Answered,
            TransferEventKind::ContextDelivered,
            TransferEventKind::Connected,
            TransferEventKind::Completed
        ]
    );
    let updates = twilio.updates();
    assert_eq!(updates.len(), 1);
    assert_eq!(updates[0].call_sid, call);
    let Instruction::Enqueue {
        workflow_sid,
        attributes,
        priority,
        ..
    } = &updates[0].instruction
    else {
        panic!("not an Enqueue: {}", updates[0].twiml);
    };
    assert_eq!(workflow_sid, WORKFLOW_SID);
    assert_eq!(*priority, 7);
    assert_eq!(attributes["summary"], "Charged twice in March");
    assert_eq!(attributes["baton_handoff_id"], "h-queue");
    assert_eq!(attributes["queue"], "billing");
    assert_eq!(attributes["skills"], json!(["disputes"]));
    assert!(
        attributes["baton_screen_pop_url"]
            .as_str()
            .expect("screen pop")
            .contains("/screen-pop")
    );
    assert!(
        !updates[0].twiml.contains("+14155550123"),
        "the caller's number is sensitive"
    );
    // The agent's acceptance connected the transfer, not the call's end.
    let connected = events
        .iter()
        .find(|e| e.kind == TransferEventKind::Connected as i32)
        .expect("connected");
    assert!(
        connected.detail.contains("bridged to the agent"),
        "{}",
        connected.detail
    );
    // The call ends after the bridged conversation instead of holding.
    let delivered = twilio.delivered_at_least(4).await;
    assert_eq!(delivered.len(), 4);
    assert!(delivered.iter().all(|d| d.status == 200), "{delivered:?}");
    assert!(
        delivered[3].body.contains("<Hangup/>"),
        "{}",
        delivered[3].body
    );
    // The wait request's figures, and TwiML fit for a waiting caller.
    let queued = &events[0];
    assert_eq!(queued.queue_position, 2);
    assert_eq!(
        queued.estimated_wait,
        Some(prost_types::Duration {
            seconds: 45,
            nanos: 0
        })
    );
    assert!(matches!(
        parse_twiml(&delivered[0].body, &Mutex::default()),
        Ok(Instruction::Other)
    ));
}

#[tokio::test]
async fn a_sip_transfer_carries_context_headers_and_follows_every_progress_callback() {
    let call = call_sid(2);
    let twilio = twilio(&[(call.clone(), "in-progress")], &[], None);
    let api = start_twilio(twilio.clone()).await;
    let mut config = config(api);
    // The auth token, not an API key.
    config.credentials.api_key_sid = None;
    config.credentials.api_key_secret = None;
    let grpc = start_connector(config).await;

    let target = target::Kind::SipUri("sip:agent@pbx.example.com;transport=tls".into());
    let events = transfer(grpc, request("h-sip", &call, target)).await;
    assert_eq!(
        kinds(&events),
        [
            TransferEventKind::Offered,
            TransferEventKind::Ringing,
            TransferEventKind::Answered,
            TransferEventKind::ContextDelivered,
            TransferEventKind::Connected,
            TransferEventKind::Completed
        ]
    );
    let updates = twilio.updates();
    let Instruction::Dial { target, events, .. } = &updates[0].instruction else {
        panic!("not a Dial: {}", updates[0].twiml);
    };
    assert!(
        target.starts_with("sip:agent@pbx.example.com;transport=tls?"),
        "{target}"
    );
    for header in [
        "X-Baton-Handoff-Id=h-sip",
        "X-Baton-Token=signed.token",
        "X-Baton-Intent=billing.dispute",
        "X-Baton-Reason=explicit_request",
        // "signed.token" in hex, then ;encoding=hex;purpose=isdn-uui escaped.
        "User-to-User=7369676e65642e746f6b656e%3Bencoding%3Dhex%3Bpurpose%3Disdn-uui",
    ] {
        assert!(target.contains(header), "{header} missing from {target}");
    }
    assert_eq!(events, &["initiated", "ringing", "answered", "completed"]);
    assert!(twilio.warnings.lock().expect("lock").is_empty());
    let delivered = twilio.delivered_at_least(5).await;
    assert!(delivered.iter().all(|d| d.status == 200), "{delivered:?}");
}

#[tokio::test]
async fn a_busy_or_unanswered_number_fails_and_the_caller_holds_for_the_next_target() {
    for (n, number, outcome, reason) in [
        (3, "+14155550111", Outcome::Busy, FailureReason::Busy),
        (
            4,
            "+14155550112",
            Outcome::NoAnswer,
            FailureReason::NoAnswer,
        ),
    ] {
        let call = call_sid(n);
        let twilio = twilio(&[(call.clone(), "in-progress")], &[(number, outcome)], None);
        let api = start_twilio(twilio.clone()).await;
        let grpc = start_connector(config(api)).await;

        let target = target::Kind::PhoneNumber(number.into());
        let events = transfer(grpc, request("h-unreached", &call, target)).await;
        assert_eq!(
            kinds(&events),
            [
                TransferEventKind::Offered,
                TransferEventKind::Ringing,
                TransferEventKind::Failed
            ],
            "{outcome:?}"
        );
        assert_eq!(events[2].failure_reason, reason as i32, "{outcome:?}");
        let updates = twilio.updates();
        assert!(
            matches!(&updates[0].instruction, Instruction::Dial { target, .. } if target == number)
        );
        // Dial's action is answered with TwiML that keeps the caller on the line.
        let action = twilio
            .delivered_at_least(4)
            .await
            .into_iter()
            .find(|d| d.params.iter().any(|(k, _)| k == "DialCallStatus"))
            .expect("Dial's action was requested");
        assert!(action.url.ends_with("/dial"), "{}", action.url);
        assert!(action.body.contains("<Pause"), "{}", action.body);
        parse_twiml(&action.body, &Mutex::default()).expect("valid TwiML");
    }
}

#[tokio::test]
async fn twilio_refusals_fail_the_transfer_cleanly_with_twilios_error() {
    let ended = call_sid(5);
    let twilio = twilio(&[(ended.clone(), "completed")], &[], None);
    let api = start_twilio(twilio.clone()).await;
    let grpc = start_connector(config(api)).await;

    let number = || target::Kind::PhoneNumber("+14155550100".into());
    // Each ends with one FAILED (a QUEUED may precede it: the requests
    // follow each other faster than the account's rate).
    let failed = |events: &[StartTransferResponse]| {
        assert_eq!(
            kinds(events).last(),
            Some(&TransferEventKind::Failed),
            "{events:?}"
        );
        assert!(
            kinds(events)[..events.len() - 1]
                .iter()
                .all(|k| *k == TransferEventKind::Queued)
        );
        events.last().expect("terminal").clone()
    };
    let unknown = failed(&transfer(grpc, request("h-unknown", &call_sid(4), number())).await);
    assert_eq!(unknown.failure_reason, FailureReason::Unreachable as i32);
    assert!(unknown.detail.contains("20404"), "{}", unknown.detail);

    let gone = failed(&transfer(grpc, request("h-ended", &ended, number())).await);
    assert_eq!(gone.failure_reason, FailureReason::Unreachable as i32);
    assert!(gone.detail.contains("21220"), "{}", gone.detail);

    let no_call = failed(&transfer(grpc, request("h-nocall", "not-a-call-sid", number())).await);
    assert_eq!(no_call.failure_reason, FailureReason::Unsupported as i32);

    // Wrong credentials: Twilio's 401 with 20003.
    let mut wrong = config(api);
    wrong.credentials.api_key_secret = Some("not-the-secret".into());
    let grpc = start_connector(wrong).await;
    let call = call_sid(6);
    twilio
        .calls
        .lock()
        .expect("lock")
        .insert(call.clone(), "in-progress");
    let refused = failed(&transfer(grpc, request("h-auth", &call, number())).await);
    assert_eq!(refused.failure_reason, FailureReason::ConnectorError as i32);
    assert!(refused.detail.contains("20003"), "{}", refused.detail);
    assert!(twilio.updates().is_empty());
}

#[tokio::test]
async fn the_contract_server_refuses_requests_twilio_would_refuse() {
    let call = call_sid(7);
    let twilio = twilio(
        &[(call.clone(), "in-progress")],
        &[("+14155550100", Outcome::Silent)],
        None,
    );
    let api = start_twilio(twilio.clone()).await;
    let url = format!("http://{api}/2010-04-01/Accounts/{ACCOUNT_SID}/Calls/{call}.json");
    let client = reqwest::Client::new();
    let send = |body: String, content_type: &'static str, auth: bool| {
        let mut request = client
            .post(&url)
            .header("content-type", content_type)
            .body(body);
        if auth {
            request = request.basic_auth(ACCOUNT_SID, Some(AUTH_TOKEN));
        }
        async move {
            let response = request.send().await.expect("answers");
            let status = response.status().as_u16();
            let body: Value = serde_json::from_str(&response.text().await.expect("body"))
                .expect("Twilio error JSON");
            (status, body["code"].as_u64().unwrap_or_default())
        }
    };
    let form = |twiml: &str| serde_urlencoded::to_string([("Twiml", twiml)]).expect("form");
    let good = "<Response><Dial><Number>+14155550100</Number></Dial></Response>";
    assert_eq!(
        send(form(good), "application/x-www-form-urlencoded", false).await,
        (401, 20003)
    );
    assert_eq!(
        send(form(good), "application/json", true).await,
        (400, 20001)
    );
    assert_eq!(
        send(
            format!("{}&Color=blue", form(good)),
            "application/x-www-form-urlencoded",
            true
        )
        .await,
        (400, 20001)
    );
    for bad in [
        "<Response><Dial><Number>+14155550100</Number></Dial>",
        "<Response><Transfer>+14155550100</Transfer></Response>",
        "<Response><Dial><Number>0800 FLOWERS</Number></Dial></Response>",
        "<Response><Dial timeout=\"2\"><Number>+14155550100</Number></Dial></Response>",
        "<Response><Enqueue><Task>{\"a\":1}</Task></Enqueue></Response>",
        "<Response><Dial><Number statusCallbackEvent=\"bridged\">+14155550100</Number></Dial></Response>",
    ] {
        assert_eq!(
            send(form(bad), "application/x-www-form-urlencoded", true).await,
            (400, 12100),
            "{bad}"
        );
    }
    let too_long = format!("<Response><Say>{}</Say></Response>", "a".repeat(4000));
    assert_eq!(
        send(form(&too_long), "application/x-www-form-urlencoded", true).await,
        (400, 20001)
    );
    assert_eq!(
        send(form(good), "application/x-www-form-urlencoded", true)
            .await
            .0,
        200
    );
    assert_eq!(twilio.updates().len(), 1);
}

#[tokio::test]
async fn unsigned_and_forged_callbacks_are_refused_and_change_nothing() {
    let call = call_sid(8);
    let twilio = twilio(
        &[(call.clone(), "in-progress")],
        &[("vip", Outcome::Silent)],
        None,
    );
    let api = start_twilio(twilio.clone()).await;
    let grpc = start_connector(config(api)).await;
    let running = tokio::spawn(transfer(grpc, request("h-forged", &call, queue("vip"))));

    // The update arrived; its Enqueue action is the connector's callback URL.
    let mut action = None;
    for _ in 0..200 {
        if let Some(Update {
            instruction: Instruction::Enqueue {
                action: Some(url), ..
            },
            ..
        }) = twilio.updates().first()
        {
            action = Some(url.clone());
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    let action = action.expect("the call was updated");
    let params = form(&[
        ("AccountSid", ACCOUNT_SID),
        ("CallSid", &call),
        ("QueueResult", "bridged"),
    ]);
    let client = reqwest::Client::new();
    let body = serde_urlencoded::to_string(&params).expect("form");
    let post = |signature: Option<String>, body: String| {
        let mut request = client
            .post(&action)
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body);
        if let Some(signature) = signature {
            request = request.header("x-twilio-signature", signature);
        }
        async move { request.send().await.expect("answers").status().as_u16() }
    };
    assert_eq!(post(None, body.clone()).await, 403, "unsigned");
    let forged = signature::sign("not-the-auth-token", &action, &params);
    assert_eq!(
        post(Some(forged), body.clone()).await,
        403,
        "signed with another key"
    );
    let valid = signature::sign(AUTH_TOKEN, &action, &params);
    let tampered = body.replace("bridged", "hangup");
    assert_eq!(
        post(Some(valid.clone()), tampered).await,
        403,
        "parameters changed after signing"
    );
    // The workspace's TaskRouter events are verified the same way.
    let events_url = format!(
        "{}/v1/taskrouter/events",
        action.split("/v1/calls/").next().expect("base")
    );
    let accepted = form(&[
        ("EventType", "reservation.accepted"),
        (
            "TaskAttributes",
            &twilio.updates()[0].instruction_attributes(),
        ),
    ]);
    let unsigned_event = client
        .post(&events_url)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(serde_urlencoded::to_string(&accepted).expect("form"))
        .send()
        .await
        .expect("answers");
    assert_eq!(unsigned_event.status(), 403, "unsigned TaskRouter event");
    assert!(!running.is_finished(), "forged callbacks changed nothing");

    // Twilio's own, correctly signed callback moves the transfer on.
    assert_eq!(post(Some(valid), body).await, 200);
    let events = tokio::time::timeout(Duration::from_secs(10), running)
        .await
        .expect("ends")
        .expect("transfer task");
    assert_eq!(kinds(&events).last(), Some(&TransferEventKind::Completed));
}

/// Transfers arrive at twice the account's call-update rate: they queue
/// (QUEUED with the wait) and Twilio never throttles.
#[tokio::test]
async fn a_burst_at_twice_the_rate_limit_queues_and_is_never_throttled() {
    // Low enough that scheduling stalls on a loaded machine do not bunch
    // the paced requests.
    const RATE: f64 = 5.0;
    const TRANSFERS: u32 = 12;
    let calls: Vec<(String, &'static str)> = (100..100 + TRANSFERS)
        .map(|n| (call_sid(n), "in-progress"))
        .collect();
    // Twilio's limit: RATE per second with a bucket of 2.
    let twilio = twilio(&calls, &[], Some((RATE, 2.0)));
    let api = start_twilio(twilio.clone()).await;
    let mut config = config(api);
    config.rate_per_second = RATE;
    let grpc = start_connector(config).await;

    let mut tasks = Vec::new();
    for (i, (call, _)) in calls.iter().enumerate() {
        tokio::time::sleep(Duration::from_secs_f64(1.0 / (2.0 * RATE))).await;
        let request = request(
            &format!("h-soak-{i}"),
            call,
            target::Kind::PhoneNumber("+14155550100".into()),
        );
        tasks.push(tokio::spawn(transfer(grpc, request)));
    }
    let mut queued = 0;
    for task in tasks {
        let events = task.await.expect("transfer task");
        assert_eq!(
            kinds(&events).last(),
            Some(&TransferEventKind::Completed),
            "{events:?}"
        );
        for event in events
            .iter()
            .filter(|e| e.kind == TransferEventKind::Queued as i32)
        {
            queued += 1;
            assert!(event.detail.contains("rate limit"), "{}", event.detail);
            assert!(event.estimated_wait.is_some());
        }
    }
    assert_eq!(
        *twilio.throttled.lock().expect("lock"),
        0,
        "Twilio never throttled"
    );
    assert_eq!(twilio.updates().len(), TRANSFERS as usize);
    assert!(queued > 0, "the backlog is reported as QUEUED");
}

#[tokio::test]
async fn a_cancelled_dial_puts_the_caller_on_hold_for_the_next_target() {
    let call = call_sid(9);
    let twilio = twilio(
        &[(call.clone(), "in-progress")],
        &[("sip:agent@pbx.example.com", Outcome::Silent)],
        None,
    );
    let api = start_twilio(twilio.clone()).await;
    let grpc = start_connector(config(api)).await;
    let target = target::Kind::SipUri("sip:agent@pbx.example.com".into());
    let running = tokio::spawn(transfer(grpc, request("h-cancel", &call, target)));
    let updates_at_least = |count: usize| {
        let twilio = twilio.clone();
        async move {
            for _ in 0..400 {
                let updates = twilio.updates();
                if updates.len() >= count {
                    return updates;
                }
                tokio::time::sleep(Duration::from_millis(25)).await;
            }
            panic!("fewer than {count} call updates");
        }
    };
    updates_at_least(1).await;

    let mut client = ConnectorServiceClient::connect(format!("http://{grpc}"))
        .await
        .expect("connects");
    let cancelled = client
        .cancel_transfer(baton_proto::connector::v1::CancelTransferRequest {
            handoff_id: "h-cancel".into(),
            attempt: 1,
        })
        .await
        .expect("CancelTransfer")
        .into_inner();
    assert!(cancelled.cancelled);
    let events = tokio::time::timeout(Duration::from_secs(10), running)
        .await
        .expect("ends")
        .expect("transfer task");
    assert_eq!(kinds(&events).last(), Some(&TransferEventKind::Cancelled));
    let updates = updates_at_least(2).await;
    assert_eq!(updates[1].call_sid, call);
    assert_eq!(updates[1].instruction, Instruction::Other);
    assert!(updates[1].twiml.contains("<Pause"), "{}", updates[1].twiml);
}

/// The real control service in front: the context it renders for the
/// TASK_ATTRIBUTES mechanism becomes the Flex task's attributes, without
/// sensitive values, and the handoff completes when the call is bridged.
/// Needs `baton-control` built (CI builds every binary first).
#[tokio::test]
async fn a_handoff_through_the_control_service_becomes_a_flex_task() {
    use baton_proto::handoff::v1::handoff_service_client::HandoffServiceClient;
    use baton_proto::handoff::v1::{CreateHandoffRequest, GetHandoffRequest, HandoffState};
    use baton_proto::types::v1 as pb;

    let call = call_sid(200);
    let twilio = twilio(&[(call.clone(), "in-progress")], &[], None);
    let api = start_twilio(twilio.clone()).await;
    let (grpc, callbacks) = start_connector_with_callbacks(config(api)).await;
    *twilio.event_callback_url.lock().expect("lock") =
        Some(format!("http://{callbacks}/v1/taskrouter/events"));

    let dir = tempfile::tempdir().expect("tempdir");
    let control_config = dir.path().join("control.toml");
    std::fs::write(
        &control_config,
        format!(
            "[server]\ngrpc_listen = \"127.0.0.1:0\"\nhttp_listen = \"127.0.0.1:0\"\n\n[store]\ndata_dir = {data:?}\n\n[connectors.twilio]\nendpoint = \"http://{grpc}\"\n\n[default_connectors]\nqueue = \"twilio\"\n",
            data = dir.path().join("control").display().to_string(),
        ),
    )
    .expect("writes");
    let control = baton_tests::Service::start(
        "baton-control",
        &["--config", control_config.to_str().expect("path")],
        dir.path(),
    )
    .await
    .expect("the control service starts (build it first: cargo build -p baton-control)");
    let mut client = HandoffServiceClient::connect(control.endpoint("grpc"))
        .await
        .expect("connects");
    let handoff = client
        .create_handoff(CreateHandoffRequest {
            request_id: "twilio-e2e-1".into(),
            conversation: Some(pb::Conversation {
                channel: pb::Channel::Voice as i32,
                language: "en-US".into(),
                call: Some(pb::CallReference {
                    platform_contact_id: call.clone(),
                    caller_number: "+14155550123".into(),
                    ..Default::default()
                }),
            }),
            context: Some(pb::HandoffContext {
                summary: "Customer was charged twice for the March invoice".into(),
                intent: Some(pb::Intent {
                    name: "billing.dispute".into(),
                    confidence: 0.92,
                }),
                entities: vec![
                    pb::Entity {
                        name: "account_number".into(),
                        value: "ACC-99887766".into(),
                        r#type: "account".into(),
                        sensitive: true,
                    },
                    pb::Entity {
                        name: "issue_type".into(),
                        value: "double charge".into(),
                        r#type: "string".into(),
                        sensitive: false,
                    },
                ],
                reason: Some(pb::EscalationReason {
                    kind: pb::EscalationKind::ExplicitRequest as i32,
                    detail: "asked for a person".into(),
                }),
                priority: 4,
                ..Default::default()
            }),
            target: Some(pb::Target {
                kind: Some(pb::target::Kind::Queue(pb::QueueTarget {
                    name: "billing".into(),
                    skills: vec!["disputes".into()],
                })),
            }),
            mode: pb::TransferMode::Warm as i32,
            ..Default::default()
        })
        .await
        .expect("CreateHandoff")
        .into_inner()
        .handoff
        .expect("handoff");
    let mut state = HandoffState::Unspecified;
    for _ in 0..400 {
        state = client
            .get_handoff(GetHandoffRequest {
                handoff_id: handoff.id.clone(),
            })
            .await
            .expect("GetHandoff")
            .into_inner()
            .handoff
            .expect("handoff")
            .state();
        if matches!(
            state,
            HandoffState::Completed | HandoffState::Failed | HandoffState::Cancelled
        ) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert_eq!(state, HandoffState::Completed, "{}", control.logs());

    let updates = twilio.updates();
    assert_eq!(updates.len(), 1);
    let Instruction::Enqueue {
        attributes,
        priority,
        ..
    } = &updates[0].instruction
    else {
        panic!("not an Enqueue: {}", updates[0].twiml);
    };
    assert_eq!(*priority, 4);
    assert_eq!(
        attributes["summary"],
        "Customer was charged twice for the March invoice"
    );
    assert_eq!(attributes["baton_handoff_id"], handoff.id.as_str());
    assert_eq!(attributes["skills"], json!(["disputes"]));
    assert!(
        !updates[0].twiml.contains("ACC-99887766"),
        "{}",
        updates[0].twiml
    );
    assert!(
        !updates[0].twiml.contains("+14155550123"),
        "{}",
        updates[0].twiml
    );
}
