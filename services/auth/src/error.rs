//! Why a call was refused, and the one place that maps it to a gRPC status
//! (with the `grpc` feature).

#[cfg(feature = "grpc")]
use tonic::{Code, Status};

/// Why a call was refused. What the caller is told is deliberately coarse
/// (`Invalid` does not say whether the key id or the secret was wrong); the
/// precise reason goes to the service's log, never with the credential.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    #[error(
        "a credential is required: send `authorization: Bearer <API key or JWT>` or `x-api-key: <API key>`"
    )]
    Missing,
    /// The credential is malformed, unknown, wrongly signed, or for another
    /// issuer or audience. The reason is for logs only.
    #[error("the credential is not valid")]
    Invalid(&'static str),
    #[error("the credential has expired")]
    Expired,
    #[error("the caller's roles do not allow {method}")]
    Denied { method: String },
}

impl AuthError {
    /// The `ErrorInfo` reason.
    pub fn reason(&self) -> &'static str {
        match self {
            AuthError::Missing => "CREDENTIAL_MISSING",
            AuthError::Invalid(_) => "CREDENTIAL_INVALID",
            AuthError::Expired => "CREDENTIAL_EXPIRED",
            AuthError::Denied { .. } => "PERMISSION_DENIED",
        }
    }

    /// What went wrong, for the service's log.
    pub fn log_detail(&self) -> &'static str {
        match self {
            AuthError::Missing => "no credential",
            AuthError::Invalid(reason) => reason,
            AuthError::Expired => "expired",
            AuthError::Denied { .. } => "role lacks the method",
        }
    }
}

#[cfg(feature = "grpc")]
impl AuthError {
    pub fn code(&self) -> Code {
        match self {
            AuthError::Denied { .. } => Code::PermissionDenied,
            _ => Code::Unauthenticated,
        }
    }

    pub fn to_status(&self) -> Status {
        baton_service_kit::status::with_reason(self.code(), self.reason(), self.to_string())
    }
}

#[cfg(feature = "grpc")]
impl From<AuthError> for Status {
    fn from(error: AuthError) -> Self {
        error.to_status()
    }
}
