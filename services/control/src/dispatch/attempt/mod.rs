//! One attempt against one connector: the circuit breaker's word, the
//! connector's capabilities, then StartTransfer and its stream (`call`)
//! again and again while the connector is away and may come back, until
//! the attempt has an outcome. A transfer the connector may hold is
//! re-attached for the re-attach window, then fenced and lost; one it never
//! had fails over as soon as the connector is known to be down.

mod call;
mod stream_check;

use tokio::time::Instant;
use tracing::Instrument;

use super::fence::{MAX_REATTACH_PAUSE, fence};
use super::plan::TransferOutcome;
use super::{Dispatcher, instant_of};
use crate::circuit::{Admission, DispatchSettings, Permit, jittered_backoff};
use crate::connector::{Connector, ConnectorInfo, Reach, TransferRequest};
use crate::domain::{Attempt, Failure, FailureReason, Handoff};
use crate::metrics::metrics;
use crate::store::StoreError;

use call::Followed;

impl Dispatcher {
    /// Runs one attempt until its outcome. `fresh` says whether this is a
    /// new attempt (which an open circuit skips) or a resumed one (whose
    /// transfer the connector may already run).
    pub(super) async fn transfer(
        &self,
        handoff: &Handoff,
        attempt: &Attempt,
        connected: bool,
        fresh: bool,
    ) -> Result<TransferOutcome, StoreError> {
        let name = attempt.planned.connector.as_str();
        let last_target = handoff.planned(attempt.number + 1).is_none();
        let mut permit = match self.breakers.get(name) {
            None => None,
            // An open circuit skips a connector to reach the next target
            // sooner; the last target has none, so it waits for its
            // connector (within the re-attach window) instead of failing.
            Some(breaker) if fresh && !last_target => match breaker.admit() {
                Admission::Admitted(permit) => Some(permit),
                Admission::Skipped { failures } => {
                    metrics().circuit_skip(name);
                    tracing::info!(handoff_id = %handoff.id, connector = name, "circuit open; skipping the connector");
                    return Ok(TransferOutcome::TargetFailed(
                        Failure::new(
                            FailureReason::ConnectorError,
                            format!(
                                "connector {name} skipped: its circuit is open after {failures} consecutive failures"
                            ),
                        ),
                        None,
                    ));
                }
            },
            Some(breaker) => Some(breaker.observe()),
        };
        let connector = match self.registry.get(name) {
            Ok(connector) => connector,
            Err(error) => return Ok(connector_error(name, &mut permit, error.to_string())),
        };
        let run = AttemptRun {
            dispatcher: self,
            handoff,
            attempt,
            connector,
            settings: self.dispatch.settings(name),
            deadline: instant_of(handoff.deadline_ms),
            last_target,
            fresh,
            connected,
            permit,
            // Whether the connector may hold this transfer: a StartTransfer
            // reached it (accepted, or sent and unanswered), or this attempt
            // was started before this task (resumed after a restart of the
            // control service). Such a transfer is re-attached, never
            // failed over at once, and is fenced before any fallback.
            held: !fresh,
            unreachable_since: None,
            retried: 0,
        };
        run.run().await
    }
}

/// A connector error ends the attempt and counts against its circuit.
fn connector_error(name: &str, permit: &mut Option<Permit>, detail: String) -> TransferOutcome {
    metrics().connector_error(name);
    if let Some(permit) = permit {
        permit.failure();
    }
    TransferOutcome::TargetFailed(Failure::new(FailureReason::ConnectorError, detail), None)
}

/// One attempt in progress: what it is, and where it stands.
struct AttemptRun<'a> {
    dispatcher: &'a Dispatcher,
    handoff: &'a Handoff,
    attempt: &'a Attempt,
    connector: &'a Connector,
    settings: DispatchSettings,
    /// The handoff's deadline.
    deadline: Instant,
    /// Whether no target follows this one in the plan.
    last_target: bool,
    /// Whether this task started the attempt.
    fresh: bool,
    /// Whether a human has the customer.
    connected: bool,
    /// The circuit breaker's permit, told how the connector answered.
    permit: Option<Permit>,
    /// Whether the connector may hold the transfer.
    held: bool,
    /// Since when the connector has not taken this transfer's stream.
    unreachable_since: Option<Instant>,
    /// How often StartTransfer was sent again.
    retried: u32,
}

