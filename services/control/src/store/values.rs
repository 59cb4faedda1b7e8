//! What writes bind, shared by both backends: each statement's values
//! (`sql`), in its order, converted once from domain types (names of
//! states and kinds, protobuf bytes, integers as i64, which both drivers
//! bind).

use prost::Message;

use crate::convert::types;
use crate::domain::outcome::RecordedOutcome;
use crate::domain::{
    ConnectorPosition, EventRecord, Failure, Handoff, HandoffState, QueueStatus, WrapUp,
};
use crate::store::StoreError;

pub(super) fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or_default()
}

/// A count or limit as SQL binds it.
pub(super) fn to_i64<T: TryInto<i64>>(value: T) -> i64 {
    value.try_into().unwrap_or(i64::MAX)
}

/// The snake_case name a unit enum variant is stored under (its serde name).
fn name_of<T: serde::Serialize>(value: &T) -> String {
    match serde_json::to_value(value) {
        Ok(serde_json::Value::String(name)) => name,
        _ => String::new(),
    }
}

/// `states` as stored.
pub(super) fn state_names(states: &[HandoffState]) -> Vec<String> {
    states.iter().map(name_of).collect()
}

/// What `sql::INSERT_HANDOFF` binds, in order.
pub(super) struct NewHandoffValues {
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
    pub(super) decision: Option<Vec<u8>>,
    pub(super) callback: Option<String>,
}

impl NewHandoffValues {
    pub(super) fn of(handoff: &Handoff) -> Result<Self, StoreError> {
        Ok(Self {
            id: handoff.id.clone(),
            tenant: handoff.tenant.clone(),
            request_id: handoff.request_id.clone(),
            request_fingerprint: handoff.request_fingerprint.clone(),
            state: name_of(&HandoffState::INITIAL),
            conversation: handoff.conversation.as_bytes().to_vec(),
            context: handoff.context.as_bytes().to_vec(),
            requested_target: types::requested_target(&handoff.requested_target).encode_to_vec(),
            mode: name_of(&handoff.mode),
            plan: serde_json::to_string(&handoff.plan)
                .map_err(|e| StoreError::Corrupt(e.to_string()))?,
            customer_message: handoff.customer_message.clone(),
            customer_message_language: handoff.customer_message_language.clone(),
            created_at_ms: handoff.created_at_ms,
            updated_at_ms: handoff.created_at_ms,
            deadline_ms: handoff.deadline_ms,
            decision: handoff
                .decision
                .as_ref()
                .map(|decision| types::decision(decision).encode_to_vec()),
            callback: callback(handoff)?,
        })
    }
}

/// What `sql::UPDATE_STATE` binds before the tenant and id: a handoff's
/// state after an event.
pub(super) struct StateValues {
    pub(super) state: String,
    pub(super) updated_at_ms: i64,
    pub(super) last_sequence: i64,
    pub(super) current_attempt: Option<i64>,
    pub(super) queue_position: Option<i64>,
    pub(super) queue_wait_ms: Option<i64>,
    pub(super) failure_reason: Option<i32>,
    pub(super) failure_detail: Option<String>,
    pub(super) wrap_up: Option<Vec<u8>>,
    pub(super) outcome: Option<Vec<u8>>,
    pub(super) callback: Option<String>,
}

impl StateValues {
    pub(super) fn of(handoff: &Handoff) -> Result<Self, StoreError> {
        Ok(Self {
            state: name_of(&handoff.state),
            updated_at_ms: handoff.updated_at_ms,
            last_sequence: to_i64(handoff.last_sequence),
            current_attempt: handoff.current_attempt.as_ref().map(|a| a.number.into()),
            queue_position: handoff.queue_status.map(|q| q.position.into()),
            queue_wait_ms: wait_ms(handoff.queue_status),
            failure_reason: handoff.failure.as_ref().map(failure_reason),
            failure_detail: handoff.failure.as_ref().map(|f| f.detail.clone()),
            wrap_up: handoff.wrap_up.as_ref().map(wrap_up),
            outcome: handoff.recorded_outcome.as_ref().map(outcome),
            callback: callback(handoff)?,
        })
    }
}

/// What `sql::INSERT_EVENT` binds, in order.
pub(super) struct EventValues {
    pub(super) tenant: String,
    pub(super) handoff_id: String,
    pub(super) sequence: i64,
    pub(super) kind: String,
    pub(super) state: String,
    pub(super) time_ms: i64,
    pub(super) attempt: Option<i64>,
    pub(super) queue_position: Option<i64>,
    pub(super) queue_wait_ms: Option<i64>,
    pub(super) failure_reason: Option<i32>,
    pub(super) failure_detail: Option<String>,
    pub(super) detail: String,
    pub(super) connector_sequence: Option<i64>,
    pub(super) wrap_up: Option<Vec<u8>>,
    /// Empty for an event no connector reported.
    pub(super) connector_run: String,
    /// Set on CONTEXT_UPDATED only.
    pub(super) context_version: Option<i64>,
}

impl EventValues {
    pub(super) fn of(
        tenant: &str,
        record: &EventRecord,
        connector_position: Option<&ConnectorPosition>,
    ) -> Self {
        Self {
            tenant: tenant.to_owned(),
            handoff_id: record.handoff_id.clone(),
            sequence: to_i64(record.sequence),
            kind: name_of(&record.kind),
            state: name_of(&record.state),
            time_ms: record.time_ms,
            attempt: record.attempt.as_ref().map(|a| a.number.into()),
            queue_position: record.queue_status.map(|q| q.position.into()),
            queue_wait_ms: wait_ms(record.queue_status),
            failure_reason: record.failure.as_ref().map(failure_reason),
            failure_detail: record.failure.as_ref().map(|f| f.detail.clone()),
            detail: record.detail.clone(),
            connector_sequence: connector_position.map(|p| to_i64(p.sequence)),
            wrap_up: record.wrap_up.as_ref().map(wrap_up),
            connector_run: connector_position
                .map(|p| p.run_id.clone())
                .unwrap_or_default(),
            context_version: record.context_version.map(to_i64),
        }
    }
}

/// What `sql::CONNECTOR_EVENT_SEEN` binds, in order.
pub(super) struct ConnectorCheck<'a> {
    pub(super) tenant: &'a str,
    pub(super) handoff_id: &'a str,
    pub(super) attempt: i64,
    pub(super) run: &'a str,
    pub(super) sequence: i64,
}

fn failure_reason(failure: &Failure) -> i32 {
    types::failure_reason(failure.reason)
}

/// A callback as the `callback` column keeps it (JSON, number included:
/// the connector that dials needs it; the retention purge erases it).
fn callback(handoff: &Handoff) -> Result<Option<String>, StoreError> {
    handoff
        .callback
        .as_ref()
        .map(|c| serde_json::to_string(c).map_err(|e| StoreError::Corrupt(e.to_string())))
        .transpose()
}

/// A recorded outcome as the `outcome` column keeps it.
pub(super) fn outcome(outcome: &RecordedOutcome) -> Vec<u8> {
    types::outcome(outcome).encode_to_vec()
}

fn wrap_up(wrap_up: &WrapUp) -> Vec<u8> {
    types::wrap_up(wrap_up).encode_to_vec()
}

fn wait_ms(status: Option<QueueStatus>) -> Option<i64> {
    status.map(|s| to_i64(s.estimated_wait.as_millis()))
}
