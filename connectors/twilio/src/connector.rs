//! The Twilio connector: a transfer updates the customer's live call (its
//! CallSid is the handoff's `conversation.call.platform_contact_id`) with
//! TwiML that moves it to the target, then follows the signed callbacks to
//! the transfer's outcome. A chat handoff (channel CHAT) to a queue goes
//! to a Twilio Conversation and a TaskRouter chat task instead
//! ([`crate::chat`]).

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use baton_connector_sdk::chat::ChatRelay;
use baton_connector_sdk::{
    Availability, AvailabilityQuery, Connector, ConnectorInfo, ContextEnvelope, ContextMechanism,
    ContextUpdate, FailureReason, Status, TargetKind, Transfer, TransferEvents, TransferMode,
    TransferNote, TransferTarget, platform_contact_id,
};
use baton_proto::types::v1::Channel;
use serde_json::{Map, Value, json};

use crate::api::CallsApi;
use crate::availability::StatisticsApi;
use crate::callbacks::{CallNote, Callbacks, Leg, Registration, Step};
use crate::config::TwilioConfig;
use crate::conversations::ConversationsApi;
use crate::twiml;

/// The task attributes' share of the 4000-character TwiML: the rest is the
/// `<Enqueue>` markup and the Baton fields added here.
const MAX_TASK_ATTRIBUTES_BYTES: u32 = 2800;
/// What the control service may put in SIP headers (Twilio's limit for
/// the whole headers part is 1024 characters).
const MAX_SIP_HEADERS_BYTES: u32 = 700;
/// How long a transfer's callbacks are awaited after its deadline.
const KEEP_CALLBACKS: Duration = Duration::from_secs(15 * 60);

#[derive(Debug, Clone)]
pub struct TwilioConnector {
    config: Arc<TwilioConfig>,
    api: Arc<CallsApi>,
    conversations: Arc<ConversationsApi>,
    statistics: Arc<StatisticsApi>,
    callbacks: Arc<Callbacks>,
}

impl TwilioConnector {
    pub fn new(config: Arc<TwilioConfig>, api: Arc<CallsApi>, callbacks: Arc<Callbacks>) -> Self {
        Self {
            conversations: Arc::new(ConversationsApi::new(&config, api.clone())),
            statistics: Arc::new(StatisticsApi::new(&config, api.clone())),
            config,
            api,
            callbacks,
        }
    }

    /// How long a transfer's callbacks and Conversation events are awaited.
    fn keep(transfer: &Transfer) -> Duration {
        transfer
            .deadline
            .duration_since(SystemTime::now())
            .unwrap_or_default()
            + KEEP_CALLBACKS
    }

    /// Follows `transfer` again after a restart from what `note`
    /// remembers, for `keep`; whether a callback was heard since (see
    /// [`Callbacks::register_again`]).
    async fn follow_again(
        &self,
        transfer: &Transfer,
        events: &TransferEvents,
        note: CallNote,
        keep: Duration,
    ) -> (Registration, bool) {
        self.callbacks
            .register_again(
                (transfer.handoff_id.clone(), transfer.attempt),
                events.clone(),
                note,
                keep,
            )
            .await
    }

