//! The Amazon Connect connector: a transfer puts the handoff's context on
//! the live contact (its id is the handoff's
//! `conversation.call.platform_contact_id`) as contact attributes, moves the
//! contact to the target's queue or quick connect, and follows it with
//! DescribeContact and the queue's real-time metrics until an agent has it.
//!
//! A restart of the connector never moves a contact twice: before the
//! first change to the contact the transfer remembers (in the SDK's
//! journal) which contact it moves, then the contact it follows once the
//! move is asked for. A resumed transfer follows that contact again; one
//! interrupted before the move repeats only what is idempotent (the same
//! attributes, and TransferContact with the same client token, which
//! returns the contact already made).

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use baton_connector_sdk::{
    Availability, AvailabilityBasis, AvailabilityFigures, AvailabilityQuery, Channel, Connector,
    ConnectorInfo, ContextEnvelope, ContextMechanism, ContextUpdate, FailureReason, Status,
    TargetKind, Transfer, TransferEvents, TransferMode, TransferNote, TransferTarget,
    WaitEstimateMethod, platform_contact_id,
};

use crate::api::{ApiError, ConnectApi, Contact, Destination, QueueAvailability, QuickConnect};
use crate::attributes::{self, MAX_ATTRIBUTES_BYTES, MAX_TASK_ATTRIBUTES_BYTES, PREFIX};
use crate::config::ConnectConfig;

/// The contact that holds the customer for a handoff now (TransferContact
/// makes a new one) and the initial contact that holds the attributes.
#[derive(Debug, Clone)]
struct Holding {
    contact_id: String,
    initial_contact_id: String,
}

/// A transfer's note in the SDK's journal.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ContactNote {
    /// The contact the transfer moves.
    pub contact_id: String,
    /// The initial contact, which holds the attributes.
    pub initial_contact_id: String,
    /// The contact's channel (VOICE, CHAT, TASK, EMAIL).
    pub channel: String,
    /// The contact followed once the move was asked for (TransferContact's
    /// new contact, or the same one when its flow moves it).
    #[serde(default)]
    pub followed: Option<String>,
}

impl TransferNote for ContactNote {
    const NOT_REPEATED: &'static str = "the contact was not moved again";
}

#[derive(Debug, Clone)]
pub struct ConnectConnector {
    config: Arc<ConnectConfig>,
    api: Arc<ConnectApi>,
    holding: Arc<Mutex<HashMap<String, Holding>>>,
}

impl ConnectConnector {
    pub fn new(config: Arc<ConnectConfig>, api: Arc<ConnectApi>) -> Self {
        Self {
            config,
            api,
            holding: Arc::new(Mutex::new(HashMap::new())),
        }
    }

    fn holding(&self, handoff_id: &str) -> Option<Holding> {
        self.holding
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(handoff_id)
            .cloned()
    }

    fn hold(&self, handoff_id: &str, holding: Holding) {
        self.holding
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(handoff_id.to_owned(), holding);
    }

    /// The queue or user a queue target goes to.
    async fn destination(
        &self,
        name: &str,
        events: &TransferEvents,
    ) -> Result<Destination, (FailureReason, String)> {
        let Some(queue) = self.config.queues.get(name) else {
            return Err((
                FailureReason::Unreachable,
                format!(
                    "no Amazon Connect queue or quick connect is configured for queue {name:?}"
                ),
            ));
        };
        if let Some(id) = &queue.quick_connect_id {
            return match self.api.describe_quick_connect(id, Some(events)).await {
                Ok(QuickConnect::Transferable(destination)) => Ok(destination),
                Ok(QuickConnect::Other(kind)) => Err((
                    FailureReason::Unsupported,
                    format!(
                        "quick connect {id} is of type {kind}: TransferContact reaches queues and users only"
                    ),
                )),
                Err(error) => Err((
                    error.reason(),
                    format!("describing quick connect {id}: {error}"),
                )),
            };
        }
        Ok(Destination::Queue {
            queue_id: queue.queue_id.clone().unwrap_or_default(),
            flow_id: queue.contact_flow_id.clone().unwrap_or_default(),
        })
    }

