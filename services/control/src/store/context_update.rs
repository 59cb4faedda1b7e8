//! A context update (UpdateHandoff) as both backends store it: the
//! statements they run alike, the earlier outcome of a request id already
//! used, and the handoff and CONTEXT_UPDATED event an update makes. The
//! version check and the state machine's check run on the handoff as read
//! under the write's lock (SQLite's writer thread, PostgreSQL's row lock),
//! so that two updates against the same version cannot both be applied.

use super::appending::{Appending, apply};
use super::{ContextUpdate, ContextUpdateOutcome, StoreError};
use crate::domain::{EventKind, EventRecord, Handoff, NewEvent};

/// `tenant`, `handoff_id`, `request_id`: the fingerprint and the version
/// of an update already made with that request id.
pub(super) const SEEN: &str = "SELECT fingerprint, context_version FROM context_updates \
     WHERE tenant = ?1 AND handoff_id = ?2 AND request_id = ?3";

/// `context`, `context_version`, `tenant`, `id`.
pub(super) const UPDATE_CONTEXT: &str =
    "UPDATE handoffs SET context = ?1, context_version = ?2 WHERE tenant = ?3 AND id = ?4";

/// `tenant`, `handoff_id`, `request_id`, `fingerprint`, `context_version`.
pub(super) const INSERT: &str = "INSERT INTO context_updates \
     (tenant, handoff_id, request_id, fingerprint, context_version) \
     VALUES (?1, ?2, ?3, ?4, ?5)";

/// What a request id used before answers: the handoff as it is now, and
/// the version the first update with that id made.
pub(super) fn retried(
    handoff: Handoff,
    (fingerprint, version): (String, i64),
    update: &ContextUpdate,
) -> Result<ContextUpdateOutcome, StoreError> {
    Ok(ContextUpdateOutcome::Retried {
        handoff,
        version: u64::try_from(version)
            .map_err(|_| StoreError::Corrupt(format!("context version {version}")))?,
        same_request: fingerprint == update.fingerprint,
    })
}

/// Applies `update` to `handoff` (as read under the write's lock) and
/// returns its CONTEXT_UPDATED event, or why it cannot be made.
pub(super) fn applied(
    handoff: &mut Handoff,
    update: ContextUpdate,
) -> Result<EventRecord, StoreError> {
    let appending = Appending::next(handoff, NewEvent::new(EventKind::ContextUpdated))?;
    let context = match update.context {
        Some(context) if handoff.context_version == update.expected_version => context,
        _ => {
            return Err(StoreError::ContextVersionConflict {
                current: handoff.context_version,
            });
        }
    };
    let version = handoff.context_version + 1;
    let mut record = appending.record;
    record.context_version = Some(version);
    apply(handoff, &record);
    handoff.context = context;
    handoff.context_version = version;
    Ok(record)
}
