//! The webhook connector: a queue target is delivered by posting the
//! handoff to the queue's endpoints; the transfer is connected once an
//! endpoint accepts (the receiving system owns the customer from there).
//!
//! A restart of the connector never delivers a transfer as a second
//! message: before the first request leaves, the transfer remembers its
//! message's creation time (the body's `timestamp`) in the SDK's journal,
//! and each endpoint's acceptance as it comes. A resumed transfer posts
//! the very same message (the same `webhook-id`, derived from handoff and
//! attempt, and the same body) to the endpoints that had not accepted it,
//! none to those that had, and awaits the reports of a reporting endpoint
//! again. A receiver that saw the message before the restart recognises
//! it by its `webhook-id` and must not take it as a second handoff, as
//! Standard Webhooks asks of every receiver.
//!
//! A chat handoff to a queue with an endpoint that has a `chat_url` is
//! relayed to that endpoint (see [`crate::chat`]): once it accepts, the
//! transfer is connected, and it completes when the platform posts the
//! human's `end` (the `completion` setting does not apply to it).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use baton_connector_sdk::{
    Connector, ConnectorInfo, ContextMechanism, FailureReason, TargetKind, Transfer,
    TransferEvents, TransferMode, TransferNote, TransferTarget,
};
use baton_proto::types::v1::Channel;
use serde::{Deserialize, Serialize};

use crate::chat::Chats;
use crate::chat::store::ChatStore;
use crate::config::{Completion, WebhookConfig};
use crate::delivery::{Deliverer, DeliveryError, Endpoint, Message};
use crate::log::DeliveryLog;
use crate::message;
use crate::report::Reports;

/// What a restarted connector needs to go on with a transfer's delivery,
/// kept as the transfer's note in the SDK's journal.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Delivery {
    /// When the message was made, in milliseconds since the Unix epoch:
    /// the body's `timestamp`, so that a re-delivery is the same message.
    pub created_ms: u64,
    /// The endpoints that accepted the message (answered 2xx).
    #[serde(default)]
    pub accepted: BTreeSet<String>,
}

impl Delivery {
    fn new(created: SystemTime) -> Self {
        let created_ms = created
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
        Self {
            created_ms,
            accepted: BTreeSet::new(),
        }
    }

    /// The creation time, to the millisecond the body carries.
    pub fn created(&self) -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_millis(self.created_ms)
    }
}

impl TransferNote for Delivery {
    const NOT_REPEATED: &'static str = "nothing was delivered again";
}

#[derive(Debug, Clone)]
pub struct WebhookConnector {
    name: String,
    max_context_bytes: u32,
    queues: Arc<BTreeMap<String, Vec<Arc<Endpoint>>>>,
    deliverer: Deliverer,
    reports: Arc<Reports>,
    report_url: String,
    chats: Arc<Chats>,
}

impl WebhookConnector {
    /// Builds the connector from a validated configuration.
    /// `public_url` is where receivers reach the connector's HTTP side
    /// (progress reports, the human's side of a chat).
    pub fn new(
        config: &WebhookConfig,
        log: DeliveryLog,
        reports: Arc<Reports>,
        chat_store: ChatStore,
        public_url: &str,
    ) -> anyhow::Result<Self> {
        let mut endpoints = BTreeMap::new();
        for (name, endpoint) in &config.endpoints {
            endpoints.insert(name.clone(), Arc::new(Endpoint::new(name, endpoint)?));
        }
        let mut queues = BTreeMap::new();
        for (queue, names) in &config.queues {
            let list = names
                .iter()
                .map(|name| {
                    endpoints
                        .get(name)
                        .cloned()
                        .ok_or_else(|| anyhow::anyhow!("queues.{queue}: unknown endpoint {name:?}"))
                })
                .collect::<anyhow::Result<Vec<_>>>()?;
            queues.insert(queue.clone(), list);
        }
        let deliverer = Deliverer::new(config.retry.clone(), log)?;
        let chats = Arc::new(Chats::new(
            chat_store,
            endpoints,
            deliverer.clone(),
            public_url,
        ));
        Ok(Self {
            name: config.name.clone(),
            max_context_bytes: config.max_context_bytes,
            queues: Arc::new(queues),
            deliverer,
            reports,
            report_url: format!("{}/v1/reports", public_url.trim_end_matches('/')),
            chats,
        })
    }

