//! Build a Baton connector: implement [`Connector`] (info, start, cancel) and
//! call [`serve`]. The SDK gives you the `baton.connector.v1` gRPC server,
//! health and reflection, deduplication of `StartTransfer` by handoff and
//! attempt (a repeated call replays the transfer's events and follows it),
//! the capability checks, deadlines, exactly one terminal event per
//! transfer, tracing and graceful shutdown.
//!
//! # A connector as a process
//!
//! A connector's binary is one line of `main` over [`run`]:
//! `baton_connector_sdk::run::<MyConfig>()`, where `MyConfig` (the
//! connector's configuration) implements [`RunnableConnector`]: it holds the
//! shared sections of [`config`] (`[server]`, `[store]`, `[telemetry]`,
//! `[tls]`) beside its own keys, and says how the connector binds. Every
//! connector gets the same flags, configuration loading (file, then
//! `<PREFIX>_…` variables), telemetry, health, reflection, readiness line
//! and graceful shutdown; `baton dev` runs several in one process through
//! the same trait and [`ServeConnector`].
//!
//! # Restarts and exactly-once delivery
//!
//! With a journal ([`ServeOptions::journal`]), every transfer is recorded
//! in an embedded SQLite file before StartTransfer is answered, and every
//! event before any stream sees it, so a restart of the connector (kill -9,
//! or a rolling deploy's SIGTERM) never starts a delivery twice:
//!
//! - A transfer that had ended is served as before: a repeated
//!   StartTransfer replays its events (same `run_id`, same sequences) up
//!   to its terminal event, for 15 minutes after it ended; CancelTransfer
//!   answers ALREADY_ENDED.
//! - A transfer that had not ended was *interrupted*. Nothing restarts it
//!   on its own. When the control service re-attaches (StartTransfer for
//!   the same handoff and attempt), the SDK begins a new run (a new
//!   `run_id`, sequences from 1) and calls [`Connector::resume`] instead
//!   of `start`, with [`Transfer::remembered`] set to the last note the
//!   connector stored through [`TransferEvents::remember`]. The default
//!   `resume` calls `cancel` and reports FAILED (INTERRUPTED): safe for any
//!   connector, since nothing is delivered twice; a connector that can
//!   take a transfer over (its own store keeps the delivery) overrides it.
//!   When the control service cancels it instead, the SDK calls `cancel`
//!   and ends it CANCELLED.
//!
//! On SIGTERM the connector drains ([`ServeOptions::drain_timeout`]):
//! health reports NOT_SERVING, new transfers are refused with UNAVAILABLE,
//! running ones go on (and are still followed) until they end or the
//! drain timeout passes. The streams of those still running then end with
//! UNAVAILABLE and the process exits without cancelling them: with a
//! journal, the next process takes them over as interrupted transfers.
//!
//! Without a journal, transfers live in memory only, and a restarted
//! process knows none of them (CancelTransfer answers UNKNOWN).
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

mod beside;
pub mod chat;
pub mod config;
mod events;
mod info;
mod journal;
mod metrics;
mod note;
pub mod pacing;
pub mod run;
mod server;
#[cfg(any(test, feature = "test-support"))]
pub mod testing;
mod transfer;
mod transfers;

pub use baton_proto::connector::v1::ContextMechanism;
pub use baton_proto::connector::v1::{ContextEnvelope, ContextPayload, ContextReference};
pub use baton_proto::types::v1::{
    Availability, AvailabilityBasis, Channel, Conversation, FailureReason, HandoffContext,
    Judgement, TargetKind, TransferMode, WaitEstimateMethod, WrapUp,
};
pub use baton_request_validation::{is_e164, mask_number};
pub use baton_service_kit::lifecycle::shutdown_signal;
pub use beside::{HttpSide, SharedShutdown};
pub use events::{TransferEventReceiver, TransferEvents};
pub use info::ConnectorInfo;
pub use note::TransferNote;
pub use pacing::Pacer;
pub use run::{NoFlags, RunnableConnector, Sections, ServeConnector, run};
pub use server::{BoundConnector, ServeOptions, bind, serve};
/// What [`Connector::update`] refuses with, re-exported so that a connector
/// needs no tonic dependency of its own.
pub use tonic::Status;
pub use transfer::{Callback, Transfer, TransferTarget};

