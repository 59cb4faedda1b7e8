//! The statements both backends run alike, written once in SQLite's
//! numbered form (`?1`); the PostgreSQL store numbers them its own way
//! (`$1`, [`numbered_for_postgres`]). Statements whose dialects differ
//! (listing by state, leases, the health probe) stay in their backend.
//!
//! Column lists are macros so that the statements are `&'static str`
//! (prepared once per connection by SQLite's statement cache) and the
//! rows they return are read by position (`rows`).

/// The columns of a handoff row, in the order `rows::read_handoff` reads.
macro_rules! handoff_columns {
    () => {
        "id, tenant, request_id, request_fingerprint, state, conversation, context, \
         requested_target, mode, plan, customer_message, customer_message_language, \
         created_at_ms, updated_at_ms, deadline_ms, current_attempt, queue_position, \
         queue_wait_ms, failure_reason, failure_detail, last_sequence, decision, wrap_up, \
         context_version, outcome, callback"
    };
}
pub(super) use handoff_columns;

/// The columns of an event row, in the order `rows::read_event` reads.
macro_rules! event_columns {
    () => {
        "handoff_id, sequence, kind, state, time_ms, attempt, queue_position, queue_wait_ms, \
         failure_reason, failure_detail, detail, wrap_up, context_version"
    };
}

/// The columns of an audit record, in the order `rows::read_audit` reads.
macro_rules! audit_columns {
    () => {
        "sequence, tenant, handoff_id, action, actor, credential, time_ms, detail, count, last_ms, connector"
    };
}

/// Terminal states, as stored.
macro_rules! ended {
    () => {
        "('completed', 'failed', 'cancelled', 'handed_back')"
    };
}

/// The condition of a handoff that has not ended. Its first term is the
/// predicate of the partial index `handoffs_in_flight` word for word (the
/// index predates `handed_back`), so that SQLite still uses the index;
/// the second leaves out handed-back handoffs.
macro_rules! live {
    () => {
        "state NOT IN ('completed', 'failed', 'cancelled') AND state <> 'handed_back'"
    };
}
pub(super) use live;

/// `tenant`, `id`.
pub(super) const HANDOFF: &str = concat!(
    "SELECT ",
    handoff_columns!(),
    " FROM handoffs WHERE tenant = ?1 AND id = ?2"
);

/// `id`.
pub(super) const HANDOFF_BY_ID: &str = concat!(
    "SELECT ",
    handoff_columns!(),
    " FROM handoffs WHERE id = ?1"
);

/// `tenant`, `request_id`.
pub(super) const HANDOFF_BY_REQUEST: &str = concat!(
    "SELECT ",
    handoff_columns!(),
    " FROM handoffs WHERE tenant = ?1 AND request_id = ?2"
);

pub(super) const IN_FLIGHT: &str = concat!(
    "SELECT ",
    handoff_columns!(),
    " FROM handoffs WHERE ",
    live!(),
    " ORDER BY id"
);

/// `values::NewHandoffValues` in order. Inserts nothing when the tenant
/// already has a handoff of that request id (a retry, or a concurrent
/// create that committed first).
pub(super) const INSERT_HANDOFF: &str = concat!(
    "INSERT INTO handoffs (",
    handoff_columns!(),
    ") VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, \
     NULL, NULL, NULL, NULL, NULL, 1, ?16, NULL, 1, NULL, ?17) ON CONFLICT (tenant, request_id) DO NOTHING"
);

/// `values::StateValues` in order (but its outcome and callback), then
/// `tenant`, `id`, then the outcome (once stored it stays) and the
/// callback (its dial count).
pub(super) const UPDATE_STATE: &str = "UPDATE handoffs SET state = ?1, updated_at_ms = ?2, \
     last_sequence = ?3, current_attempt = ?4, queue_position = ?5, queue_wait_ms = ?6, \
     failure_reason = ?7, failure_detail = ?8, wrap_up = ?9, outcome = COALESCE(outcome, ?12), \
     callback = ?13 WHERE tenant = ?10 AND id = ?11";

/// The encoded outcome, `tenant`, `id`: stores a handoff's outcome unless
/// it has one, and only once a human had the customer and it ended.
pub(super) const SET_OUTCOME: &str = "UPDATE handoffs SET outcome = ?1 \
     WHERE tenant = ?2 AND id = ?3 AND outcome IS NULL AND state IN ('completed', 'handed_back')";

/// `tenant`, `since_ms`, `until_ms`, then the last row of the previous
/// page (`created_at_ms`, `id`; NULLs for the first page), `limit`: the
/// window's handoffs oldest first, each with its first CONNECTED's time.
pub(super) const OUTCOME_FACTS: &str = concat!(
    "SELECT ",
    handoff_columns!(),
    ", (SELECT MIN(e.time_ms) FROM handoff_events e WHERE e.tenant = handoffs.tenant \
     AND e.handoff_id = handoffs.id AND e.kind = 'connected') \
     FROM handoffs WHERE tenant = ?1 AND created_at_ms >= ?2 AND created_at_ms < ?3 \
     AND (?4 IS NULL OR created_at_ms > ?4 OR (created_at_ms = ?4 AND id > ?5)) \
     ORDER BY created_at_ms, id LIMIT ?6"
);