impl AttemptRun<'_> {
    async fn run(mut self) -> Result<TransferOutcome, StoreError> {
        let (info, checked_earlier) = match self.capabilities().await {
            Ok(checked) => checked,
            Err(outcome) => return Ok(outcome),
        };
        if let Some(failure) = self.unsupported(&info) {
            return Ok(TransferOutcome::TargetFailed(failure, None));
        }
        let request = self.request(&info).await?;
        loop {
            let call = tracing::info_span!(
                "connector.start_transfer",
                otel.name = "baton.connector.v1.ConnectorService/StartTransfer",
                otel.kind = "client",
                rpc.system = "grpc",
                rpc.service = "baton.connector.v1.ConnectorService",
                rpc.method = "StartTransfer",
                baton.connector = %self.connector.name,
                baton.attempt = self.attempt.number,
            );
            let first_call = self.fresh && self.retried == 0;
            let followed = self
                .follow(request.clone(), first_call)
                .instrument(call)
                .await?;
            let detail = match followed {
                Followed::Outcome(outcome) => {
                    if let TransferOutcome::TargetFailed(failure, _) = &outcome
                        && failure.reason == FailureReason::Unsupported
                    {
                        // Its capabilities may have changed since the check.
                        self.connector.forget_check();
                    }
                    return Ok(outcome);
                }
                Followed::Faulty(detail) => {
                    self.connector.forget_check();
                    // Hung or garbled: sending it again would only wait
                    // again. Whatever the connector did with the transfer
                    // is cancelled, and the cancel confirmed, before the
                    // next target rings, so that the customer is never
                    // with two humans.
                    tracing::warn!(handoff_id = %self.handoff.id, connector = %self.connector.name, %detail, "connector faulty; cancelling before the next target");
                    if !self.fence().await {
                        return Ok(TransferOutcome::DeadlineExceeded);
                    }
                    return Ok(self.connector_error(detail));
                }
                Followed::Broken { detail, reach } => {
                    self.connector.forget_check();
                    match reach {
                        Reach::Accepted => {
                            self.held = true;
                            self.unreachable_since = None;
                        }
                        Reach::Sent => self.held = true,
                        Reach::Refused => {}
                    }
                    detail
                }
            };
            self.unreachable_since.get_or_insert_with(Instant::now);
            if !self.held && !self.last_target {
                // The connector never had this transfer and another target
                // can take the customer: fail over as soon as the connector
                // is known to be down. A first call that failed on an
                // earlier check's word checks now, as it would have
                // without that check.
                if checked_earlier
                    && self.retried == 0
                    && let Err(error) = self.connector.recent_check().await
                {
                    return Ok(self.connector_error(error.to_string()));
                }
                if self.retried >= self.settings.retries {
                    return Ok(self.connector_error(detail));
                }
            }
            if let Some(outcome) = self.after_unreachable(detail).await {
                return Ok(outcome);
            }
        }
    }

    /// The connector's capabilities, and whether they came from an earlier
    /// check; while it cannot be reached, waits for it when it may hold
    /// the transfer or no other target is left. `Err`: how the attempt
    /// ends instead.
    async fn capabilities(&mut self) -> Result<(ConnectorInfo, bool), TransferOutcome> {
        loop {
            match self.connector.recent_check().await {
                Ok(checked) => return Ok(checked),
                // Nothing to wait for: the next target takes the customer.
                Err(error) if !self.held && !self.last_target => {
                    return Err(self.connector_error(error.to_string()));
                }
                Err(error) => {
                    self.unreachable_since.get_or_insert_with(Instant::now);
                    if let Some(outcome) = self.after_unreachable(error.to_string()).await {
                        return Err(outcome);
                    }
                }
            }
        }
    }

    /// Why the connector cannot take this transfer at all, if it cannot.
    fn unsupported(&self, info: &ConnectorInfo) -> Option<Failure> {
        let name = &self.connector.name;
        let kind = self.attempt.planned.target.kind();
        if !info.serves(kind) {
            return Some(Failure::new(
                FailureReason::Unsupported,
                format!("connector {name} does not serve {} targets", kind.name()),
            ));
        }
        let mode = self.handoff.mode;
        if !info.supports(mode) {
            return Some(Failure::new(
                FailureReason::Unsupported,
                format!("connector {name} does not support {mode:?} transfers"),
            ));
        }
        None
    }

    /// The transfer to start, its context as the data policy gives this
    /// connector (see `disclose`).
    async fn request(&self, info: &ConnectorInfo) -> Result<TransferRequest, StoreError> {
        let handoff = self.handoff;
        let context = self
            .dispatcher
            .disclosed_context(handoff, self.attempt, info)
            .await?;
        Ok(TransferRequest {
            tenant: handoff.tenant.clone(),
            handoff_id: handoff.id.clone(),
            attempt: self.attempt.number,
            target: self.attempt.planned.target.clone(),
            mode: handoff.mode,
            context,
            deadline_ms: handoff.deadline_ms,
            callback: handoff.callback.clone(),
        })
    }

    /// After the connector could not be reached or the stream broke: waits
    /// before the next try (`None`), or says how the attempt ends. A
    /// transfer the connector may hold is re-attached for the re-attach
    /// window, then cancelled (confirmed) and lost.
    async fn after_unreachable(&mut self, detail: String) -> Option<TransferOutcome> {
        let since = *self.unreachable_since.get_or_insert_with(Instant::now);
        let (handoff, connector) = (self.handoff, self.connector);
        let handoff_id = handoff.id.as_str();
        if since.elapsed() >= self.settings.reattach_window {
            if self.connected {
                // The human has the customer; a connector that went away
                // after connecting does not undo that.
                tracing::warn!(handoff_id, connector = %connector.name, "connector gone after connect; the handoff stays connected");
                return Some(TransferOutcome::Finished);
            }
            if !self.held {
                return Some(self.connector_error(detail));
            }
            // Not a fault of this transfer: the breaker guards new work
            // (whose calls are refused while the connector is down).
            metrics().connector_error(&connector.name);
            if !self.fence().await {
                return Some(TransferOutcome::DeadlineExceeded);
            }
            return Some(TransferOutcome::TargetFailed(
                Failure::new(
                    FailureReason::ConnectorLost,
                    format!(
                        "connector {} did not come back within {:?} ({detail}); its transfer was cancelled",
                        connector.name, self.settings.reattach_window
                    ),
                ),
                None,
            ));
        }
        if Instant::now() >= self.deadline {
            return Some(TransferOutcome::DeadlineExceeded);
        }
        // The connector may be restarting. Starting the transfer again is
        // safe: connectors deduplicate it by (handoff, attempt), journal it
        // across restarts, and replay or resume the transfer, so it
        // re-attaches instead of transferring twice.
        let backoff =
            jittered_backoff(self.settings.retry_backoff, self.retried).min(MAX_REATTACH_PAUSE);
        self.retried += 1;
        tracing::warn!(
            handoff_id,
            connector = %connector.name,
            %detail,
            retried = self.retried,
            held = self.held,
            "connector unavailable or stream broke; re-attaching with StartTransfer again"
        );
        tokio::time::sleep_until((Instant::now() + backoff).min(self.deadline)).await;
        None
    }

    /// Cancels this attempt's transfer and waits for the connector to
    /// confirm, until the handoff's deadline.
    async fn fence(&self) -> bool {
        fence(
            self.connector,
            &self.settings,
            &self.handoff.tenant,
            &self.handoff.id,
            self.attempt.number,
            self.deadline,
        )
        .await
    }

    fn connector_error(&mut self, detail: String) -> TransferOutcome {
        connector_error(&self.connector.name, &mut self.permit, detail)
    }
}