    /// A chat transfer: a Conversation, then the TaskRouter chat task that
    /// offers it to a Flex agent; the task's events and the Conversation's
    /// follow it.
    async fn start_chat(&self, transfer: Transfer, events: TransferEvents) {
        let TransferTarget::Queue { name, skills } = &transfer.target else {
            events
                .failed(
                    FailureReason::Unsupported,
                    "a chat handoff goes to a queue: a Flex agent takes it through a TaskRouter chat task",
                )
                .await;
            return;
        };
        let Some(workflow) = self.config.workflow_for(name) else {
            events
                .failed(
                    FailureReason::Unreachable,
                    &format!("no TaskRouter workflow is configured for queue {name:?}"),
                )
                .await;
            return;
        };
        if self.conversations.workspace_sid().is_none() {
            events
                .failed(
                    FailureReason::ConnectorError,
                    "workspace_sid is not configured: chat tasks are created in it",
                )
                .await;
            return;
        }
        let keep = Self::keep(&transfer);
        let registration = self.callbacks.register(
            (transfer.handoff_id.clone(), transfer.attempt),
            "",
            events.clone(),
            Leg::Chat,
            keep,
        );
        let handle = registration.handle();
        // Remembered before anything is created: a restarted connector
        // then knows a Conversation may exist and creates none again.
        events
            .remember(&registration.note_at(Step::Sending).await)
            .await;
        let conversation = match self
            .conversations
            .create_conversation(&registration.key, &transfer.handoff_id)
            .await
        {
            Ok(sid) => sid,
            Err(error) => {
                events
                    .failed(
                        error.reason(),
                        &format!("creating the conversation: {error}"),
                    )
                    .await;
                return;
            }
        };
        handle
            .update_note(|note| {
                note.conversation_sid = Some(conversation.clone());
                note.queue = Some(name.clone());
                note.skills = skills.clone();
            })
            .await;
        self.callbacks
            .chats
            .add(&transfer.tenant, &conversation, handle.clone(), 0, keep);
        let attributes = task_attributes(
            &transfer.envelope,
            &transfer.handoff_id,
            &TaskFields {
                key: &registration.key,
                queue: name,
                skills,
                conversation_sid: Some(&conversation),
            },
            true,
        );
        tracing::info!(conversation = %conversation, key = %registration.key, "creating the chat task");
        match self
            .conversations
            .create_task(workflow, &attributes, priority(&transfer))
            .await
        {
            Ok(task) => {
                handle.update_note(|note| note.task_sid = Some(task)).await;
                registration.advance(Step::Updated).await;
            }
            Err(error) => {
                self.close_conversation(&conversation).await;
                events
                    .failed(error.reason(), &format!("creating the chat task: {error}"))
                    .await;
                return;
            }
        }
        registration.ended().await;
    }

    /// Follows a chat transfer a previous process started: its Conversation
    /// again, unless the task was never created (then nothing is created a
    /// second time: it fails INTERRUPTED).
    async fn resume_chat(&self, transfer: Transfer, events: TransferEvents, note: CallNote) {
        let keep = Self::keep(&transfer);
        let (conversation, task, through) = (
            note.conversation_sid.clone(),
            note.task_sid.clone(),
            note.chat_through,
        );
        let (registration, _) = self.follow_again(&transfer, &events, note, keep).await;
        let (Some(conversation), Some(_)) = (conversation, task) else {
            if !events.is_ended() {
                self.cancel(&transfer).await;
                events
                    .failed(
                        FailureReason::Interrupted,
                        "interrupted by a restart of the connector while the chat was being set up; no conversation or task was created again",
                    )
                    .await;
            }
            return;
        };
        self.callbacks.chats.add(
            &transfer.tenant,
            &conversation,
            registration.handle(),
            through,
            keep,
        );
        match self.conversations.conversation_state(&conversation).await {
            Ok(state) if state == "closed" => self.callbacks.chats.closed(&conversation).await,
            Ok(_) => {}
            Err(error) => {
                events
                    .failed(
                        error.reason(),
                        &format!("reading conversation {conversation}: {error}"),
                    )
                    .await;
                return;
            }
        }
        registration.ended().await;
    }

    async fn close_conversation(&self, conversation: &str) {
        self.callbacks.chats.remove(conversation);
        if let Err(error) = self.conversations.close(conversation).await {
            tracing::info!(%conversation, %error, "conversation not closed");
        }
    }