/// A newer context for one of the connector's transfers that has not
/// ended (UpdateTransfer), given to [`Connector::update`].
#[derive(Debug, Clone, PartialEq)]
pub struct ContextUpdate {
    pub tenant: String,
    pub handoff_id: String,
    pub attempt: u32,
    /// The whole context, fitted to the connector's capabilities and data
    /// policy as the transfer's own was: it replaces what the transfer was
    /// given.
    pub envelope: ContextEnvelope,
    /// The context's version, higher than any the SDK passed before for
    /// this transfer (older and repeated ones never reach the connector).
    pub context_version: u64,
}

/// The platform's own id of the conversation an envelope is about
/// (`conversation.call.platform_contact_id`: a Twilio Call SID, an Amazon
/// Connect contact id), `None` when the handoff names none. A connector
/// checks its platform's form of the id itself.
pub fn platform_contact_id(envelope: &ContextEnvelope) -> Option<&str> {
    let id = envelope
        .conversation
        .as_ref()?
        .call
        .as_ref()?
        .platform_contact_id
        .as_str();
    (!id.is_empty()).then_some(id)
}

/// What GetAvailability asks a connector: who is there now to take a
/// transfer of `tenant`'s customer to `target`. The SDK has admitted the
/// tenant and checked that the connector serves the target's kind.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AvailabilityQuery {
    pub tenant: String,
    pub target: TransferTarget,
    /// The conversation's language (a BCP 47 tag); may be empty.
    pub language: String,
    /// Voice unless the runtime said chat.
    pub channel: Channel,
}

/// What a connector knows of who is there at a target, each figure `None`
/// when it does not know it: what [`Connector::availability`] builds its
/// answer from ([`AvailabilityFigures::answer`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AvailabilityFigures {
    pub basis: AvailabilityBasis,
    pub agents_signed_in: Option<u32>,
    pub agents_available: Option<u32>,
    pub contacts_waiting: Option<u32>,
    pub estimated_wait: Option<std::time::Duration>,
    /// How `estimated_wait` was made (ignored without one).
    pub wait_estimate: WaitEstimateMethod,
}

impl AvailabilityFigures {
    /// GetAvailability's answer. A contact added now takes the place
    /// behind those waiting (first come, first served: one of higher
    /// priority may overtake them, which the figures cannot tell).
    pub fn answer(self) -> Availability {
        let estimated_wait = self
            .estimated_wait
            .and_then(|wait| prost_types::Duration::try_from(wait).ok());
        Availability {
            basis: self.basis as i32,
            agents_signed_in: self.agents_signed_in,
            agents_available: self.agents_available,
            contacts_waiting: self.contacts_waiting,
            position: self.contacts_waiting.map(|n| n.saturating_add(1)),
            wait_estimate: if estimated_wait.is_some() {
                self.wait_estimate
            } else {
                WaitEstimateMethod::Unspecified
            } as i32,
            estimated_wait,
        }
    }
}

