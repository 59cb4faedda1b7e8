//! The bookkeeping of a handoff's log that both backends share: the
//! handoff and CREATED event a create stores, the record an event becomes
//! as the next of the log (through the state machine), and the handoff
//! after it, so that a write answers without reading back.

use super::StoreError;
use super::values::{ConnectorCheck, EventValues, now_ms, to_i64};
use crate::domain::outcome::{OutcomeSource, RecordedOutcome};
use crate::domain::{ConnectorPosition, EventKind, EventRecord, Handoff, HandoffState, NewEvent};

/// A new handoff as `create` stores it, and its CREATED event.
pub(super) fn created(mut handoff: Handoff) -> (Handoff, EventRecord) {
    handoff.state = HandoffState::INITIAL;
    handoff.updated_at_ms = handoff.created_at_ms;
    handoff.last_sequence = 1;
    handoff.current_attempt = None;
    handoff.queue_status = None;
    handoff.failure = None;
    handoff.wrap_up = None;
    handoff.context_version = 1;
    let event = EventRecord::new(
        handoff.id.clone(),
        1,
        EventKind::Created,
        HandoffState::INITIAL,
        handoff.created_at_ms,
    );
    (handoff, event)
}

/// An event about to be appended to a handoff's log: its record, and
/// where it came from.
pub(super) struct Appending {
    pub(super) record: EventRecord,
    pub(super) connector_position: Option<ConnectorPosition>,
}

impl Appending {
    /// The record `event` becomes as the next of `handoff`'s log, when
    /// the state machine allows it.
    pub(super) fn next(handoff: &Handoff, event: NewEvent) -> Result<Self, StoreError> {
        let record = EventRecord {
            attempt: event.attempt,
            queue_status: event.queue_status,
            failure: event.failure,
            detail: event.detail,
            wrap_up: event.wrap_up,
            ..EventRecord::new(
                handoff.id.clone(),
                handoff.last_sequence + 1,
                event.kind,
                handoff.state.after(event.kind)?,
                now_ms().max(handoff.updated_at_ms),
            )
        };
        Ok(Self {
            record,
            connector_position: event.connector_position,
        })
    }

    /// The check for a connector event already recorded (a replayed
    /// stream), when it is one.
    pub(super) fn connector_check<'a>(&'a self, tenant: &'a str) -> Option<ConnectorCheck<'a>> {
        let position = self.connector_position.as_ref()?;
        let attempt = self.record.attempt.as_ref()?;
        Some(ConnectorCheck {
            tenant,
            handoff_id: &self.record.handoff_id,
            attempt: attempt.number.into(),
            run: &position.run_id,
            sequence: to_i64(position.sequence),
        })
    }

    pub(super) fn values(&self, tenant: &str) -> EventValues {
        EventValues::of(tenant, &self.record, self.connector_position.as_ref())
    }
}

/// Applies a recorded event to its handoff as `sql::UPDATE_STATE` does, so
/// that `append` answers with the updated handoff without reading it back.
pub(super) fn apply(handoff: &mut Handoff, record: &EventRecord) {
    handoff.queue_status = if record.state == HandoffState::Queued {
        record.queue_status.or(handoff.queue_status)
    } else {
        None
    };
    handoff.failure = match record.kind {
        EventKind::Failed | EventKind::Cancelled => record.failure.clone(),
        _ => None,
    };
    handoff.state = record.state;
    handoff.updated_at_ms = record.time_ms;
    handoff.last_sequence = record.sequence;
    if let Some(attempt) = &record.attempt {
        handoff.current_attempt = Some(attempt.clone());
    }
    if record.kind == EventKind::CallbackDialing
        && let Some(callback) = handoff.callback.as_mut()
    {
        callback.dial_attempts = callback.dial_attempts.saturating_add(1);
    }
    if let Some(wrap_up) = &record.wrap_up {
        handoff.wrap_up = Some(wrap_up.clone());
        // The judgements are kept apart from the wrap-up's notes, which the
        // retention purge erases: how handoffs went outlives what was said.
        if handoff.recorded_outcome.is_none() && wrap_up.outcome.is_answered() {
            handoff.recorded_outcome = Some(RecordedOutcome {
                judgements: wrap_up.outcome,
                source: OutcomeSource::WrapUp,
                recorded_at_ms: record.time_ms,
            });
        }
    }
}
