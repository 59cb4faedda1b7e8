//! Reading rows into domain types, shared by both backends: a backend
//! gives access to a row's columns by position ([`Columns`]), and the
//! mapping of each statement's columns (`sql`) is here, once.

use std::time::Duration;

use baton_proto::handoff::v1::EscalationDecision;
use baton_proto::types::v1 as pb;
use prost::Message;

use super::{AuditAction, AuditEntry, AuditRecord, ContextAccess, StoreError};
use crate::convert::types;
use crate::domain::{
    Attempt, EncodedContext, EncodedConversation, EventRecord, Failure, Handoff, PlannedTarget,
    QueueStatus, TransferMode, WrapUp,
};

fn parse_name<T: serde::de::DeserializeOwned>(name: &str) -> Result<T, StoreError> {
    serde_json::from_value(serde_json::Value::String(name.to_owned()))
        .map_err(|e| StoreError::Corrupt(e.to_string()))
}

fn decode<M: Message + Default>(bytes: &[u8]) -> Result<M, StoreError> {
    M::decode(bytes).map_err(|e| StoreError::Corrupt(e.to_string()))
}

/// Bytes kept encoded (`domain::context`), checked as they are read so
/// that damage is the read's error, as for every other column.
fn checked<M: Message + Default>(bytes: Vec<u8>) -> Result<Vec<u8>, StoreError> {
    decode::<M>(&bytes)?;
    Ok(bytes)
}

fn wrap_up(bytes: Option<Vec<u8>>) -> Result<Option<WrapUp>, StoreError> {
    let wrap_up = bytes.as_deref().map(decode::<pb::WrapUp>).transpose()?;
    Ok(wrap_up.map(types::wrap_up_from))
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

/// Implements [`Columns`] for a driver's row type through its typed getter
/// (`$get`: rusqlite's `get`, sqlx's `try_get`), which reads every one of
/// those types; its error is `Corrupt`.
macro_rules! columns_by {
    ($row:ty, $get:ident) => {
        impl $crate::store::rows::Columns for $row {
            $crate::store::rows::columns_by!(@each $get;
                text: String,
                optional_text: Option<String>,
                blob: Vec<u8>,
                optional_blob: Option<Vec<u8>>,
                integer: i64,
                optional_integer: Option<i64>,
                optional_int32: Option<i32>,
            );
        }
    };
    (@each $get:ident; $($name:ident: $column:ty,)*) => {
        $(
            fn $name(&self, index: usize) -> Result<$column, $crate::store::StoreError> {
                self.$get(index)
                    .map_err(|error| $crate::store::StoreError::Corrupt(error.to_string()))
            }
        )*
    };
}
pub(super) use columns_by;

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
        reason: types::failure_reason_from(reason?),
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
        conversation: EncodedConversation::from_bytes(checked::<pb::Conversation>(row.blob(5)?)?),
        context: EncodedContext::from_bytes(checked::<pb::HandoffContext>(row.blob(6)?)?),
        requested_target: types::requested_target_from(decode(&row.blob(7)?)?),
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
        decision: row
            .optional_blob(21)?
            .as_deref()
            .map(decode::<EscalationDecision>)
            .transpose()?
            .map(types::decision_from),
        wrap_up: wrap_up(row.optional_blob(22)?)?,
        context_version: unsigned(row.integer(23)?)?,
        recorded_outcome: row
            .optional_blob(24)?
            .as_deref()
            .map(decode::<baton_proto::handoff::v1::Outcome>)
            .transpose()?
            .and_then(types::outcome_from),
        callback: row
            .optional_text(25)?
            .map(|json| serde_json::from_str(&json))
            .transpose()
            .map_err(|e| StoreError::Corrupt(e.to_string()))?,
        plan,
    })
}

/// A row of `sql::OUTCOME_FACTS`: the handoff and its first CONNECTED's
/// time.
pub(super) fn read_outcome_row(row: &impl Columns) -> Result<(Handoff, Option<i64>), StoreError> {
    Ok((read_handoff(row)?, row.optional_integer(26)?))
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
        wrap_up: wrap_up(row.optional_blob(11)?)?,
        context_version: optional_unsigned(row.optional_integer(12)?)?,
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
            connector: row.text(10)?,
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