/// The transfer journal's file name in a connector's data directory:
/// `ServeOptions::journal(data_dir.join(TRANSFER_JOURNAL))`.
pub const TRANSFER_JOURNAL: &str = "transfers.sqlite3";

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

    /// Takes over a transfer that a previous process of this connector
    /// was running when it stopped (a crash, or a drain that timed out),
    /// once the control service re-attaches to it. Called instead of
    /// `start`, in a new run (new `run_id`, sequences from 1), with
    /// [`Transfer::remembered`] holding the last note stored through
    /// [`TransferEvents::remember`]. Only called with a journal
    /// ([`ServeOptions::journal`]).
    ///
    /// The previous process may have delivered the transfer already (a
    /// human's phone may be ringing): `resume` must never deliver it a
    /// second time. The default is safe for every connector: it calls
    /// [`cancel`](Self::cancel) to release what it can and reports FAILED
    /// with [`FailureReason::Interrupted`], so that the control service
    /// moves on. Override it when the delivery can truly be taken over
    /// (e.g. the contact is kept in the connector's own store), typically
    /// by calling `start`, which then finds what it delivered.
    fn resume(
        &self,
        transfer: Transfer,
        events: TransferEvents,
    ) -> impl Future<Output = ()> + Send {
        async move {
            self.cancel(&transfer).await;
            events
                .failed(
                    FailureReason::Interrupted,
                    "interrupted by a restart of the connector; nothing was delivered twice",
                )
                .await;
        }
    }

    /// Called when the transfer is cancelled or its deadline passes, after
    /// `start`'s future has been dropped: release what the transfer holds
    /// (hang up a ringing leg, withdraw an offer). Also called for a
    /// transfer interrupted by a restart (with [`Transfer::remembered`]
    /// set) when the control service cancels it, and by the default
    /// [`resume`](Self::resume).
    fn cancel(&self, transfer: &Transfer) -> impl Future<Output = ()> + Send {
        let _ = transfer;
        async {}
    }

    /// Gives a transfer that has not ended the handoff's newer context
    /// (the runtime updated it while the customer waits); called only when
    /// [`ConnectorInfo::context_updates`] is set, after the SDK admitted
    /// the tenant, found the transfer running and checked that the version
    /// is newer than the last one applied. Updates of one transfer come one
    /// at a time. An error is passed to the control service, which keeps
    /// the update in the context reference. The default, for connectors
    /// whose platform cannot change what it was given, refuses with
    /// UNIMPLEMENTED.
    fn update(
        &self,
        update: ContextUpdate,
    ) -> impl Future<Output = Result<(), tonic::Status>> + Send {
        let _ = update;
        async {
            Err(tonic::Status::unimplemented(
                "this connector does not take context updates",
            ))
        }
    }

    /// Serves the chat relay of one of its transfers (`ConverseTransfer`),
    /// for as long as it lasts; called only when [`ConnectorInfo::chat`]
    /// is set, after the SDK admitted the tenant. Answer
    /// [`ChatRelay::opened`](chat::ChatRelay::opened) first; see [`chat`].
    /// The default, for connectors that do not relay chat, refuses with
    /// UNIMPLEMENTED.
    fn converse(&self, relay: chat::ChatRelay) -> impl Future<Output = ()> + Send {
        relay.refuse(tonic::Status::unimplemented(
            "this connector does not relay chat",
        ))
    }

    /// Who is there now to take a transfer (GetAvailability); called only
    /// when [`ConnectorInfo::availability`] is set. Set the counts the
    /// platform knows and leave the others unset; say how they were
    /// obtained in `basis` and how the wait was estimated in
    /// `wait_estimate`. A target the connector does not know (or another
    /// tenant's) is NOT_FOUND. Must change nothing: no contact is queued.
    /// The default refuses with UNIMPLEMENTED.
    fn availability(
        &self,
        query: AvailabilityQuery,
    ) -> impl Future<Output = Result<Availability, tonic::Status>> + Send {
        let _ = query;
        async {
            Err(tonic::Status::unimplemented(
                "this connector does not report availability",
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_platform_contact_id_is_the_calls_own_and_none_when_unnamed() {
        let mut envelope = ContextEnvelope {
            conversation: Some(testing::platform_call("CA0123")),
            ..Default::default()
        };
        assert_eq!(platform_contact_id(&envelope), Some("CA0123"));
        envelope.conversation = Some(testing::sip_call("abc@gw"));
        assert_eq!(platform_contact_id(&envelope), None, "an empty id");
        envelope.conversation = None;
        assert_eq!(platform_contact_id(&envelope), None, "no conversation");
    }
}
