//! The SIP connector as a library, for another connector that delivers a
//! call in-process (the queue hands the voice leg to the agent who
//! accepted). It runs exactly the transfers of [`SipConnector`], without
//! the gRPC server.

use std::net::SocketAddr;
use std::sync::Arc;

use baton_connector_sdk::{Connector, FailureReason, Transfer, TransferEvents};

use crate::config::SipConfig;
use crate::stack::SipStack;
use crate::tls;
use crate::transfer::{LegReleaser, SipConnector};

/// A bound SIP endpoint that delivers voice legs. Dropping it stops its
/// receiver; call [`shutdown`](Self::shutdown) first to hang up the legs
/// still held.
pub struct VoiceLegs {
    connector: SipConnector,
    releaser: LegReleaser,
    stack: Arc<SipStack>,
    receiver: tokio::task::JoinHandle<()>,
}

impl std::fmt::Debug for VoiceLegs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VoiceLegs")
            .field("sip_addr", &self.stack.local_addr())
            .finish_non_exhaustive()
    }
}

impl VoiceLegs {
    /// Validates `config`, binds the SIP socket (`sip.bind`; port 0 picks a
    /// free one) and starts receiving. `listen` is not used: nothing is
    /// served over gRPC.
    pub async fn bind(config: SipConfig) -> anyhow::Result<Self> {
        config
            .validate()
            .map_err(|e| anyhow::anyhow!("configuration: {e}"))?;
        let stack = SipStack::bind(
            config.sip.bind,
            config.sip.transport,
            config.sip.public_address.clone(),
            config.sip.user.clone(),
            config.sip.t1,
            config.sip.outbound_proxy.clone(),
        )
        .await?;
        if let Some(tls) = &config.sip.tls {
            stack.enable_tls(tls::SipTls::bind(tls, stack.advertised()).await?);
        }
        stack.limit_reply_cache(config.sip.reply_cache_bytes);
        let connector = SipConnector::new(Arc::new(config), stack.clone());
        let releaser = connector.releaser();
        let receiver = tokio::spawn(stack.clone().run());
        Ok(Self {
            connector,
            releaser,
            stack,
            receiver,
        })
    }

    /// The bound SIP (UDP and TCP) address.
    pub fn sip_addr(&self) -> SocketAddr {
        self.stack.local_addr()
    }

    /// Delivers the call to `transfer.target` (a SIP URI or a phone number)
    /// as the SIP connector would, reporting through `events`, and returns
    /// when the leg's part is over. Always ends with one terminal event.
    pub async fn deliver(&self, transfer: Transfer, events: TransferEvents) {
        self.connector.start(transfer, events.clone()).await;
        if !events.is_ended() {
            events
                .failed(
                    FailureReason::Unreachable,
                    "the SIP leg ended without an outcome",
                )
                .await;
        }
    }

    /// Releases what a delivery of `transfer` holds (CANCEL while ringing,
    /// BYE once answered), after its `deliver` future was dropped.
    pub async fn cancel(&self, transfer: &Transfer) {
        self.connector.cancel(transfer).await;
    }

    /// Hangs up every leg still held, waiting a few round trips for the
    /// answers, then stops receiving. Call it after the owning connector's
    /// drain: a voice leg's dialog is not journalled (its events go to an
    /// in-memory channel), so no next process could end a leg left ringing.
    pub async fn shutdown(&self) {
        self.releaser.release_all(self.stack.t1() * 4).await;
        self.receiver.abort();
    }
}

impl Drop for VoiceLegs {
    fn drop(&mut self) {
        self.receiver.abort();
    }
}