    pub fn log(&self) -> &DeliveryLog {
        self.deliverer.log()
    }

    pub fn chats(&self) -> Arc<Chats> {
        self.chats.clone()
    }

    /// Posts the transfer's message (made at `delivery.created()`) to
    /// the queue's endpoints that have not accepted it yet, remembering
    /// each acceptance, then reports the outcome or awaits the reports.
    async fn deliver(&self, transfer: &Transfer, events: &TransferEvents, delivery: Delivery) {
        let TransferTarget::Queue { name, skills } = &transfer.target else {
            events
                .failed(
                    FailureReason::Unsupported,
                    "the webhook connector serves queue targets only",
                )
                .await;
            return;
        };
        let Some(endpoints) = self.queues.get(name) else {
            events
                .failed(
                    FailureReason::Unreachable,
                    &format!("no webhook endpoint is configured for queue {name:?}"),
                )
                .await;
            return;
        };
        let id = message::message_id(&transfer.handoff_id, transfer.attempt);
        let created = delivery.created();
        // A chat handoff is relayed to the queue's first endpoint that
        // takes chats; the others get it as a screen pop.
        let is_chat = transfer
            .envelope
            .conversation
            .as_ref()
            .is_some_and(|c| c.channel == Channel::Chat as i32);
        let chat_endpoint = endpoints
            .iter()
            .find(|e| is_chat && e.chat_url.is_some())
            .map(|e| e.name.clone());
        let reply_url = self.chats.reply_url(&transfer.handoff_id, transfer.attempt);
        // Kept before the message leaves: the platform may answer at once.
        let human_end = match &chat_endpoint {
            Some(endpoint) => match self.chats.begin(
                &transfer.tenant,
                &transfer.handoff_id,
                transfer.attempt,
                endpoint,
            ) {
                Ok(ended) => Some(ended),
                Err(error) => {
                    tracing::error!(%error, "the chat store could not be written");
                    events
                        .failed(FailureReason::ConnectorError, "the chat store failed")
                        .await;
                    return;
                }
            },
            None => None,
        };
        let messages: Vec<Message> = endpoints
            .iter()
            .map(|endpoint| {
                let links = message::Links {
                    report_url: (endpoint.completion == Completion::Reported)
                        .then_some(self.report_url.as_str()),
                    chat_reply_url: (chat_endpoint.as_deref() == Some(endpoint.name.as_str()))
                        .then_some(reply_url.as_str()),
                };
                Message {
                    id: id.clone(),
                    body: message::body(transfer, name, skills, created, &endpoint.name, links)
                        .into(),
                    handoff_id: transfer.handoff_id.clone(),
                    transfer_attempt: transfer.attempt,
                }
            })
            .collect();
        let reporting: Vec<String> = endpoints
            .iter()
            .filter(|e| e.completion == Completion::Reported && human_end.is_none())
            .map(|e| e.name.clone())
            .collect();
        // Awaited before delivering: a receiver may report at once.
        let reported_end = (!reporting.is_empty()).then(|| {
            self.reports.expect(
                &transfer.handoff_id,
                transfer.attempt,
                events.clone(),
                reporting.clone(),
            )
        });
        // One writer of the note at a time, so that the journal keeps the
        // last acceptance, not the last writer.
        let delivery = tokio::sync::Mutex::new(delivery);
        let results = futures::future::join_all(endpoints.iter().zip(&messages).map(
            |(endpoint, message)| {
                let delivery = &delivery;
                async move {
                    let result = self.deliver_once(endpoint, message, events, delivery).await;
                    (endpoint.name.clone(), result)
                }
            },
        ))
        .await;
        let (accepted, failed): (Vec<_>, Vec<_>) =
            results.into_iter().partition(|(_, result)| result.is_ok());
        let failures: Vec<DeliveryError> =
            failed.into_iter().filter_map(|(_, r)| r.err()).collect();
        if accepted.is_empty() {
            let reason = failures
                .first()
                .map_or(FailureReason::ConnectorError, DeliveryError::reason);
            let detail = failures
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join("; ");
            self.reports.forget(&transfer.handoff_id, transfer.attempt);
            self.chats.finish(&transfer.handoff_id, transfer.attempt);
            events.failed(reason, &detail).await;
            return;
        }
        if let (Some(endpoint), Some(mut human_end)) = (&chat_endpoint, human_end)
            && accepted.iter().any(|(name, _)| name == endpoint)
        {
            events
                .connected(&format!("handed to {endpoint}; the chat is relayed"))
                .await;
            // The transfer holds the customer until the human ends the
            // chat; cancellation and the deadline bound the wait.
            let _ = human_end.wait_for(|ended| *ended).await;
            self.chats.finish(&transfer.handoff_id, transfer.attempt);
            events.completed("the human ended the chat").await;
            return;
        }
        self.chats.finish(&transfer.handoff_id, transfer.attempt);
        let awaiting_report = accepted.iter().any(|(name, _)| reporting.contains(name));
        if let (true, Some(mut ended)) = (awaiting_report, reported_end) {
            // The receiving system reports when a human has the customer;
            // the deadline bounds the wait.
            let _ = ended.wait_for(|ended| *ended).await;
            self.reports.forget(&transfer.handoff_id, transfer.attempt);
            return;
        }
        self.reports.forget(&transfer.handoff_id, transfer.attempt);
        let names: Vec<&str> = accepted.iter().map(|(name, _)| name.as_str()).collect();
        let mut detail = format!("handed to {}", names.join(", "));
        if !failures.is_empty() {
            let failed: Vec<String> = failures.iter().map(ToString::to_string).collect();
            detail.push_str(&format!("; not delivered: {}", failed.join("; ")));
        }
        events.connected(&detail).await;
        events
            .completed("the receiving system owns the customer from here")
            .await;
    }

