//! Event recording: every handoff event the dispatcher (or a cancel)
//! records passes here, to be appended (fenced by the dispatch lease when
//! dispatching), counted, logged and told to the watchers; and a
//! connector's transfer events become handoff events here.

use std::time::Instant;

use tracing::Instrument;

use super::Dispatcher;
use crate::connector::{TransferEvent, TransferEventKind};
use crate::domain::{
    Attempt, ConnectorPosition, EventKind, EventRecord, Failure, FailureReason, Handoff,
    HandoffState, NewEvent, QueueStatus,
};
use crate::metrics::metrics;
use crate::store::{AuditEntry, StoreError};

/// What recording a transfer event did to the handoff.
#[derive(Debug, PartialEq)]
pub(super) enum Applied {
    Continue {
        now_connected: bool,
    },
    Finished,
    TargetFailed(Failure),
    /// The event breaks the contract.
    Violation(String),
}

/// What a transfer event means for the handoff, before anything is
/// recorded.
#[derive(Debug, PartialEq)]
pub(super) enum Meaning {
    /// An event to record.
    Event(Box<NewEvent>),
    /// The target failed: the plan moves on.
    TargetFailed(Failure),
    /// The event breaks the contract.
    Violation(String),
    /// A kind of a newer contract, skipped (`StreamCheck` bounds how many).
    Unknown(i32),
}

/// Reads a transfer event of `attempt` as the handoff's.
pub(super) fn meaning(attempt: &Attempt, event: &TransferEvent) -> Meaning {
    let kind = match event.kind {
        TransferEventKind::Queued => EventKind::Queued,
        TransferEventKind::Offered => EventKind::Offered,
        TransferEventKind::Ringing => EventKind::Ringing,
        TransferEventKind::Answered => EventKind::Answered,
        TransferEventKind::ContextDelivered => EventKind::ContextDelivered,
        TransferEventKind::Connected => EventKind::Connected,
        TransferEventKind::Completed => EventKind::Completed,
        TransferEventKind::Cancelled => EventKind::Cancelled,
        TransferEventKind::HandedBack => EventKind::HandedBack,
        TransferEventKind::Consulting => EventKind::Consulting,
        TransferEventKind::ConsultAccepted => EventKind::ConsultAccepted,
        TransferEventKind::ConsultDeclined => EventKind::ConsultDeclined,
        TransferEventKind::CallbackDialing => EventKind::CallbackDialing,
        TransferEventKind::Failed => {
            let reason = match event.failure_reason {
                FailureReason::Unspecified => FailureReason::ConnectorError,
                reason => reason,
            };
            return Meaning::TargetFailed(Failure::new(reason, event.detail.clone()));
        }
        TransferEventKind::Unspecified => {
            return Meaning::Violation(
                "a transfer event without a kind (TRANSFER_EVENT_KIND_UNSPECIFIED)".into(),
            );
        }
        TransferEventKind::Unknown(kind) => return Meaning::Unknown(kind),
    };
    let mut new = NewEvent::new(kind)
        .attempt(attempt.clone())
        .detail(event.detail.clone());
    new.connector_position = Some(ConnectorPosition {
        run_id: event.run_id.clone(),
        sequence: event.sequence,
    });
    match kind {
        EventKind::Queued => {
            new.queue_status = Some(QueueStatus {
                position: event.queue_position,
                estimated_wait: event.estimated_wait.unwrap_or_default(),
            });
        }
        EventKind::Completed => new.wrap_up = event.wrap_up.clone(),
        // A hand-back always carries the wrap-up, even an empty one, so
        // that the runtime can tell "no notes" from "not a hand-back".
        EventKind::HandedBack => {
            new.wrap_up = Some(event.wrap_up.clone().unwrap_or_default());
        }
        EventKind::Cancelled => {
            new.failure = Some(Failure::new(FailureReason::Cancelled, event.detail.clone()));
        }
        _ => {}
    }
    Meaning::Event(Box::new(new))
}

impl Dispatcher {
    /// Records an event, with `audit` in the same commit when given, and
    /// tells the watchers.
    pub async fn record(
        &self,
        tenant: &str,
        id: &str,
        event: NewEvent,
        audit: Option<AuditEntry>,
    ) -> Result<(Handoff, EventRecord), StoreError> {
        self.record_as(tenant, id, event, None, audit).await
    }

