//! What both backends share between their driver and the domain: reading
//! a row by position into domain types ([`Columns`]), the values a write
//! binds, in the order of its statement in `sql`, and the bookkeeping of
//! appending an event (its sequence, its state, its handoff after it).
//! A backend holds only the binding and reading its driver needs.

use std::time::Duration;

use baton_proto::types::v1 as pb;
use prost::Message;

use super::{AuditAction, AuditEntry, AuditRecord, ContextAccess, StoreError};
use crate::domain::{
    Attempt, ConnectorPosition, EventKind, EventRecord, Failure, Handoff, HandoffState, NewEvent,
    PlannedTarget, QueueStatus, TransferMode,
};

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

fn parse_name<T: serde::de::DeserializeOwned>(name: &str) -> Result<T, StoreError> {
    serde_json::from_value(serde_json::Value::String(name.to_owned()))
        .map_err(|e| StoreError::Corrupt(e.to_string()))
}

fn decode<M: Message + Default>(bytes: &[u8]) -> Result<M, StoreError> {
    M::decode(bytes).map_err(|e| StoreError::Corrupt(e.to_string()))
}

/// A column that holds an unsigned number (a BIGINT in PostgreSQL).
fn unsigned<T: TryFrom<i64>>(value: i64) -> Result<T, StoreError> {
    T::try_from(value).map_err(|_| StoreError::Corrupt(format!("{value} is out of range")))
}

fn optional_unsigned<T: TryFrom<i64>>(value: Option<i64>) -> Result<Option<T>, StoreError> {
    value.map(unsigned).transpose()
}

/// A result row's columns by position, as a driver reads them: all the
/// shared mapping needs of a backend. A value of the wrong type is
/// `Corrupt`.
pub(super) trait Columns {
    fn text(&self, index: usize) -> Result<String, StoreError>;
    fn optional_text(&self, index: usize) -> Result<Option<String>, StoreError>;
    fn blob(&self, index: usize) -> Result<Vec<u8>, StoreError>;
    fn optional_blob(&self, index: usize) -> Result<Option<Vec<u8>>, StoreError>;
    /// A 64-bit integer (INTEGER in SQLite, BIGINT in PostgreSQL).
    fn integer(&self, index: usize) -> Result<i64, StoreError>;
    fn optional_integer(&self, index: usize) -> Result<Option<i64>, StoreError>;
    /// A 32-bit integer (PostgreSQL's INTEGER): the failure reason.
    fn optional_int32(&self, index: usize) -> Result<Option<i32>, StoreError>;
}

/// The attempt numbered `number` (1-based) of `plan`.
fn attempt_of(plan: &[PlannedTarget], number: Option<u32>) -> Option<Attempt> {
    let number = number?;
    let planned = plan
        .get(usize::try_from(number).ok()?.checked_sub(1)?)?
        .clone();
    Some(Attempt { number, planned })
}

fn queue_status(position: Option<u32>, wait_ms: Option<i64>) -> Option<QueueStatus> {
    Some(QueueStatus {
        position: position?,
        estimated_wait: Duration::from_millis(u64::try_from(wait_ms.unwrap_or(0)).unwrap_or(0)),
    })
}

fn failure(reason: Option<i32>, detail: Option<String>) -> Option<Failure> {
    Some(Failure {
        reason: pb::FailureReason::try_from(reason?).unwrap_or(pb::FailureReason::Unspecified),
        detail: detail.unwrap_or_default(),
    })
}

/// A row of `sql::handoff_columns!()`.
pub(super) fn read_handoff(row: &impl Columns) -> Result<Handoff, StoreError> {
    let plan: Vec<PlannedTarget> =
        serde_json::from_str(&row.text(9)?).map_err(|e| StoreError::Corrupt(e.to_string()))?;
    Ok(Handoff {
        id: row.text(0)?,
        tenant: row.text(1)?,
        request_id: row.text(2)?,
        request_fingerprint: row.text(3)?,
        state: parse_name(&row.text(4)?)?,
        conversation: decode(&row.blob(5)?)?,
        context: decode(&row.blob(6)?)?,
        requested_target: decode(&row.blob(7)?)?,
        mode: parse_name::<TransferMode>(&row.text(8)?)?,
        customer_message: row.text(10)?,
        customer_message_language: row.text(11)?,
        created_at_ms: row.integer(12)?,
        updated_at_ms: row.integer(13)?,
        deadline_ms: row.integer(14)?,
        current_attempt: attempt_of(&plan, optional_unsigned(row.optional_integer(15)?)?),
        queue_status: queue_status(
            optional_unsigned(row.optional_integer(16)?)?,
            row.optional_integer(17)?,
        ),
        failure: failure(row.optional_int32(18)?, row.optional_text(19)?),
        last_sequence: unsigned(row.integer(20)?)?,
        decision: row.optional_blob(21)?.as_deref().map(decode).transpose()?,
        wrap_up: row.optional_blob(22)?.as_deref().map(decode).transpose()?,
        plan,
    })
}

