//! Build a Baton connector: implement [`Connector`] (info, start, cancel) and
//! call [`serve`]. The SDK gives you the `baton.connector.v1` gRPC server,
//! health and reflection, deduplication of `StartTransfer` by handoff and
//! attempt (a repeated call replays the transfer's events and follows it),
//! the capability checks, deadlines, exactly one terminal event per
//! transfer, tracing and graceful shutdown.
//!
//! # Example
//!
//! A connector that "transfers" to any SIP URI by ringing for a moment and
//! connecting:
//!
//! ```no_run
//! use std::time::Duration;
//!
//! use baton_connector_sdk::{
//!     Connector, ConnectorInfo, ContextMechanism, ServeOptions, TargetKind, Transfer,
//!     TransferEvents, TransferMode, serve,
//! };
//!
//! struct Echo;
//!
//! impl Connector for Echo {
//!     fn info(&self) -> ConnectorInfo {
//!         ConnectorInfo::new("echo", env!("CARGO_PKG_VERSION"))
//!             .target_kinds([TargetKind::SipUri])
//!             .transfer_modes([TransferMode::Warm, TransferMode::Blind])
//!             .context(ContextMechanism::SipUserToUser, 128)
//!     }
//!
//!     async fn start(&self, transfer: Transfer, events: TransferEvents) {
//!         events.ringing("ringing the human").await;
//!         tokio::time::sleep(Duration::from_millis(100)).await;
//!         events.answered("").await;
//!         events.context_delivered("UUI sent").await;
//!         events.connected("").await;
//!         events.completed("").await;
//!         let _ = transfer;
//!     }
//!
//!     async fn cancel(&self, _transfer: &Transfer) {
//!         // Hang up the ringing leg here. The SDK reports CANCELLED.
//!     }
//! }
//!
//! #[tokio::main]
//! async fn main() -> anyhow::Result<()> {
//!     let options = ServeOptions::new("127.0.0.1:50061".parse()?);
//!     serve(Echo, options, baton_connector_sdk::shutdown_signal()).await
//! }
//! ```

mod events;
mod info;
mod metrics;
pub mod pacing;
mod server;
mod transfers;

pub use baton_proto::connector::v1::ContextMechanism;
pub use baton_proto::connector::v1::{ContextEnvelope, ContextPayload, ContextReference};
pub use baton_proto::types::v1::{
    Conversation, FailureReason, HandoffContext, TargetKind, TransferMode,
};
pub use baton_service_kit::lifecycle::shutdown_signal;
pub use events::{TransferEventReceiver, TransferEvents};
pub use info::ConnectorInfo;
pub use pacing::Pacer;
pub use server::{BoundConnector, ServeOptions, bind, serve};
pub use transfers::{Transfer, TransferTarget};

use std::future::Future;

/// What a connector author implements.
pub trait Connector: Send + Sync + 'static {
    /// The connector's name, version and capabilities. The SDK refuses
    /// transfers to target kinds and modes not listed here.
    fn info(&self) -> ConnectorInfo;

    /// Performs one transfer, reporting its progress through `events`, and
    /// returns when the connector's part is over. End with one terminal
    /// event (`completed` or `failed`); if it returns without one, the SDK
    /// reports COMPLETED after CONNECTED, and FAILED otherwise.
    fn start(&self, transfer: Transfer, events: TransferEvents) -> impl Future<Output = ()> + Send;

    /// Called when the transfer is cancelled or its deadline passes, after
    /// `start`'s future has been dropped: release what the transfer holds
    /// (hang up a ringing leg, withdraw an offer).
    fn cancel(&self, transfer: &Transfer) -> impl Future<Output = ()> + Send {
        let _ = transfer;
        async {}
    }
}