    /// Records an event of a handoff this replica dispatches, only while
    /// it holds the handoff's lease, and tells the watchers.
    pub(super) async fn record_leased(
        &self,
        tenant: &str,
        id: &str,
        event: NewEvent,
    ) -> Result<(Handoff, EventRecord), StoreError> {
        self.record_as(tenant, id, event, Some(&self.replica), None)
            .await
    }

    /// Appends `event` (fenced by the lease of `owner` when given) in a
    /// span of its own, counts it, logs it and tells the watchers.
    async fn record_as(
        &self,
        tenant: &str,
        id: &str,
        event: NewEvent,
        owner: Option<&str>,
        audit: Option<AuditEntry>,
    ) -> Result<(Handoff, EventRecord), StoreError> {
        let span = tracing::info_span!(
            "handoff.event",
            otel.name = %format_args!("handoff {:?}", event.kind),
            baton.event = ?event.kind,
            baton.state = tracing::field::Empty,
        );
        let started = Instant::now();
        let (handoff, record) = self
            .store
            .append_as(tenant, id, event, owner, audit)
            .instrument(span.clone())
            .await?;
        metrics().store_operation("append", started.elapsed());
        span.record("baton.state", record.state.as_str());
        metrics().event_recorded(&handoff, &record, self.queued_at(&record));
        tracing::info!(
            handoff_id = %id,
            sequence = record.sequence,
            event = ?record.kind,
            state = ?record.state,
            "handoff event"
        );
        self.hub.publish(&record);
        Ok((handoff, record))
    }

    /// When the current attempt of `record`'s handoff was queued, for the
    /// queue-wait metric; forgotten once the handoff connects or ends.
    fn queued_at(&self, record: &EventRecord) -> Option<i64> {
        let mut queued = self.queued_at_ms.lock().unwrap_or_else(|e| e.into_inner());
        match record.kind {
            EventKind::Queued => {
                queued
                    .entry(record.handoff_id.clone())
                    .or_insert(record.time_ms);
                None
            }
            EventKind::TargetStarted => {
                queued.remove(&record.handoff_id);
                None
            }
            EventKind::Connected => queued.remove(&record.handoff_id),
            _ if record.state.is_terminal() => queued.remove(&record.handoff_id),
            _ => None,
        }
    }

    /// Records what a transfer event of `attempt` means for the handoff.
    pub(super) async fn apply(
        &self,
        handoff: &Handoff,
        attempt: &Attempt,
        event: &TransferEvent,
    ) -> Result<Applied, StoreError> {
        let new = match meaning(attempt, event) {
            Meaning::Event(new) => *new,
            Meaning::TargetFailed(failure) => return Ok(Applied::TargetFailed(failure)),
            Meaning::Violation(violation) => return Ok(Applied::Violation(violation)),
            Meaning::Unknown(kind) => {
                tracing::warn!(handoff_id = %handoff.id, kind, "ignoring unknown transfer event");
                return Ok(Applied::Continue {
                    now_connected: false,
                });
            }
        };
        let kind = new.kind;
        match self.record_leased(&handoff.tenant, &handoff.id, new).await {
            Ok((_, record)) if record.state.is_terminal() => Ok(Applied::Finished),
            Ok((_, record)) => Ok(Applied::Continue {
                now_connected: record.state == HandoffState::Connected,
            }),
            Err(StoreError::Duplicate) => Ok(Applied::Continue {
                now_connected: false,
            }),
            // A restarted connector may report again a step the handoff is
            // past (CONNECTED twice): skip it, unless the handoff has ended.
            // A step this attempt never reported (COMPLETED before anyone
            // answered) breaks the contract.
            Err(StoreError::IllegalTransition(error)) => {
                let current = self.store.get(&handoff.tenant, &handoff.id).await?;
                if !current.state.is_terminal()
                    && !self.reported_before(handoff, attempt.number, kind).await?
                {
                    return Ok(Applied::Violation(format!(
                        "{kind:?} is not a legal next step: {error}"
                    )));
                }
                Ok(if current.state.is_terminal() {
                    Applied::Finished
                } else {
                    Applied::Continue {
                        now_connected: current.state == HandoffState::Connected,
                    }
                })
            }
            Err(error) => Err(error),
        }
    }

