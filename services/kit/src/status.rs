//! Building `tonic::Status` values with rich error details: an `ErrorInfo`
//! whose reason is UPPER_SNAKE in the `baton.dev` domain, plus `BadRequest`
//! field violations or `RetryInfo` where they help the caller.

use std::collections::HashMap;
use std::time::Duration;

use tonic::{Code, Status};
use tonic_types::{ErrorDetails, StatusExt};

/// The `ErrorInfo` domain of every Baton error.
pub const ERROR_DOMAIN: &str = "baton.dev";

/// One invalid field of a request. Defined beside request validation, which
/// has no gRPC dependency; every service names it from here.
pub use baton_request_validation::FieldViolation;

/// `INVALID_ARGUMENT` naming every bad field, with `BadRequest` details.
pub fn invalid_argument(violations: &[FieldViolation]) -> Status {
    let message = violations
        .iter()
        .map(|v| format!("{}: {}", v.field, v.description))
        .collect::<Vec<_>>()
        .join("; ");
    let mut details = ErrorDetails::new();
    for violation in violations {
        details.add_bad_request_violation(&violation.field, &violation.description);
    }
    details.set_error_info("INVALID_ARGUMENT", ERROR_DOMAIN, []);
    Status::with_error_details(Code::InvalidArgument, message, details)
}

/// A status with an `ErrorInfo` reason.
pub fn with_reason(code: Code, reason: &str, message: impl Into<String>) -> Status {
    let mut details = ErrorDetails::new();
    details.set_error_info(reason, ERROR_DOMAIN, []);
    Status::with_error_details(code, message, details)
}

/// A status with an `ErrorInfo` reason and metadata (e.g. the current
/// version a conflicting write should be made against).
pub fn with_reason_and_metadata(
    code: Code,
    reason: &str,
    message: impl Into<String>,
    metadata: impl IntoIterator<Item = (String, String)>,
) -> Status {
    let mut details = ErrorDetails::new();
    details.set_error_info(
        reason,
        ERROR_DOMAIN,
        metadata.into_iter().collect::<HashMap<_, _>>(),
    );
    Status::with_error_details(code, message, details)
}

/// A status telling the caller when to retry (`RetryInfo`).
pub fn retry_after(
    code: Code,
    reason: &str,
    message: impl Into<String>,
    after: Duration,
) -> Status {
    let mut details = ErrorDetails::new();
    details.set_error_info(reason, ERROR_DOMAIN, []);
    details.set_retry_info(Some(after));
    Status::with_error_details(code, message, details)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn invalid_argument_carries_each_field() {
        let status = invalid_argument(&[
            FieldViolation::new("target.phone_number", "must be E.164"),
            FieldViolation::new("context.summary", "is required"),
        ]);
        assert_eq!(status.code(), Code::InvalidArgument);
        let details = status.get_error_details();
        let fields: Vec<_> = details
            .bad_request()
            .expect("bad request details")
            .field_violations
            .iter()
            .map(|v| v.field.clone())
            .collect();
        assert_eq!(fields, ["target.phone_number", "context.summary"]);
        assert_eq!(
            details.error_info().expect("error info").domain,
            ERROR_DOMAIN
        );
    }
}