    /// Withdraws a chat no agent has accepted: its task and Conversation.
    async fn cancel_chat(&self, note: &CallNote) {
        if note.step == Step::Connected {
            // The agent has the customer: the handoff's ENDED entry closes
            // the Conversation.
            return;
        }
        if let Some(task) = &note.task_sid
            && let Err(error) = self
                .conversations
                .cancel_task(task, "the Baton handoff was cancelled")
                .await
        {
            tracing::info!(%task, %error, "chat task not cancelled");
        }
        if let Some(conversation) = &note.conversation_sid {
            self.close_conversation(conversation).await;
        }
    }
}

fn is_chat(transfer: &Transfer) -> bool {
    transfer
        .envelope
        .conversation
        .as_ref()
        .is_some_and(|c| c.channel == Channel::Chat as i32)
}

/// The task's priority: what the control service rendered into the task
/// attributes, else the context's.
fn priority(transfer: &Transfer) -> u32 {
    payload(transfer, ContextMechanism::TaskAttributes)
        .and_then(|attributes| attributes.get("priority").and_then(Value::as_u64))
        .and_then(|p| u32::try_from(p).ok())
        .or_else(|| transfer.envelope.context.as_ref().map(|c| c.priority))
        .unwrap_or(0)
}

/// A Call SID: `CA` and 32 hex digits.
fn call_sid(transfer: &Transfer) -> Option<String> {
    platform_contact_id(&transfer.envelope)
        .filter(|sid| {
            sid.len() == 34
                && sid.starts_with("CA")
                && sid[2..].bytes().all(|b| b.is_ascii_hexdigit())
        })
        .map(str::to_owned)
}

fn payload(transfer: &Transfer, mechanism: ContextMechanism) -> Option<Map<String, Value>> {
    payload_of(&transfer.envelope, mechanism)
}

fn payload_of(
    envelope: &ContextEnvelope,
    mechanism: ContextMechanism,
) -> Option<Map<String, Value>> {
    envelope
        .payloads
        .iter()
        .find(|p| p.mechanism == mechanism as i32)
        .and_then(|p| serde_json::from_str::<Value>(&p.content).ok())
        .and_then(|v| match v {
            Value::Object(map) => Some(map),
            _ => None,
        })
}

/// The SIP headers for a `<Sip>` target: the handoff token first, then what
/// the control service rendered for SIP_HEADERS, as `X-Baton-*`.
fn sip_headers(transfer: &Transfer) -> Vec<(String, String)> {
    let reference = transfer.envelope.reference.clone().unwrap_or_default();
    let token_hex: String = reference
        .token
        .bytes()
        .map(|b| format!("{b:02x}"))
        .collect();
    let mut headers = vec![
        (
            "X-Baton-Handoff-Id".to_string(),
            transfer.handoff_id.clone(),
        ),
        ("X-Baton-Token".to_string(), reference.token.clone()),
        // RFC 7433, as the SIP connector sends it: the token, hex-encoded.
        (
            "User-to-User".to_string(),
            format!("{token_hex};encoding=hex;purpose=isdn-uui"),
        ),
    ];
    if let Some(rendered) = payload(transfer, ContextMechanism::SipHeaders) {
        for (key, value) in rendered {
            if key == "token" {
                continue;
            }
            let value = match value {
                Value::String(text) => text,
                other => other.to_string(),
            };
            if value.is_empty() {
                continue;
            }
            let name: String = key
                .split('_')
                .map(|part| {
                    let mut chars = part.chars();
                    chars
                        .next()
                        .map(|c| c.to_ascii_uppercase().to_string() + chars.as_str())
                        .unwrap_or_default()
                })
                .collect::<Vec<_>>()
                .join("-");
            headers.push((format!("X-Baton-{name}"), value));
        }
    }
    headers
}

/// What a transfer's task attributes carry besides the context: the same
/// when the task is created and whenever a context update replaces them.
struct TaskFields<'a> {
    /// The transfer's callback key.
    key: &'a str,
    queue: &'a str,
    skills: &'a [String],
    /// A chat task's Conversation.
    conversation_sid: Option<&'a str>,
}

