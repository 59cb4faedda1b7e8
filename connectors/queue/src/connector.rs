//! The queue as a Baton connector: each transfer becomes a contact in the
//! queue, and the contact's progress becomes transfer events.

use std::sync::Arc;
use std::time::Duration;

use baton_connector_sdk::{
    Availability, AvailabilityBasis, AvailabilityFigures, AvailabilityQuery, Connector,
    ConnectorInfo, ContextMechanism, FailureReason, Judgement, Status, TargetKind, Transfer,
    TransferEvents, TransferMode, TransferTarget, WaitEstimateMethod, WrapUp,
};
use baton_proto::connector::v1::TransferEventKind;
use baton_proto::types::v1::Channel;
use baton_sip_stack::VoiceLegs;

use crate::config::{CallbackConfig, VoiceMode};
use crate::desk::{Desk, priority_of, request_of};
use crate::domain::{
    CallbackRequest, Media, NewContact, NotAdmitted, Phase, QueueKey, Refusal, WithdrawalReason,
};

/// The connector side of the queue.
#[derive(Debug, Clone)]
pub struct QueueConnector {
    name: String,
    max_context_bytes: u32,
    desk: Arc<Desk>,
    voice: Option<Arc<Voice>>,
}

/// Delivers the voice leg of accepted voice conversations, and calls
/// callbacks' customers back.
#[derive(Debug)]
struct Voice {
    legs: VoiceLegs,
    mode: TransferMode,
    callback: CallbackConfig,
}

impl QueueConnector {
    pub fn new(name: &str, max_context_bytes: u32, desk: Arc<Desk>) -> Self {
        Self {
            name: name.to_owned(),
            max_context_bytes,
            desk,
            voice: None,
        }
    }

    /// Delivers voice conversations to the accepting agent's contact
    /// address through `legs`: the handoff is connected when the SIP leg
    /// is, and fails (so the control service falls back) when it does.
    /// The queue then takes callbacks too, dialed as `callback` says.
    pub fn with_voice(
        mut self,
        legs: VoiceLegs,
        mode: VoiceMode,
        callback: CallbackConfig,
    ) -> Self {
        let mode = match mode {
            VoiceMode::Warm => TransferMode::Warm,
            VoiceMode::Blind => TransferMode::Blind,
        };
        self.voice = Some(Arc::new(Voice {
            legs,
            mode,
            callback,
        }));
        self
    }

    /// Hangs up the voice legs still held (at shutdown).
    pub async fn shutdown(&self) {
        if let Some(voice) = &self.voice {
            voice.legs.shutdown().await;
        }
    }

    /// Calls the agent who accepted at their contact address and reports
    /// the SIP leg's progress as this transfer's: ringing, answered and
    /// context delivered as they come, connected when the leg connects.
    /// Returns the leg's failure otherwise.
    async fn deliver_voice(
        &self,
        voice: &Voice,
        transfer: &Transfer,
        agent_name: &str,
        events: &TransferEvents,
    ) -> Result<(), (FailureReason, String)> {
        let target = self.agent_phone(transfer, agent_name, "for the voice leg")?;
        // Same handoff and attempt, so that `cancel` finds the leg.
        let leg = Transfer {
            target,
            mode: voice.mode,
            ..transfer.clone()
        };
        let (leg_events, mut received) = TransferEvents::channel();
        let forward = async {
            while let Some(event) = received.recv().await {
                let detail = format!("voice leg to {agent_name}: {}", event.detail);
                match TransferEventKind::try_from(event.kind) {
                    Ok(TransferEventKind::Ringing) => events.ringing(&detail).await,
                    Ok(TransferEventKind::Answered) => events.answered(&detail).await,
                    Ok(TransferEventKind::ContextDelivered) => {
                        events.context_delivered(&detail).await
                    }
                    Ok(TransferEventKind::Connected) => {
                        events.connected(&detail).await;
                        return Ok(());
                    }
                    Ok(TransferEventKind::Failed) => {
                        let reason = FailureReason::try_from(event.failure_reason)
                            .unwrap_or(FailureReason::Unreachable);
                        return Err((reason, detail));
                    }
                    Ok(TransferEventKind::Cancelled) => {
                        return Err((FailureReason::Unreachable, detail));
                    }
                    _ => {}
                }
            }
            Err((
                FailureReason::Unreachable,
                format!("voice leg to {agent_name} ended without connecting"),
            ))
        };
        let ((), outcome) = tokio::join!(voice.legs.deliver(leg, leg_events), forward);
        outcome
    }
}

