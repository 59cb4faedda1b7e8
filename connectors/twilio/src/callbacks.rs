//! The connector's HTTP endpoint for Twilio's callbacks: the dialled leg's
//! `statusCallback` (initiated, ringing, answered, completed), Dial's
//! `action` and Enqueue's `action`, each at `/v1/calls/{key}/{kind}` where
//! `key` names one transfer. Every request must carry a valid
//! `X-Twilio-Signature`; unsigned or forged ones are refused with 403
//! before anything else is read.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::{HeaderMap, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use baton_connector_sdk::{FailureReason, TransferEvents};
use tokio::sync::watch;

use crate::signature;
use crate::twiml::{DialCallbacks, EnqueueCallbacks};

/// Twilio's callbacks are small forms; anything bigger is not one.
const MAX_CALLBACK_BYTES: usize = 64 * 1024;

/// What was asked of Twilio for one transfer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Leg {
    /// `<Dial>`; `context_in_signalling` when the INVITE carried the
    /// context (SIP headers), so that answering delivers it.
    Dial { context_in_signalling: bool },
    /// `<Enqueue>` into a TaskRouter workflow.
    Enqueue,
}

struct Watched {
    /// (handoff id, attempt).
    transfer: (String, u32),
    events: TransferEvents,
    leg: Leg,
    ended: watch::Sender<bool>,
    connected: AtomicBool,
}

impl Watched {
    /// Reports CONNECTED once, however many callbacks say so.
    async fn connected(&self, detail: &str) {
        if !self.connected.swap(true, Ordering::SeqCst) {
            self.events.connected(detail).await;
        }
    }

    fn is_connected(&self) -> bool {
        self.connected.load(Ordering::SeqCst)
    }
}

/// The transfers whose callbacks are awaited, and how to verify them.
pub struct Callbacks {
    auth_token: String,
    public_url: String,
    hold_twiml: String,
    wait_twiml: String,
    watched: Mutex<HashMap<String, Arc<Watched>>>,
}

impl std::fmt::Debug for Callbacks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Callbacks")
            .field("public_url", &self.public_url)
            .finish_non_exhaustive()
    }
}

/// A registered transfer: its callback URLs and a way to wait for its end.
#[derive(Debug)]
pub struct Registration {
    pub key: String,
    pub dial: DialCallbacks,
    pub enqueue: EnqueueCallbacks,
    ended: watch::Receiver<bool>,
}

impl Registration {
    /// Waits until a callback reported the transfer's terminal event.
    pub async fn ended(mut self) {
        let _ = self.ended.wait_for(|ended| *ended).await;
    }
}

