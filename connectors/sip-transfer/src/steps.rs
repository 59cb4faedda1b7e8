//! What goes into a transfer's progress and what comes out of each step.

use crate::Failure;

/// What happened, as the transfer is told.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Input<'a> {
    /// The INVITE to the human left (first or after a challenge).
    InviteSent,
    /// A response to the INVITE to the human. `can_authenticate`: for a
    /// 401 or 407, whether configured credentials answer its challenge.
    InviteResponse { status: u16, can_authenticate: bool },
    /// Timer B: no response at all to the INVITE within 64*T1.
    InviteTimedOut,
    /// The human's phone rang for the whole ring timeout.
    RingTimeout,
    /// 64*T1 after the CANCEL, the INVITE still has no final response.
    CancelTimedOut,
    /// The REFER's final response (after its own digest retry).
    ReferResponse { status: u16 },
    /// A request could not be sent or got no response (timer F): `detail`
    /// says why.
    Unsent { detail: &'a str },
    /// A NOTIFY received in a dialog keyed by `call_id`, carrying `to_tag`,
    /// with `body`.
    Notify {
        call_id: &'a str,
        to_tag: Option<&'a str>,
        body: &'a [u8],
    },
    /// No final NOTIFY for the REFER within the notify timeout.
    NotifyTimedOut,
    /// The human's phone hung up our answered leg (a BYE in its dialog).
    /// Once the REFER is out this is Replaces at work, not a failure.
    HumanHungUp,
    /// Attended: the human accepted on the consult leg.
    ConsultAccepted,
    /// Attended: the human declined on the consult leg (a key, hanging up
    /// — told first as [`Input::HumanHungUp`] — or no decision in time).
    ConsultDeclined { detail: &'a str },
}

/// A transfer event to report to the control service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Report {
    Offered(&'static str),
    Ringing(String),
    /// The human answered (warm: also the moment their leg is held).
    Answered(&'static str),
    /// The context went out in the signalling; the user agent knows
    /// where, and says nothing when none did.
    ContextDelivered,
    Connected(&'static str),
}

/// What to do on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Send the INVITE to the human: the first, or once more with the
    /// answer to the challenge (a new transaction, the next CSeq).
    SendInvite,
    /// CANCEL the INVITE (the ring timeout passed).
    CancelInvite,
    /// Send the REFER to the caller's gateway.
    SendRefer,
    /// BYE the human's answered leg.
    HangUp,
    /// The REFER succeeded: the human's phone hangs up our leg once
    /// Replaces takes it; BYE it only if it does not within 64*T1.
    HangUpUnlessReplaced,
}

/// One output of a step, in the order the user agent takes them.
#[derive(Debug, Clone, PartialEq)]
pub enum Output {
    Report(Report),
    Act(Action),
    /// Terminal: the transfer completed.
    Completed,
    /// Terminal: the transfer failed.
    Failed(Failure),
}

impl Output {
    pub fn is_terminal(&self) -> bool {
        matches!(self, Self::Completed | Self::Failed(_))
    }
}
