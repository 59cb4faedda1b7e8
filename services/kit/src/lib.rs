//! Plumbing shared by every Baton service, so that each binary has the same
//! config loading, logs, lifecycle, health, reflection and error mapping.

pub mod config;
pub mod grpc;
pub mod http;
pub mod lifecycle;
pub mod message_size;
pub mod metrics;
pub mod redact;
#[cfg(feature = "sqlite")]
pub mod sqlite_file;
pub mod status;
pub mod telemetry;
pub mod tls;
