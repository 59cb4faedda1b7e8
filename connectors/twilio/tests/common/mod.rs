//! The Twilio contract server the connector's tests share: a local server
//! that implements the part of Twilio's REST API and call behaviour the
//! connector uses, as Twilio documents it (see `contract.rs` for what it
//! checks), and helpers to start the connector against it.

#![allow(dead_code)]

mod conversations;
mod statistics;
pub use conversations::*;
pub use statistics::*;

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use baton_connector_sdk::testing;
use baton_connector_twilio::TwilioConfig;
use baton_connector_twilio::config::{CallbackConfig, Credentials};
use baton_connector_twilio::signature;
use baton_proto::connector::v1::{
    ContextEnvelope, ContextMechanism, ContextPayload, StartTransferRequest, StartTransferResponse,
};
use baton_proto::types::v1::{HandoffContext, target};
use serde_json::{Value, json};

pub const ACCOUNT_SID: &str = "AC0123456789abcdef0123456789abcdef";
pub const AUTH_TOKEN: &str = "auth-token-of-the-test-account";
pub const API_KEY_SID: &str = "SKfedcba9876543210fedcba9876543210";
pub const API_KEY_SECRET: &str = "api-key-secret-of-the-test-account";
pub const WORKFLOW_SID: &str = "WW00112233445566778899aabbccddeeff";
pub const ALLOWED_CALL_PARAMS: &[&str] = &[
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
pub enum Outcome {
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
pub struct Update {
    pub call_sid: String,
    pub twiml: String,
    pub instruction: Instruction,
}

impl Update {
    /// The task attributes of an Enqueue, as TaskRouter sends them back.
    pub fn instruction_attributes(&self) -> String {
        match &self.instruction {
            Instruction::Enqueue { attributes, .. } => attributes.to_string(),
            _ => String::new(),
        }
    }
}

/// What a valid TwiML document asks for.
#[derive(Debug, Clone, PartialEq)]
pub enum Instruction {
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
pub struct Delivered {
    pub url: String,
    pub params: Vec<(String, String)>,
    pub status: u16,
    pub body: String,
}

#[derive(Debug, Default)]
pub struct Twilio {
    pub calls: Mutex<HashMap<String, &'static str>>,
    pub outcomes: Mutex<BTreeMap<String, Outcome>>,
    pub updates: Mutex<Vec<Update>>,
    pub delivered: Mutex<Vec<Delivered>>,
    pub warnings: Mutex<Vec<String>>,
    /// Account rate limit: (per second, bucket capacity) and the bucket.
    pub rate: Option<(f64, f64)>,
    pub bucket: Mutex<Option<(f64, std::time::Instant)>>,
    pub throttled: Mutex<u32>,
    /// The TaskRouter workspace's Event Callback URL.
    pub event_callback_url: Mutex<Option<String>>,
    /// Every CallSid it has not been told of is a call in progress (for the
    /// conformance kit, whose every transfer names a call of its own).
    pub any_call_in_progress: bool,
    /// Conversations, in the order created.
    pub conversations: Mutex<Vec<StoredConversation>>,
    /// Messages created in any conversation, for their SIDs.
    pub message_count: std::sync::atomic::AtomicUsize,
    /// The Conversations service's post-event webhook URL.
    pub conversations_webhook_url: Mutex<Option<String>>,
    /// TaskRouter tasks, in the order created.
    pub tasks: Mutex<Vec<StoredTask>>,
    /// Where it serves, for its pages' URLs.
    pub addr: Mutex<Option<SocketAddr>>,
    /// The workspace's TaskQueues: SID → task channel → figures.
    pub task_queues: Mutex<BTreeMap<String, BTreeMap<String, QueueStatistics>>>,
    /// The statistics requests answered, in order.
    pub statistics_requests: Mutex<Vec<StatisticsRequest>>,
}

impl Twilio {
    /// How `party` (a number, SIP URI or queue) answers: as the test set
    /// it, else `default`.
    fn outcome_of(&self, party: &str, default: Outcome) -> Outcome {
        let outcomes = self.outcomes.lock().expect("lock");
        outcomes.get(party).copied().unwrap_or(default)
    }

    /// The callbacks delivered so far, once at least `count` were (the
    /// connector may report the outcome before Twilio records its answer).
    pub async fn delivered_at_least(&self, count: usize) -> Vec<Delivered> {
        testing::at_least(count, "callbacks delivered", || self.delivered()).await
    }

    pub fn updates(&self) -> Vec<Update> {
        self.updates.lock().expect("lock").clone()
    }

    /// The call updates once there are at least `count` (within 10 s).
    pub async fn wait_for_updates(&self, count: usize) -> Vec<Update> {
        testing::at_least(count, "call updates", || self.updates()).await
    }

    pub fn delivered(&self) -> Vec<Delivered> {
        self.delivered.lock().expect("lock").clone()
    }
}

pub fn error(status: StatusCode, code: u32, message: &str) -> Response {
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

pub fn authenticated(headers: &HeaderMap) -> bool {
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

pub fn is_absolute_url(url: &str) -> bool {
    url.starts_with("http://") || url.starts_with("https://")
}

pub fn is_e164(number: &str) -> bool {
    number.len() >= 3
        && number.len() <= 16
        && number.starts_with('+')
        && number[1..].bytes().all(|b| b.is_ascii_digit())
        && !number[1..].starts_with('0')
}

pub fn check_attributes(node: roxmltree::Node, allowed: &[&str]) -> Result<(), String> {
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

pub fn elements<'a>(node: roxmltree::Node<'a, 'a>) -> Vec<roxmltree::Node<'a, 'a>> {
    node.children().filter(|n| n.is_element()).collect()
}

/// Validates a TwiML document as Twilio's parser would for these verbs;
/// records SIP URI header warnings.
pub fn parse_twiml(twiml: &str, warnings: &Mutex<Vec<String>>) -> Result<Instruction, String> {
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

pub async fn update_call(
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
    let status = twilio.calls.lock().expect("lock").get(call_sid).copied();
    let status = status.or(twilio.any_call_in_progress.then_some("in-progress"));
    match status.as_ref() {
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
pub async fn callback(twilio: &Twilio, url: &str, params: Vec<(String, String)>) {
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

pub fn form(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

/// Plays the call as Twilio would after a successful update.
pub async fn play(twilio: Arc<Twilio>, call_sid: String, instruction: Instruction) {
    match instruction {
        Instruction::Dial {
            target,
            action,
            status_callback,
            events,
        } => {
            let key = target.split('?').next().unwrap_or_default().to_owned();
            let outcome = twilio.outcome_of(&key, Outcome::Answer);
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
            workflow_sid,
            action,
            wait_url,
            attributes,
            priority,
        } => {
            let queue = attributes["queue"].as_str().unwrap_or_default().to_owned();
            let outcome = twilio.outcome_of(&queue, Outcome::Bridged);
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
                let task_sid = enqueued_task(&twilio, &workflow_sid, priority, &attributes);
                for event in ["reservation.created", "reservation.accepted"] {
                    callback(
                        &twilio,
                        &url,
                        form(&[
                            ("AccountSid", ACCOUNT_SID),
                            ("WorkspaceSid", "WS00000000000000000000000000000000"),
                            ("EventType", event),
                            ("ResourceType", "reservation"),
                            ("TaskSid", &task_sid),
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

pub async fn start_twilio(twilio: Arc<Twilio>) -> SocketAddr {
    let app = Router::new()
        .route(
            "/2010-04-01/Accounts/{account}/Calls/{call}",
            post(update_call),
        )
        .route("/v1/Conversations", post(create_conversation))
        .route(
            "/v1/Conversations/{id}",
            get(fetch_conversation).post(update_conversation),
        )
        .route(
            "/v1/Conversations/{id}/Messages",
            get(list_messages).post(create_message),
        )
        .route("/v1/Workspaces/{workspace}/Tasks", post(create_task))
        .route("/v1/Workspaces/{workspace}/Tasks/{task}", post(update_task))
        .route(
            "/v1/Workspaces/{workspace}/TaskQueues/{task_queue}/RealTimeStatistics",
            get(real_time_statistics),
        )
        .route(
            "/v1/Workspaces/{workspace}/TaskQueues/{task_queue}/CumulativeStatistics",
            get(cumulative_statistics),
        )
        .with_state(twilio.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("binds");
    let addr = listener.local_addr().expect("address");
    *twilio.addr.lock().expect("lock") = Some(addr);
    tokio::spawn(async move { axum::serve(listener, app).await });
    addr
}

/// A Twilio with one call, `call`, in progress, whose dialled parties
/// answer as `outcomes` say, served locally: it and its API's address.
pub async fn serve_call(call: &str, outcomes: &[(&str, Outcome)]) -> (Arc<Twilio>, SocketAddr) {
    let twilio = twilio(&[(call.to_owned(), "in-progress")], outcomes, None);
    let api = start_twilio(twilio.clone()).await;
    (twilio, api)
}

pub fn call_sid(n: u32) -> String {
    format!("CA{n:032x}")
}

pub fn twilio(
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

pub fn config(api: SocketAddr) -> TwilioConfig {
    let mut config = TwilioConfig {
        api_base: format!("http://{api}"),
        conversations_api_base: format!("http://{api}"),
        taskrouter_api_base: format!("http://{api}"),
        workspace_sid: Some(WORKSPACE_SID.into()),
        credentials: Credentials {
            account_sid: ACCOUNT_SID.into(),
            auth_token: AUTH_TOKEN.into(),
            api_key_sid: Some(API_KEY_SID.into()),
            api_key_secret: Some(API_KEY_SECRET.into()),
        },
        callbacks: CallbackConfig {
            listen: "127.0.0.1:0".parse().expect("address"),
            public_url: None,
            limits: Default::default(),
        },
        rate_per_second: 50.0,
        workflow_sid: Some(WORKFLOW_SID.into()),
        store: baton_connector_sdk::config::StoreConfig::at(Some(data_dir())),
        ..Default::default()
    };
    config.server.grpc_listen = "127.0.0.1:0".parse().expect("address");
    config
}

/// A fresh directory for one connector's transfer journal, under Cargo's
/// scratch directory for integration tests (never the source tree, never
/// shared by two connectors).
pub fn data_dir() -> std::path::PathBuf {
    testing::scratch_dir(env!("CARGO_TARGET_TMPDIR"), env!("CARGO_PKG_NAME"))
}

pub async fn start_connector(config: TwilioConfig) -> SocketAddr {
    start_connector_with_callbacks(config).await.0
}

/// The connector's gRPC and callback addresses.
pub async fn start_connector_with_callbacks(config: TwilioConfig) -> (SocketAddr, SocketAddr) {
    let bound = baton_connector_twilio::bind(config).await.expect("binds");
    let grpc = (bound.grpc_addr, bound.callbacks_addr);
    tokio::spawn(bound.serve(std::future::pending()));
    grpc
}

pub fn request(handoff_id: &str, call: &str, target: target::Kind) -> StartTransferRequest {
    let envelope = ContextEnvelope {
        reference: Some(testing::context_reference(
            "https://baton.example",
            handoff_id,
            "signed.token",
        )),
        conversation: Some(testing::platform_call(call)),
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
    };
    StartTransferRequest {
        deadline: testing::deadline_in(Duration::from_secs(30)),
        ..testing::transfer_request(handoff_id, target, envelope)
    }
}

/// Every event of one transfer, to its terminal one; the transfers of these
/// tests end by their 30-second deadline.
pub async fn transfer(
    grpc: SocketAddr,
    request: StartTransferRequest,
) -> Vec<StartTransferResponse> {
    baton_tests::transfer(grpc, request, Duration::from_secs(35)).await
}

pub fn queue(name: &str) -> target::Kind {
    testing::queue(name, &["disputes"])
}
