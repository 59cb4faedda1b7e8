//! Agent-first callbacks (third-party call control in the manner of RFC
//! 3725): Baton calls the agent's phone with the handoff's context and an
//! inactive offer, holds the answered leg, dials the customer through the trunks with the agent's
//! SDP as the offer and, once the customer answers, re-INVITEs the agent
//! with the customer's SDP. Media then flows phone to phone; Baton keeps
//! only the two dialogs' signalling and relays a BYE from either side.
//!
//! This module is the callback as its callers see it; the signalling is
//! in `transfer::callback`, next to the INVITE machinery it reuses.

use std::time::Duration;

use baton_connector_sdk::{Transfer, mask_number};

/// One agent-first callback.
#[derive(Clone)]
pub struct CallBack {
    /// Keys the call (handoff id, attempt) so that
    /// [`VoiceLegs::cancel`](crate::VoiceLegs::cancel) finds it;
    /// `transfer.target` is the agent's phone (a SIP URI, or a phone
    /// number through the trunks); `transfer.envelope` is the context the
    /// agent's INVITE carries (as a warm transfer's INVITE does).
    pub transfer: Transfer,
    /// The customer's E.164 number, dialed through the trunks. Sensitive:
    /// never log it (use [`mask_number`]).
    pub customer: String,
    /// Customer dial attempts, at least 1.
    pub attempts: u32,
    /// Pause between customer dial attempts.
    pub retry_delay: Duration,
    /// How long the customer's phone may ring per attempt before CANCEL.
    pub customer_ring_timeout: Duration,
}

impl std::fmt::Debug for CallBack {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The customer's number shows only its last digits, and the
        // transfer only its keys: its envelope is the handoff's context.
        f.debug_struct("CallBack")
            .field("handoff_id", &self.transfer.handoff_id)
            .field("attempt", &self.transfer.attempt)
            .field("customer", &mask_number(&self.customer))
            .field("attempts", &self.attempts)
            .field("retry_delay", &self.retry_delay)
            .field("customer_ring_timeout", &self.customer_ring_timeout)
            .finish_non_exhaustive()
    }
}