    /// Follows the contact until an agent is connected, the customer
    /// leaves, or the transfer is cancelled (the SDK drops this future).
    async fn follow(&self, contact_id: &str, channel: &str, events: &TransferEvents) {
        let mut offered = false;
        let mut last_queued = None;
        loop {
            let contact = match self.api.describe_contact(contact_id, None).await {
                Ok(contact) => contact,
                Err(error) if transient(&error) => {
                    tracing::warn!(contact_id, %error, "following the contact; trying again");
                    tokio::time::sleep(self.config.poll_interval).await;
                    continue;
                }
                Err(error) => {
                    events
                        .failed(
                            error.reason(),
                            &format!("following contact {contact_id}: {error}"),
                        )
                        .await;
                    return;
                }
            };
            let agent = contact
                .agent_info
                .as_ref()
                .filter(|agent| agent.id.is_some());
            if let Some(agent) = agent {
                let agent_id = agent.id.clone().unwrap_or_default();
                let connected = agent.connected_to_agent_timestamp.is_some();
                if !offered {
                    offered = true;
                    events.offered(&format!("routed to agent {agent_id}")).await;
                }
                if connected {
                    events.answered(&format!("agent {agent_id} accepted")).await;
                    events
                        .context_delivered(
                            "the context is in the contact's baton_* attributes, shown in the agent workspace",
                        )
                        .await;
                    events
                        .connected(&format!(
                            "contact {contact_id} is connected to agent {agent_id}"
                        ))
                        .await;
                    return;
                }
            }
            if contact.disconnect_timestamp.is_some() {
                events
                    .cancelled("the customer left before an agent was connected")
                    .await;
                return;
            }
            if agent.is_none()
                && let Some(queue_id) = contact.queue_info.as_ref().and_then(|q| q.id.clone())
            {
                match self.api.queue_metrics(&queue_id, channel).await {
                    Ok(metrics) => {
                        let in_queue = metrics.contacts_in_queue.unwrap_or(1.0).max(1.0);
                        let position = in_queue.round().min(f64::from(u32::MAX)) as u32;
                        let wait = metrics
                            .estimated_wait_time
                            .or(metrics.oldest_contact_age)
                            .filter(|s| s.is_finite() && *s >= 0.0)
                            .map(Duration::from_secs_f64)
                            .unwrap_or_default();
                        if last_queued != Some((position, wait)) {
                            last_queued = Some((position, wait));
                            let detail = format!(
                                "in queue {queue_id}: {position} contact(s) waiting, oldest for {} s{}",
                                metrics.oldest_contact_age.unwrap_or(0.0).round(),
                                metrics
                                    .estimated_wait_time
                                    .map(|s| format!(", estimated wait {} s", s.round()))
                                    .unwrap_or_default()
                            );
                            events.queued_with_detail(position, wait, &detail).await;
                        }
                    }
                    Err(error) => {
                        tracing::warn!(queue_id, %error, "queue metrics unavailable");
                    }
                }
            }
            tokio::time::sleep(self.config.poll_interval).await;
        }
    }
}

/// Availability from Connect's figures of a queue. Position assumes first
/// come, first served: a contact of higher routing priority may overtake
/// the others, which the metrics do not tell apart. The wait is Connect's
/// own ESTIMATED_WAIT_TIME for the queue and channel; when Connect has
/// none (null: not enough data) but more agents are free than contacts
/// wait, the new contact is offered at once: zero.
fn reported_availability(figures: QueueAvailability) -> Availability {
    let free_now = matches!(
        (figures.agents_available, figures.contacts_in_queue),
        (Some(free), Some(waiting)) if free > waiting
    );
    let estimated_wait = figures
        .estimated_wait_seconds
        .or(free_now.then_some(0))
        .map(|seconds| Duration::from_secs(u64::from(seconds)));
    AvailabilityFigures {
        basis: AvailabilityBasis::Reported,
        agents_signed_in: figures.agents_online,
        agents_available: figures.agents_available,
        contacts_waiting: figures.contacts_in_queue,
        estimated_wait,
        wait_estimate: WaitEstimateMethod::PlatformStatistic,
    }
    .answer()
}

/// The status of a GetAvailability that Connect refused or never answered.
fn availability_status(error: &ApiError, detail: String) -> Status {
    if error.error_type() == "ResourceNotFoundException" {
        Status::not_found(detail)
    } else if transient(error) {
        Status::unavailable(detail)
    } else {
        Status::failed_precondition(detail)
    }
}

