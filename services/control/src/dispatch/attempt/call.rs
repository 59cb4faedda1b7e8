//! One StartTransfer call and its stream, until an outcome, a break, or a
//! fault (a hang or a breach of the contract). Each event is checked
//! against the stream's contract ([`StreamCheck`]), skipped when an earlier
//! stream of the same run already recorded it, and recorded otherwise.

use tokio::time::Instant;
use tokio_stream::StreamExt;

use super::AttemptRun;
use super::stream_check::StreamCheck;
use crate::connector::{Reach, StartRefused, StreamError, TransferRequest};
use crate::dispatch::plan::TransferOutcome;
use crate::dispatch::record::Applied;
use crate::domain::{ConnectorPosition, Failure, FailureReason};
use crate::store::StoreError;

/// How one StartTransfer call ended.
pub(super) enum Followed {
    Outcome(TransferOutcome),
    /// Unavailable, or the stream broke before an outcome: the connector
    /// may be restarting; starting the transfer again is safe.
    Broken {
        detail: String,
        reach: Reach,
    },
    /// The connector hung or broke the contract: not sent again.
    Faulty(String),
}

impl AttemptRun<'_> {
    /// Starts (or re-attaches to) the transfer and follows its stream.
    /// `first_call`: the first call of an attempt this task has just
    /// started, of which nothing can be recorded yet.
    pub(super) async fn follow(
        &mut self,
        request: TransferRequest,
        first_call: bool,
    ) -> Result<Followed, StoreError> {
        let (handoff, attempt, connector) = (self.handoff, self.attempt, self.connector);
        let (name, settings, deadline) = (&connector.name, self.settings, self.deadline);
        // What is already recorded of this attempt: replays of the same run
        // are skipped; a new run (a restarted connector) is not.
        let recorded = if first_call {
            None
        } else {
            self.dispatcher
                .store
                .last_connector_position(&handoff.id, attempt.number)
                .await?
        };
        // Only the call's acceptance is timed: the stream lives as long as
        // the transfer.
        let started = tokio::time::timeout_at(
            (Instant::now() + settings.start_timeout).min(deadline),
            connector.start_transfer(request),
        )
        .await;
        let mut stream = match started {
            Ok(Ok(stream)) => stream,
            Ok(Err(StartRefused::Unsupported(detail))) => {
                return Ok(Followed::Outcome(TransferOutcome::TargetFailed(
                    Failure::new(FailureReason::Unsupported, format!("{name}: {detail}")),
                    None,
                )));
            }
            Ok(Err(StartRefused::Unavailable { detail, reach })) => {
                return Ok(Followed::Broken {
                    detail: format!("{name}: {detail}"),
                    reach,
                });
            }
            Err(_) if Instant::now() >= deadline => {
                return Ok(Followed::Outcome(TransferOutcome::DeadlineExceeded));
            }
            Err(_) => {
                return Ok(Followed::Faulty(format!(
                    "{name}: StartTransfer not accepted within {:?}",
                    settings.start_timeout
                )));
            }
        };

        let mut stream_check = StreamCheck::default();
        // Whether the breaker was told that this stream works.
        let mut credited = false;
        // Whether a context update newer than the request was looked for.
        let mut caught_up = false;
        let first_event_by = Instant::now() + settings.first_event_timeout;
        loop {
            let next = if self.connected {
                // A human has the customer: the deadline no longer applies.
                Ok(stream.next().await)
            } else if stream_check.is_silent() && first_event_by < deadline {
                match tokio::time::timeout_at(first_event_by, stream.next()).await {
                    Ok(next) => Ok(next),
                    Err(_) => {
                        return Ok(Followed::Faulty(format!(
                            "{name}: no transfer event within {:?} of StartTransfer",
                            settings.first_event_timeout
                        )));
                    }
                }
            } else {
                tokio::time::timeout_at(deadline, stream.next()).await
            };
            let event = match next {
                Err(_) => return Ok(Followed::Outcome(TransferOutcome::DeadlineExceeded)),
                Ok(Some(Ok(event))) => event,
                Ok(None) | Ok(Some(Err(_))) if self.connected => {
                    // The human has the customer; losing the connector's
                    // stream now does not undo that.
                    tracing::warn!(handoff_id = %handoff.id, "connector stream ended after connect");
                    return Ok(Followed::Outcome(TransferOutcome::Finished));
                }
                Ok(None) => {
                    return Ok(Followed::Broken {
                        detail: format!("{name} ended the transfer without an outcome"),
                        reach: Reach::Accepted,
                    });
                }
                Ok(Some(Err(StreamError::Malformed(detail)))) => {
                    return Ok(Followed::Faulty(format!(
                        "{name}: malformed transfer event: {detail}"
                    )));
                }
                Ok(Some(Err(StreamError::Broken(detail)))) => {
                    return Ok(Followed::Broken {
                        detail: format!("{name}: {detail}"),
                        reach: Reach::Accepted,
                    });
                }
            };
            if let Err(violation) = stream_check.admit(&event) {
                return Ok(self.violated(violation));
            }
            let replayed = recorded
                .as_ref()
                .is_some_and(|(run, sequence)| *run == event.run_id && event.sequence <= *sequence);
            let applied = if replayed {
                Applied::Continue {
                    now_connected: false,
                }
            } else {
                self.dispatcher.apply(handoff, attempt, &event).await?
            };
            if !credited
                && !matches!(applied, Applied::Violation(_))
                && let Some(permit) = self.permit.as_mut()
            {
                // The connector answers as the contract says: its circuit
                // closes.
                permit.success();
                credited = true;
            }
            if !caught_up && matches!(applied, Applied::Continue { .. }) {
                // The connector holds the transfer now: give it any context
                // update that came after the request's snapshot.
                self.dispatcher.catch_up_context(handoff).await;
                caught_up = true;
            }
            match applied {
                Applied::Continue { now_connected } => self.connected |= now_connected,
                Applied::Finished => return Ok(Followed::Outcome(TransferOutcome::Finished)),
                Applied::TargetFailed(failure) => {
                    return Ok(Followed::Outcome(TransferOutcome::TargetFailed(
                        failure,
                        Some(ConnectorPosition {
                            run_id: event.run_id,
                            sequence: event.sequence,
                        }),
                    )));
                }
                Applied::Violation(violation) => return Ok(self.violated(violation)),
            }
        }
    }

    /// The connector broke the contract: a fault, unless a human already
    /// has the customer, which that does not undo.
    fn violated(&self, violation: String) -> Followed {
        let name = &self.connector.name;
        if self.connected {
            tracing::warn!(handoff_id = %self.handoff.id, connector = %name, %violation, "connector broke the contract after connect");
            return Followed::Outcome(TransferOutcome::Finished);
        }
        Followed::Faulty(format!("{name}: {violation}"))
    }
}