impl QueueConnector {
    /// The phone of the agent who accepted `transfer`, from their contact
    /// address; UNREACHABLE (saying what it was `for`) without one.
    fn agent_phone(
        &self,
        transfer: &Transfer,
        agent_name: &str,
        purpose: &str,
    ) -> Result<TransferTarget, (FailureReason, String)> {
        let contact = self
            .desk
            .connected_agent_contact(&transfer.handoff_id)
            .unwrap_or_default();
        voice_target(&contact).ok_or_else(|| {
            (
                FailureReason::Unreachable,
                format!("{agent_name} has no contact address {purpose}"),
            )
        })
    }
}

/// Where the voice leg goes: a SIP URI as it is, an E.164 number (or a
/// `tel:` URI) through the trunks.
fn voice_target(contact: &str) -> Option<TransferTarget> {
    let contact = contact.trim();
    if contact.is_empty() {
        return None;
    }
    let number = contact.strip_prefix("tel:").unwrap_or(contact);
    if number.starts_with('+') {
        return Some(TransferTarget::PhoneNumber(number.to_owned()));
    }
    Some(TransferTarget::SipUri(contact.to_owned()))
}

fn is_voice(transfer: &Transfer) -> bool {
    transfer
        .envelope
        .conversation
        .as_ref()
        .is_some_and(|c| c.channel == Channel::Voice as i32)
}

/// A chat shares its agent with other chats; anything else (a channel
/// not stated is voice) takes the agent alone.
fn media_of(transfer: &Transfer) -> Media {
    let chat = transfer
        .envelope
        .conversation
        .as_ref()
        .is_some_and(|c| c.channel == Channel::Chat as i32);
    if chat { Media::Chat } else { Media::Voice }
}

fn judgement(answer: Option<bool>) -> Judgement {
    match answer {
        Some(true) => Judgement::Yes,
        Some(false) => Judgement::No,
        None => Judgement::Unspecified,
    }
}

fn failure_reason(refusal: Refusal) -> FailureReason {
    match refusal {
        Refusal::NoAgents => FailureReason::NoAgents,
        Refusal::WaitTooLong => FailureReason::WaitTooLong,
        Refusal::NoAnswer => FailureReason::NoAnswer,
        Refusal::Rejected => FailureReason::Rejected,
        Refusal::UnknownQueue => FailureReason::Unsupported,
        // The window is the handoff's deadline (the contract makes the
        // callback's window_end the handoff's): no other target could
        // call inside a window that has closed, which NO_AGENTS would
        // suggest.
        Refusal::WindowClosed => FailureReason::DeadlineExceeded,
    }
}

/// Why a transfer was refused, naming the tenant's queue (`acme/support`).
fn refusal_detail(refusal: Refusal, queue: &QueueKey) -> String {
    match refusal {
        Refusal::NoAgents => format!("no agent with the skills of queue {queue} is signed in"),
        Refusal::WaitTooLong => {
            format!("the estimated wait in queue {queue} is beyond its maximum")
        }
        Refusal::NoAnswer => "no agent accepted the offer in time".into(),
        Refusal::Rejected => "every agent declined the offer".into(),
        Refusal::UnknownQueue => format!("no queue named {queue}"),
        Refusal::WindowClosed => "the callback window closed before an agent took it".into(),
    }
}

/// What was last reported, so that only changes become events.
#[derive(Debug, PartialEq, Eq)]
enum Reported {
    Nothing,
    Queued {
        position: u32,
        wait_seconds: u64,
        detail: String,
    },
    Offered(String),
    Connected,
}

