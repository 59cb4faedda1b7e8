//! The control service's one way to reach connectors: the [`ConnectorPort`]
//! (start or re-attach a transfer, cancel it, the connector's capabilities,
//! its health), in the words of the handoff rather than of the wire.
//!
//! - `grpc`: the only implementation that speaks tonic, one per configured
//!   connector (`baton.connector.v1.ConnectorService` and
//!   `grpc.health.v1`).
//! - `disclosure`: the disclosure record as the connector is told it.
//! - `registry`: builds those from the configuration and finds a
//!   [`Connector`] by name.
//! - `configured`: a configured [`Connector`] over its port, with its last
//!   check that passed.
//!
//! The dispatcher sees nothing but this module's types and the domain's,
//! so its every decision (fallbacks, re-attaching, fencing) is testable
//! against an in-memory port. No generated type crosses the port: the
//! gRPC implementation fits the handoff's context to the connector's
//! capabilities (`convert::envelope`) as it builds the request.

pub mod chat;
mod configured;
mod disclosure;
pub mod grpc;
pub mod registry;
mod update;

use std::pin::Pin;
use std::time::Duration;

use async_trait::async_trait;
use tokio_stream::Stream;

use crate::domain::availability::{Channel, TargetAvailability};
use crate::domain::{
    ConcreteTarget, ContextCapability, ContextReference, EncodedContext, EncodedConversation,
    FailureReason, TargetKind, TransferMode, WrapUp,
};

pub use configured::{CHECK_TTL, Connector, ConnectorUnavailable};
pub use registry::ConnectorRegistry;
pub use update::{TransferUpdate, UpdateOutcome};

/// A connector as the dispatcher uses it: start or re-attach a transfer,
/// cancel one, ask what the connector serves and whether it serves now.
///
/// The contract behind it (`proto/README.md`): `start_transfer` is
/// idempotent by (handoff, attempt), so calling it again re-attaches to
/// the transfer the connector runs (replaying its events) instead of
/// starting a second one; `cancel_transfer` answers once the connector
/// knows the transfer is over.
#[async_trait]
pub trait ConnectorPort: Send + Sync + std::fmt::Debug {
    /// Whether the connector says it serves; the error says why not.
    async fn health(&self) -> Result<(), String>;

    /// What the connector serves.
    async fn info(&self) -> Result<ConnectorInfo, String>;

    /// Starts the transfer, or re-attaches to it when the connector
    /// already has it. Resolves once the connector accepted the call; the
    /// caller times that.
    async fn start_transfer(
        &self,
        request: TransferRequest,
    ) -> Result<TransferEvents, StartRefused>;

    /// Cancels a transfer; resolves within the connector's call timeout.
    /// `Err` when the connector did not confirm (no answer, or an error).
    async fn cancel_transfer(
        &self,
        tenant: &str,
        handoff_id: &str,
        attempt: u32,
    ) -> Result<CancelOutcome, String>;

    /// Gives a running transfer its newer context (`UpdateTransfer`);
    /// resolves within the connector's call timeout. Ports of connectors
    /// that do not take context updates keep this default.
    async fn update_transfer(&self, update: TransferUpdate) -> Result<UpdateOutcome, String> {
        let _ = update;
        Err("this connector does not take context updates".into())
    }

    /// Opens the chat relay of a transfer (`ConverseTransfer`): sends what
    /// `outbound` yields, returns what the connector sends back. Ports of
    /// connectors that do not relay chat keep this default.
    async fn converse(
        &self,
        open: chat::RelayOpen,
        outbound: tokio::sync::mpsc::Receiver<chat::ToConnector>,
    ) -> Result<chat::FromConnectorStream, chat::RelayRefused> {
        let _ = (open, outbound);
        Err(chat::RelayRefused::Unsupported(
            "this connector does not relay chat".into(),
        ))
    }

    /// Who is there to take a transfer now (`GetAvailability`); resolves
    /// within the connector's call timeout. Ports of connectors that do
    /// not report availability keep this default.
    async fn availability(&self, query: AvailabilityQuery) -> Result<TargetAvailability, String> {
        let _ = query;
        Err("this connector does not report availability".into())
    }
}

/// What CheckAvailability asks of the connector of a target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AvailabilityQuery {
    pub tenant: String,
    pub target: ConcreteTarget,
    pub language: String,
    pub channel: Channel,
}

/// What a connector serves.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ConnectorInfo {
    pub version: String,
    pub target_kinds: Vec<TargetKind>,
    pub transfer_modes: Vec<TransferMode>,
    /// How much context each of its mechanisms carries.
    pub context_capabilities: Vec<ContextCapability>,
    /// Whether it takes context updates for a running transfer.
    pub context_updates: bool,
    /// Whether it reports who is there to take a transfer.
    pub availability: bool,
    /// Whether it calls customers back.
    pub callbacks: bool,
}

impl ConnectorInfo {
    pub fn serves(&self, kind: TargetKind) -> bool {
        self.target_kinds.contains(&kind)
    }