/// The TaskRouter task attributes: what the control service rendered for
/// TASK_ATTRIBUTES, with the handoff's reference and target for the Flex
/// plugin or CRM that shows the screen pop and for the workflow's filters.
fn task_attributes(
    envelope: &ContextEnvelope,
    handoff_id: &str,
    task: &TaskFields<'_>,
    full: bool,
) -> String {
    let reference = envelope.reference.clone().unwrap_or_default();
    let mut attributes = if full {
        payload_of(envelope, ContextMechanism::TaskAttributes).unwrap_or_default()
    } else {
        Map::new()
    };
    attributes.insert("type".into(), json!("baton_handoff"));
    // Finds the transfer again in the workspace's TaskRouter events.
    attributes.insert("baton_transfer".into(), json!(task.key));
    attributes.insert("baton_handoff_id".into(), json!(handoff_id));
    attributes.insert("baton_token".into(), json!(reference.token));
    attributes.insert(
        "baton_screen_pop_url".into(),
        json!(reference.screen_pop_url),
    );
    attributes.insert("queue".into(), json!(task.queue));
    attributes.insert("skills".into(), json!(task.skills));
    if let Some(conversation) = task.conversation_sid {
        // What Flex reads to open the Conversation for the agent.
        attributes.insert("channelType".into(), json!("chat"));
        attributes.insert("conversationSid".into(), json!(conversation));
    }
    Value::Object(attributes).to_string()
}

impl Connector for TwilioConnector {
    fn info(&self) -> ConnectorInfo {
        // Warm and blind: TwiML moves the caller off the AI leg at once
        // (Twilio has no consultative transfer on a call update), while the
        // context reaches the human before or as they answer.
        let info = ConnectorInfo::new(self.config.name.clone(), env!("CARGO_PKG_VERSION"))
            .target_kinds([
                TargetKind::Queue,
                TargetKind::PhoneNumber,
                TargetKind::SipUri,
            ])
            .transfer_modes([TransferMode::Warm, TransferMode::Blind])
            .context(ContextMechanism::TaskAttributes, MAX_TASK_ATTRIBUTES_BYTES)
            .context(ContextMechanism::SipHeaders, MAX_SIP_HEADERS_BYTES)
            .chat()
            .context_updates();
        // Only TaskQueues have statistics to read, and only those named in
        // the configuration: without any, every question would be refused.
        if self.config.reports_availability() {
            info.availability()
        } else {
            info
        }
    }

    /// Who is there in the queue's TaskQueue now, as TaskRouter reports
    /// it. A number or SIP endpoint has no statistics: UNIMPLEMENTED.
    async fn availability(&self, query: AvailabilityQuery) -> Result<Availability, Status> {
        let TransferTarget::Queue { name, .. } = &query.target else {
            return Err(Status::unimplemented(
                "the Twilio connector reports availability for queue targets only (TaskRouter statistics)",
            ));
        };
        let (Some(workspace), Some(task_queue)) = (
            self.config.workspace_sid.as_deref(),
            self.config.task_queues.get(name),
        ) else {
            return Err(Status::not_found(format!(
                "no TaskRouter TaskQueue is configured for queue {name:?} (task_queues)"
            )));
        };
        self.statistics
            .availability(workspace, task_queue, name, query.channel)
            .await
    }