impl Connector for QueueConnector {
    fn info(&self) -> ConnectorInfo {
        let info = ConnectorInfo::new(self.name.clone(), env!("CARGO_PKG_VERSION"))
            .target_kinds([TargetKind::Queue])
            // The queue treats the three modes alike: the agent accepts in
            // the desktop before the customer is connected, which is what
            // a warm or attended transfer needs and more than blind needs.
            .transfer_modes([
                TransferMode::Warm,
                TransferMode::Blind,
                TransferMode::Attended,
            ])
            .context(ContextMechanism::Structured, self.max_context_bytes)
            .context(ContextMechanism::ScreenPopUrl, 0)
            .chat()
            .context_updates()
            .availability();
        // A callback is dialed through the voice legs: none without them.
        if self.voice.is_some() {
            info.callbacks()
        } else {
            info
        }
    }

    /// Exact: the queue routes its contacts itself, so the counts are
    /// those of the moment; the wait is estimated from recent handle times.
    async fn availability(&self, query: AvailabilityQuery) -> Result<Availability, Status> {
        let TransferTarget::Queue { name, skills } = &query.target else {
            return Err(Status::unimplemented(
                "the queue connector serves queue targets only",
            ));
        };
        let media = match query.channel {
            Channel::Chat => Media::Chat,
            _ => Media::Voice,
        };
        let now = self
            .desk
            .availability(&query.tenant, name, skills, media)
            .ok_or_else(|| {
                Status::not_found(format!(
                    "no queue named {}",
                    QueueKey::new(&query.tenant, name)
                ))
            })?;
        Ok(AvailabilityFigures {
            basis: AvailabilityBasis::Exact,
            agents_signed_in: Some(now.agents_signed_in),
            agents_available: Some(now.agents_available),
            contacts_waiting: Some(now.waiting),
            estimated_wait: now.estimated_wait,
            wait_estimate: WaitEstimateMethod::HandleTimes,
        }
        .answer())
    }

    async fn update(
        &self,
        update: baton_connector_sdk::ContextUpdate,
    ) -> Result<(), baton_connector_sdk::Status> {
        let (tenant, id, attempt) = (&update.tenant, &update.handoff_id, update.attempt);
        self.desk
            .update_context(tenant, id, attempt, update.envelope)
    }

    async fn converse(&self, relay: baton_connector_sdk::chat::ChatRelay) {
        self.desk.chats.serve(&self.desk, relay).await;
    }

