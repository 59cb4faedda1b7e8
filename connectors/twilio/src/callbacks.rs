//! The connector's HTTP endpoint for Twilio's callbacks: the dialled leg's
//! `statusCallback` (initiated, ringing, answered, completed), Dial's
//! `action` and Enqueue's `action`, each at `/v1/calls/{key}/{kind}` where
//! `key` names one transfer. Every request must carry a valid
//! `X-Twilio-Signature`; unsigned or forged ones are refused with 403
//! before anything else is read.
//!
//! Keys outlive a restart of the connector: a transfer remembers its key,
//! its call and how far it got ([`CallNote`]) in the SDK's journal, and
//! the resumed transfer registers the same key again
//! ([`Callbacks::register_again`]). The signature needs nothing but the
//! configured auth token, so callbacks signed for the previous process
//! verify here too. A signed callback for a key not (yet) registered,
//! as between a restart and the control service's re-attach, is answered
//! as a registered one would be (hold the caller unless the call is over)
//! and kept for [`KEEP_EARLY`], to be applied when its transfer resumes.

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
use baton_connector_sdk::{FailureReason, TransferEvents, TransferNote};
use serde::{Deserialize, Serialize};
use tokio::sync::watch;

use crate::signature;
use crate::twiml::{DialCallbacks, EnqueueCallbacks};

/// Twilio's callbacks are small forms; anything bigger is not one.
const MAX_CALLBACK_BYTES: usize = 64 * 1024;
/// How long a signed callback for a key not registered is kept for its
/// transfer to resume: past the control service's re-attach window.
pub const KEEP_EARLY: Duration = Duration::from_secs(120);
/// The most keys whose early callbacks are kept; more are answered but
/// not kept.
const MAX_EARLY_KEYS: usize = 10_000;

/// What was asked of Twilio for one transfer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Leg {
    /// `<Dial>`; `context_in_signalling` when the INVITE carried the
    /// context (SIP headers), so that answering delivers it.
    Dial { context_in_signalling: bool },
    /// `<Enqueue>` into a TaskRouter workflow.
    Enqueue,
    /// A chat transfer: a Conversation and its TaskRouter chat task
    /// ([`crate::chat`]).
    Chat,
}

/// How far a transfer got with Twilio, in the order it gets there.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Step {
    /// The call update is being sent: Twilio may or may not have it.
    Sending,
    /// Twilio accepted the call update: the call follows its TwiML.
    Updated,
    /// A callback reported the caller with a human.
    Connected,
}

/// A transfer's note in the SDK's journal: what a restarted connector
/// needs to follow the call again, never to update it a second time.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CallNote {
    /// The key in the transfer's callback URLs.
    pub key: String,
    /// Empty for a chat transfer.
    #[serde(default)]
    pub call_sid: String,
    pub leg: Leg,
    pub step: Step,
    /// A chat transfer's Conversation, once created.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub conversation_sid: Option<String>,
    /// The TaskRouter task, once known: created for a chat transfer,
    /// reported by TaskRouter's events for an enqueued call.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub task_sid: Option<String>,
    /// The last entry of a chat's log this connector has dealt with (its
    /// customer's messages posted to the Conversation).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub chat_through: u64,
    /// A queue target's name and skills, for the task attributes a context
    /// update replaces.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub queue: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub skills: Vec<String>,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

impl TransferNote for CallNote {
    const NOT_REPEATED: &'static str = "the call was not updated again";
}

struct Watched {
    /// (handoff id, attempt).
    transfer: (String, u32),
    events: TransferEvents,
    leg: Leg,
    ended: watch::Sender<bool>,
    connected: AtomicBool,
    /// What the journal holds for the transfer, advanced as it goes.
    note: tokio::sync::Mutex<CallNote>,
}

impl std::fmt::Debug for Watched {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Watched")
            .field("transfer", &self.transfer)
            .field("leg", &self.leg)
            .finish_non_exhaustive()
    }
}

