//! The SIP connector's `baton.connector.v1` side: what it advertises, and
//! each call handed to the SIP user agent's [`Transfers`].

use baton_connector_sdk::{
    Connector, ConnectorInfo, ContextMechanism, TargetKind, Transfer, TransferEvents, TransferMode,
};
use baton_sip_stack::Transfers;
use baton_sip_stack::transfer::{SIP_HEADERS_MAX_BYTES, UUI_TOKEN_MAX_BYTES};

/// The SIP connector.
#[derive(Debug)]
pub struct SipConnector {
    transfers: Transfers,
    /// With more than 0, the structured context is advertised with this
    /// limit, for the attended transfer's spoken brief
    /// (`consult.structured_context_bytes`).
    structured_context_bytes: u32,
}

impl SipConnector {
    pub fn new(transfers: Transfers) -> Self {
        Self {
            transfers,
            structured_context_bytes: 0,
        }
    }

    /// Advertises the structured context with `max_bytes` (0: not at all).
    pub fn with_structured_context(mut self, max_bytes: u32) -> Self {
        self.structured_context_bytes = max_bytes;
        self
    }
}

impl Connector for SipConnector {
    fn info(&self) -> ConnectorInfo {
        let info = ConnectorInfo::new("sip", env!("CARGO_PKG_VERSION"))
            .target_kinds([TargetKind::SipUri, TargetKind::PhoneNumber])
            .transfer_modes([
                TransferMode::Warm,
                TransferMode::Blind,
                TransferMode::Attended,
            ])
            .context(ContextMechanism::SipUserToUser, UUI_TOKEN_MAX_BYTES)
            .context(ContextMechanism::SipHeaders, SIP_HEADERS_MAX_BYTES)
            .context(ContextMechanism::ScreenPopUrl, 0);
        if self.structured_context_bytes > 0 {
            return info.context(ContextMechanism::Structured, self.structured_context_bytes);
        }
        info
    }

    async fn start(&self, transfer: Transfer, events: TransferEvents) {
        self.transfers.run(transfer, events).await;
    }

    /// Never a second INVITE: ends what the predecessor held, or follows
    /// its REFER (see [`baton_sip_stack::restart`]).
    async fn resume(&self, transfer: Transfer, events: TransferEvents) {
        self.transfers.resume(transfer, events).await;
    }

    /// Ends what this process holds for the transfer (in the background:
    /// the CANCELLED does not wait); for a transfer a predecessor held
    /// (`remembered`), ends its leg and waits a few round trips for it.
    async fn cancel(&self, transfer: &Transfer) {
        self.transfers.cancel(transfer).await;
    }
}
