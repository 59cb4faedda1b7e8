//! The mapping of each refusal, as gRPC and HTTP callers see it.

use tonic_types::StatusExt;

use super::*;
use crate::domain::{EventKind, IllegalTransition};

/// What a client reads of a status: code, `ErrorInfo` reason and
/// domain, the fields `BadRequest` names, whether `RetryInfo` is set.
fn seen(error: ControlError) -> (Code, String, Vec<String>, Option<Duration>, String) {
    let status = error.to_status();
    let details = status.get_error_details();
    let info = details.error_info().expect("every status has an ErrorInfo");
    assert_eq!(info.domain, "baton.dev");
    let fields = details
        .bad_request()
        .map(|b| b.field_violations.iter().map(|v| v.field.clone()).collect())
        .unwrap_or_default();
    let retry = details.retry_info().and_then(|r| r.retry_delay);
    (
        status.code(),
        info.reason.clone(),
        fields,
        retry,
        status.message().to_owned(),
    )
}

#[test]
fn each_refusal_has_its_code_reason_and_message() {
    let none = Vec::<String>::new;
    let cases = [
        (
            ControlError::CredentialMissing,
            Code::Unauthenticated,
            "CREDENTIAL_MISSING",
            "the call carries no authenticated principal",
        ),
        (
            StoreError::NotFound.into(),
            Code::NotFound,
            "HANDOFF_NOT_FOUND",
            "handoff not found",
        ),
        (
            StoreError::Duplicate.into(),
            Code::AlreadyExists,
            "DUPLICATE_EVENT",
            "event already recorded",
        ),
        (
            StoreError::LeaseLost.into(),
            Code::Aborted,
            "LEASE_LOST",
            "another replica dispatches this handoff; retry",
        ),
        (
            StoreError::Corrupt("row 7: bad json".into()).into(),
            Code::Internal,
            "STORE_CORRUPT",
            "stored data could not be read",
        ),
        (
            StoreError::Refused("empty file".into()).into(),
            Code::Internal,
            "STORE_CORRUPT",
            "stored data could not be read",
        ),
        (
            ControlError::RequestIdReused,
            Code::AlreadyExists,
            "REQUEST_ID_REUSED",
            "request_id was already used for a different request",
        ),
        (
            ControlError::HandoffEnded(HandoffState::Completed),
            Code::FailedPrecondition,
            "HANDOFF_ENDED",
            "the handoff has already ended (Completed)",
        ),
        (
            ControlError::EntityNotFound,
            Code::NotFound,
            "ENTITY_NOT_FOUND",
            "the handoff has no entity of that name (or its context was purged)",
        ),
        (
            ControlError::ShuttingDown,
            Code::Unavailable,
            "SHUTTING_DOWN",
            "the server is shutting down; watch again with after_sequence",
        ),
        (
            ControlError::ContextTokenRefused,
            Code::Unauthenticated,
            "CREDENTIAL_INVALID",
            "a valid context token for this handoff is required",
        ),
    ];
    for (error, code, reason, message) in cases {
        let label = format!("{error:?}");
        assert_eq!(
            seen(error),
            (code, reason.to_owned(), none(), None, message.to_owned()),
            "{label}"
        );
    }
}

#[test]
fn a_store_detail_reaches_the_log_not_the_caller() {
    let (code, reason, _, retry, message) =
        seen(StoreError::Unavailable("connection refused to 10.0.0.7".into()).into());
    assert_eq!(code, Code::Unavailable);
    assert_eq!(reason, "STORE_UNAVAILABLE");
    assert_eq!(retry, Some(Duration::from_secs(1)));
    assert_eq!(message, "the handoff store is unavailable; retry");
}

#[test]
fn an_illegal_transition_says_which() {
    let transition = IllegalTransition {
        from: HandoffState::Completed,
        event: EventKind::Ringing,
    };
    let (code, reason, _, _, message) = seen(StoreError::from(transition).into());
    assert_eq!(code, Code::FailedPrecondition);
    assert_eq!(reason, "ILLEGAL_TRANSITION");
    assert_eq!(message, transition.to_string());
}

#[test]
fn full_replicas_and_exhausted_limits_say_when_to_retry() {
    let cases = [
        (ControlError::DispatchQueueFull, "DISPATCH_QUEUE_FULL", 1000),
        (ControlError::WatchStreamsFull, "WATCH_STREAMS_FULL", 1000),
        (
            ControlError::TooManyRefusedTokens {
                retry_after: Duration::from_millis(2500),
            },
            "TOO_MANY_FAILED_AUTHENTICATIONS",
            2500,
        ),
        (
            ControlError::ContextReadTooOften {
                retry_after: Duration::from_millis(300),
            },
            "RATE_LIMITED",
            300,
        ),
    ];
    for (error, reason, millis) in cases {
        let (code, seen_reason, _, retry, _) = seen(error);
        assert_eq!(code, Code::ResourceExhausted, "{reason}");
        assert_eq!(seen_reason, reason);
        assert_eq!(retry, Some(Duration::from_millis(millis)), "{reason}");
    }
}

#[test]
fn invalid_arguments_name_every_field() {
    let error = ControlError::InvalidArgument(vec![
        FieldViolation::new("page_size", "must be at most 500"),
        FieldViolation::new("states[1]", "is not a handoff state"),
    ]);
    let display = error.to_string();
    let (code, reason, fields, retry, message) = seen(error);
    assert_eq!(code, Code::InvalidArgument);
    assert_eq!(reason, "INVALID_ARGUMENT");
    assert_eq!(fields, ["page_size", "states[1]"]);
    assert_eq!(retry, None);
    assert_eq!(
        message,
        "page_size: must be at most 500; states[1]: is not a handoff state"
    );
    assert_eq!(display, message);
    let (_, _, fields, _, _) = seen(ControlError::invalid_field("handoff_id", "must be a UUID"));
    assert_eq!(fields, ["handoff_id"]);
}