impl Watched {
    /// Reports CONNECTED once, however many callbacks say so, and
    /// remembers it, so that a restarted connector leaves the call alone.
    async fn connected(&self, detail: &str) {
        if !self.connected.swap(true, Ordering::SeqCst) {
            // Journalled first: a process that reported CONNECTED and
            // crashed is followed by one that knows it.
            self.advance(Step::Connected).await;
            self.events.connected(detail).await;
        }
    }

    /// Remembers that the transfer got to `step` (never back).
    async fn advance(&self, step: Step) {
        let mut note = self.note.lock().await;
        if step > note.step {
            note.step = step;
            self.events.remember(&note.to_note()).await;
        }
    }

    fn is_connected(&self) -> bool {
        self.connected.load(Ordering::SeqCst)
    }

    /// Remembers the task TaskRouter created for an enqueued call, for
    /// the context updates that replace its attributes.
    async fn task(&self, task_sid: &str) {
        let valid = task_sid.len() == 34
            && task_sid.starts_with("WT")
            && task_sid[2..].bytes().all(|b| b.is_ascii_hexdigit());
        let mut note = self.note.lock().await;
        if valid && note.task_sid.is_none() {
            note.task_sid = Some(task_sid.to_owned());
            self.events.remember(&note.to_note()).await;
        }
    }
}

/// A signed callback kept for a transfer not registered yet: its kind
/// and form.
type Early = (String, Vec<(String, String)>);

/// The transfers whose callbacks are awaited, and how to verify them.
pub struct Callbacks {
    auth_token: String,
    public_url: String,
    hold_twiml: String,
    wait_twiml: String,
    watched: Mutex<HashMap<String, Arc<Watched>>>,
    /// Signed callbacks for keys not registered, by key.
    early: Mutex<HashMap<String, Vec<Early>>>,
    /// The chat transfers' Conversations.
    pub chats: Arc<crate::chat::Chats>,
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
    watched: Arc<Watched>,
}

impl Registration {
    /// Waits until a callback reported the transfer's terminal event.
    pub async fn ended(mut self) {
        let _ = self.ended.wait_for(|ended| *ended).await;
    }

    /// The transfer's note as it would be at `step`.
    pub async fn note_at(&self, step: Step) -> String {
        let mut note = self.watched.note.lock().await.clone();
        note.step = note.step.max(step);
        note.to_note()
    }

    /// Remembers that the transfer got to `step` (never back).
    pub async fn advance(&self, step: Step) {
        self.watched.advance(step).await;
    }

    /// True when a callback reported the caller with a human.
    pub fn is_connected(&self) -> bool {
        self.watched.is_connected()
    }

    /// The transfer as its chat and its updates see it.
    pub fn handle(&self) -> TransferHandle {
        TransferHandle(self.watched.clone())
    }
}

/// A registered transfer, for what happens to it outside its callbacks
/// (its chat relay, its Conversation's events, its context updates).
#[derive(Debug, Clone)]
pub struct TransferHandle(Arc<Watched>);

impl TransferHandle {
    /// (handoff id, attempt).
    pub fn transfer(&self) -> &(String, u32) {
        &self.0.transfer
    }

    pub fn events(&self) -> &TransferEvents {
        &self.0.events
    }

    pub fn is_connected(&self) -> bool {
        self.0.is_connected()
    }

    pub async fn note(&self) -> CallNote {
        self.0.note.lock().await.clone()
    }

    /// Changes the transfer's note and remembers it in the journal.
    pub async fn update_note(&self, change: impl FnOnce(&mut CallNote)) {
        let mut note = self.0.note.lock().await;
        change(&mut note);
        self.0.events.remember(&note.to_note()).await;
    }