    async fn start(&self, transfer: Transfer, events: TransferEvents) {
        let TransferTarget::Queue { name, skills } = &transfer.target else {
            events
                .failed(
                    FailureReason::Unsupported,
                    "the queue connector serves queue targets only",
                )
                .await;
            return;
        };
        // Before the contact shows, so the supervisor's view has both.
        self.desk.disclosures.keep(&transfer);
        let mut changes = self.desk.subscribe();
        let new = NewContact {
            handoff_id: transfer.handoff_id.clone(),
            attempt: transfer.attempt,
            tenant: transfer.tenant.clone(),
            queue: name.clone(),
            // A callback is a call on the agent's line, whatever the
            // conversation was.
            media: if transfer.callback.is_some() {
                Media::Voice
            } else {
                media_of(&transfer)
            },
            skills: skills.clone(),
            priority: priority_of(transfer.envelope.context.as_ref()),
            callback: transfer.callback.as_ref().map(request_of),
        };
        match self.desk.enqueue(new, transfer.envelope.clone()) {
            Ok(_) => {}
            Err(NotAdmitted::Refused(refusal)) => {
                events
                    .failed(
                        failure_reason(refusal),
                        &refusal_detail(refusal, &QueueKey::new(&transfer.tenant, name)),
                    )
                    .await;
                return;
            }
            // A StartTransfer arriving after its transfer was cancelled (or
            // withdrawn) never puts the customer back in line.
            Err(NotAdmitted::Withdrawn(withdrawal)) => {
                match withdrawal.reason {
                    WithdrawalReason::Cancelled => {
                        events
                            .cancelled("this transfer was cancelled; the contact left the queue")
                            .await;
                    }
                    WithdrawalReason::NotReattached => {
                        events
                            .failed(
                                FailureReason::Interrupted,
                                "the queue restarted and this transfer was not re-attached within reattach_grace; the contact was withdrawn without reaching an agent",
                            )
                            .await;
                    }
                }
                return;
            }
            Err(NotAdmitted::Superseded { attempt }) => {
                events
                    .cancelled(&format!(
                        "superseded: attempt {attempt} of this handoff holds the contact"
                    ))
                    .await;
                return;
            }
            // Never another tenant's customer's place, context or agent.
            Err(NotAdmitted::OtherTenant) => {
                events
                    .failed(
                        FailureReason::Unsupported,
                        "this handoff's contact here belongs to another tenant",
                    )
                    .await;
                return;
            }
        }
        let mut reported = Reported::Nothing;
        // A contact connected before this transfer first looked was
        // restored after a restart: its voice leg was delivered then.
        let mut first_look = true;
        loop {
            let Some(status) = self.desk.contact_status(&transfer.handoff_id) else {
                events.cancelled("the contact left the queue").await;
                return;
            };
            if status.attempt != transfer.attempt {
                // A later attempt took the contact over; it reports from now.
                events
                    .cancelled(&format!(
                        "superseded: attempt {} of this handoff holds the contact",
                        status.attempt
                    ))
                    .await;
                return;
            }
            let agent_name = status.agent_name;
            match status.phase {
                Phase::Waiting => {
                    if let Some(standing) = status.standing {
                        let detail = match &status.callback {
                            Some(callback) => scheduled_detail(callback),
                            None if standing.callback_offered => "callback offered: the estimated wait is long; the customer may choose to be called back".into(),
                            None => String::new(),
                        };
                        let now = Reported::Queued {
                            position: standing.position,
                            wait_seconds: standing.estimated_wait.as_secs(),
                            detail,
                        };
                        if now != reported {
                            if let Reported::Queued { detail, .. } = &now {
                                events
                                    .queued_with_detail(
                                        standing.position,
                                        Duration::from_secs(standing.estimated_wait.as_secs()),
                                        detail,
                                    )
                                    .await;
                            }
                            reported = now;
                        }
                    }
                }
                Phase::Offered { agent, .. } => {
                    let now = Reported::Offered(agent);
                    if now != reported {
                        events.offered(&format!("offered to {agent_name}")).await;
                        reported = now;
                    }
                }
                Phase::Connected { .. } if status.callback.is_some() => {
                    if let Some(callback) = &status.callback
                        && reported != Reported::Connected
                    {
                        if let Err((reason, detail)) = self
                            .follow_callback(&transfer, callback, &agent_name, &events)
                            .await
                        {
                            tracing::info!(?reason, %detail, "callback failed");
                            events.failed(reason, &detail).await;
                            // Frees the agent; the number leaves with it.
                            self.desk.remove(&transfer.handoff_id);
                            return;
                        }
                        reported = Reported::Connected;
                    }
                }
                Phase::Connected { .. } => {
                    if reported != Reported::Connected {
                        let voice = self
                            .voice
                            .as_ref()
                            .filter(|_| !first_look && is_voice(&transfer));
                        if let Some(voice) = voice {
                            // The agent has the context; the customer is
                            // connected when the agent's phone is.
                            events
                                .context_delivered(&format!(
                                    "accepted by {agent_name}; screen pop shown in the agent desktop"
                                ))
                                .await;
                            if let Err((reason, detail)) = self
                                .deliver_voice(voice, &transfer, &agent_name, &events)
                                .await
                            {
                                tracing::info!(?reason, %detail, "voice leg failed");
                                events.failed(reason, &detail).await;
                                // Frees the agent.
                                self.desk.remove(&transfer.handoff_id);
                                return;
                            }
                        } else {
                            events.answered(&format!("accepted by {agent_name}")).await;
                            events
                                .context_delivered("screen pop shown in the agent desktop")
                                .await;
                            // Chat, or voice without `[voice]`: the desktop
                            // shows the agent's contact address.
                            events
                                .connected(&format!("connected to {agent_name}"))
                                .await;
                        }
                        reported = Reported::Connected;
                    }
                }
                Phase::Completed {
                    disposition,
                    notes,
                    judgements,
                    hand_back,
                    ..
                } => {
                    if reported != Reported::Connected {
                        // Accepted and wrapped up between two wake-ups.
                        events.answered(&format!("accepted by {agent_name}")).await;
                        events
                            .connected(&format!("connected to {agent_name}"))
                            .await;
                    }
                    // The wrap-up travels with COMPLETED (or HANDED_BACK,
                    // with the instruction for the AI), so that the control
                    // service stores it on the handoff.
                    let wrap_up = WrapUp {
                        disposition: disposition.clone(),
                        notes,
                        instruction: hand_back.clone().unwrap_or_default(),
                        context_sufficient: judgement(judgements.context_sufficient) as i32,
                        customer_repeated: judgement(judgements.customer_repeated) as i32,
                        escalation_needed: judgement(judgements.escalation_needed) as i32,
                    };
                    if hand_back.is_some() {
                        let detail = format!("handed back to the AI: {disposition}");
                        events.handed_back(&detail, wrap_up).await;
                    } else {
                        let detail = format!("wrapped up: {disposition}");
                        events.completed_with_wrap_up(&detail, wrap_up).await;
                    }
                    self.desk.remove(&transfer.handoff_id);
                    return;
                }
                Phase::Failed { refusal, detail } => {
                    events.failed(failure_reason(refusal), &detail).await;
                    self.desk.remove(&transfer.handoff_id);
                    return;
                }
            }
            first_look = false;
            if changes.changed().await.is_err() {
                return;
            }
        }
    }