    pub fn supports(&self, mode: TransferMode) -> bool {
        self.transfer_modes.contains(&mode)
    }
}

/// One transfer of a handoff to one target: the attempt's idempotency key
/// (handoff and attempt), where to, how, with what context, and until when.
#[derive(Debug, Clone, PartialEq)]
pub struct TransferRequest {
    /// Whose customer this is; connectors dedicated to some tenants refuse
    /// the others.
    pub tenant: String,
    pub handoff_id: String,
    pub attempt: u32,
    pub target: ConcreteTarget,
    pub mode: TransferMode,
    pub context: TransferContext,
    /// Unix milliseconds.
    pub deadline_ms: i64,
    /// Call the customer back instead of transferring them.
    pub callback: Option<crate::domain::callback::Callback>,
}

/// What a transfer carries for the human: the signed reference, and the
/// conversation and context, to be fitted to the connector's
/// capabilities (as much as each mechanism holds, what is left out named).
#[derive(Debug, Clone, PartialEq)]
pub struct TransferContext {
    pub reference: ContextReference,
    pub conversation: EncodedConversation,
    /// In the forms the data policy gives this connector.
    pub context: EncodedContext,
    /// The fields the data policy leaves out (only by reference), as
    /// `omitted_fields` name them.
    pub withheld: Vec<String>,
    pub capabilities: Vec<ContextCapability>,
    /// What of it went in which form: told to the connector as audited.
    pub disclosure: crate::disclosure::Record,
}

/// A transfer's events, in the order the connector sends them, until it
/// ends the stream (`None`) or the stream fails.
pub type TransferEvents =
    Pin<Box<dyn Stream<Item = Result<TransferEvent, StreamError>> + Send + 'static>>;

/// One event of a transfer, as a connector reports it.
#[derive(Debug, Clone, PartialEq)]
pub struct TransferEvent {
    /// This run of the transfer: the same on a replay, new when the
    /// connector restarted and began the transfer again.
    pub run_id: String,
    /// 1, 2, 3… per run, without gaps.
    pub sequence: u64,
    pub kind: TransferEventKind,
    /// A note for people; never sensitive.
    pub detail: String,
    /// On `Failed`; `Unspecified` when the connector gave none.
    pub failure_reason: FailureReason,
    /// On `Queued`: 1-based position and the estimated wait.
    pub queue_position: u32,
    pub estimated_wait: Option<Duration>,
    /// On `Completed`, when the human wrapped up.
    pub wrap_up: Option<WrapUp>,
}

impl TransferEvent {
    /// An event with nothing but its place and kind.
    pub fn new(run_id: impl Into<String>, sequence: u64, kind: TransferEventKind) -> Self {
        Self {
            run_id: run_id.into(),
            sequence,
            kind,
            detail: String::new(),
            failure_reason: FailureReason::Unspecified,
            queue_position: 0,
            estimated_wait: None,
            wrap_up: None,
        }
    }
}

/// What happened to a transfer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TransferEventKind {
    Queued,
    Offered,
    Ringing,
    Answered,
    ContextDelivered,
    Connected,
    Completed,
    Failed,
    Cancelled,
    /// The human handed the customer back to the AI runtime.
    HandedBack,
    /// Attended transfer: the human hears the brief on a consult leg.
    Consulting,
    /// Attended transfer: the human accepted after the brief.
    ConsultAccepted,
    /// Attended transfer: the human declined after the brief.
    ConsultDeclined,
    /// A callback: the connector dials the customer.
    CallbackDialing,
    /// No kind at all: breaks the contract.
    Unspecified,
    /// A kind of a newer contract, by its number.
    Unknown(i32),
}

/// Why a transfer could not be started (or re-attached).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StartRefused {
    /// The connector cannot do this transfer (its target or its request):
    /// asking again would not help.
    Unsupported(String),
    /// The connector could not be reached, or answered that it cannot
    /// take transfers now; `reach` says whether it may have the transfer
    /// all the same.
    Unavailable { detail: String, reach: Reach },
}

/// How far a call that did not follow the transfer to its end got:
/// whether the connector may hold the transfer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reach {
    /// The connector answered with an error, or the connection was
    /// refused: it does not have the transfer.
    Refused,
    /// The call was sent but not answered: it may.
    Sent,
    /// The connector accepted the call: it has the transfer.
    Accepted,
}

/// How a transfer's stream failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StreamError {
    /// Bytes that are not the contract's messages: a fault, not a restart.
    Malformed(String),
    /// The stream broke (the connector went away, or the network): the
    /// connector may be restarting.
    Broken(String),
}

/// What a confirmed cancel found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CancelOutcome {
    /// A transfer that had not ended was cancelled.
    Cancelled,
    /// The transfer had already ended; its outcome stands.
    AlreadyEnded,
    /// The connector never had that transfer.
    Unknown,
    /// A connector of an older contract says only whether it cancelled.
    Unstated { cancelled: bool },
}
