//! The handoff as the control service keeps it: plain Rust types. The
//! conversation and context are kept encoded (`context`) because the
//! service only stores and forwards them; everything it decides on is
//! typed here.

use std::time::Duration;

use super::context::{EncodedContext, EncodedConversation};
use super::decision::EscalationDecision;
use super::state::{EventKind, HandoffState};
use super::target::{PlannedTarget, RequestedTarget, TransferMode};

/// Every row belongs to a tenant; a single `default` tenant until
/// authentication maps callers to tenants.
pub const DEFAULT_TENANT: &str = "default";

/// Why a target or a handoff failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailureReason {
    /// None given: a connector that fails a transfer without a reason
    /// breaks the contract, and dispatch reads it as a connector error.
    Unspecified,
    Busy,
    NoAnswer,
    Rejected,
    Unreachable,
    NoAgents,
    WaitTooLong,
    DeadlineExceeded,
    ConnectorError,
    Unsupported,
    AllTargetsFailed,
    Cancelled,
    /// The connector went away and did not come back within the re-attach
    /// window.
    ConnectorLost,
    /// The connector restarted and could not resume the transfer.
    Interrupted,
}

/// Why a target or a handoff failed, with a note for people.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    pub reason: FailureReason,
    pub detail: String,
}

impl Failure {
    pub fn new(reason: FailureReason, detail: impl Into<String>) -> Self {
        Self {
            reason,
            detail: detail.into(),
        }
    }
}

/// What the human recorded when the conversation ended.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WrapUp {
    /// The outcome the human chose, e.g. "resolved".
    pub disposition: String,
    /// The human's notes; sensitive.
    pub notes: String,
    /// On a hand-back, what the AI should do next; sensitive.
    pub instruction: String,
    /// The human's judgements of the handoff itself.
    pub outcome: Outcome,
}

/// Whether the handoff worked, as the human judged it: each `None` until
/// answered.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Outcome {
    /// The context was enough to help without asking the customer again.
    pub context_sufficient: Option<bool>,
    /// The customer had to repeat something they had told the AI.
    pub customer_repeated: Option<bool>,
    /// The customer needed a human (the escalation was right).
    pub escalation_needed: Option<bool>,
}

/// Where a queued handoff stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QueueStatus {
    pub position: u32,
    pub estimated_wait: Duration,
}

/// The target being tried: 1-based attempt number, connector and target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attempt {
    pub number: u32,
    pub planned: PlannedTarget,
}

/// A handoff as stored. The default is one with nothing in it yet: pending,
/// no target, no plan; what builds a handoff names every field it means.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Handoff {
    pub id: String,
    pub tenant: String,
    pub request_id: String,
    /// SHA-256 of the create request, to tell a retry from a reused key.
    pub request_fingerprint: String,
    pub state: HandoffState,
    pub conversation: EncodedConversation,
    pub context: EncodedContext,
    pub requested_target: RequestedTarget,
    pub mode: TransferMode,
    /// The ordered targets to try; the first is attempt 1.
    pub plan: Vec<PlannedTarget>,
    pub customer_message: String,
    pub customer_message_language: String,
    pub created_at_ms: i64,
    pub updated_at_ms: i64,
    pub deadline_ms: i64,
    pub current_attempt: Option<Attempt>,
    pub queue_status: Option<QueueStatus>,
    pub failure: Option<Failure>,
    pub last_sequence: u64,
    /// The escalation decision given at creation, if any.
    pub decision: Option<EscalationDecision>,
    /// The human's wrap-up, once recorded.
    pub wrap_up: Option<WrapUp>,
    /// The version of `context`: 1 as created, one more per accepted
    /// context update (UpdateHandoff).
    pub context_version: u64,
    /// The judgements recorded with `RecordOutcome`; see
    /// [`Handoff::outcome`] for the handoff's outcome from any source.
    pub recorded_outcome: Option<super::outcome::RecordedOutcome>,
    /// The callback asked for at creation, if any.
    pub callback: Option<super::callback::Callback>,
}

