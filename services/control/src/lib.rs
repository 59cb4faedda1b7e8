//! The Baton control service: owns every handoff from `CreateHandoff` to a
//! human on the line, routes it through connectors, and keeps its event log.

pub mod api;
pub mod chat;
pub mod circuit;
pub mod command;
pub mod config;
pub mod connector;
pub mod convert;
pub mod disclosure;
pub mod dispatch;
pub mod domain;
pub mod error;
pub mod http;
pub mod hub;
pub mod metrics;
pub mod policy;
pub mod retention;
pub mod server;
pub mod store;
/// Context tokens, from their own crate so that the fuzz target
/// `context_token` (tests/fuzz) builds without the service.
pub use baton_context_token as token;

pub use config::ControlConfig;
pub use server::{BoundControl, bind, check};