    /// A transfer the previous process was running: the queue's own store
    /// kept its contact (held until now), so following it again is safe;
    /// `start` re-attaches to the contact and reports from where it is,
    /// never offering it to a second agent.
    async fn resume(&self, transfer: Transfer, events: TransferEvents) {
        self.start(transfer, events).await;
    }

    async fn cancel(&self, transfer: &Transfer) {
        // A voice leg being delivered is keyed by the same handoff and
        // attempt: CANCEL while it rings, BYE once answered.
        if let Some(voice) = &self.voice {
            voice.legs.cancel(transfer).await;
        }
        // Withdraws the contact at once, whatever its phase, held (restored,
        // not re-attached) included, a callback and its number too: the
        // desktop updates, and this attempt is never queued again.
        self.desk.release(&transfer.handoff_id, transfer.attempt);
    }
}

/// QUEUED's detail for a callback: when its window opens, if later.
fn scheduled_detail(callback: &CallbackRequest) -> String {
    let now = crate::desk::now_millis();
    match callback
        .window_start
        .filter(|_| callback.is_scheduled_later(now))
    {
        Some(start) => {
            let at = std::time::UNIX_EPOCH + Duration::from_millis(start);
            format!(
                "callback scheduled: its window opens at {}; an agent will call the customer back then",
                humantime_serde::re::humantime::format_rfc3339_seconds(at)
            )
        }
        None => {
            "callback scheduled: an agent will call the customer back; the conversation may end"
                .into()
        }
    }
}