    async fn start(&self, transfer: Transfer, events: TransferEvents) {
        if is_chat(&transfer) {
            return self.start_chat(transfer, events).await;
        }
        let Some(call_sid) = call_sid(&transfer) else {
            events
                .failed(
                    FailureReason::Unsupported,
                    "the handoff names no Twilio call: conversation.call.platform_contact_id must be its CallSid (CA…)",
                )
                .await;
            return;
        };
        let ring_secs = self.config.ring_timeout.as_secs();
        let keep = Self::keep(&transfer);
        let (leg, describe) = match &transfer.target {
            TransferTarget::PhoneNumber(_) => (
                Leg::Dial {
                    context_in_signalling: false,
                },
                "dialling the number",
            ),
            TransferTarget::SipUri(_) => (
                Leg::Dial {
                    context_in_signalling: true,
                },
                "dialling the SIP endpoint with the context in X-Baton headers",
            ),
            TransferTarget::Queue { .. } => (Leg::Enqueue, "enqueueing into TaskRouter"),
        };
        let registration = self.callbacks.register(
            (transfer.handoff_id.clone(), transfer.attempt),
            &call_sid,
            events.clone(),
            leg,
            keep,
        );
        let document = match &transfer.target {
            TransferTarget::PhoneNumber(number) => twiml::dial_number(
                number,
                &registration.dial,
                ring_secs,
                self.config.caller_id.as_deref(),
            ),
            TransferTarget::SipUri(uri) => {
                let (uri, omitted) = twiml::sip_uri_with_headers(uri, &sip_headers(&transfer));
                if !omitted.is_empty() {
                    tracing::info!(omitted = ?omitted, "SIP headers left out to respect Twilio's 1024-character limit");
                }
                twiml::dial_sip(&uri, &registration.dial, ring_secs)
            }
            TransferTarget::Queue { name, skills } => {
                let Some(workflow) = self.config.workflow_for(name) else {
                    events
                        .failed(
                            FailureReason::Unreachable,
                            &format!("no TaskRouter workflow is configured for queue {name:?}"),
                        )
                        .await;
                    return;
                };
                // The control service renders the priority into the task
                // attributes; the structured context is not sent to this
                // connector (it does not advertise STRUCTURED).
                let priority = priority(&transfer);
                let fields = TaskFields {
                    key: &registration.key,
                    queue: name,
                    skills,
                    conversation_sid: None,
                };
                // Kept for the context updates of the task TaskRouter creates.
                registration
                    .handle()
                    .update_note(|note| {
                        note.queue = Some(name.clone());
                        note.skills = skills.clone();
                    })
                    .await;
                let full = twiml::enqueue_task(
                    workflow,
                    &task_attributes(&transfer.envelope, &transfer.handoff_id, &fields, true),
                    priority,
                    &registration.enqueue,
                );
                if full.chars().count() <= twiml::MAX_TWIML_CHARS {
                    full
                } else {
                    // Only the reference: the agent's screen pop fetches the rest.
                    twiml::enqueue_task(
                        workflow,
                        &task_attributes(&transfer.envelope, &transfer.handoff_id, &fields, false),
                        priority,
                        &registration.enqueue,
                    )
                }
            }
        };
        if document.chars().count() > twiml::MAX_TWIML_CHARS {
            events
                .failed(
                    FailureReason::ConnectorError,
                    "the TwiML for this target exceeds Twilio's 4000 characters",
                )
                .await;
            return;
        }
        tracing::info!(call_sid = %call_sid, key = %registration.key, "{describe}");
        // Remembered as the request leaves, then once Twilio has it: a
        // restarted connector follows the call under the same key and
        // never updates it again.
        let sending = registration.note_at(Step::Sending).await;
        if let Err(error) = self
            .api
            .update_twiml(&call_sid, &document, Some(&events), Some(&sending))
            .await
        {
            events
                .failed(
                    error.reason(),
                    &format!("updating call {call_sid}: {error}"),
                )
                .await;
            return;
        }
        registration.advance(Step::Updated).await;
        registration.ended().await;
    }

