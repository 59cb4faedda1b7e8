//! The walk over a handoff's plan: which attempt to resume, each target in
//! turn until one ends the handoff, and the handoff's failure when none
//! does or its deadline passes first.

use super::{Dispatcher, now_ms};
use crate::domain::{
    Attempt, ConnectorPosition, EventKind, Failure, FailureReason, Handoff, HandoffState, NewEvent,
};
use crate::store::StoreError;

/// How a transfer to one target ended, from the dispatcher's side.
#[derive(Debug)]
pub(super) enum TransferOutcome {
    /// Nothing more to do: completed, cancelled, or ended elsewhere.
    Finished,
    /// The target failed; try the next one.
    TargetFailed(Failure, Option<ConnectorPosition>),
    /// The handoff's deadline passed before a human was connected.
    DeadlineExceeded,
}

impl Dispatcher {
    /// Carries the handoff through its plan; a store error that is not
    /// the handoff's own end fails the handoff when it can be recorded.
    pub(super) async fn run(&self, handoff: Handoff) {
        let (tenant, id) = (handoff.tenant.clone(), handoff.id.clone());
        if let Err(error) = self.run_plan(&handoff).await {
            match error {
                // The handoff ended elsewhere (e.g. cancelled), or another
                // replica took it over: nothing to do here.
                StoreError::IllegalTransition(_) | StoreError::Duplicate => {}
                StoreError::LeaseLost => {
                    tracing::warn!(handoff_id = %id, "dispatch lease lost; another replica took over");
                }
                // Nothing can be recorded now; the handoff stays in flight
                // and is claimed again once the store answers (its deadline
                // still applies then).
                StoreError::Unavailable(error) => {
                    tracing::warn!(handoff_id = %id, %error, "store unavailable; dispatch paused");
                }
                error => {
                    tracing::error!(handoff_id = %id, %error, "dispatch stopped");
                    let failure = Failure::new(
                        FailureReason::ConnectorError,
                        "internal error while routing",
                    );
                    let _ = self
                        .record_leased(
                            &tenant,
                            &id,
                            NewEvent::new(EventKind::Failed).failure(failure),
                        )
                        .await;
                }
            }
        }
    }

    /// Which attempt to run next, and whether its TARGET_STARTED is still to
    /// be recorded.
    async fn next_attempt(&self, handoff: &Handoff) -> Result<(u32, bool), StoreError> {
        let Some(current) = &handoff.current_attempt else {
            return Ok((1, true));
        };
        if handoff.state != HandoffState::Routing {
            return Ok((current.number, false));
        }
        // In routing, the last event says whether the current attempt had
        // started or had already failed.
        let last = self
            .store
            .events_after(&handoff.tenant, &handoff.id, handoff.last_sequence - 1, 1)
            .await?;
        let failed = last
            .first()
            .is_some_and(|e| e.kind == EventKind::TargetFailed);
        Ok(if failed {
            (current.number + 1, true)
        } else {
            (current.number, false)
        })
    }

    async fn run_plan(&self, handoff: &Handoff) -> Result<(), StoreError> {
        let (tenant, id) = (handoff.tenant.as_str(), handoff.id.as_str());
        let (mut number, mut needs_start) = self.next_attempt(handoff).await?;
        let mut last_failure: Option<Failure> = None;
        loop {
            let connected = handoff.state == HandoffState::Connected && !needs_start;
            if !connected && now_ms() >= handoff.deadline_ms {
                return self.fail_deadline(handoff, number).await;
            }
            let Some(planned) = handoff.planned(number).cloned() else {
                return self
                    .fail(handoff, all_failed(handoff, last_failure.as_ref()))
                    .await;
            };
            let attempt = Attempt { number, planned };
            if needs_start {
                self.record_leased(
                    tenant,
                    id,
                    NewEvent::new(EventKind::TargetStarted).attempt(attempt.clone()),
                )
                .await?;
            }
            match self
                .transfer(handoff, &attempt, connected, needs_start)
                .await?
            {
                TransferOutcome::Finished => return Ok(()),
                TransferOutcome::DeadlineExceeded => {
                    return self.fail_deadline(handoff, number).await;
                }
                TransferOutcome::TargetFailed(failure, position) => {
                    if self.calling_back(handoff).await? {
                        // The customer of a callback was dialed: the next
                        // target would dial them again. The failure (no
                        // answer, busy) is the handoff's.
                        tracing::info!(handoff_id = %id, reason = ?failure.reason, "callback failed");
                        return self.fail(handoff, failure).await;
                    }
                    tracing::info!(
                        handoff_id = %id,
                        attempt = number,
                        connector = %attempt.planned.connector,
                        reason = ?failure.reason,
                        "target failed; trying the next"
                    );
                    let mut event = NewEvent::new(EventKind::TargetFailed)
                        .attempt(attempt)
                        .failure(failure.clone());
                    event.connector_position = position;
                    match self.record_leased(tenant, id, event).await {
                        Ok(_) | Err(StoreError::Duplicate) => {}
                        Err(error) => return Err(error),
                    }
                    last_failure = Some(failure);
                    number += 1;
                    needs_start = true;
                }
            }
        }
    }

    /// Whether the handoff's customer is being called back (CALLING_BACK):
    /// read only for a callback, and only when its target failed.
    async fn calling_back(&self, handoff: &Handoff) -> Result<bool, StoreError> {
        if handoff.callback.is_none() {
            return Ok(false);
        }
        let current = self.store.get(&handoff.tenant, &handoff.id).await?;
        Ok(current.state == HandoffState::CallingBack)
    }

    async fn fail_deadline(&self, handoff: &Handoff, number: u32) -> Result<(), StoreError> {
        if let Some(planned) = handoff.planned(number) {
            let attempt = Attempt {
                number,
                planned: planned.clone(),
            };
            self.cancel_transfer(&handoff.tenant, &handoff.id, &attempt)
                .await;
        }
        let failure = Failure::new(
            FailureReason::DeadlineExceeded,
            "no human was connected before the handoff's deadline",
        );
        self.fail(handoff, failure).await
    }

    /// Ends the handoff with `failure` (FAILED).
    async fn fail(&self, handoff: &Handoff, failure: Failure) -> Result<(), StoreError> {
        let event = NewEvent::new(EventKind::Failed).failure(failure);
        self.record_leased(&handoff.tenant, &handoff.id, event)
            .await?;
        Ok(())
    }
}

/// The handoff's failure once its plan is used up.
fn all_failed(handoff: &Handoff, last_failure: Option<&Failure>) -> Failure {
    let detail = match last_failure {
        Some(failure) => format!(
            "all {} targets failed; the last with {:?}: {}",
            handoff.plan.len(),
            failure.reason,
            failure.detail
        ),
        None => "no target to try".into(),
    };
    Failure::new(FailureReason::AllTargetsFailed, detail)
}