/// Worth trying again: the service was busy, down or not reached.
fn transient(error: &ApiError) -> bool {
    match error {
        ApiError::Transport(_) => true,
        ApiError::Refused { status, .. } => *status == 429 || *status >= 500,
    }
}

/// A contact id: the handoff's `conversation.call.platform_contact_id`.
fn contact_id(envelope: &ContextEnvelope) -> Option<String> {
    platform_contact_id(envelope)
        .filter(|id| id.len() <= 256)
        .map(str::to_owned)
}

/// The attributes of a transfer: reference, routing and, when it fits with
/// the contact's other attributes, the context.
fn transfer_attributes(
    transfer: &Transfer,
    contact: &Contact,
    destination: &Destination,
    with_context: bool,
) -> BTreeMap<String, String> {
    let mut attributes = attributes::reference(&transfer.handoff_id, &transfer.envelope);
    attributes.insert(attributes::key("transfer"), "requested".into());
    attributes.insert(attributes::key("attempt"), transfer.attempt.to_string());
    // For VOICE and CHAT contacts the contact's flow does the transfer
    // (TransferContact moves TASK and EMAIL contacts only): it reads these.
    let (queue_id, user_id, flow_id) = match destination {
        Destination::Queue { queue_id, flow_id } => (queue_id.as_str(), "", flow_id.as_str()),
        Destination::User { user_id, flow_id } => ("", user_id.as_str(), flow_id.as_str()),
    };
    attributes.insert(attributes::key("transfer_queue_id"), queue_id.into());
    attributes.insert(attributes::key("transfer_user_id"), user_id.into());
    attributes.insert(attributes::key("transfer_flow_id"), flow_id.into());
    if with_context {
        attributes.extend(attributes::context(&transfer.envelope));
    } else {
        attributes.insert(
            attributes::key("context_omitted"),
            "the context did not fit the contact's 32 KB of attributes: open baton_screen_pop_url"
                .into(),
        );
    }
    // Within the contact's 32 KB together with the attributes it has that
    // this transfer does not replace.
    let others: usize = contact
        .attributes
        .iter()
        .flatten()
        .filter(|(k, _)| !attributes.contains_key(*k))
        .map(|(k, v)| k.len() + v.len())
        .sum();
    if with_context && others + attributes::size(&attributes) > MAX_ATTRIBUTES_BYTES {
        return transfer_attributes(transfer, contact, destination, false);
    }
    attributes
}

impl Connector for ConnectConnector {
    fn info(&self) -> ConnectorInfo {
        // Warm and blind alike: the contact moves to the queue with its
        // context; Connect has no consultative transfer through the API.
        let info = ConnectorInfo::new(self.config.name.clone(), env!("CARGO_PKG_VERSION"))
            .target_kinds([TargetKind::Queue])
            .transfer_modes([TransferMode::Warm, TransferMode::Blind])
            .context(ContextMechanism::TaskAttributes, MAX_TASK_ATTRIBUTES_BYTES)
            .context_updates();
        // Availability is read per configured queue: without any, every
        // question would be NOT_FOUND.
        if self.config.queues.is_empty() {
            info
        } else {
            info.availability()
        }
    }

