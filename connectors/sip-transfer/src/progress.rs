//! [`TransferProgress`]: one transfer's state, from the first INVITE or
//! REFER to its terminal outcome.

use std::time::Duration;

use baton_proto::types::v1::FailureReason;

use crate::failure::{Failure, SipfragOutcome, failure_for_status, sipfrag_outcome};
use crate::steps::{Action, Input, Output, Report};

/// The REFER's implicit subscription (RFC 3515): its Call-ID and the From
/// tag we gave it, which every NOTIFY of it carries as its To tag.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subscription {
    pub call_id: String,
    pub tag: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// INVITE the human, then REFER the caller's gateway with Replaces;
    /// without a caller leg, answering is connecting.
    Warm { caller_leg: bool },
    /// As warm, with a consult between the human's answer and the REFER:
    /// the human hears the brief and accepts or declines.
    Attended { caller_leg: bool },
    /// REFER the caller's gateway to the target.
    Blind,
}

/// The INVITE out to the human.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Inviting {
    /// It is the first INVITE (not a retry with credentials).
    first: bool,
    /// A provisional response came for this INVITE.
    provisional: bool,
    /// The ring timeout passed and the CANCEL is out.
    cancelled: bool,
    /// This INVITE carries the answer to a challenge.
    authenticated: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    NotStarted,
    Inviting(Inviting),
    /// Attended: the human answered and hears the brief; the caller's
    /// gateway has been sent nothing.
    Consulting,
    Referring {
        /// A 2xx to the REFER came (not success by itself).
        accepted: bool,
    },
    Ended,
}

/// One transfer's progress: feed it what happens, take what it answers.
#[derive(Debug, Clone)]
pub struct TransferProgress {
    kind: Kind,
    subscription: Subscription,
    timer_b: Duration,
    phase: Phase,
    /// The INVITE got 180 or 183 (reported once).
    invite_rang: bool,
    /// A NOTIFY said 180 or 183: a later timeout is NO_ANSWER.
    refer_rang: bool,
    /// The human's phone hung up our answered leg.
    human_hung_up: bool,
}

/// The failure of an INVITE whose ring timeout passed.
const CANCELLED: &str = "ring timeout; cancelled";

impl TransferProgress {
    /// A warm (or attended) transfer; `caller_leg`: whether the caller has
    /// a leg on a gateway to REFER. `timer_b` is 64*T1, for the detail of
    /// a silent target's failure.
    pub fn warm(subscription: Subscription, caller_leg: bool, timer_b: Duration) -> Self {
        Self::new(Kind::Warm { caller_leg }, subscription, timer_b)
    }

    /// An attended transfer: as [`warm`](Self::warm), but once the human
    /// answers the progress waits for their decision
    /// ([`consults`](Self::consults)): accepted, the REFER goes out;
    /// declined, the leg is hung up and the transfer fails REJECTED.
    pub fn attended(subscription: Subscription, caller_leg: bool, timer_b: Duration) -> Self {
        Self::new(Kind::Attended { caller_leg }, subscription, timer_b)
    }

    /// A blind transfer: one REFER to the caller's gateway.
    pub fn blind(subscription: Subscription) -> Self {
        Self::new(Kind::Blind, subscription, Duration::ZERO)
    }

    fn new(kind: Kind, subscription: Subscription, timer_b: Duration) -> Self {
        Self {
            kind,
            subscription,
            timer_b,
            phase: Phase::NotStarted,
            invite_rang: false,
            refer_rang: false,
            human_hung_up: false,
        }
    }

    /// The REFER's subscription, as given.
    pub fn subscription(&self) -> &Subscription {
        &self.subscription
    }

    /// Whether the transfer has its terminal outcome.
    pub fn is_ended(&self) -> bool {
        self.phase == Phase::Ended
    }

    fn inviting(&self) -> Option<Inviting> {
        match self.phase {
            Phase::Inviting(inviting) => Some(inviting),
            _ => None,
        }
    }

    /// Whether the INVITE still waits for its first response: timer A
    /// (UDP retransmission) and timer B run.
    pub fn awaits_invite_response(&self) -> bool {
        self.inviting()
            .is_some_and(|i| !i.provisional && !i.cancelled)
    }

    /// Whether the human's phone is ringing: the ring timeout runs.
    pub fn rings(&self) -> bool {
        self.inviting()
            .is_some_and(|i| i.provisional && !i.cancelled)
    }

    /// Whether the CANCEL is out: the INVITE has 64*T1 to end.
    pub fn cancels(&self) -> bool {
        self.inviting().is_some_and(|i| i.cancelled)
    }

    /// Whether the human is on the consult leg, deciding: the user agent
    /// speaks the brief and listens for the decision.
    pub fn consults(&self) -> bool {
        self.phase == Phase::Consulting
    }

