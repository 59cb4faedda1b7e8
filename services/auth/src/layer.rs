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
        }
    }
}

impl<S> Layer<S> for AuthLayer {
    type Service = AuthService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        AuthService {
            inner,
            shared: self.shared.clone(),
        }
    }
}

/// The service [`AuthLayer`] wraps around another.
#[derive(Clone)]
pub struct AuthService<S> {
    inner: S,
    shared: Arc<Shared>,
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
