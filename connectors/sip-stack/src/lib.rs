//! Baton's SIP user agent, for every connector that moves a call in SIP
//! (the SIP connector, and the queue's voice leg to the accepting agent):
//!
//! - [`stack`]: the endpoint on UDP and TCP, and TLS ([`tls`]): the
//!   receive path that routes responses to client transactions and
//!   in-dialog requests to their dialog, after the origin checks of
//!   [`origin`]; RFC 3261 client transactions and their timers; replies
//!   kept for retransmitted requests ([`reply_cache`]).
//! - [`leg`]: what a transfer holds on the wire (a ringing INVITE, an
//!   answered dialog, a REFER out) and how to end it.
//! - [`transfer`]: the transfers themselves, warm (INVITE the human with
//!   the context, then REFER the caller's gateway with Replaces), attended
//!   (warm with a consult leg: the brief spoken as RTP by
//!   `baton-sip-media`, the human's key decides) and blind
//!   (an out-of-dialog REFER), with [`digest`] authentication, following
//!   the decisions of `baton-sip-transfer` (no I/O); [`restart`] takes
//!   over a transfer a previous process left running.
//! - [`hand_back`]: each transfer's hand-back address, which redirects a
//!   customer the human hands back to the AI runtime (302) and tells the
//!   transfer (HANDED_BACK).
//! - [`voice`]: the same transfers for a connector that delivers a call
//!   in-process, and agent-first callbacks ([`callback`]: the agent's
//!   phone first, then the customer's, joined in signalling only).
//! - [`config`]: the user agent's configuration keys.
//!
//! Messages are parsed and built by [`message`] (`baton-sip-message`, no
//! I/O). Nothing here serves gRPC: a connector wraps [`Transfers`] in its
//! own `Connector`.

pub mod callback;
pub mod config;
pub mod digest;
pub mod hand_back;
pub mod leg;
pub use baton_sip_message as message;
pub mod origin;
pub mod reply_cache;
pub mod restart;
pub mod stack;
pub mod tls;
pub mod transfer;
pub mod voice;

pub use callback::CallBack;
pub use config::UserAgentConfig;
pub use transfer::Transfers;
pub use voice::VoiceLegs;
