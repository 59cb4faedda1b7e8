//! Every way a call to the control service is refused, and the one place
//! where each becomes what the caller receives: a `tonic::Status` with
//! `google.rpc` details on the gRPC API, a status line and a short text on
//! the HTTP context pages.
//!
//! A reason string is part of the public API (clients branch on it, the
//! per-call error table in `proto/README.md` lists it): each is spelled once,
//! in [`Reason::as_str`].

use std::time::Duration;

use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use baton_service_kit::status::{
    FieldViolation, invalid_argument, retry_after, with_reason, with_reason_and_metadata,
};
use tonic::{Code, Status};

use crate::convert::TooLarge;
use crate::domain::HandoffState;
use crate::store::StoreError;

/// When a caller refused for want of capacity, or by a store that could not
/// be reached, may try again.
const RETRY_SOON: Duration = Duration::from_secs(1);

/// The `ErrorInfo` reason of a refusal (domain `baton.dev`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Reason {
    CredentialMissing,
    CredentialInvalid,
    TooManyFailedAuthentications,
    RateLimited,
    InvalidArgument,
    HandoffNotFound,
    EntityNotFound,
    IllegalTransition,
    DuplicateEvent,
    HandoffEnded,
    RequestIdReused,
    ResponseTooLarge,
    DispatchQueueFull,
    WatchStreamsFull,
    LeaseLost,
    ShuttingDown,
    StoreUnavailable,
    StoreCorrupt,
    /// UpdateHandoff against a context version that is no longer current.
    ContextVersionConflict,
    /// UpdateHandoff once a human has the customer.
    HandoffConnected,
    /// CreateHandoff when business hours close every target of the plan.
    Closed,
    /// RecordOutcome of a handoff no human had, or that has not ended.
    NotJudgeable,
    /// RecordOutcome with judgements other than those recorded.
    OutcomeRecorded,
    /// CancelHandoff of a callback whose customer is being dialed.
    CallbackDialing,
}

impl Reason {
    /// The reason as clients see it.
    pub const fn as_str(self) -> &'static str {
        match self {
            Reason::CredentialMissing => "CREDENTIAL_MISSING",
            Reason::CredentialInvalid => "CREDENTIAL_INVALID",
            Reason::TooManyFailedAuthentications => "TOO_MANY_FAILED_AUTHENTICATIONS",
            Reason::RateLimited => "RATE_LIMITED",
            Reason::InvalidArgument => "INVALID_ARGUMENT",
            Reason::HandoffNotFound => "HANDOFF_NOT_FOUND",
            Reason::EntityNotFound => "ENTITY_NOT_FOUND",
            Reason::IllegalTransition => "ILLEGAL_TRANSITION",
            Reason::DuplicateEvent => "DUPLICATE_EVENT",
            Reason::HandoffEnded => "HANDOFF_ENDED",
            Reason::RequestIdReused => "REQUEST_ID_REUSED",
            Reason::ResponseTooLarge => "RESPONSE_TOO_LARGE",
            Reason::DispatchQueueFull => "DISPATCH_QUEUE_FULL",
            Reason::WatchStreamsFull => "WATCH_STREAMS_FULL",
            Reason::LeaseLost => "LEASE_LOST",
            Reason::ShuttingDown => "SHUTTING_DOWN",
            Reason::StoreUnavailable => "STORE_UNAVAILABLE",
            Reason::StoreCorrupt => "STORE_CORRUPT",
            Reason::ContextVersionConflict => "CONTEXT_VERSION_CONFLICT",
            Reason::HandoffConnected => "HANDOFF_CONNECTED",
            Reason::Closed => "CLOSED",
            Reason::NotJudgeable => "NOT_JUDGEABLE",
            Reason::OutcomeRecorded => "OUTCOME_RECORDED",
            Reason::CallbackDialing => "CALLBACK_DIALING",
        }
    }
}