    /// Whether this attempt already recorded an event of `kind` (a
    /// restarted connector reports it again).
    async fn reported_before(
        &self,
        handoff: &Handoff,
        number: u32,
        kind: EventKind,
    ) -> Result<bool, StoreError> {
        let events = self
            .store
            .events_after(&handoff.tenant, &handoff.id, 0, 1000)
            .await?;
        Ok(events.iter().any(|event| {
            event.kind == kind && event.attempt.as_ref().is_some_and(|a| a.number == number)
        }))
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::domain::{ConcreteTarget, PlannedTarget};

    fn attempt() -> Attempt {
        Attempt {
            number: 2,
            planned: PlannedTarget {
                connector: "queue".into(),
                target: ConcreteTarget::Queue {
                    name: "billing".into(),
                    skills: vec![],
                },
            },
        }
    }

    fn event(kind: TransferEventKind) -> TransferEvent {
        TransferEvent {
            detail: "note".into(),
            ..TransferEvent::new("run-1", 4, kind)
        }
    }

    #[test]
    fn a_transfer_event_becomes_the_handoff_event_of_its_attempt_and_place() {
        let mut queued = event(TransferEventKind::Queued);
        queued.queue_position = 3;
        queued.estimated_wait = Some(Duration::from_secs(40));
        let Meaning::Event(new) = meaning(&attempt(), &queued) else {
            panic!("an event to record");
        };
        assert_eq!(new.kind, EventKind::Queued);
        assert_eq!(new.attempt, Some(attempt()));
        assert_eq!(new.detail, "note");
        assert_eq!(
            new.connector_position,
            Some(ConnectorPosition {
                run_id: "run-1".into(),
                sequence: 4
            })
        );
        assert_eq!(
            new.queue_status,
            Some(QueueStatus {
                position: 3,
                estimated_wait: Duration::from_secs(40)
            })
        );

        let Meaning::Event(cancelled) = meaning(&attempt(), &event(TransferEventKind::Cancelled))
        else {
            panic!("an event to record");
        };
        assert_eq!(
            cancelled.failure,
            Some(Failure::new(FailureReason::Cancelled, "note"))
        );
    }

    #[test]
    fn a_hand_back_always_carries_a_wrap_up_with_the_instruction() {
        let mut handed_back = event(TransferEventKind::HandedBack);
        let wrap_up = crate::domain::WrapUp {
            disposition: "verified".into(),
            notes: "n".into(),
            instruction: "finish the address change".into(),
            outcome: Default::default(),
        };
        handed_back.wrap_up = Some(wrap_up.clone());
        let Meaning::Event(new) = meaning(&attempt(), &handed_back) else {
            panic!("an event to record");
        };
        assert_eq!(
            (new.kind, new.wrap_up),
            (EventKind::HandedBack, Some(wrap_up))
        );

        // Without one from the connector, an empty one: the runtime reads
        // the event's kind, never a missing payload.
        let Meaning::Event(bare) = meaning(&attempt(), &event(TransferEventKind::HandedBack))
        else {
            panic!("an event to record");
        };
        assert_eq!(bare.wrap_up, Some(crate::domain::WrapUp::default()));
    }

    #[test]
    fn a_failed_transfer_fails_the_target_with_its_reason_or_as_a_connector_error() {
        let mut failed = event(TransferEventKind::Failed);
        failed.failure_reason = FailureReason::NoAnswer;
        assert_eq!(
            meaning(&attempt(), &failed),
            Meaning::TargetFailed(Failure::new(FailureReason::NoAnswer, "note"))
        );
        failed.failure_reason = FailureReason::Unspecified;
        assert_eq!(
            meaning(&attempt(), &failed),
            Meaning::TargetFailed(Failure::new(FailureReason::ConnectorError, "note"))
        );
    }

    #[test]
    fn kinds_outside_the_contract_are_a_violation_or_skipped() {
        assert!(matches!(
            meaning(&attempt(), &event(TransferEventKind::Unspecified)),
            Meaning::Violation(_)
        ));
        assert_eq!(
            meaning(&attempt(), &event(TransferEventKind::Unknown(77))),
            Meaning::Unknown(77)
        );
    }
}
