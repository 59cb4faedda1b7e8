//! Progress reports from receiving systems whose endpoint has
//! `completion = "reported"`: after accepting a handoff, the system posts
//! to `data.report_url` what became of it (ringing, answered, connected,
//! completed, failed), signed per Standard Webhooks with the endpoint's
//! secret. Only the report's kind and reason are used; no free text from
//! the receiver reaches an event or a log.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use baton_connector_sdk::{FailureReason, TransferEvents};
use serde::Deserialize;
use tokio::sync::watch;

use crate::signature::SigningSecret;

/// A report's body.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Report {
    /// The endpoint's name, as in `data.report_url`'s instructions.
    pub endpoint: String,
    pub handoff_id: String,
    pub attempt: u32,
    pub kind: ReportKind,
    /// Required with `failed`.
    #[serde(default)]
    pub reason: Option<ReportReason>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReportKind {
    Ringing,
    Answered,
    Connected,
    Completed,
    Failed,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReportReason {
    Busy,
    NoAnswer,
    Rejected,
    Unreachable,
    NoAgents,
}

impl ReportReason {
    fn failure(self) -> FailureReason {
        match self {
            Self::Busy => FailureReason::Busy,
            Self::NoAnswer => FailureReason::NoAnswer,
            Self::Rejected => FailureReason::Rejected,
            Self::Unreachable => FailureReason::Unreachable,
            Self::NoAgents => FailureReason::NoAgents,
        }
    }
}

/// Why a report was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReportError {
    #[error("the signature does not match the endpoint's secret")]
    Unauthenticated,
    #[error("{0}")]
    Invalid(String),
    #[error("no transfer awaits a report from this endpoint")]
    Unknown,
}

struct Awaited {
    events: TransferEvents,
    endpoints: Vec<String>,
    connected: AtomicBool,
    ended: watch::Sender<bool>,
}

/// The transfers awaiting reports, and the endpoints' secrets.
pub struct Reports {
    secrets: BTreeMap<String, SigningSecret>,
    awaited: Mutex<HashMap<(String, u32), Arc<Awaited>>>,
}

impl std::fmt::Debug for Reports {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Reports").finish_non_exhaustive()
    }
}

impl Reports {
    pub fn new(secrets: BTreeMap<String, SigningSecret>) -> Arc<Self> {
        Arc::new(Self {
            secrets,
            awaited: Mutex::new(HashMap::new()),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<(String, u32), Arc<Awaited>>> {
        self.awaited.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Starts accepting reports for a transfer from `endpoints`; the
    /// receiver yields once a report ended it.
    pub fn expect(
        &self,
        handoff_id: &str,
        attempt: u32,
        events: TransferEvents,
        endpoints: Vec<String>,
    ) -> watch::Receiver<bool> {
        let (ended, receiver) = watch::channel(false);
        self.lock().insert(
            (handoff_id.to_owned(), attempt),
            Arc::new(Awaited {
                events,
                endpoints,
                connected: AtomicBool::new(false),
                ended,
            }),
        );
        receiver
    }

    /// Stops accepting reports for a transfer.
    pub fn forget(&self, handoff_id: &str, attempt: u32) {
        self.lock().remove(&(handoff_id.to_owned(), attempt));
    }

    /// Verifies a signed report and applies it to its transfer.
    pub async fn receive(
        &self,
        message_id: &str,
        timestamp: i64,
        signature: &str,
        body: &[u8],
    ) -> Result<(), ReportError> {
        let report: Report =
            serde_json::from_slice(body).map_err(|e| ReportError::Invalid(format!("body: {e}")))?;
        let secret = self
            .secrets
            .get(&report.endpoint)
            .ok_or(ReportError::Unauthenticated)?;
        if !secret.verify(message_id, timestamp, body, signature) {
            return Err(ReportError::Unauthenticated);
        }
        if report.kind == ReportKind::Failed && report.reason.is_none() {
            return Err(ReportError::Invalid(
                "reason: is required with failed".into(),
            ));
        }
        let awaited = self
            .lock()
            .get(&(report.handoff_id.clone(), report.attempt))
            .cloned()
            .filter(|a| a.endpoints.contains(&report.endpoint))
            .ok_or(ReportError::Unknown)?;
        let events = &awaited.events;
        let from = format!("reported by endpoint {}", report.endpoint);
        match report.kind {
            ReportKind::Ringing => events.ringing(&from).await,
            ReportKind::Answered => events.answered(&from).await,
            ReportKind::Connected => {
                if !awaited.connected.swap(true, Ordering::SeqCst) {
                    events.connected(&from).await;
                }
            }
            ReportKind::Completed => {
                if !awaited.connected.swap(true, Ordering::SeqCst) {
                    events.connected(&from).await;
                }
                events.completed(&from).await;
            }
            ReportKind::Failed => {
                let reason = report
                    .reason
                    .map_or(FailureReason::ConnectorError, ReportReason::failure);
                events.failed(reason, &from).await;
            }
        }
        if events.is_ended() {
            awaited.ended.send_replace(true);
        }
        Ok(())
    }
}