impl Handoff {
    /// The planned target of a 1-based attempt number.
    pub fn planned(&self, attempt: u32) -> Option<&PlannedTarget> {
        let index = usize::try_from(attempt).ok()?.checked_sub(1)?;
        self.plan.get(index)
    }
}

/// An event to append to a handoff's log.
#[derive(Debug, Clone, PartialEq)]
pub struct NewEvent {
    pub kind: EventKind,
    pub attempt: Option<Attempt>,
    pub queue_status: Option<QueueStatus>,
    pub failure: Option<Failure>,
    pub detail: String,
    /// The human's wrap-up, on COMPLETED.
    pub wrap_up: Option<WrapUp>,
    /// Where in the connector's own event stream this event comes from, so
    /// that a replayed connector stream is not recorded twice.
    pub connector_position: Option<ConnectorPosition>,
}

/// A transfer event's place in a connector's stream: the run of the
/// transfer (new when the connector restarted it) and the sequence in it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectorPosition {
    pub run_id: String,
    pub sequence: u64,
}

impl NewEvent {
    pub fn new(kind: EventKind) -> Self {
        Self {
            kind,
            attempt: None,
            queue_status: None,
            failure: None,
            detail: String::new(),
            wrap_up: None,
            connector_position: None,
        }
    }

    pub fn attempt(mut self, attempt: Attempt) -> Self {
        self.attempt = Some(attempt);
        self
    }

    pub fn failure(mut self, failure: Failure) -> Self {
        self.failure = Some(failure);
        self
    }

    pub fn detail(mut self, detail: impl Into<String>) -> Self {
        self.detail = detail.into();
        self
    }

    /// How durable the event must be before the store acknowledges it.
    pub fn durability(&self) -> Durability {
        match self.kind {
            // TARGET_STARTED only says that an attempt began, and is
            // recorded before the connector hears of it. Rolled back, the
            // attempt is found unstarted and started again with the same
            // (handoff, attempt) idempotency key, which the connector
            // answers with the transfer it already runs: nothing is
            // transferred twice, and the next create need not wait behind
            // this event's fsync.
            EventKind::TargetStarted => Durability::Written,
            // TARGET_FAILED is followed at once by a synced write, which
            // makes it durable with itself: the next attempt's disclosure
            // audit (before any context leaves) or the handoff's FAILED.
            // Rolled back before then, the attempt is found started and
            // resumed under its idempotency key; its connector reports the
            // failure again, from its journal.
            EventKind::TargetFailed => Durability::Written,
            _ => Durability::Synced,
        }
    }
}

/// How durable a write must be before the store acknowledges it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Durability {
    /// On disk: it survives a power failure.
    Synced,
    /// Handed to the operating system: it survives the crash of any
    /// process, and the next synced write makes it durable too (writes
    /// reach the disk in order), but a power failure or a kernel crash
    /// before then may roll it back. Only for what is redone on its own
    /// after such a rollback.
    Written,
}

/// An event as recorded, with its place in the handoff's log.
#[derive(Debug, Clone, PartialEq)]
pub struct EventRecord {
    pub handoff_id: String,
    pub sequence: u64,
    pub kind: EventKind,
    /// The handoff's state after the event.
    pub state: HandoffState,
    pub time_ms: i64,
    pub attempt: Option<Attempt>,
    pub queue_status: Option<QueueStatus>,
    pub failure: Option<Failure>,
    pub detail: String,
    pub wrap_up: Option<WrapUp>,
    /// On CONTEXT_UPDATED, the context's version after the update.
    pub context_version: Option<u64>,
}

impl EventRecord {
    /// An event with nothing but its place in the log, its kind, the state
    /// it leaves the handoff in and its time.
    pub fn new(
        handoff_id: impl Into<String>,
        sequence: u64,
        kind: EventKind,
        state: HandoffState,
        time_ms: i64,
    ) -> Self {
        Self {
            handoff_id: handoff_id.into(),
            sequence,
            kind,
            state,
            time_ms,
            attempt: None,
            queue_status: None,
            failure: None,
            detail: String::new(),
            wrap_up: None,
            context_version: None,
        }
    }
}
