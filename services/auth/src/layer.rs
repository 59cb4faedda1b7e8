//! `AuthLayer`: the tower layer that authenticates every gRPC call before
//! it reaches a service, and refuses what the caller's roles do not allow.
//!
//! Refusals are answered by the layer itself, as tonic answers errors: an
//! HTTP 200 response whose headers carry `grpc-status`, `grpc-message` and
//! the rich details. The credential is never logged: a refusal is logged at
//! `info` with the method and the reason (and, for a role that lacks the
//! method, the tenant and credential id, which hold no secret).

use std::sync::Arc;
use std::task::{Context, Poll};

use futures::future::{Either, Ready, ready};
use tonic::codegen::http;
use tower::{Layer, Service};

use crate::authenticator::{AuthConfig, AuthConfigError, Authenticator, unauthenticated_principal};
use crate::error::AuthError;
use crate::failures::FailureLimiter;
use crate::permissions::Permissions;
use crate::principal::Principal;

struct Shared {
    /// `None` when authentication is off.
    authenticator: Option<Authenticator>,
    permissions: Permissions,
    default_principal: Principal,
}

impl Shared {
    fn decide(
        &self,
        path: &str,
        headers: &http::HeaderMap,
    ) -> Result<Option<Principal>, AuthError> {
        let Some(authenticator) = &self.authenticator else {
            return Ok(Some(self.default_principal.clone()));
        };
        if self.permissions.is_open(path) {
            return Ok(None);
        }
        let principal = authenticator.authenticate_headers(headers)?;
        if !self.permissions.permits(&principal, path) {
            tracing::info!(
                method = path,
                tenant = %principal.tenant,
                credential = %principal.credential_id,
                "call refused: the caller's roles do not allow the method"
            );
            return Err(AuthError::Denied {
                method: path.to_string(),
            });
        }
        Ok(Some(principal))
    }
}

/// Authenticates calls and checks them against a [`Permissions`] table.
#[derive(Clone)]
pub struct AuthLayer {
    shared: Arc<Shared>,
    /// Failed authentications allowed per source address.
    failures: Option<FailureLimiter>,
}

impl std::fmt::Debug for AuthLayer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuthLayer")
            .field("enabled", &self.shared.authenticator.is_some())
            .finish_non_exhaustive()
    }
}

impl AuthLayer {
    /// The layer `config` describes, with the `HandoffService` table.
    pub fn from_config(config: &AuthConfig) -> Result<Self, AuthConfigError> {
        Ok(Self::new(
            Authenticator::from_config(config)?,
            Permissions::handoff_v1(),
            &config.default_tenant,
        ))
    }

    /// A layer with `authenticator` (`None`: authentication off, every call
    /// acts as an admin of `default_tenant`) and `permissions`.
    pub fn new(
        authenticator: Option<Authenticator>,
        permissions: Permissions,
        default_tenant: &str,
    ) -> Self {
        Self {
            shared: Arc::new(Shared {
                authenticator,
                permissions,
                default_principal: unauthenticated_principal(default_tenant),
            }),
            failures: None,
        }
    }

    /// Answers `RESOURCE_EXHAUSTED` with `RetryInfo`, instead of
    /// `UNAUTHENTICATED`, to a source address that failed authentication
    /// more often than `failures` allows. Valid credentials still pass.
    pub fn with_failure_limit(mut self, failures: FailureLimiter) -> Self {
        self.failures = Some(failures);
        self
    }
}

impl<S> Layer<S> for AuthLayer {
    type Service = AuthService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        AuthService {
            inner,
            shared: self.shared.clone(),
            failures: self.failures.clone(),
        }
    }
}

/// The service [`AuthLayer`] wraps around another.
#[derive(Clone)]
pub struct AuthService<S> {
    inner: S,
    shared: Arc<Shared>,
    failures: Option<FailureLimiter>,
}

impl<S> std::fmt::Debug for AuthService<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuthService").finish_non_exhaustive()
    }
}

impl<S, ReqBody, ResBody> Service<http::Request<ReqBody>> for AuthService<S>
where
    S: Service<http::Request<ReqBody>, Response = http::Response<ResBody>>,
    ResBody: Default,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = Either<S::Future, Ready<Result<S::Response, S::Error>>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: http::Request<ReqBody>) -> Self::Future {
        let path = request.uri().path();
        match self.shared.decide(path, request.headers()) {
            Ok(principal) => {
                if let Some(principal) = principal {
                    request.extensions_mut().insert(principal);
                }
                Either::Left(self.inner.call(request))
            }
            Err(error) => {
                if !matches!(error, AuthError::Denied { .. }) {
                    if let Some(failures) = &self.failures
                        && let Some(source) = baton_service_kit::grpc::peer_ip(request.extensions())
                        && let Err(retry_after) = failures.failed(source)
                    {
                        tracing::debug!(method = path, %source, "call refused: too many failed authentications");
                        return Either::Right(ready(
                            Ok(too_many_failures(retry_after).into_http()),
                        ));
                    }
                    tracing::info!(
                        method = path,
                        reason = error.log_detail(),
                        "call refused: not authenticated"
                    );
                }
                Either::Right(ready(Ok(error.to_status().into_http())))
            }
        }
    }
}

/// `RESOURCE_EXHAUSTED` with `RetryInfo`, for a source address that failed
/// authentication too often. It says nothing about the credential.
pub fn too_many_failures(retry_after: std::time::Duration) -> tonic::Status {
    let millis = retry_after.as_nanos().div_ceil(1_000_000);
    let retry_after = std::time::Duration::from_millis(u64::try_from(millis).unwrap_or(u64::MAX));
    baton_service_kit::status::retry_after(
        tonic::Code::ResourceExhausted,
        "TOO_MANY_FAILED_AUTHENTICATIONS",
        format!(
            "too many failed authentications from this address; retry in {} ms",
            retry_after.as_millis()
        ),
        retry_after,
    )
}
