//! Running transfers, keyed by (handoff id, attempt): the SDK's
//! deduplication of StartTransfer, its deadlines and its cancels.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use baton_proto::connector::v1::{ContextEnvelope, ContextMechanism, StartTransferRequest};
use baton_proto::types::v1::{FailureReason, TargetKind, TransferMode, target};
use baton_service_kit::status::{FieldViolation, invalid_argument, retry_after, with_reason};
use prost::Message;
use tokio_util::sync::CancellationToken;
use tonic::{Code, Status};
use tracing::Instrument;

use crate::events::{EventLog, TransferEvents};
use crate::{Connector, ConnectorInfo};

/// How long an ended transfer is kept, so that a control service that
/// re-attaches after a restart can still replay its outcome.
const KEEP_ENDED: Duration = Duration::from_secs(15 * 60);

/// The most transfers one connector process runs at once; beyond it a new
/// StartTransfer is refused with RESOURCE_EXHAUSTED and RetryInfo (the
/// control service tries again later, or the next target). Re-attaching
/// to a running transfer is never refused.
pub const MAX_RUNNING_TRANSFERS: usize = 10_000;

/// The concrete destination of a transfer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TransferTarget {
    Queue { name: String, skills: Vec<String> },
    PhoneNumber(String),
    SipUri(String),
}

impl TransferTarget {
    pub fn kind(&self) -> TargetKind {
        match self {
            Self::Queue { .. } => TargetKind::Queue,
            Self::PhoneNumber(_) => TargetKind::PhoneNumber,
            Self::SipUri(_) => TargetKind::SipUri,
        }
    }
}

/// One transfer, as given to [`Connector::start`].
#[derive(Debug, Clone)]
pub struct Transfer {
    pub handoff_id: String,
    pub attempt: u32,
    pub target: TransferTarget,
    pub mode: TransferMode,
    /// The context, fitted by the control service to this connector's
    /// advertised mechanisms and limits.
    pub envelope: ContextEnvelope,
    pub deadline: SystemTime,
}

impl Transfer {
    /// Checks a request against the connector's capabilities: a missing or
    /// malformed field is INVALID_ARGUMENT, a kind or mode not advertised
    /// is UNIMPLEMENTED.
    pub(crate) fn from_request(
        request: StartTransferRequest,
        info: &ConnectorInfo,
    ) -> Result<Self, Status> {
        let mut violations = Vec::new();
        if request.handoff_id.is_empty() || request.handoff_id.len() > 64 {
            violations.push(FieldViolation::new(
                "handoff_id",
                "is required (at most 64 bytes)",
            ));
        }
        if request.attempt == 0 {
            violations.push(FieldViolation::new("attempt", "must be 1 or more"));
        }
        let target = match request.target.and_then(|t| t.kind) {
            Some(target::Kind::Queue(queue)) if !queue.name.is_empty() => {
                Some(TransferTarget::Queue {
                    name: queue.name,
                    skills: queue.skills,
                })
            }
            Some(target::Kind::PhoneNumber(number)) if !number.is_empty() => {
                Some(TransferTarget::PhoneNumber(number))
            }
            Some(target::Kind::SipUri(uri)) if !uri.is_empty() => Some(TransferTarget::SipUri(uri)),
            Some(target::Kind::Route(_)) => {
                violations.push(FieldViolation::new(
                    "target.route",
                    "routes are resolved by the control service",
                ));
                None
            }
            _ => {
                violations.push(FieldViolation::new(
                    "target",
                    "must name a queue, phone_number or sip_uri",
                ));
                None
            }
        };
        let mode = match TransferMode::try_from(request.mode) {
            Ok(TransferMode::Unspecified) | Err(_) => {
                violations.push(FieldViolation::new(
                    "mode",
                    "must be warm, blind or attended",
                ));
                TransferMode::Unspecified
            }
            Ok(mode) => mode,
        };
        let deadline = match request.deadline.map(SystemTime::try_from) {
            Some(Ok(deadline)) => Some(deadline),
            _ => {
                violations.push(FieldViolation::new("deadline", "is required"));
                None
            }
        };
        if let Some(envelope) = &request.envelope {
            violations.extend(oversize_context(envelope, info));
        }
        let (Some(target), Some(deadline)) = (target, deadline) else {
            return Err(invalid_argument(&violations));
        };
        if !violations.is_empty() {
            return Err(invalid_argument(&violations));
        }
        if !info.target_kinds.contains(&target.kind()) {
            return Err(with_reason(
                Code::Unimplemented,
                "TARGET_KIND_UNSUPPORTED",
                format!(
                    "connector {} does not serve {:?} targets",
                    info.name,
                    target.kind()
                ),
            ));
        }
        if !info.transfer_modes.contains(&mode) {
            return Err(with_reason(
                Code::Unimplemented,
                "TRANSFER_MODE_UNSUPPORTED",
                format!(
                    "connector {} does not support {mode:?} transfers",
                    info.name
                ),
            ));
        }
        Ok(Self {
            handoff_id: request.handoff_id,
            attempt: request.attempt,
            target,
            mode,
            envelope: request.envelope.unwrap_or_default(),
            deadline,
        })
    }
}