    /// Releases the transfer's `start` once its terminal event is sent.
    pub fn end_if_ended(&self) {
        if self.0.events.is_ended() {
            self.0.ended.send_replace(true);
        }
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
            early: Mutex::new(HashMap::new()),
            chats: Arc::default(),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Arc<Watched>>> {
        self.watched.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Starts awaiting the callbacks of one transfer on `call_sid` under a
    /// new key, for `keep` (after which late callbacks are answered 404).
    pub fn register(
        self: &Arc<Self>,
        transfer: (String, u32),
        call_sid: &str,
        events: TransferEvents,
        leg: Leg,
        keep: Duration,
    ) -> Registration {
        let note = CallNote {
            key: uuid::Uuid::now_v7().simple().to_string(),
            call_sid: call_sid.to_owned(),
            leg,
            step: Step::Sending,
            conversation_sid: None,
            task_sid: None,
            chat_through: 0,
            queue: None,
            skills: Vec::new(),
        };
        self.insert(transfer, events, note, keep)
    }

    /// Awaits the callbacks of a transfer a previous process of the
    /// connector started, under the key it remembered: reports CONNECTED
    /// again when it had been, then applies the callbacks that came
    /// before this registration. Returns whether any had come.
    pub async fn register_again(
        self: &Arc<Self>,
        transfer: (String, u32),
        events: TransferEvents,
        note: CallNote,
        keep: Duration,
    ) -> (Registration, bool) {
        let connected = note.step == Step::Connected;
        let registration = self.insert(transfer, events, note, keep);
        let watched = registration.watched.clone();
        if connected {
            watched.connected.store(true, Ordering::SeqCst);
            watched
                .events
                .connected("the caller was with the human before the connector restarted")
                .await;
        }
        let early = self.lock_early().remove(&registration.key);
        let replayed = early.as_ref().is_some_and(|early| !early.is_empty());
        for (kind, params) in early.unwrap_or_default() {
            apply(self, &watched, &kind, &params).await;
        }
        (registration, replayed)
    }

    fn insert(
        self: &Arc<Self>,
        transfer: (String, u32),
        events: TransferEvents,
        note: CallNote,
        keep: Duration,
    ) -> Registration {
        let key = note.key.clone();
        let (ended, ended_receiver) = watch::channel(false);
        let watched = Arc::new(Watched {
            transfer,
            events,
            leg: note.leg,
            ended,
            connected: AtomicBool::new(false),
            note: tokio::sync::Mutex::new(note),
        });
        self.lock().insert(key.clone(), watched.clone());
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
            watched,
        }
    }

    fn lock_early(&self) -> std::sync::MutexGuard<'_, HashMap<String, Vec<Early>>> {
        self.early.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Keeps a signed callback for a key not registered, for
    /// [`KEEP_EARLY`].
    fn keep_early(self: &Arc<Self>, key: &str, kind: &str, params: Vec<(String, String)>) {
        let mut early = self.lock_early();
        if !early.contains_key(key) {
            if early.len() >= MAX_EARLY_KEYS {
                tracing::warn!("too many callbacks for unknown transfers; this one is not kept");
                return;
            }
            let callbacks = Arc::downgrade(self);
            let forget = key.to_owned();
            tokio::spawn(async move {
                tokio::time::sleep(KEEP_EARLY).await;
                if let Some(callbacks) = callbacks.upgrade() {
                    callbacks.lock_early().remove(&forget);
                }
            });
        }
        early
            .entry(key.to_owned())
            .or_default()
            .push((kind.to_owned(), params));
    }

    /// What to set as the TaskRouter workspace's `EventCallbackUrl`, so that
    /// a Flex agent's acceptance is reported as it happens.
    pub fn taskrouter_events_url(&self) -> String {
        format!("{}/v1/taskrouter/events", self.public_url)
    }

    /// What to set as the Conversations service's post-event webhook URL,
    /// for chat transfers.
    pub fn conversation_events_url(&self) -> String {
        format!(
            "{}{}",
            self.public_url,
            crate::chat::CONVERSATION_EVENTS_PATH
        )
    }

    /// A transfer followed here.
    pub fn handle_of(&self, handoff_id: &str, attempt: u32) -> Option<TransferHandle> {
        self.lock()
            .values()
            .find(|w| w.transfer.0 == handoff_id && w.transfer.1 == attempt)
            .map(|w| TransferHandle(w.clone()))
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
            .route(
                crate::chat::CONVERSATION_EVENTS_PATH,
                post(crate::chat::conversation_event),
            )
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
pub(crate) fn signed_params(
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

/// The value of a form parameter, empty when absent.
pub(crate) fn param<'a>(params: &'a [(String, String)], name: &str) -> &'a str {
    params
        .iter()
        .find(|(k, _)| k == name)
        .map_or("", |(_, v)| v.as_str())
}

/// The kind under which a TaskRouter event is kept for its transfer.
const TASKROUTER: &str = "taskrouter";

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
    let Some(key) = serde_json::from_str::<serde_json::Value>(param(&params, "TaskAttributes"))
        .ok()
        .and_then(|attributes| attributes["baton_transfer"].as_str().map(str::to_owned))
    else {
        return StatusCode::OK.into_response();
    };
    let watched = callbacks.lock().get(&key).cloned();
    match watched {
        Some(watched) => apply(&callbacks, &watched, TASKROUTER, &params).await,
        None => {
            // A task of a transfer that resumes after a restart, perhaps.
            callbacks.keep_early(&key, TASKROUTER, params);
            StatusCode::OK.into_response()
        }
    }
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
    if !matches!(kind.as_str(), "status" | "dial" | "wait" | "enqueue") {
        return (StatusCode::NOT_FOUND, "no such callback").into_response();
    }
    let watched = callbacks.lock().get(&key).cloned();
    if let Some(watched) = watched {
        return apply(&callbacks, &watched, &kind, &params).await;
    }
    // Signed by Twilio for a transfer this process does not follow (yet):
    // one started before a restart, whose control service has not
    // re-attached. Kept for it, and answered as it would be: the caller
    // holds unless the call is over.
    let answer = unregistered_answer(&callbacks, &kind, &params);
    callbacks.keep_early(&key, &kind, params);
    answer
}

/// The answer to a callback of a transfer not registered.
fn unregistered_answer(callbacks: &Callbacks, kind: &str, params: &[(String, String)]) -> Response {
    match kind {
        "dial" if matches!(param(params, "DialCallStatus"), "completed" | "answered") => {
            twiml(StatusCode::OK, HANG_UP.into())
        }
        "enqueue" if matches!(param(params, "QueueResult"), "bridged" | "hangup") => {
            twiml(StatusCode::OK, HANG_UP.into())
        }
        "dial" | "enqueue" => twiml(StatusCode::OK, callbacks.hold_twiml.clone()),
        "wait" => twiml(StatusCode::OK, callbacks.wait_twiml.clone()),
        _ => StatusCode::OK.into_response(),
    }
}

/// Applies one callback (or TaskRouter event) to its transfer and answers
/// it.
async fn apply(
    callbacks: &Callbacks,
    watched: &Watched,
    kind: &str,
    params: &[(String, String)],
) -> Response {
    let response = match kind {
        TASKROUTER => {
            watched.task(param(params, "TaskSid")).await;
            match param(params, "EventType") {
                "reservation.created" => watched.events.offered("offered to a Flex agent").await,
                "reservation.accepted" => accept_task(watched).await,
                // A chat task leaves no Enqueue action to say no agent
                // took it: the workflow's timeout cancels it.
                "task.canceled" if watched.leg == Leg::Chat && !watched.is_connected() => {
                    watched
                        .events
                        .failed(
                            FailureReason::NoAgents,
                            "the workflow cancelled the chat task: no agent took it",
                        )
                        .await
                }
                _ => {}
            }
            StatusCode::OK.into_response()
        }
        "status" => {
            on_call_status(watched, param(params, "CallStatus")).await;
            StatusCode::OK.into_response()
        }
        "dial" => {
            let connected = on_dial_ended(watched, param(params, "DialCallStatus")).await;
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
            on_queue_wait(
                watched,
                param(params, "QueuePosition"),
                param(params, "AvgQueueTime"),
            )
            .await;
            twiml(StatusCode::OK, callbacks.wait_twiml.clone())
        }
        "enqueue" => {
            let connected = on_queue_left(watched, param(params, "QueueResult")).await;
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