    /// Delivers one endpoint's message unless it accepted it before a
    /// restart, and remembers its acceptance.
    async fn deliver_once(
        &self,
        endpoint: &Endpoint,
        message: &Message,
        events: &TransferEvents,
        delivery: &tokio::sync::Mutex<Delivery>,
    ) -> Result<(), DeliveryError> {
        if delivery.lock().await.accepted.contains(&endpoint.name) {
            events
                .context_delivered(&format!(
                    "endpoint {} accepted the handoff before the connector restarted",
                    endpoint.name
                ))
                .await;
            return Ok(());
        }
        let status = self.deliverer.deliver(endpoint, message, events).await?;
        {
            let mut delivery = delivery.lock().await;
            delivery.accepted.insert(endpoint.name.clone());
            events.remember(&delivery.to_note()).await;
        }
        events
            .context_delivered(&format!(
                "endpoint {} accepted the handoff (HTTP {status})",
                endpoint.name
            ))
            .await;
        Ok(())
    }
}

impl Connector for WebhookConnector {
    fn info(&self) -> ConnectorInfo {
        // Only queues: a webhook hands the customer to a system that routes
        // by its own queue or desk, it cannot dial a number or a SIP URI.
        // Warm and blind both post before anyone joins; attended needs the
        // AI leg on a call this connector does not hold.
        let info = ConnectorInfo::new(self.name.clone(), env!("CARGO_PKG_VERSION"))
            .target_kinds([TargetKind::Queue])
            .transfer_modes([TransferMode::Warm, TransferMode::Blind])
            .context(ContextMechanism::Webhook, self.max_context_bytes);
        // Only when some endpoint has a chat_url to relay to.
        if self.chats.any() { info.chat() } else { info }
    }

    async fn start(&self, transfer: Transfer, events: TransferEvents) {
        let delivery = Delivery::new(SystemTime::now());
        // Journalled before the first request leaves: a restart goes on
        // with this message rather than make another.
        events.remember(&delivery.to_note()).await;
        self.deliver(&transfer, &events, delivery).await;
    }

    /// Goes on with the delivery a previous process began: the same
    /// message to the endpoints that had not accepted it yet, and the
    /// reports awaited again.
    async fn resume(&self, transfer: Transfer, events: TransferEvents) {
        // Without a note nothing was posted: the note is journalled
        // before the first request.
        let Some(delivery) = Delivery::resumed(self, &transfer, &events).await else {
            return;
        };
        tracing::info!(
            accepted = delivery.accepted.len(),
            "resuming a delivery begun before the connector restarted"
        );
        self.deliver(&transfer, &events, delivery).await;
    }

    async fn cancel(&self, transfer: &Transfer) {
        self.reports.forget(&transfer.handoff_id, transfer.attempt);
        self.chats.finish(&transfer.handoff_id, transfer.attempt);
    }

    async fn converse(&self, relay: baton_connector_sdk::chat::ChatRelay) {
        self.chats.serve(relay).await;
    }
}