    /// Follows the call a previous process of the connector updated: the
    /// same callback key registered again (its callbacks, also those that
    /// came meanwhile, go on to this transfer); the call is never updated
    /// a second time.
    async fn resume(&self, transfer: Transfer, events: TransferEvents) {
        // Without a note nothing was sent to Twilio: the note is
        // remembered before the call update leaves.
        let Some(note) = CallNote::resumed(self, &transfer, &events).await else {
            return;
        };
        if note.leg == Leg::Chat {
            return self.resume_chat(transfer, events, note).await;
        }
        let keep = Self::keep(&transfer);
        let step = note.step;
        tracing::info!(call_sid = %note.call_sid, key = %note.key, ?step, "following a call updated before the connector restarted");
        let (registration, heard) = self.follow_again(&transfer, &events, note, keep).await;
        if step == Step::Sending && !heard && !events.is_ended() {
            // The update was in flight at the restart: Twilio may or may
            // not have it, and sending it again would ring the target a
            // second time. The caller holds; the next target is tried.
            self.cancel(&transfer).await;
            events
                .failed(
                    FailureReason::Interrupted,
                    "interrupted by a restart of the connector while the call update was sent; the caller holds and the call was not updated again",
                )
                .await;
            return;
        }
        if !events.is_ended() {
            registration.advance(Step::Updated).await;
        }
        registration.ended().await;
    }

    /// Takes the caller out of a dial or queue that is no longer wanted
    /// (cancelled, deadline passed) and holds them for the next target.
    async fn cancel(&self, transfer: &Transfer) {
        let remembered = transfer
            .remembered
            .as_deref()
            .and_then(|note| CallNote::from_note(note).ok());
        let connected_before_restart = remembered
            .as_ref()
            .is_some_and(|note| note.step == Step::Connected);
        let chat = match self
            .callbacks
            .chats
            .note_of(&transfer.handoff_id, transfer.attempt)
            .await
        {
            Some(note) => Some(note),
            None => remembered.filter(|note| note.leg == Leg::Chat),
        };
        if let Some(note) = chat {
            return self.cancel_chat(&note).await;
        }
        let Some(call_sid) = call_sid(transfer) else {
            return;
        };
        if connected_before_restart
            || self
                .callbacks
                .was_connected(&transfer.handoff_id, transfer.attempt)
        {
            // The caller is talking to the human: leave the call alone.
            return;
        }
        if let Err(error) = self
            .api
            .update_twiml(&call_sid, &self.config.hold_twiml, None, None)
            .await
        {
            // 21220: the call has ended, nothing to hold.
            tracing::info!(call_sid = %call_sid, %error, "call not moved to hold after cancel");
        }
    }

    /// Replaces the attributes of the transfer's TaskRouter task (a chat
    /// task, or the task of an enqueued call once TaskRouter reported it)
    /// with the newer context, rendered as the task was given it. A dialled
    /// target keeps what its call was given: FAILED_PRECONDITION, and the
    /// human reads the update through the context reference.
    async fn update(&self, update: ContextUpdate) -> Result<(), Status> {
        let Some(handle) = self.callbacks.handle_of(&update.handoff_id, update.attempt) else {
            return Err(Status::not_found(
                "this connector follows no such transfer any more",
            ));
        };
        let note = handle.note().await;
        let (Some(task_sid), Some(queue)) = (&note.task_sid, &note.queue) else {
            return Err(Status::failed_precondition(
                "the transfer has no TaskRouter task (yet): a dialled call keeps the context it was given",
            ));
        };
        let attributes = task_attributes(
            &update.envelope,
            &update.handoff_id,
            &TaskFields {
                key: &note.key,
                queue,
                skills: &note.skills,
                conversation_sid: note.conversation_sid.as_deref(),
            },
            true,
        );
        self.conversations
            .update_task_attributes(task_sid, &attributes)
            .await
            .map_err(|error| {
                let detail = format!("updating task {task_sid}: {error}");
                match error.reason() {
                    FailureReason::Unreachable => Status::unavailable(detail),
                    _ => Status::failed_precondition(detail),
                }
            })
    }

    async fn converse(&self, relay: ChatRelay) {
        self.callbacks.chats.serve(&self.conversations, relay).await;
    }
}