impl std::fmt::Display for Reason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why the control service refused a call. The `Display` text is the
/// message the caller reads; details meant for operators only (a store's
/// own error) go to the log when the error is mapped, never to the caller.
#[derive(Debug, thiserror::Error)]
pub enum ControlError {
    /// The call did not pass through the auth layer, which puts the
    /// principal into every request it lets through.
    #[error("the call carries no authenticated principal")]
    CredentialMissing,
    /// Every bad field of the request, so the caller fixes them at once.
    #[error("{}", field_list(.0))]
    InvalidArgument(Vec<FieldViolation>),
    #[error("{}", store_message(.0))]
    Store(#[from] StoreError),
    /// CreateHandoff again with a `request_id` already used for a
    /// different request.
    #[error("request_id was already used for a different request")]
    RequestIdReused,
    /// CancelHandoff of a handoff that completed or failed.
    #[error("the handoff has already ended ({0:?})")]
    HandoffEnded(HandoffState),
    #[error("the handoff has no entity of that name (or its context was purged)")]
    EntityNotFound,
    /// UpdateHandoff of a handoff a human has (connected) or that ended:
    /// the context the human was given stands.
    #[error("the context can no longer be updated: the handoff is {}", .0.as_str())]
    ContextClosed(HandoffState),
    /// CreateHandoff when business hours close every target of the plan;
    /// `retry_in`: until the next opening, if one comes within a year.
    #[error("every target is closed now by its business hours{}", closed_until(.retry_in))]
    Closed { retry_in: Option<Duration> },
    /// RecordOutcome of a handoff that did not end after a human had the
    /// customer.
    #[error(
        "only a handoff that reached a human and ended can be judged; this one is {}",
        .0.as_str()
    )]
    NotJudgeable(HandoffState),
    /// CancelHandoff once the customer of a callback is being dialed: the
    /// human is already calling them.
    #[error("the callback can no longer be cancelled: the customer is being dialed")]
    CallbackDialing,
    /// RecordOutcome when other judgements are recorded already.
    #[error("the handoff's outcome is recorded already ({0}), with other answers")]
    OutcomeRecorded(&'static str),
    /// One handoff alone is larger than a response may be.
    #[error("{0}")]
    ResponseTooLarge(TooLarge),
    #[error("this replica dispatches as many handoffs as it may; retry")]
    DispatchQueueFull,
    #[error("this replica serves as many watch streams as it may; retry")]
    WatchStreamsFull,
    /// Ends open watch streams so that the server can drain.
    #[error("the server is shutting down; watch again with after_sequence")]
    ShuttingDown,
    /// A refusal a shared layer already made as a status (baton-auth's
    /// per-tenant stream limit, `TOO_MANY_STREAMS`): passed on unchanged.
    #[error("{}", .0.message())]
    Limited(Status),
    /// A context token that does not open this handoff, whatever the cause
    /// (none, altered, expired, another handoff's, revoked, the handoff
    /// cancelled, ended long ago, purged or gone): the holder learns
    /// nothing about which.
    #[error("a valid context token for this handoff is required")]
    ContextTokenRefused,
    /// The source address presented too many refused context tokens.
    #[error("too many refused context tokens from this address")]
    TooManyRefusedTokens { retry_after: Duration },
    /// A valid token, but the handoff's context was read too often.
    #[error("this handoff's context was read too often")]
    ContextReadTooOften { retry_after: Duration },
}

impl From<TooLarge> for ControlError {
    fn from(too_large: TooLarge) -> Self {
        ControlError::ResponseTooLarge(too_large)
    }
}

fn field_list(violations: &[FieldViolation]) -> String {
    violations
        .iter()
        .map(|v| format!("{}: {}", v.field, v.description))
        .collect::<Vec<_>>()
        .join("; ")
}

fn closed_until(retry_in: &Option<Duration>) -> String {
    match retry_in {
        Some(wait) => format!("; the first opens in {} s", wait.as_secs()),
        None => "; none opens within a year".into(),
    }
}