#[test]
fn a_response_too_large_names_the_handoff_and_the_key() {
    let error = ControlError::from(TooLarge {
        handoff_id: "0190-abc".into(),
        bytes: 300_000,
        limit: 278_528,
    });
    let (code, reason, _, _, message) = seen(error);
    assert_eq!(code, Code::ResourceExhausted);
    assert_eq!(reason, "RESPONSE_TOO_LARGE");
    assert!(message.contains("0190-abc"), "{message}");
    assert!(message.contains("limits.max_response_bytes"), "{message}");
}

#[test]
fn a_status_from_a_shared_layer_passes_unchanged() {
    let limited = with_reason(Code::ResourceExhausted, "TOO_MANY_STREAMS", "close one");
    let status = ControlError::Limited(limited.clone()).to_status();
    assert_eq!(status.code(), limited.code());
    assert_eq!(status.message(), "close one");
    assert_eq!(status.details(), limited.details());
}

#[test]
fn reasons_are_spelled_as_clients_know_them() {
    // The public names: clients and proto/README.md depend on each.
    let reasons = [
        (Reason::CredentialMissing, "CREDENTIAL_MISSING"),
        (Reason::CredentialInvalid, "CREDENTIAL_INVALID"),
        (
            Reason::TooManyFailedAuthentications,
            "TOO_MANY_FAILED_AUTHENTICATIONS",
        ),
        (Reason::RateLimited, "RATE_LIMITED"),
        (Reason::InvalidArgument, "INVALID_ARGUMENT"),
        (Reason::HandoffNotFound, "HANDOFF_NOT_FOUND"),
        (Reason::EntityNotFound, "ENTITY_NOT_FOUND"),
        (Reason::IllegalTransition, "ILLEGAL_TRANSITION"),
        (Reason::DuplicateEvent, "DUPLICATE_EVENT"),
        (Reason::HandoffEnded, "HANDOFF_ENDED"),
        (Reason::RequestIdReused, "REQUEST_ID_REUSED"),
        (Reason::ResponseTooLarge, "RESPONSE_TOO_LARGE"),
        (Reason::DispatchQueueFull, "DISPATCH_QUEUE_FULL"),
        (Reason::WatchStreamsFull, "WATCH_STREAMS_FULL"),
        (Reason::LeaseLost, "LEASE_LOST"),
        (Reason::ShuttingDown, "SHUTTING_DOWN"),
        (Reason::StoreUnavailable, "STORE_UNAVAILABLE"),
        (Reason::StoreCorrupt, "STORE_CORRUPT"),
    ];
    for (reason, name) in reasons {
        assert_eq!(reason.as_str(), name);
        assert_eq!(reason.to_string(), name);
    }
}

async fn http(error: ControlError) -> (StatusCode, Option<String>, String) {
    let response = error.into_response();
    let status = response.status();
    let retry_after = response
        .headers()
        .get(header::RETRY_AFTER)
        .map(|v| v.to_str().expect("ascii").to_owned());
    let body = axum::body::to_bytes(response.into_body(), 4096)
        .await
        .expect("body");
    (
        status,
        retry_after,
        String::from_utf8(body.to_vec()).expect("utf-8"),
    )
}

#[tokio::test]
async fn context_pages_answer_each_refusal_in_plain_http() {
    let cases = [
        (
            ControlError::ContextTokenRefused,
            StatusCode::UNAUTHORIZED,
            None,
            "a valid context token for this handoff is required",
        ),
        (
            ControlError::TooManyRefusedTokens {
                retry_after: Duration::from_millis(1200),
            },
            StatusCode::TOO_MANY_REQUESTS,
            Some("2"),
            "too many refused context tokens from this address",
        ),
        (
            ControlError::ContextReadTooOften {
                retry_after: Duration::from_millis(10),
            },
            StatusCode::TOO_MANY_REQUESTS,
            Some("1"),
            "this handoff's context was read too often",
        ),
    ];
    for (error, status, retry_after, body) in cases {
        assert_eq!(
            http(error).await,
            (status, retry_after.map(str::to_owned), body.to_owned())
        );
    }
    // Whatever failed in the store, the token holder learns no more.
    for error in [
        StoreError::Unavailable("pool timed out".into()),
        StoreError::Corrupt("row 3".into()),
        StoreError::NotFound,
    ] {
        assert_eq!(
            http(error.into()).await,
            (
                StatusCode::SERVICE_UNAVAILABLE,
                None,
                "try again".to_owned()
            )
        );
    }
}

#[tokio::test]
async fn other_refusals_over_http_follow_their_grpc_code() {
    let cases = [
        (ControlError::CredentialMissing, StatusCode::UNAUTHORIZED),
        (
            ControlError::invalid_field("id", "bad"),
            StatusCode::BAD_REQUEST,
        ),
        (ControlError::EntityNotFound, StatusCode::NOT_FOUND),
        (ControlError::RequestIdReused, StatusCode::CONFLICT),
        (
            ControlError::DispatchQueueFull,
            StatusCode::TOO_MANY_REQUESTS,
        ),
        (ControlError::ShuttingDown, StatusCode::SERVICE_UNAVAILABLE),
    ];
    for (error, expected) in cases {
        let message = error.to_string();
        assert_eq!(http(error).await, (expected, None, message));
    }
}