#[path = "callback/connector.rs"]
mod callback;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::QueueConfig;
    use crate::domain::AgentState;
    use baton_connector_sdk::TransferEventReceiver;
    use baton_proto::connector::v1::ContextEnvelope;

    fn transfer(handoff_id: &str, attempt: u32) -> Transfer {
        Transfer {
            tenant: "acme".into(),
            handoff_id: handoff_id.into(),
            attempt,
            target: TransferTarget::Queue {
                name: "support".into(),
                skills: Vec::new(),
            },
            mode: TransferMode::Warm,
            envelope: ContextEnvelope::default(),
            deadline: std::time::SystemTime::now() + Duration::from_secs(3600),
            remembered: None,
            disclosure: None,
            callback: None,
        }
    }

    /// A queue whose one agent is away: contacts wait.
    fn queue(dir: &std::path::Path, sign_in: bool) -> QueueConnector {
        let desk = Desk::open(&QueueConfig::ephemeral(dir)).expect("open");
        if sign_in {
            desk.open_session(&crate::desk::tests::agent_account("ann"))
                .expect("sign in");
            desk.set_state("ann", AgentState::Away).expect("away");
        }
        QueueConnector::new("queue", 1024, desk)
    }

    /// Runs `start` (or `resume`) in the background; its events.
    fn run(
        connector: &QueueConnector,
        transfer: Transfer,
        resume: bool,
    ) -> (tokio::task::JoinHandle<()>, TransferEventReceiver) {
        let (events, received) = TransferEvents::channel();
        let connector = connector.clone();
        let task = tokio::spawn(async move {
            if resume {
                connector.resume(transfer, events).await;
            } else {
                connector.start(transfer, events).await;
            }
        });
        (task, received)
    }

    async fn next(received: &mut TransferEventReceiver) -> (TransferEventKind, String) {
        let event = tokio::time::timeout(Duration::from_secs(5), received.recv())
            .await
            .expect("an event in time")
            .expect("an event");
        (
            TransferEventKind::try_from(event.kind).expect("kind"),
            event.detail,
        )
    }

    #[tokio::test]
    async fn a_resumed_transfer_re_attaches_to_its_held_contact_and_a_cancelled_one_never_queues_again()
     {
        let dir = tempfile::tempdir().expect("tempdir");
        {
            let connector = queue(dir.path(), true);
            for id in ["resumed", "cancelled"] {
                let (task, mut received) = run(&connector, transfer(id, 1), false);
                assert_eq!(next(&mut received).await.0, TransferEventKind::Queued);
                task.abort();
            }
        }
        // The restarted queue: both contacts held.
        let connector = queue(dir.path(), false);
        connector.cancel(&transfer("cancelled", 1)).await;
        assert!(connector.desk.contact_status("cancelled").is_none());
        let (_, mut received) = run(&connector, transfer("cancelled", 1), false);
        assert_eq!(next(&mut received).await.0, TransferEventKind::Cancelled);
        assert!(connector.desk.contact_status("cancelled").is_none());

        let (resumed, mut received) = run(&connector, transfer("resumed", 1), true);
        assert_eq!(next(&mut received).await.0, TransferEventKind::Queued);
        let status = connector.desk.contact_status("resumed").expect("queued");
        assert!(status.standing.is_some(), "in line again");

        // A later attempt takes the contact over; the earlier one's stream
        // ends, and a late StartTransfer of it is superseded.
        let (later, mut later_received) = run(&connector, transfer("resumed", 2), false);
        assert_eq!(next(&mut later_received).await.0, TransferEventKind::Queued);
        let (kind, detail) = next(&mut received).await;
        assert_eq!(kind, TransferEventKind::Cancelled);
        assert!(detail.contains("superseded"), "{detail}");
        resumed.await.expect("the earlier attempt ends");
        let (_, mut stale) = run(&connector, transfer("resumed", 1), false);
        assert_eq!(next(&mut stale).await.0, TransferEventKind::Cancelled);
        assert_eq!(
            connector.desk.contact_status("resumed").map(|s| s.attempt),
            Some(2)
        );
        later.abort();
    }

    #[test]
    fn the_voice_leg_goes_to_a_sip_uri_as_is_and_to_a_number_through_the_trunks() {
        assert_eq!(
            voice_target(" sip:ann@pbx.example "),
            Some(TransferTarget::SipUri("sip:ann@pbx.example".into()))
        );
        assert_eq!(
            voice_target("+4930123456"),
            Some(TransferTarget::PhoneNumber("+4930123456".into()))
        );
        assert_eq!(
            voice_target("tel:+4930123456"),
            Some(TransferTarget::PhoneNumber("+4930123456".into()))
        );
        assert_eq!(voice_target(""), None);
    }
}
