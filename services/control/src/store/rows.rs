//! Rows of the handoffs and handoff_events tables as both stores read
//! them, and their translation into domain types. Each store reads its
//! driver's rows into these (see `HandoffRow::read` in each backend).

use std::time::Duration;

use baton_proto::types::v1 as pb;
use prost::Message;

use super::StoreError;
use crate::domain::{
    Attempt, ConnectorPosition, EventKind, EventRecord, Failure, Handoff, HandoffState, NewEvent,
    PlannedTarget, QueueStatus, TransferMode,
};

pub(super) const HANDOFF_COLUMNS: &str = "id, tenant, request_id, request_fingerprint, state, conversation, \
    context, requested_target, mode, plan, customer_message, customer_message_language, \
    created_at_ms, updated_at_ms, deadline_ms, current_attempt, queue_position, queue_wait_ms, \
    failure_reason, failure_detail, last_sequence, decision, wrap_up";

pub(super) const EVENT_COLUMNS: &str = "handoff_id, sequence, kind, state, time_ms, attempt, queue_position, \
    queue_wait_ms, failure_reason, failure_detail, detail, wrap_up";

pub(super) fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or_default()
}

/// The snake_case name a unit enum variant is stored under (its serde name).
pub(super) fn name_of<T: serde::Serialize>(value: &T) -> String {
    match serde_json::to_value(value) {
        Ok(serde_json::Value::String(name)) => name,
        _ => String::new(),
    }
}

pub(super) fn parse_name<T: serde::de::DeserializeOwned>(name: &str) -> Result<T, StoreError> {
    serde_json::from_value(serde_json::Value::String(name.to_owned()))
        .map_err(|e| StoreError::Corrupt(e.to_string()))
}

pub(super) fn decode<M: Message + Default>(bytes: &[u8]) -> Result<M, StoreError> {
    M::decode(bytes).map_err(|e| StoreError::Corrupt(e.to_string()))
}

pub(super) fn wait_ms(status: &Option<QueueStatus>) -> Option<i64> {
    status.map(|s| i64::try_from(s.estimated_wait.as_millis()).unwrap_or(i64::MAX))
}

pub(super) fn queue_status(position: Option<u32>, wait_ms: Option<i64>) -> Option<QueueStatus> {
    Some(QueueStatus {
        position: position?,
        estimated_wait: Duration::from_millis(u64::try_from(wait_ms.unwrap_or(0)).unwrap_or(0)),
    })
}

pub(super) fn failure(reason: Option<i32>, detail: Option<String>) -> Option<Failure> {
    Some(Failure {
        reason: pb::FailureReason::try_from(reason?).unwrap_or(pb::FailureReason::Unspecified),
        detail: detail.unwrap_or_default(),
    })
}

/// A new handoff as `create` stores it, and its CREATED event.
pub(super) fn created(mut handoff: Handoff) -> (Handoff, EventRecord) {
    handoff.state = HandoffState::INITIAL;
    handoff.updated_at_ms = handoff.created_at_ms;
    handoff.last_sequence = 1;
    handoff.current_attempt = None;
    handoff.queue_status = None;
    handoff.failure = None;
    handoff.wrap_up = None;
    let event = EventRecord {
        handoff_id: handoff.id.clone(),
        sequence: 1,
        kind: EventKind::Created,
        state: HandoffState::INITIAL,
        time_ms: handoff.created_at_ms,
        attempt: None,
        queue_status: None,
        failure: None,
        detail: String::new(),
        wrap_up: None,
    };
    (handoff, event)
}

/// The record `event` becomes as the next of `handoff`'s log, when the
/// state machine allows it, and the connector position it came from.
pub(super) fn next_record(
    handoff: &Handoff,
    event: NewEvent,
) -> Result<(EventRecord, Option<ConnectorPosition>), StoreError> {
    let record = EventRecord {
        handoff_id: handoff.id.clone(),
        sequence: handoff.last_sequence + 1,
        kind: event.kind,
        state: handoff.state.after(event.kind)?,
        time_ms: now_ms().max(handoff.updated_at_ms),
        attempt: event.attempt,
        queue_status: event.queue_status,
        failure: event.failure,
        detail: event.detail,
        wrap_up: event.wrap_up,
    };
    Ok((record, event.connector_position))
}

