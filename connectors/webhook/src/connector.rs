//! The webhook connector: a queue target is delivered by posting the
//! handoff to the queue's endpoints; the transfer is connected once an
//! endpoint accepts (the receiving system owns the customer from there).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::SystemTime;

use baton_connector_sdk::{
    Connector, ConnectorInfo, ContextMechanism, FailureReason, TargetKind, Transfer,
    TransferEvents, TransferMode, TransferTarget,
};

use crate::config::{Completion, WebhookConfig};
use crate::delivery::{Deliverer, DeliveryError, Endpoint, Message};
use crate::log::DeliveryLog;
use crate::message;
use crate::report::Reports;

#[derive(Debug, Clone)]
pub struct WebhookConnector {
    name: String,
    max_context_bytes: u32,
    queues: Arc<BTreeMap<String, Vec<Arc<Endpoint>>>>,
    deliverer: Deliverer,
    reports: Arc<Reports>,
    report_url: String,
}

impl WebhookConnector {
    /// Builds the connector from a validated configuration.
    /// `report_url` is where receivers post progress reports.
    pub fn new(
        config: &WebhookConfig,
        log: DeliveryLog,
        reports: Arc<Reports>,
        report_url: String,
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
        Ok(Self {
            name: config.name.clone(),
            max_context_bytes: config.max_context_bytes,
            queues: Arc::new(queues),
            deliverer: Deliverer::new(config.retry.clone(), log)?,
            reports,
            report_url,
        })
    }

    pub fn log(&self) -> &DeliveryLog {
        self.deliverer.log()
    }
}

impl Connector for WebhookConnector {
    fn info(&self) -> ConnectorInfo {
        // Only queues: a webhook hands the customer to a system that routes
        // by its own queue or desk, it cannot dial a number or a SIP URI.
        // Warm and blind both post before anyone joins; attended needs the
        // AI leg on a call this connector does not hold.
        ConnectorInfo::new(self.name.clone(), env!("CARGO_PKG_VERSION"))
            .target_kinds([TargetKind::Queue])
            .transfer_modes([TransferMode::Warm, TransferMode::Blind])
            .context(ContextMechanism::Webhook, self.max_context_bytes)
    }

    async fn start(&self, transfer: Transfer, events: TransferEvents) {
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
        let created = SystemTime::now();
        let messages: Vec<Message> = endpoints
            .iter()
            .map(|endpoint| {
                let report_url = (endpoint.completion == Completion::Reported)
                    .then_some(self.report_url.as_str());
                Message {
                    id: id.clone(),
                    body: message::body(
                        &transfer,
                        name,
                        skills,
                        created,
                        &endpoint.name,
                        report_url,
                    )
                    .into(),
                    handoff_id: transfer.handoff_id.clone(),
                    transfer_attempt: transfer.attempt,
                }
            })
            .collect();
        let reporting: Vec<String> = endpoints
            .iter()
            .filter(|e| e.completion == Completion::Reported)
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
        let results = futures::future::join_all(endpoints.iter().zip(&messages).map(
            |(endpoint, message)| {
                let events = &events;
                async move {
                    let result = self.deliverer.deliver(endpoint, message, events).await;
                    if let Ok(status) = result {
                        events
                            .context_delivered(&format!(
                                "endpoint {} accepted the handoff (HTTP {status})",
                                endpoint.name
                            ))
                            .await;
                    }
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
            events.failed(reason, &detail).await;
            return;
        }
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

    async fn cancel(&self, transfer: &Transfer) {
        self.reports.forget(&transfer.handoff_id, transfer.attempt);
    }
}
