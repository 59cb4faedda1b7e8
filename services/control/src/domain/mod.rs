//! The control service's domain: plain Rust, no gRPC, HTTP or SQL, so that
//! every rule here is tested without a network.

pub mod envelope;
pub mod message;
pub mod model;
pub mod routing;
pub mod state;
/// Request validation, from its own crate so that the fuzz target
/// `create_request` (tests/fuzz) builds without the service.
pub use baton_request_validation as validate;

pub use model::*;
pub use state::{EventKind, HandoffState, IllegalTransition};
