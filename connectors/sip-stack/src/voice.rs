//! Voice legs for a connector that delivers a call itself (the queue hands
//! the voice leg to the agent who accepted): the same [`Transfers`] the SIP
//! connector runs, in-process, without a gRPC server of their own.

use std::net::SocketAddr;

use baton_connector_sdk::{FailureReason, Transfer, TransferEvents};

use crate::callback::CallBack;
use crate::config::UserAgentConfig;
use crate::transfer::Transfers;

/// A bound SIP endpoint that delivers voice legs. Dropping it stops its
/// receiver; call [`shutdown`](Self::shutdown) first to hang up the legs
/// still held.
pub struct VoiceLegs {
    transfers: Transfers,
    receiver: tokio::task::JoinHandle<()>,
}

impl std::fmt::Debug for VoiceLegs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VoiceLegs")
            .field("sip_addr", &self.sip_addr())
            .finish_non_exhaustive()
    }
}

impl VoiceLegs {
    /// Validates `config`, binds the SIP socket (`sip.bind`; port 0 picks a
    /// free one) and starts receiving.
    pub async fn bind(config: UserAgentConfig) -> anyhow::Result<Self> {
        let transfers = Transfers::bind(config).await?;
        let receiver = tokio::spawn(transfers.stack().clone().run());
        Ok(Self {
            transfers,
            receiver,
        })
    }

    /// The bound SIP (UDP and TCP) address.
    pub fn sip_addr(&self) -> SocketAddr {
        self.transfers.stack().local_addr()
    }

    /// Delivers the call to `transfer.target` (a SIP URI or a phone number)
    /// as the SIP connector does, reporting through `events`, and returns
    /// when the leg's part is over. Always ends with one terminal event.
    pub async fn deliver(&self, transfer: Transfer, events: TransferEvents) {
        self.transfers.run(transfer, events.clone()).await;
        if !events.is_ended() {
            events
                .failed(
                    FailureReason::Unreachable,
                    "the SIP leg ended without an outcome",
                )
                .await;
        }
    }

    /// Calls the agent (`call.transfer.target`, with the context), then
    /// the customer, reporting through `events`: ringing, answered and
    /// context delivered for the agent's leg, CALLBACK_DIALING per
    /// customer dial, then CONNECTED (not terminal: this returns, and the
    /// stack relays a BYE from either side to the other) or one FAILED.
    pub async fn call_back(&self, call: CallBack, events: TransferEvents) {
        self.transfers.call_back(call, &events).await;
    }

    /// Releases what a delivery of `transfer` holds (CANCEL while ringing,
    /// BYE once answered), after its `deliver` future was dropped.
    pub async fn cancel(&self, transfer: &Transfer) {
        self.transfers.cancel(transfer).await;
    }

    /// Hangs up every leg still held, waiting a few round trips for the
    /// answers, then stops receiving. Call it after the owning connector's
    /// drain: a voice leg's dialog is not journalled (its events go to an
    /// in-memory channel), so no next process could end a leg left ringing.
    pub async fn shutdown(&self) {
        let wait = self.transfers.stack().t1() * 4;
        self.transfers.releaser().release_all(wait).await;
        self.receiver.abort();
    }
}

impl Drop for VoiceLegs {
    fn drop(&mut self) {
        self.receiver.abort();
    }
}