/// What the caller reads of a store error: the store's own detail is for
/// the log.
fn store_message(error: &StoreError) -> String {
    match error {
        StoreError::NotFound => "handoff not found".into(),
        StoreError::IllegalTransition(transition) => transition.to_string(),
        StoreError::Duplicate => "event already recorded".into(),
        StoreError::Unavailable(_) => "the handoff store is unavailable; retry".into(),
        StoreError::LeaseLost => "another replica dispatches this handoff; retry".into(),
        StoreError::ContextVersionConflict { current } => format!(
            "the context is at version {current}: read the handoff again and resend the update \
             against that version"
        ),
        StoreError::Corrupt(_) | StoreError::Refused(_) => "stored data could not be read".into(),
    }
}

impl ControlError {
    /// One violation, for requests that fail on a single field.
    pub fn invalid_field(field: impl Into<String>, description: impl Into<String>) -> Self {
        ControlError::InvalidArgument(vec![FieldViolation::new(field, description)])
    }

    /// The gRPC code, the `ErrorInfo` reason and, for a refusal that passes
    /// with time, when to retry; or the status, when another layer made it.
    fn grpc_parts(&self) -> Result<(Code, Reason, Option<Duration>), &Status> {
        let parts = match self {
            ControlError::CredentialMissing => {
                (Code::Unauthenticated, Reason::CredentialMissing, None)
            }
            ControlError::InvalidArgument(_) => {
                (Code::InvalidArgument, Reason::InvalidArgument, None)
            }
            ControlError::Store(error) => match error {
                StoreError::NotFound => (Code::NotFound, Reason::HandoffNotFound, None),
                StoreError::IllegalTransition(_) => {
                    (Code::FailedPrecondition, Reason::IllegalTransition, None)
                }
                StoreError::Duplicate => (Code::AlreadyExists, Reason::DuplicateEvent, None),
                StoreError::Unavailable(_) => (
                    Code::Unavailable,
                    Reason::StoreUnavailable,
                    Some(RETRY_SOON),
                ),
                StoreError::LeaseLost => (Code::Aborted, Reason::LeaseLost, None),
                StoreError::ContextVersionConflict { .. } => {
                    (Code::Aborted, Reason::ContextVersionConflict, None)
                }
                StoreError::Corrupt(_) | StoreError::Refused(_) => {
                    (Code::Internal, Reason::StoreCorrupt, None)
                }
            },
            ControlError::RequestIdReused => (Code::AlreadyExists, Reason::RequestIdReused, None),
            ControlError::HandoffEnded(_) => (Code::FailedPrecondition, Reason::HandoffEnded, None),
            ControlError::EntityNotFound => (Code::NotFound, Reason::EntityNotFound, None),
            ControlError::ContextClosed(HandoffState::Connected) => {
                (Code::FailedPrecondition, Reason::HandoffConnected, None)
            }
            ControlError::ContextClosed(_) => {
                (Code::FailedPrecondition, Reason::HandoffEnded, None)
            }
            ControlError::Closed { retry_in } => {
                (Code::FailedPrecondition, Reason::Closed, *retry_in)
            }
            ControlError::NotJudgeable(_) => (Code::FailedPrecondition, Reason::NotJudgeable, None),
            ControlError::CallbackDialing => {
                (Code::FailedPrecondition, Reason::CallbackDialing, None)
            }
            ControlError::OutcomeRecorded(_) => {
                (Code::AlreadyExists, Reason::OutcomeRecorded, None)
            }
            ControlError::ResponseTooLarge(_) => {
                (Code::ResourceExhausted, Reason::ResponseTooLarge, None)
            }
            ControlError::DispatchQueueFull => (
                Code::ResourceExhausted,
                Reason::DispatchQueueFull,
                Some(RETRY_SOON),
            ),
            ControlError::WatchStreamsFull => (
                Code::ResourceExhausted,
                Reason::WatchStreamsFull,
                Some(RETRY_SOON),
            ),
            ControlError::ShuttingDown => (Code::Unavailable, Reason::ShuttingDown, None),
            ControlError::Limited(status) => return Err(status),
            // Refusals of the HTTP context pages, spelled as the auth layer
            // spells the same refusals on the gRPC listener.
            ControlError::ContextTokenRefused => {
                (Code::Unauthenticated, Reason::CredentialInvalid, None)
            }
            ControlError::TooManyRefusedTokens { retry_after } => (
                Code::ResourceExhausted,
                Reason::TooManyFailedAuthentications,
                Some(*retry_after),
            ),
            ControlError::ContextReadTooOften { retry_after } => (
                Code::ResourceExhausted,
                Reason::RateLimited,
                Some(*retry_after),
            ),
        };
        Ok(parts)
    }