/// Context larger than the connector advertised it carries: refused here,
/// so that no connector silently drops or truncates what it cannot carry
/// (the control service fits the context to the advertised limits).
fn oversize_context(envelope: &ContextEnvelope, info: &ConnectorInfo) -> Vec<FieldViolation> {
    let limit_of = |mechanism: i32| {
        info.context
            .iter()
            .find(|(m, max)| *m as i32 == mechanism && *max > 0)
            .map(|(_, max)| *max as usize)
    };
    let mut violations = Vec::new();
    if let (Some(context), Some(limit)) = (
        &envelope.context,
        limit_of(ContextMechanism::Structured as i32),
    ) && context.encoded_len() > limit
    {
        violations.push(FieldViolation::new(
            "envelope.context",
            format!(
                "is {} bytes encoded; this connector carries at most {limit}",
                context.encoded_len()
            ),
        ));
    }
    for (index, payload) in envelope.payloads.iter().enumerate() {
        if let Some(limit) = limit_of(payload.mechanism)
            && payload.content.len() > limit
        {
            violations.push(FieldViolation::new(
                format!("envelope.payloads[{index}].content"),
                format!(
                    "is {} bytes; this connector carries at most {limit} for this mechanism",
                    payload.content.len()
                ),
            ));
        }
    }
    violations
}

#[derive(Debug)]
pub(crate) struct Running {
    pub(crate) log: Arc<EventLog>,
    cancel: CancellationToken,
}

type Key = (String, u32);

/// Every transfer this process runs or recently ran.
pub(crate) struct Transfers<C> {
    connector: Arc<C>,
    /// Ordered, so that a handoff's attempts are found without a scan.
    running: Mutex<BTreeMap<Key, Arc<Running>>>,
    /// Transfers started and not yet ended.
    active: AtomicUsize,
    max_active: usize,
}

impl<C: Connector> Transfers<C> {
    pub(crate) fn new(connector: Arc<C>) -> Arc<Self> {
        Arc::new(Self {
            connector,
            running: Mutex::default(),
            active: AtomicUsize::new(0),
            max_active: MAX_RUNNING_TRANSFERS,
        })
    }