    /// Whether the REFER still waits for its final response.
    pub fn awaits_refer_response(&self) -> bool {
        self.phase == Phase::Referring { accepted: false }
    }

    /// Starts the transfer. Only the first call does anything.
    pub fn start(&mut self) -> Vec<Output> {
        if self.phase != Phase::NotStarted {
            return Vec::new();
        }
        match self.kind {
            Kind::Warm { .. } | Kind::Attended { .. } => {
                self.phase = Phase::Inviting(Inviting {
                    first: true,
                    provisional: false,
                    cancelled: false,
                    authenticated: false,
                });
                vec![Output::Act(Action::SendInvite)]
            }
            Kind::Blind => {
                // The REFER may take timer F (64*T1) to fail: say at once
                // that the transfer is under way.
                self.phase = Phase::Referring { accepted: false };
                vec![
                    Output::Report(Report::Offered("REFER sent to the caller's gateway")),
                    Output::Act(Action::SendRefer),
                ]
            }
        }
    }

    /// Takes one input. Nothing comes out once the transfer has ended, nor
    /// for an input that does not apply to where it is.
    pub fn on(&mut self, input: Input<'_>) -> Vec<Output> {
        match self.phase {
            Phase::NotStarted | Phase::Ended => Vec::new(),
            Phase::Inviting(inviting) => self.on_inviting(inviting, input),
            Phase::Consulting => self.on_consulting(input),
            Phase::Referring { accepted } => self.on_referring(accepted, input),
        }
    }

    fn on_inviting(&mut self, inviting: Inviting, input: Input<'_>) -> Vec<Output> {
        match input {
            Input::InviteSent if inviting.first => {
                self.phase = Phase::Inviting(Inviting {
                    first: false,
                    ..inviting
                });
                // At once, so that the control service knows the transfer
                // is under way: a target that never answers takes timer B
                // (64*T1, 32 s by default) to fail, longer than a generic
                // wait for a connector's first event.
                vec![Output::Report(Report::Offered("INVITE sent to the target"))]
            }
            Input::InviteResponse {
                status,
                can_authenticate,
            } => self.on_invite_response(inviting, status, can_authenticate),
            Input::InviteTimedOut if self.awaits_invite_response() => {
                let detail = format!(
                    "408 Request Timeout (timer B): no response to the INVITE within {:?}",
                    self.timer_b
                );
                self.end(Failure::new(FailureReason::Unreachable, detail))
            }
            // RFC 3261 9.1: no CANCEL before a provisional response. A
            // silent target is timer B's (unreachable), never the ring
            // timeout's (no answer).
            Input::RingTimeout if self.rings() => {
                self.phase = Phase::Inviting(Inviting {
                    cancelled: true,
                    ..inviting
                });
                vec![Output::Act(Action::CancelInvite)]
            }
            Input::CancelTimedOut if inviting.cancelled => {
                self.end(Failure::new(FailureReason::NoAnswer, CANCELLED))
            }
            Input::Unsent { detail } => self.end(Failure::new(FailureReason::Unreachable, detail)),
            // Nothing of the human's is answered yet.
            _ => Vec::new(),
        }
    }

    fn on_invite_response(
        &mut self,
        inviting: Inviting,
        status: u16,
        can_authenticate: bool,
    ) -> Vec<Output> {
        if status < 200 {
            self.phase = Phase::Inviting(Inviting {
                provisional: true,
                ..inviting
            });
            if matches!(status, 180 | 183) && !self.invite_rang && !inviting.cancelled {
                self.invite_rang = true;
                let detail = format!("{status} from the target");
                return vec![Output::Report(Report::Ringing(detail))];
            }
            return Vec::new();
        }
        if status >= 300 {
            if inviting.cancelled {
                return self.end(Failure::new(FailureReason::NoAnswer, CANCELLED));
            }
            if matches!(status, 401 | 407) && !inviting.authenticated && can_authenticate {
                self.phase = Phase::Inviting(Inviting {
                    first: false,
                    provisional: false,
                    cancelled: false,
                    authenticated: true,
                });
                return vec![Output::Act(Action::SendInvite)];
            }
            let detail = format!("{status} from the target");
            return self.end(Failure::new(failure_for_status(status), detail));
        }
        if inviting.cancelled {
            // The human answered as the ring timeout passed: hang up.
            let mut outputs = vec![Output::Act(Action::HangUp)];
            outputs.extend(self.end(Failure::new(FailureReason::NoAnswer, CANCELLED)));
            return outputs;
        }
        let mut outputs = vec![
            Output::Report(Report::Answered("200 OK from the target")),
            Output::Report(Report::ContextDelivered),
        ];
        if matches!(self.kind, Kind::Attended { .. }) {
            self.phase = Phase::Consulting;
            return outputs;
        }
        outputs.extend(self.join_caller());
        outputs
    }

