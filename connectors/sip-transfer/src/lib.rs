//! The decisions of a SIP transfer, without I/O: [`TransferProgress`] is
//! told what happened on the wire (a response to the INVITE to the human or
//! to the REFER to the caller's gateway, a NOTIFY of the REFER's
//! subscription, a timer, the human hanging up) and answers with what to
//! report to the control service, what to do on the wire, and how the
//! transfer ended. The SIP user agent (`baton-sip-stack`) sends, receives
//! and keeps the timers; this crate keeps the rules, so that they are
//! unit-tested and fuzzed with any order of inputs.
//!
//! The rules it keeps:
//! - one terminal outcome at most, always the last output of its step, and
//!   nothing at all after it;
//! - COMPLETED only after a 2xx sipfrag in a NOTIFY of the REFER's own
//!   subscription (its Call-ID and our tag), or, for a warm transfer with
//!   no caller leg to join, the human's 2xx;
//! - a 202 to the REFER alone is not success (RFC 3515);
//! - no CANCEL before a provisional response (RFC 3261 9.1): a silent
//!   target fails on timer B (UNREACHABLE), a ringing one on the ring
//!   timeout (NO_ANSWER);
//! - one digest retry per INVITE;
//! - the human's answered leg is hung up when a transfer fails after the
//!   answer, unless the human hung up first;
//! - attended: nothing goes to the caller's gateway before the human
//!   accepted on the consult leg ([`TransferProgress::consults`] while they
//!   decide, [`ConsultKeys`] says what decides); a decline fails the
//!   transfer REJECTED, so that the control service tries the next
//!   target.

mod consult;
mod failure;
mod progress;
mod steps;

pub use baton_proto::types::v1::FailureReason;
pub use consult::{ConsultEvent, ConsultKeys, Decision, is_dtmf_key};
pub use failure::{Failure, SipfragOutcome, failure_for_status, sipfrag_outcome};
pub use progress::{Subscription, TransferProgress};
pub use steps::{Action, Input, Output, Report};

#[cfg(test)]
mod tests;