    /// Who is there in the target's Connect queue now, from
    /// GetCurrentMetricData for the handoff's channel. A quick connect to
    /// an agent or a number has no queue to read: FAILED_PRECONDITION.
    async fn availability(&self, query: AvailabilityQuery) -> Result<Availability, Status> {
        let TransferTarget::Queue { name, .. } = &query.target else {
            return Err(Status::unimplemented(
                "the Amazon Connect connector serves queue targets only",
            ));
        };
        let Some(queue) = self.config.queues.get(name) else {
            return Err(Status::not_found(format!(
                "no Amazon Connect queue or quick connect is configured for queue {name:?}"
            )));
        };
        let queue_id = match (&queue.queue_id, &queue.quick_connect_id) {
            (Some(queue_id), _) => queue_id.clone(),
            (None, Some(id)) => match self.api.describe_quick_connect(id, None).await {
                Ok(QuickConnect::Transferable(Destination::Queue { queue_id, .. })) => queue_id,
                Ok(QuickConnect::Transferable(Destination::User { user_id, .. })) => {
                    return Err(Status::failed_precondition(format!(
                        "queue {name:?} is quick connect {id} to agent {user_id}: Amazon Connect reports no queue metrics for it"
                    )));
                }
                Ok(QuickConnect::Other(kind)) => {
                    return Err(Status::failed_precondition(format!(
                        "queue {name:?} is quick connect {id} of type {kind}: Amazon Connect reports no queue metrics for it"
                    )));
                }
                Err(error) => {
                    return Err(availability_status(
                        &error,
                        format!("describing quick connect {id}: {error}"),
                    ));
                }
            },
            (None, None) => {
                return Err(Status::not_found(format!(
                    "queue {name:?} names no Amazon Connect queue"
                )));
            }
        };
        // The metrics API filters VOICE, CHAT and TASK; a handoff is a call
        // unless the runtime said chat.
        let channel = match query.channel {
            Channel::Chat => "CHAT",
            _ => "VOICE",
        };
        let figures = self
            .api
            .queue_availability(&queue_id, channel)
            .await
            .map_err(|error| {
                availability_status(
                    &error,
                    format!("reading the metrics of queue {queue_id}: {error}"),
                )
            })?;
        Ok(reported_availability(figures))
    }

    /// Writes the newer context onto the contact (UpdateContactAttributes
    /// on the initial contact, whose attributes every contact of the
    /// customer shares), with its version, so that the agent workspace
    /// shows it. A field the newer context no longer has keeps its former
    /// value (the call merges); the context reference always has the
    /// latest.
    async fn update(&self, update: ContextUpdate) -> Result<(), Status> {
        let contact = contact_id(&update.envelope).ok_or_else(|| {
                Status::failed_precondition(
                    "the update names no Amazon Connect contact (conversation.call.platform_contact_id)",
                )
            })?;
        let mut attributes = attributes::reference(&update.handoff_id, &update.envelope);
        attributes.extend(attributes::context(&update.envelope));
        attributes.insert(
            attributes::key("context_version"),
            update.context_version.to_string(),
        );
        self.api
            .update_contact_attributes(&contact, &attributes, None)
            .await
            .map_err(|error| {
                let detail = format!("UpdateContactAttributes on contact {contact}: {error}");
                if transient(&error) {
                    Status::unavailable(detail)
                } else {
                    Status::failed_precondition(detail)
                }
            })
    }

