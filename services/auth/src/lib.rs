//! Who is calling Baton, and how much they may call.
//!
//! - [`Principal`] and [`Role`]: an authenticated caller, its tenant and
//!   what it may do; [`Permissions`]: which roles may call which method.
//! - [`api_key`]: `bk_<id>_<secret>` keys, stored hashed in a TOML keys
//!   file that is read again when it changes; [`api_key::mint`] makes one.
//! - [`jwt`]: HS256 / RS256 / ES256 JWTs, keys from a secret file and a
//!   JWKS file.
//! - [`AuthLayer`]: the tower layer for tonic servers that puts the
//!   principal into each request, or answers `UNAUTHENTICATED` /
//!   `PERMISSION_DENIED`.
//! - [`RateLimitLayer`] and [`StreamLimiter`]: per-tenant limits, answering
//!   `RESOURCE_EXHAUSTED`.
//!
//! The layers, and the mapping of [`AuthError`] to `tonic::Status`, come
//! with the `grpc` feature (on by default); without it, the crate parses
//! and checks credentials only.
//!
//! A server stacks them auth first, so that limits know the tenant:
//! `Server::builder().layer(auth).layer(rate_limit)`. Configuration, for
//! example:
//!
//! ```toml
//! [auth]
//! mode = "required"                     # default "off"
//! api_keys_file = "/etc/baton/keys.toml"
//! [auth.jwt]
//! jwks_file = "/etc/baton/jwks.json"    # RS256 / ES256, by kid
//! hs256_secret_file = "/etc/baton/jwt.secret"
//! issuer = "https://idp.example.com"
//! audience = "baton"
//! tenant_claim = "tenant"               # default
//! roles_claim = "roles"                 # default
//! leeway = "30s"                        # default
//!
//! [rate_limit]
//! requests_per_second = 50.0
//! burst = 100
//! max_tenants = 10000
//! ```

pub mod api_key;
pub mod authenticator;
pub mod error;
#[cfg(feature = "grpc")]
pub mod failures;
mod hex;
pub mod jwt;
#[cfg(feature = "grpc")]
pub mod layer;
pub mod permissions;
pub mod principal;
#[cfg(feature = "grpc")]
pub mod rate_limit;
pub mod reload;

pub use authenticator::{AuthConfig, AuthConfigError, AuthMode, Authenticator};
pub use error::AuthError;
#[cfg(feature = "grpc")]
pub use failures::{FailedAuthConfig, FailureLimiter};
#[cfg(feature = "grpc")]
pub use layer::{AuthLayer, AuthService};
pub use permissions::Permissions;
pub use principal::{Principal, Role};
#[cfg(feature = "grpc")]
pub use rate_limit::{
    RateLimitConfig, RateLimitLayer, RateLimitService, StreamLimiter, StreamPermit,
};