    /// What operators need to know that the caller is not told.
    fn log(&self) {
        match self {
            ControlError::Store(StoreError::Unavailable(detail)) => {
                tracing::error!(%detail, "store unavailable");
            }
            ControlError::Store(StoreError::Corrupt(detail) | StoreError::Refused(detail)) => {
                tracing::error!(%detail, "stored data is corrupt");
            }
            _ => {}
        }
    }

    /// The status the gRPC caller receives: the code, this error's message,
    /// an `ErrorInfo` with its reason, `BadRequest` naming every bad field
    /// and `RetryInfo` when waiting helps.
    pub fn to_status(&self) -> Status {
        self.log();
        match (self, self.grpc_parts()) {
            (_, Err(status)) => status.clone(),
            (ControlError::InvalidArgument(violations), _) => invalid_argument(violations),
            // The caller needs the current version to resend against.
            (
                ControlError::Store(StoreError::ContextVersionConflict { current }),
                Ok((code, reason, _)),
            ) => with_reason_and_metadata(
                code,
                reason.as_str(),
                self.to_string(),
                [("current_context_version".to_owned(), current.to_string())],
            ),
            (_, Ok((code, reason, Some(after)))) => {
                retry_after(code, reason.as_str(), self.to_string(), after)
            }
            (_, Ok((code, reason, None))) => with_reason(code, reason.as_str(), self.to_string()),
        }
    }
}

impl From<ControlError> for Status {
    fn from(error: ControlError) -> Self {
        error.to_status()
    }
}

/// The HTTP context pages answer in plain text: `401` for any refused
/// token, `429` with `Retry-After` (whole seconds, rounded up) when a limit
/// is reached, `503` when the store fails (its detail to the log only).
impl IntoResponse for ControlError {
    fn into_response(self) -> Response {
        let status = match &self {
            ControlError::ContextTokenRefused => StatusCode::UNAUTHORIZED,
            ControlError::TooManyRefusedTokens { retry_after }
            | ControlError::ContextReadTooOften { retry_after } => {
                let seconds = retry_after.as_millis().div_ceil(1000).max(1);
                return (
                    StatusCode::TOO_MANY_REQUESTS,
                    [(header::RETRY_AFTER, seconds.to_string())],
                    self.to_string(),
                )
                    .into_response();
            }
            ControlError::Store(error) => {
                tracing::error!(%error, "context lookup failed");
                return (StatusCode::SERVICE_UNAVAILABLE, "try again").into_response();
            }
            // No page answers with these today; should one, it gets the
            // HTTP status google.rpc.Code documents for the gRPC code.
            other => match other.to_status().code() {
                Code::InvalidArgument | Code::OutOfRange => StatusCode::BAD_REQUEST,
                Code::Unauthenticated => StatusCode::UNAUTHORIZED,
                Code::PermissionDenied => StatusCode::FORBIDDEN,
                Code::NotFound => StatusCode::NOT_FOUND,
                Code::AlreadyExists | Code::Aborted => StatusCode::CONFLICT,
                Code::FailedPrecondition => StatusCode::BAD_REQUEST,
                Code::ResourceExhausted => StatusCode::TOO_MANY_REQUESTS,
                Code::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
                _ => StatusCode::INTERNAL_SERVER_ERROR,
            },
        };
        (status, self.to_string()).into_response()
    }
}

#[cfg(test)]
mod tests;