    async fn start(&self, transfer: Transfer, events: TransferEvents) {
        let Some(original) = contact_id(&transfer.envelope) else {
            events
                .failed(
                    FailureReason::Unsupported,
                    "the handoff names no Amazon Connect contact: conversation.call.platform_contact_id must be its contact id",
                )
                .await;
            return;
        };
        let TransferTarget::Queue { name, .. } = &transfer.target else {
            events
                .failed(
                    FailureReason::Unsupported,
                    "Amazon Connect targets are queues",
                )
                .await;
            return;
        };
        // A fallback (a later attempt) moves the contact that holds the
        // customer now, which a TransferContact may have replaced.
        let contact_id = self
            .holding(&transfer.handoff_id)
            .map(|h| h.contact_id)
            .unwrap_or(original);
        let contact = match self.api.describe_contact(&contact_id, Some(&events)).await {
            Ok(contact) => contact,
            Err(error) => {
                events
                    .failed(
                        error.reason(),
                        &format!("looking up contact {contact_id}: {error}"),
                    )
                    .await;
                return;
            }
        };
        if contact.disconnect_timestamp.is_some() {
            events
                .failed(
                    FailureReason::Unreachable,
                    &format!("contact {contact_id} has ended"),
                )
                .await;
            return;
        }
        let initial = contact.initial_id().to_owned();
        self.hold(
            &transfer.handoff_id,
            Holding {
                contact_id: contact_id.clone(),
                initial_contact_id: initial.clone(),
            },
        );
        // Before the contact changes: a restart moves this contact, not
        // the one the handoff named, and follows what the move made.
        let mut note = ContactNote {
            contact_id: contact_id.clone(),
            initial_contact_id: initial.clone(),
            channel: contact.channel.clone(),
            followed: None,
        };
        events.remember(&note.to_note()).await;
        let destination = match self.destination(name, &events).await {
            Ok(destination) => destination,
            Err((reason, detail)) => {
                events.failed(reason, &detail).await;
                return;
            }
        };
        let attributes = transfer_attributes(&transfer, &contact, &destination, true);
        let mut update = self
            .api
            .update_contact_attributes(&initial, &attributes, Some(&events))
            .await;
        if let Err(ApiError::Refused { status: 400, .. }) = &update
            && !attributes.contains_key(&attributes::key("context_omitted"))
        {
            // Refused for its size (the contact holds more than it said):
            // the reference alone, which the screen pop opens.
            tracing::info!(contact_id = %initial, "attributes refused; sending the reference alone");
            let reduced = transfer_attributes(&transfer, &contact, &destination, false);
            update = self
                .api
                .update_contact_attributes(&initial, &reduced, Some(&events))
                .await;
        }
        if let Err(error) = update {
            events
                .failed(
                    error.reason(),
                    &format!("setting the contact attributes of {initial}: {error}"),
                )
                .await;
            return;
        }
        let followed = if matches!(contact.channel.as_str(), "TASK" | "EMAIL") {
            // The client token makes a repeat (a connector restarted, a
            // re-attach) return the same transferred contact.
            let token = format!("baton-{}-{}", transfer.handoff_id, transfer.attempt);
            match self
                .api
                .transfer_contact(&contact_id, &destination, &token, Some(&events))
                .await
            {
                Ok(followed) => followed,
                Err(error) => {
                    events
                        .failed(
                            error.reason(),
                            &format!("transferring contact {contact_id}: {error}"),
                        )
                        .await;
                    return;
                }
            }
        } else {
            tracing::info!(%contact_id, channel = %contact.channel, "the contact's flow transfers it (baton_transfer = requested)");
            contact_id.clone()
        };
        self.hold(
            &transfer.handoff_id,
            Holding {
                contact_id: followed.clone(),
                initial_contact_id: initial,
            },
        );
        note.followed = Some(followed.clone());
        events.remember(&note.to_note()).await;
        self.follow(&followed, &contact.channel, &events).await;
    }

    /// Follows the contact a previous process of the connector moved; one
    /// it had not asked to move yet is moved now, by the same idempotent
    /// requests, never as a second contact.
    async fn resume(&self, transfer: Transfer, events: TransferEvents) {
        // Without a note nothing was changed: it comes before the first
        // change.
        let Some(note) = ContactNote::resumed(self, &transfer, &events).await else {
            return;
        };
        match &note.followed {
            Some(followed) => {
                tracing::info!(contact_id = %followed, "following a contact moved before the connector restarted");
                self.hold(
                    &transfer.handoff_id,
                    Holding {
                        contact_id: followed.clone(),
                        initial_contact_id: note.initial_contact_id.clone(),
                    },
                );
                self.follow(followed, &note.channel, &events).await;
            }
            None => {
                tracing::info!(contact_id = %note.contact_id, "moving the contact a restart interrupted");
                self.hold(
                    &transfer.handoff_id,
                    Holding {
                        contact_id: note.contact_id.clone(),
                        initial_contact_id: note.initial_contact_id.clone(),
                    },
                );
                self.start(transfer, events).await;
            }
        }
    }

    /// Marks the transfer withdrawn on the contact (`baton_transfer =
    /// cancelled`) so that its flow stops waiting for it. A contact already
    /// in a queue stays there: Amazon Connect cannot take a contact out of a
    /// queue without ending it, and ending the customer's contact is not the
    /// connector's to do.
    async fn cancel(&self, transfer: &Transfer) {
        let remembered = transfer
            .remembered
            .as_deref()
            .and_then(|note| ContactNote::from_note(note).ok())
            .map(|note| note.initial_contact_id);
        let initial = match self.holding(&transfer.handoff_id) {
            Some(holding) => holding.initial_contact_id,
            None => match remembered.or_else(|| contact_id(&transfer.envelope)) {
                Some(id) => id,
                None => return,
            },
        };
        let attributes = BTreeMap::from([(format!("{PREFIX}transfer"), "cancelled".to_owned())]);
        if let Err(error) = self
            .api
            .update_contact_attributes(&initial, &attributes, None)
            .await
        {
            tracing::info!(contact_id = %initial, %error, "the cancel was not recorded on the contact");
        }
    }
}
