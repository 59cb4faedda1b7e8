//! What a failed transfer reports, and what a SIP status or a NOTIFY's
//! sipfrag means for it.

use baton_proto::types::v1::FailureReason;
use baton_sip_message::sipfrag_status;

/// Why a transfer failed, as reported to the control service.
#[derive(Debug, Clone, PartialEq)]
pub struct Failure {
    pub reason: FailureReason,
    pub detail: String,
}

impl Failure {
    pub fn new(reason: FailureReason, detail: impl Into<String>) -> Self {
        Self {
            reason,
            detail: detail.into(),
        }
    }
}

/// The failure a final SIP status means (RFC 3261 21.4-21.6).
pub fn failure_for_status(code: u16) -> FailureReason {
    match code {
        486 | 600 => FailureReason::Busy,
        408 | 480 | 487 => FailureReason::NoAnswer,
        403 | 603 => FailureReason::Rejected,
        405 | 420 | 501 => FailureReason::Unsupported,
        _ => FailureReason::Unreachable,
    }
}

/// What a NOTIFY's `message/sipfrag` body says about a REFER (RFC 3515).
#[derive(Debug, Clone, PartialEq)]
pub enum SipfragOutcome {
    /// A provisional status (100 trying, 180 ringing).
    Progress(u16),
    /// The REFER's final outcome: success, or the failure it means.
    Final(Result<(), Failure>),
    /// No sipfrag status line.
    None,
}

/// Reads a NOTIFY body as the REFER's outcome.
pub fn sipfrag_outcome(body: &[u8]) -> SipfragOutcome {
    match sipfrag_status(body) {
        Some(code) if code < 200 => SipfragOutcome::Progress(code),
        Some(code) if code < 300 => SipfragOutcome::Final(Ok(())),
        Some(code) => SipfragOutcome::Final(Err(Failure::new(
            failure_for_status(code),
            format!("NOTIFY sipfrag {code}"),
        ))),
        None => SipfragOutcome::None,
    }
}