    #[cfg(test)]
    pub(crate) fn with_max_active(connector: Arc<C>, max_active: usize) -> Arc<Self> {
        Arc::new(Self {
            connector,
            running: Mutex::default(),
            active: AtomicUsize::new(0),
            max_active,
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<Key, Arc<Running>>> {
        self.running.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The log of the transfer for (handoff, attempt), starting it if this
    /// is the first request for it; refused when as many transfers as
    /// allowed are running.
    pub(crate) fn start(self: &Arc<Self>, transfer: Transfer) -> Result<Arc<EventLog>, Status> {
        let key = (transfer.handoff_id.clone(), transfer.attempt);
        let mut running = self.lock();
        if let Some(existing) = running.get(&key) {
            tracing::info!(handoff_id = %key.0, attempt = key.1, "StartTransfer repeated; following the existing transfer");
            return Ok(existing.log.clone());
        }
        if self.active.load(Ordering::SeqCst) >= self.max_active {
            return Err(retry_after(
                Code::ResourceExhausted,
                "TOO_MANY_TRANSFERS",
                format!(
                    "this connector runs {} transfers, as many as it may; retry",
                    self.max_active
                ),
                Duration::from_secs(1),
            ));
        }
        self.active.fetch_add(1, Ordering::SeqCst);
        let entry = Arc::new(Running {
            log: EventLog::new(),
            cancel: CancellationToken::new(),
        });
        running.insert(key.clone(), entry.clone());
        drop(running);

        let transfers = self.clone();
        let log = entry.log.clone();
        // A child of the StartTransfer call's span, so that the transfer
        // continues the control service's trace; it ends with the transfer,
        // not with the time the outcome is kept.
        let span = tracing::info_span!(
            "connector.transfer",
            handoff_id = %transfer.handoff_id,
            attempt = transfer.attempt,
            baton.target_kind = transfer.target.kind().as_str_name(),
        );
        tokio::spawn(async move {
            transfers.drive(transfer, &entry).instrument(span).await;
            transfers.active.fetch_sub(1, Ordering::SeqCst);
            tokio::time::sleep(KEEP_ENDED).await;
            transfers.lock().remove(&key);
        });
        Ok(log)
    }

    async fn drive(&self, transfer: Transfer, entry: &Running) {
        let target_kind = transfer.target.kind().as_str_name();
        let started = std::time::Instant::now();
        crate::metrics::metrics().started(target_kind);
        let events = TransferEvents::new(entry.log.clone());
        let remaining = transfer
            .deadline
            .duration_since(SystemTime::now())
            .unwrap_or(Duration::ZERO);
        let run = async {
            tokio::select! {
                () = self.connector.start(transfer.clone(), events.clone()) => {
                    if !events.is_ended() {
                        if entry.log.was_connected() {
                            events.completed("").await;
                        } else {
                            events.failed(FailureReason::ConnectorError, "the connector finished without an outcome").await;
                        }
                    }
                }
                () = tokio::time::sleep(remaining), if !entry.log.was_connected() => {
                    self.connector.cancel(&transfer).await;
                    events.failed(FailureReason::DeadlineExceeded, "the deadline passed before a human was connected").await;
                }
                () = entry.cancel.cancelled() => {
                    self.connector.cancel(&transfer).await;
                    events.cancelled("cancelled by the control service").await;
                }
            }
        };
        run.await;
        crate::metrics::metrics().finished(target_kind, entry.log.outcome(), started.elapsed());
    }

    /// Cancels the running transfer of a handoff (one attempt, or any when
    /// `attempt` is 0); returns whether one was running.
    pub(crate) fn cancel(&self, handoff_id: &str, attempt: u32) -> bool {
        let running = self.lock();
        let id = handoff_id.to_owned();
        let attempts = if attempt == 0 {
            (id.clone(), 0)..=(id, u32::MAX)
        } else {
            (id.clone(), attempt)..=(id, attempt)
        };
        let mut cancelled = false;
        for entry in running.range(attempts).map(|(_, entry)| entry) {
            if !entry.log.is_ended() {
                entry.cancel.cancel();
                cancelled = true;
            }
        }
        cancelled
    }

    /// Number of transfers not yet ended.
    pub(crate) fn active(&self) -> usize {
        self.lock().values().filter(|e| !e.log.is_ended()).count()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ConnectorInfo;

    /// Rings and then holds until cancelled.
    struct Holding;

    impl Connector for Holding {
        fn info(&self) -> ConnectorInfo {
            ConnectorInfo::new("holding", "0")
        }

        async fn start(&self, _transfer: Transfer, events: TransferEvents) {
            events.ringing("").await;
            std::future::pending::<()>().await;
        }
    }

    fn transfer(handoff_id: &str) -> Transfer {
        Transfer {
            handoff_id: handoff_id.into(),
            attempt: 1,
            target: TransferTarget::Queue {
                name: "q".into(),
                skills: vec![],
            },
            mode: TransferMode::Warm,
            envelope: ContextEnvelope::default(),
            deadline: SystemTime::now() + Duration::from_secs(60),
        }
    }

    #[tokio::test]
    async fn beyond_the_running_bound_new_transfers_are_refused_with_retry_info() {
        let transfers = Transfers::with_max_active(Arc::new(Holding), 2);
        transfers.start(transfer("a")).expect("first");
        transfers.start(transfer("b")).expect("second");
        let refused = transfers.start(transfer("c")).expect_err("full");
        assert_eq!(refused.code(), Code::ResourceExhausted);
        let details = tonic_types::StatusExt::get_error_details(&refused);
        assert!(details.retry_info().is_some());
        // Re-attaching to a running transfer is never refused.
        transfers.start(transfer("a")).expect("re-attach");
        // An ended transfer frees its place.
        assert!(transfers.cancel("a", 1));
        for _ in 0..100 {
            if transfers.active.load(Ordering::SeqCst) < 2 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        transfers.start(transfer("c")).expect("room again");
    }
}