impl Callbacks {
    /// `hold_twiml` answers Dial's and Enqueue's action after a failure,
    /// `wait_twiml` Enqueue's wait requests.
    pub fn new(
        auth_token: String,
        public_url: String,
        hold_twiml: String,
        wait_twiml: String,
    ) -> Arc<Self> {
        Arc::new(Self {
            auth_token,
            public_url: public_url.trim_end_matches('/').to_owned(),
            hold_twiml,
            wait_twiml,
            watched: Mutex::new(HashMap::new()),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Arc<Watched>>> {
        self.watched.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Starts awaiting the callbacks of one transfer for `keep` (after
    /// which late callbacks are answered 404).
    pub fn register(
        self: &Arc<Self>,
        transfer: (String, u32),
        events: TransferEvents,
        leg: Leg,
        keep: Duration,
    ) -> Registration {
        let key = uuid::Uuid::now_v7().simple().to_string();
        let (ended, ended_receiver) = watch::channel(false);
        self.lock().insert(
            key.clone(),
            Arc::new(Watched {
                transfer,
                events,
                leg,
                ended,
                connected: AtomicBool::new(false),
            }),
        );
        let callbacks = self.clone();
        let forget = key.clone();
        tokio::spawn(async move {
            tokio::time::sleep(keep).await;
            callbacks.lock().remove(&forget);
        });
        let base = format!("{}/v1/calls/{key}", self.public_url);
        Registration {
            dial: DialCallbacks {
                status: format!("{base}/status"),
                action: format!("{base}/dial"),
            },
            enqueue: EnqueueCallbacks {
                action: format!("{base}/enqueue"),
                wait: format!("{base}/wait"),
            },
            key,
            ended: ended_receiver,
        }
    }

    /// What to set as the TaskRouter workspace's `EventCallbackUrl`, so that
    /// a Flex agent's acceptance is reported as it happens.
    pub fn taskrouter_events_url(&self) -> String {
        format!("{}/v1/taskrouter/events", self.public_url)
    }

    /// True when a callback reported the transfer connected: the caller is
    /// with a human and must not be moved any more.
    pub fn was_connected(&self, handoff_id: &str, attempt: u32) -> bool {
        self.lock()
            .values()
            .any(|w| w.transfer.0 == handoff_id && w.transfer.1 == attempt && w.is_connected())
    }

    pub fn router(self: &Arc<Self>) -> Router {
        Router::new()
            .route("/v1/calls/{key}/{kind}", post(callback))
            .route("/v1/taskrouter/events", post(taskrouter_event))
            .layer(DefaultBodyLimit::max(MAX_CALLBACK_BYTES))
            .with_state(self.clone())
    }
}

fn twiml(status: StatusCode, body: String) -> Response {
    (status, [(header::CONTENT_TYPE, "application/xml")], body).into_response()
}

const HANG_UP: &str = "<Response><Hangup/></Response>";

/// The form parameters of a request that carries a valid signature, or the
/// answer to a request that does not (403) or is no form (400).
fn signed_params(
    callbacks: &Callbacks,
    uri: &Uri,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<Vec<(String, String)>, (StatusCode, &'static str)> {
    let Ok(params) = serde_urlencoded::from_bytes::<Vec<(String, String)>>(body) else {
        return Err((StatusCode::BAD_REQUEST, "not a form"));
    };
    let url = format!(
        "{}{}",
        callbacks.public_url,
        uri.path_and_query().map_or(uri.path(), |p| p.as_str())
    );
    let signed = headers
        .get("x-twilio-signature")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|signature| {
            signature::verify(&callbacks.auth_token, &url, &params, signature)
        });
    if !signed {
        tracing::warn!(
            path = uri.path(),
            "callback without a valid X-Twilio-Signature refused"
        );
        return Err((StatusCode::FORBIDDEN, "invalid X-Twilio-Signature"));
    }
    Ok(params)
}

/// A TaskRouter workspace event. Tasks Baton created carry
/// `baton_transfer` in their attributes; the others are acknowledged and
/// ignored, as the workspace sends every task's events.
async fn taskrouter_event(
    State(callbacks): State<Arc<Callbacks>>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let params = match signed_params(&callbacks, &uri, &headers, &body) {
        Ok(params) => params,
        Err(refusal) => return refusal.into_response(),
    };
    let param = |name: &str| {
        params
            .iter()
            .find(|(k, _)| k == name)
            .map_or("", |(_, v)| v.as_str())
    };
    let key = serde_json::from_str::<serde_json::Value>(param("TaskAttributes"))
        .ok()
        .and_then(|attributes| attributes["baton_transfer"].as_str().map(str::to_owned));
    let Some(watched) = key.and_then(|key| callbacks.lock().get(&key).cloned()) else {
        return StatusCode::OK.into_response();
    };
    match param("EventType") {
        "reservation.created" => watched.events.offered("offered to a Flex agent").await,
        "reservation.accepted" => accept_task(&watched).await,
        _ => {}
    }
    StatusCode::OK.into_response()
}

/// A Flex agent accepted the task: its attributes (the context) are on
/// their screen, and TaskRouter bridges the caller.
async fn accept_task(watched: &Watched) {
    if watched.is_connected() {
        return;
    }
    watched
        .events
        .answered("a Flex agent accepted the task")
        .await;
    watched
        .events
        .context_delivered("the task attributes carried the handoff context")
        .await;
    watched
        .connected("the caller is bridged to the agent")
        .await;
}

async fn callback(
    State(callbacks): State<Arc<Callbacks>>,
    Path((key, kind)): Path<(String, String)>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let params = match signed_params(&callbacks, &uri, &headers, &body) {
        Ok(params) => params,
        Err(refusal) => return refusal.into_response(),
    };
    let Some(watched) = callbacks.lock().get(&key).cloned() else {
        return (StatusCode::NOT_FOUND, "no such transfer").into_response();
    };
    let param = |name: &str| {
        params
            .iter()
            .find(|(k, _)| k == name)
            .map_or("", |(_, v)| v.as_str())
    };
    let response = match kind.as_str() {
        "status" => {
            on_call_status(&watched, param("CallStatus")).await;
            StatusCode::OK.into_response()
        }
        "dial" => {
            let connected = on_dial_ended(&watched, param("DialCallStatus")).await;
            twiml(
                StatusCode::OK,
                if connected {
                    HANG_UP.into()
                } else {
                    callbacks.hold_twiml.clone()
                },
            )
        }
        "wait" => {
            on_queue_wait(&watched, param("QueuePosition"), param("AvgQueueTime")).await;
            twiml(StatusCode::OK, callbacks.wait_twiml.clone())
        }
        "enqueue" => {
            let connected = on_queue_left(&watched, param("QueueResult")).await;
            twiml(
                StatusCode::OK,
                if connected {
                    HANG_UP.into()
                } else {
                    callbacks.hold_twiml.clone()
                },
            )
        }
        _ => return (StatusCode::NOT_FOUND, "no such callback").into_response(),
    };
    if watched.events.is_ended() {
        watched.ended.send_replace(true);
    }
    response
}

/// The dialled leg's progress (`CallStatus` of its status callbacks).
async fn on_call_status(watched: &Watched, status: &str) {
    let events = &watched.events;
    match status {
        "queued" | "initiated" => events.offered("Twilio is dialling the target").await,
        "ringing" => events.ringing("the target is ringing").await,
        "in-progress" | "answered" => {
            events.answered("the target answered").await;
            if let Leg::Dial {
                context_in_signalling: true,
            } = watched.leg
            {
                events
                    .context_delivered(
                        "the SIP INVITE carried the handoff token and context headers",
                    )
                    .await;
            }
            watched
                .connected("Twilio bridged the caller to the target")
                .await;
        }
        "completed" if watched.is_connected() => events.completed("the target's leg ended").await,
        // Twilio reports an unanswered leg as busy, no-answer or failed; a
        // completed leg never reported answered did not reach a human.
        "completed" => {
            events
                .failed(
                    FailureReason::Unreachable,
                    "the target's leg ended before it was answered",
                )
                .await
        }
        other => fail_dial(events, other).await,
    }
}

async fn fail_dial(events: &TransferEvents, status: &str) {
    match status {
        "busy" => {
            events
                .failed(FailureReason::Busy, "the target was busy")
                .await
        }
        "no-answer" => {
            events
                .failed(FailureReason::NoAnswer, "the target did not answer")
                .await
        }
        "canceled" => {
            events
                .cancelled("the dial was cancelled (the caller hung up)")
                .await
        }
        "failed" => {
            events
                .failed(
                    FailureReason::Unreachable,
                    "Twilio could not reach the target",
                )
                .await
        }
        other => {
            events
                .failed(
                    FailureReason::ConnectorError,
                    &format!(
                        "unexpected call status {:?}",
                        other.chars().take(32).collect::<String>()
                    ),
                )
                .await
        }
    }
}

/// Dial's action: the dialled leg is over. Returns whether the caller was
/// connected (then the call ends; otherwise the caller holds for the next
/// target).
async fn on_dial_ended(watched: &Watched, status: &str) -> bool {
    let events = &watched.events;
    match status {
        "completed" | "answered" => {
            watched
                .connected("Twilio bridged the caller to the target")
                .await;
            events.completed("the call with the target ended").await;
            true
        }
        other => {
            fail_dial(events, other).await;
            false
        }
    }
}

/// Enqueue's wait request: the caller's place in the queue and the
/// queue's average wait, reported as QUEUED until a human has the call.
async fn on_queue_wait(watched: &Watched, position: &str, average_secs: &str) {
    if watched.is_connected() {
        return;
    }
    let position = position.parse::<u32>().unwrap_or(1).max(1);
    let wait = Duration::from_secs(average_secs.parse::<u64>().unwrap_or(0));
    watched
        .events
        .queued_with_detail(
            position,
            wait,
            "waiting in the TaskRouter queue for a Flex agent",
        )
        .await;
}

/// Enqueue's action: the call left the TaskRouter queue (`QueueResult`).
async fn on_queue_left(watched: &Watched, result: &str) -> bool {
    let events = &watched.events;
    match result {
        "bridged" => {
            accept_task(watched).await;
            events.completed("the call with the agent ended").await;
            true
        }
        "hangup" => {
            events.cancelled("the caller hung up while queued").await;
            true
        }
        "leave" => {
            events
                .failed(
                    FailureReason::NoAgents,
                    "the workflow let the call leave the queue: no agent took the task",
                )
                .await;
            false
        }
        "queue-full" => {
            events
                .failed(FailureReason::Unreachable, "the TaskRouter queue is full")
                .await;
            false
        }
        "redirected" => {
            events
                .cancelled("the call was redirected out of the queue by another request")
                .await;
            false
        }
        other => {
            events
                .failed(
                    FailureReason::Unreachable,
                    &format!(
                        "the call left the queue: {:?}",
                        other.chars().take(32).collect::<String>()
                    ),
                )
                .await;
            false
        }
    }
}