/// A row of `sql::event_columns!()` of a handoff planned as `plan`.
pub(super) fn read_event(
    row: &impl Columns,
    plan: &[PlannedTarget],
) -> Result<EventRecord, StoreError> {
    Ok(EventRecord {
        handoff_id: row.text(0)?,
        sequence: unsigned(row.integer(1)?)?,
        kind: parse_name(&row.text(2)?)?,
        state: parse_name(&row.text(3)?)?,
        time_ms: row.integer(4)?,
        attempt: attempt_of(plan, optional_unsigned(row.optional_integer(5)?)?),
        queue_status: queue_status(
            optional_unsigned(row.optional_integer(6)?)?,
            row.optional_integer(7)?,
        ),
        failure: failure(row.optional_int32(8)?, row.optional_text(9)?),
        detail: row.text(10)?,
        wrap_up: row.optional_blob(11)?.as_deref().map(decode).transpose()?,
    })
}

/// A row of `sql::audit_columns!()`.
pub(super) fn read_audit(row: &impl Columns) -> Result<AuditRecord, StoreError> {
    let action = row.text(3)?;
    let time_ms = row.integer(6)?;
    Ok(AuditRecord {
        sequence: row.integer(0)?,
        entry: AuditEntry {
            tenant: row.text(1)?,
            handoff_id: row.text(2)?,
            action: AuditAction::from_name(&action)
                .ok_or_else(|| StoreError::Corrupt(format!("audit action {action:?}")))?,
            actor: row.text(4)?,
            credential: row.text(5)?,
            time_ms,
            detail: row.text(7)?,
        },
        count: row.integer(8)?,
        last_ms: row.optional_integer(9)?.unwrap_or(time_ms),
    })
}

/// A row of `sql::CONTEXT_ACCESS`.
pub(super) fn read_context_access(row: &impl Columns) -> Result<ContextAccess, StoreError> {
    Ok(ContextAccess {
        tokens_revoked_at_ms: row.optional_integer(0)?,
        context_purged_at_ms: row.optional_integer(1)?,
    })
}

/// A row of `sql::LAST_CONNECTOR_POSITION`: the run and its sequence.
pub(super) fn read_connector_position(row: &impl Columns) -> Result<(String, u64), StoreError> {
    Ok((row.text(0)?, unsigned(row.integer(1)?)?))
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
}

impl NewHandoffValues {
    pub(super) fn of(handoff: &Handoff) -> Result<Self, StoreError> {
        Ok(Self {
            id: handoff.id.clone(),
            tenant: handoff.tenant.clone(),
            request_id: handoff.request_id.clone(),
            request_fingerprint: handoff.request_fingerprint.clone(),
            state: name_of(&HandoffState::INITIAL),
            conversation: handoff.conversation.encode_to_vec(),
            context: handoff.context.encode_to_vec(),
            requested_target: handoff.requested_target.encode_to_vec(),
            mode: name_of(&handoff.mode),
            plan: serde_json::to_string(&handoff.plan)
                .map_err(|e| StoreError::Corrupt(e.to_string()))?,
            customer_message: handoff.customer_message.clone(),
            customer_message_language: handoff.customer_message_language.clone(),
            created_at_ms: handoff.created_at_ms,
            updated_at_ms: handoff.created_at_ms,
            deadline_ms: handoff.deadline_ms,
            decision: handoff.decision.as_ref().map(Message::encode_to_vec),
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
}

impl StateValues {
    pub(super) fn of(handoff: &Handoff) -> Self {
        Self {
            state: name_of(&handoff.state),
            updated_at_ms: handoff.updated_at_ms,
            last_sequence: to_i64(handoff.last_sequence),
            current_attempt: handoff.current_attempt.as_ref().map(|a| a.number.into()),
            queue_position: handoff.queue_status.map(|q| q.position.into()),
            queue_wait_ms: wait_ms(handoff.queue_status),
            failure_reason: handoff.failure.as_ref().map(|f| f.reason as i32),
            failure_detail: handoff.failure.as_ref().map(|f| f.detail.clone()),
            wrap_up: handoff.wrap_up.as_ref().map(Message::encode_to_vec),
        }
    }
}

fn wait_ms(status: Option<QueueStatus>) -> Option<i64> {
    status.map(|s| to_i64(s.estimated_wait.as_millis()))
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
            failure_reason: record.failure.as_ref().map(|f| f.reason as i32),
            failure_detail: record.failure.as_ref().map(|f| f.detail.clone()),
            detail: record.detail.clone(),
            connector_sequence: connector_position.map(|p| to_i64(p.sequence)),
            wrap_up: record.wrap_up.as_ref().map(Message::encode_to_vec),
            connector_run: connector_position
                .map(|p| p.run_id.clone())
                .unwrap_or_default(),
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
    if let Some(wrap_up) = &record.wrap_up {
        handoff.wrap_up = Some(wrap_up.clone());
    }
}