/// `values::EventValues` in order.
pub(super) const INSERT_EVENT: &str = "INSERT INTO handoff_events (tenant, handoff_id, sequence, \
     kind, state, time_ms, attempt, queue_position, queue_wait_ms, failure_reason, \
     failure_detail, detail, connector_sequence, wrap_up, connector_run, context_version) \
     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16)";

/// `values::ConnectorCheck` in order: whether the connector event (or a
/// later one of the same run) is recorded already.
pub(super) const CONNECTOR_EVENT_SEEN: &str = "SELECT EXISTS (SELECT 1 FROM handoff_events \
     WHERE tenant = ?1 AND handoff_id = ?2 AND attempt = ?3 AND connector_run = ?4 \
     AND connector_sequence >= ?5)";

/// `tenant`, `id`, `after`, `limit`.
pub(super) const EVENTS_AFTER: &str = concat!(
    "SELECT ",
    event_columns!(),
    " FROM handoff_events WHERE tenant = ?1 AND handoff_id = ?2 AND sequence > ?3 \
     ORDER BY sequence LIMIT ?4"
);

/// `id`, `attempt`.
pub(super) const LAST_CONNECTOR_POSITION: &str = "SELECT connector_run, connector_sequence \
     FROM handoff_events WHERE handoff_id = ?1 AND attempt = ?2 \
     AND connector_sequence IS NOT NULL ORDER BY sequence DESC LIMIT 1";

/// An `AuditEntry`'s tenant, handoff id, action name, actor, credential,
/// time, detail and connector.
pub(super) const INSERT_AUDIT: &str = "INSERT INTO audit_log (tenant, handoff_id, action, actor, \
     credential, time_ms, detail, connector) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)";

/// An `AuditEntry`'s time, tenant, handoff id, action name, actor and
/// credential, then `since_ms`: counts a read on the newest matching
/// record since `since_ms`.
pub(super) const COUNT_VIEW: &str = "UPDATE audit_log SET count = count + 1, last_ms = ?1 \
     WHERE sequence = (SELECT sequence FROM audit_log WHERE tenant = ?2 AND handoff_id = ?3 \
     AND action = ?4 AND actor = ?5 AND credential = ?6 AND time_ms >= ?7 \
     ORDER BY sequence DESC LIMIT 1)";

/// `tenant`, then `handoff_id`, `connector`, action name and `before`
/// (each NULL for any), then `limit`.
pub(super) const AUDIT_LOG: &str = concat!(
    "SELECT ",
    audit_columns!(),
    " FROM audit_log WHERE tenant = ?1 AND (?2 IS NULL OR handoff_id = ?2) \
     AND (?3 IS NULL OR connector = ?3) AND (?4 IS NULL OR action = ?4) \
     AND (?5 IS NULL OR sequence < ?5) ORDER BY sequence DESC LIMIT ?6"
);

/// `time_ms`, `tenant`, `id`. Revoking again keeps the first time.
pub(super) const REVOKE_TOKENS: &str = "UPDATE handoffs \
     SET tokens_revoked_at_ms = COALESCE(tokens_revoked_at_ms, ?1) WHERE tenant = ?2 AND id = ?3";

/// `id`.
pub(super) const CONTEXT_ACCESS: &str =
    "SELECT tokens_revoked_at_ms, context_purged_at_ms FROM handoffs WHERE id = ?1";

/// `ended_before_ms`, `limit`: the tenant and id of ended, unpurged
/// handoffs, oldest first.
pub(super) const TO_PURGE: &str = concat!(
    "SELECT tenant, id FROM handoffs WHERE context_purged_at_ms IS NULL AND state IN ",
    ended!(),
    " AND updated_at_ms < ?1 ORDER BY updated_at_ms LIMIT ?2"
);

/// `now_ms`, an empty blob, `id`.
pub(super) const PURGE_HANDOFF: &str = "UPDATE handoffs SET conversation = ?2, context = ?2, \
     decision = NULL, wrap_up = NULL, callback = NULL, context_purged_at_ms = ?1 WHERE id = ?3";

/// `id`.
pub(super) const PURGE_EVENTS: &str =
    "UPDATE handoff_events SET wrap_up = NULL WHERE handoff_id = ?1";

/// `statement` (of this module) with PostgreSQL's placeholders: every
/// placeholder here is `?N`, and no statement holds a `?` otherwise.
pub(super) fn numbered_for_postgres(statement: &str) -> String {
    statement.replace('?', "$")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_are_numbered_alike_in_both_dialects() {
        assert_eq!(
            numbered_for_postgres(CONTEXT_ACCESS),
            "SELECT tokens_revoked_at_ms, context_purged_at_ms FROM handoffs WHERE id = $1"
        );
        for statement in [
            HANDOFF,
            INSERT_HANDOFF,
            UPDATE_STATE,
            INSERT_EVENT,
            COUNT_VIEW,
        ] {
            let postgres = numbered_for_postgres(statement);
            assert!(!postgres.contains('?'), "{postgres}");
            assert_eq!(
                postgres.matches('$').count(),
                statement.matches('?').count()
            );
        }
    }
}