    /// The human took the call: REFER the caller's gateway, or, with no
    /// caller leg, connected.
    fn join_caller(&mut self) -> Vec<Output> {
        if matches!(
            self.kind,
            Kind::Warm { caller_leg: true } | Kind::Attended { caller_leg: true }
        ) {
            self.phase = Phase::Referring { accepted: false };
            return vec![Output::Act(Action::SendRefer)];
        }
        // No caller leg to join (chat, or a test): answering is
        // connecting, and our own leg, which carries no media past the
        // consult, has done its part.
        let mut outputs = vec![Output::Act(Action::HangUp)];
        outputs.push(Output::Report(Report::Connected(
            "answered; no caller leg to join",
        )));
        outputs.extend(self.complete());
        outputs
    }

    fn on_consulting(&mut self, input: Input<'_>) -> Vec<Output> {
        match input {
            Input::ConsultAccepted if !self.human_hung_up => self.join_caller(),
            // A leg the human hung up cannot be joined, whatever was said.
            Input::ConsultAccepted => {
                self.end(Failure::new(FailureReason::Rejected, "the human hung up"))
            }
            Input::ConsultDeclined { detail } => {
                self.fail_after_answer(Failure::new(FailureReason::Rejected, detail))
            }
            Input::HumanHungUp => {
                self.human_hung_up = true;
                Vec::new()
            }
            _ => Vec::new(),
        }
    }

    fn on_referring(&mut self, accepted: bool, input: Input<'_>) -> Vec<Output> {
        match input {
            Input::ReferResponse { status } if !accepted => {
                if status < 300 {
                    self.phase = Phase::Referring { accepted: true };
                    return Vec::new();
                }
                let detail = format!("REFER answered {status}");
                self.fail_after_answer(Failure::new(failure_for_status(status), detail))
            }
            Input::Unsent { detail } => {
                self.fail_after_answer(Failure::new(FailureReason::Unreachable, detail))
            }
            // A NOTIFY may overtake the 202: its sipfrag counts either way.
            Input::Notify {
                call_id,
                to_tag,
                body,
            } => {
                let ours = call_id == self.subscription.call_id
                    && to_tag == Some(self.subscription.tag.as_str());
                if !ours {
                    return Vec::new();
                }
                self.on_sipfrag(sipfrag_outcome(body))
            }
            Input::NotifyTimedOut => {
                let reason = if self.refer_rang {
                    FailureReason::NoAnswer
                } else {
                    FailureReason::Unreachable
                };
                let detail = "no final NOTIFY for the REFER in time";
                self.fail_after_answer(Failure::new(reason, detail))
            }
            Input::HumanHungUp => {
                self.human_hung_up = true;
                Vec::new()
            }
            _ => Vec::new(),
        }
    }

    fn on_sipfrag(&mut self, outcome: SipfragOutcome) -> Vec<Output> {
        match outcome {
            SipfragOutcome::Progress(code) => {
                if !matches!(code, 180 | 183) || self.refer_rang {
                    return Vec::new();
                }
                self.refer_rang = true;
                // A warm transfer reported ringing from the human's INVITE.
                if self.kind != Kind::Blind {
                    return Vec::new();
                }
                let detail = format!("NOTIFY sipfrag {code}");
                vec![Output::Report(Report::Ringing(detail))]
            }
            SipfragOutcome::Final(Err(failure)) => self.fail_after_answer(failure),
            SipfragOutcome::Final(Ok(())) => {
                let mut outputs = Vec::new();
                if self.kind == Kind::Blind {
                    outputs.push(Output::Report(Report::Answered("NOTIFY sipfrag 200")));
                    outputs.push(Output::Report(Report::ContextDelivered));
                    outputs.push(Output::Report(Report::Connected("REFER succeeded")));
                } else {
                    // The human's phone hangs up our leg when Replaces
                    // takes it; if it does not, the user agent does.
                    if !self.human_hung_up {
                        outputs.push(Output::Act(Action::HangUpUnlessReplaced));
                    }
                    outputs.push(Output::Report(Report::Connected(
                        "REFER with Replaces succeeded",
                    )));
                }
                outputs.extend(self.complete());
                outputs
            }
            SipfragOutcome::None => Vec::new(),
        }
    }

    /// Fails once the human may have answered: a warm transfer's answered
    /// leg is hung up first, unless the human hung up already.
    fn fail_after_answer(&mut self, failure: Failure) -> Vec<Output> {
        let mut outputs = Vec::new();
        if self.kind != Kind::Blind && !self.human_hung_up {
            outputs.push(Output::Act(Action::HangUp));
        }
        outputs.extend(self.end(failure));
        outputs
    }

    fn end(&mut self, failure: Failure) -> Vec<Output> {
        self.phase = Phase::Ended;
        vec![Output::Failed(failure)]
    }

    fn complete(&mut self) -> Vec<Output> {
        self.phase = Phase::Ended;
        vec![Output::Completed]
    }
}