/// Applies a recorded event to its handoff as both stores' UPDATE does, so
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
    if let Some(wrap_up) = &record.wrap_up {
        handoff.wrap_up = Some(wrap_up.clone());
    }
}

/// A row with its columns read but not yet interpreted, shared by the
/// SQLite and PostgreSQL stores: turning bytes into domain types can fail
/// with a StoreError, not a driver error.
pub(super) struct HandoffRow {
    pub(super) id: String,
    pub(super) tenant: String,
    pub(super) request_id: String,
    pub(super) request_fingerprint: String,
    pub(super) state: String,
    pub(super) conversation: Vec<u8>,
    pub(super) context: Vec<u8>,
    pub(super) requested_target: Vec<u8>,
    pub(super) mode: String,
    pub(super) plan: String,
    pub(super) customer_message: String,
    pub(super) customer_message_language: String,
    pub(super) created_at_ms: i64,
    pub(super) updated_at_ms: i64,
    pub(super) deadline_ms: i64,
    pub(super) current_attempt: Option<u32>,
    pub(super) queue_position: Option<u32>,
    pub(super) queue_wait_ms: Option<i64>,
    pub(super) failure_reason: Option<i32>,
    pub(super) failure_detail: Option<String>,
    pub(super) last_sequence: u64,
    pub(super) decision: Option<Vec<u8>>,
    pub(super) wrap_up: Option<Vec<u8>>,
}

impl HandoffRow {
    pub(super) fn into_handoff(self) -> Result<Handoff, StoreError> {
        let plan: Vec<PlannedTarget> =
            serde_json::from_str(&self.plan).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        let current_attempt = self.current_attempt.and_then(|number| {
            let planned = plan
                .get(usize::try_from(number).ok()?.checked_sub(1)?)?
                .clone();
            Some(Attempt { number, planned })
        });
        Ok(Handoff {
            id: self.id,
            tenant: self.tenant,
            request_id: self.request_id,
            request_fingerprint: self.request_fingerprint,
            state: parse_name(&self.state)?,
            conversation: decode(&self.conversation)?,
            context: decode(&self.context)?,
            requested_target: decode(&self.requested_target)?,
            mode: parse_name::<TransferMode>(&self.mode)?,
            plan,
            customer_message: self.customer_message,
            customer_message_language: self.customer_message_language,
            created_at_ms: self.created_at_ms,
            updated_at_ms: self.updated_at_ms,
            deadline_ms: self.deadline_ms,
            current_attempt,
            queue_status: queue_status(self.queue_position, self.queue_wait_ms),
            failure: failure(self.failure_reason, self.failure_detail),
            last_sequence: self.last_sequence,
            decision: self.decision.as_deref().map(decode).transpose()?,
            wrap_up: self.wrap_up.as_deref().map(decode).transpose()?,
        })
    }
}

pub(super) struct EventRow {
    pub(super) handoff_id: String,
    pub(super) sequence: u64,
    pub(super) kind: String,
    pub(super) state: String,
    pub(super) time_ms: i64,
    pub(super) attempt: Option<u32>,
    pub(super) queue_position: Option<u32>,
    pub(super) queue_wait_ms: Option<i64>,
    pub(super) failure_reason: Option<i32>,
    pub(super) failure_detail: Option<String>,
    pub(super) detail: String,
    pub(super) wrap_up: Option<Vec<u8>>,
}

impl EventRow {
    pub(super) fn into_record(self, plan: &[PlannedTarget]) -> Result<EventRecord, StoreError> {
        let attempt = self.attempt.and_then(|number| {
            let planned = plan
                .get(usize::try_from(number).ok()?.checked_sub(1)?)?
                .clone();
            Some(Attempt { number, planned })
        });
        Ok(EventRecord {
            handoff_id: self.handoff_id,
            sequence: self.sequence,
            kind: parse_name(&self.kind)?,
            state: parse_name(&self.state)?,
            time_ms: self.time_ms,
            attempt,
            queue_status: queue_status(self.queue_position, self.queue_wait_ms),
            failure: failure(self.failure_reason, self.failure_detail),
            detail: self.detail,
            wrap_up: self.wrap_up.as_deref().map(decode).transpose()?,
        })
    }
}
