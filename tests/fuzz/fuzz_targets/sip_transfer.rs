//! The SIP transfer's state machine (`baton-sip-transfer`) fed any sequence
//! of what the wire and the clock can bring, in any order: responses to the
//! INVITE and the REFER with any status, NOTIFYs in the REFER's dialog or
//! another with a sipfrag or any body, every timer, the human's BYE, send
//! failures, and `start` again. It never panics; one terminal outcome at
//! most, last in its step, and nothing at all after it; COMPLETED only on
//! a 2xx sipfrag in the REFER's own subscription after the REFER went out
//! (or, warm with no caller leg, on the human's 2xx); events and actions
//! only as often and as late as a transfer allows.

#![no_main]

use std::time::Duration;

use baton_sip_transfer::{
    Action, Input, Output, Report, Subscription, TransferProgress, sipfrag_outcome,
};
use libfuzzer_sys::arbitrary::{self, Arbitrary, Unstructured};
use libfuzzer_sys::fuzz_target;

const CALL_ID: &str = "refer@baton";
const TAG: &str = "ours";

/// Statuses the machine treats apart, chosen more often than chance would.
const STATUSES: &[u16] = &[
    100, 180, 183, 199, 200, 202, 299, 300, 401, 403, 407, 408, 480, 486, 487, 500, 600, 603,
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Warm,
    WarmWithoutCallerLeg,
    Blind,
}

#[derive(Debug)]
enum Step {
    Start,
    InviteSent,
    InviteResponse { status: u16, can_authenticate: bool },
    InviteTimedOut,
    RingTimeout,
    CancelTimedOut,
    ReferResponse { status: u16 },
    Unsent,
    Notify { dialog: Dialog, body: Vec<u8> },
    NotifyTimedOut,
    HumanHungUp,
}

/// Which dialog a NOTIFY claims.
#[derive(Debug, Clone)]
enum Dialog {
    /// The REFER's subscription: its Call-ID and our tag.
    Ours,
    OtherCallId(String),
    OtherTag(Option<String>),
}

impl Dialog {
    /// Whether the NOTIFY carries the subscription's Call-ID and our tag
    /// (the fuzzer may well spell them out as "another" dialog).
    fn is_ours(&self) -> bool {
        match self {
            Self::Ours => true,
            Self::OtherCallId(call_id) => call_id == CALL_ID,
            Self::OtherTag(tag) => tag.as_deref() == Some(TAG),
        }
    }
}

#[derive(Debug)]
struct Script {
    kind: Kind,
    steps: Vec<Step>,
}

fn status(u: &mut Unstructured<'_>) -> arbitrary::Result<u16> {
    if u.ratio(3, 4)? {
        u.choose(STATUSES).copied()
    } else {
        u16::arbitrary(u)
    }
}

impl<'a> Arbitrary<'a> for Dialog {
    fn arbitrary(u: &mut Unstructured<'a>) -> arbitrary::Result<Self> {
        Ok(match u.int_in_range(0..=3)? {
            0 => Self::OtherCallId(String::arbitrary(u)?),
            1 => Self::OtherTag(Option::<String>::arbitrary(u)?),
            _ => Self::Ours,
        })
    }
}

impl<'a> Arbitrary<'a> for Step {
    fn arbitrary(u: &mut Unstructured<'a>) -> arbitrary::Result<Self> {
        Ok(match u.int_in_range(0..=10)? {
            0 => Self::Start,
            1 => Self::InviteSent,
            2 => Self::InviteResponse {
                status: status(u)?,
                can_authenticate: bool::arbitrary(u)?,
            },
            3 => Self::InviteTimedOut,
            4 => Self::RingTimeout,
            5 => Self::CancelTimedOut,
            6 => Self::ReferResponse { status: status(u)? },
            7 => Self::Unsent,
            8 => {
                let dialog = Dialog::arbitrary(u)?;
                let body = if u.ratio(3, 4)? {
                    format!("SIP/2.0 {} Whatever\r\n", status(u)?).into_bytes()
                } else {
                    Vec::<u8>::arbitrary(u)?
                };
                Self::Notify { dialog, body }
            }
            9 => Self::NotifyTimedOut,
            _ => Self::HumanHungUp,
        })
    }
}

impl<'a> Arbitrary<'a> for Script {
    fn arbitrary(u: &mut Unstructured<'a>) -> arbitrary::Result<Self> {
        let kind = *u.choose(&[Kind::Warm, Kind::WarmWithoutCallerLeg, Kind::Blind])?;
        let mut steps = vec![Step::Start];
        steps.extend(
            u.arbitrary_iter::<Step>()?
                .take(64)
                .collect::<Result<Vec<_>, _>>()?,
        );
        Ok(Self { kind, steps })
    }
}

/// What the outputs so far add up to.
#[derive(Default)]
struct Seen {
    started: bool,
    ended: bool,
    offered: u32,
    ringing: u32,
    answered: u32,
    connected: u32,
    invites: u32,
    cancels: u32,
    refers: u32,
    hang_ups: u32,
}

fuzz_target!(|script: Script| {
    let subscription = Subscription {
        call_id: CALL_ID.into(),
        tag: TAG.into(),
    };
    let timer_b = Duration::from_secs(32);
    let mut progress = match script.kind {
        Kind::Warm => TransferProgress::warm(subscription, true, timer_b),
        Kind::WarmWithoutCallerLeg => TransferProgress::warm(subscription, false, timer_b),
        Kind::Blind => TransferProgress::blind(subscription),
    };
    let mut seen = Seen::default();
    for step in &script.steps {
        let other_tag;
        let outputs = match step {
            Step::Start => {
                seen.started = true;
                progress.start()
            }
            Step::InviteSent => progress.on(Input::InviteSent),
            &Step::InviteResponse {
                status,
                can_authenticate,
            } => progress.on(Input::InviteResponse {
                status,
                can_authenticate,
            }),
            Step::InviteTimedOut => progress.on(Input::InviteTimedOut),
            Step::RingTimeout => progress.on(Input::RingTimeout),
            Step::CancelTimedOut => progress.on(Input::CancelTimedOut),
            &Step::ReferResponse { status } => progress.on(Input::ReferResponse { status }),
            Step::Unsent => progress.on(Input::Unsent { detail: "unsent" }),
            Step::Notify { dialog, body } => {
                let (call_id, to_tag) = match dialog {
                    Dialog::Ours => (CALL_ID, Some(TAG)),
                    Dialog::OtherCallId(call_id) => (call_id.as_str(), Some(TAG)),
                    Dialog::OtherTag(tag) => {
                        other_tag = tag.clone();
                        (CALL_ID, other_tag.as_deref())
                    }
                };
                progress.on(Input::Notify {
                    call_id,
                    to_tag,
                    body,
                })
            }
            Step::NotifyTimedOut => progress.on(Input::NotifyTimedOut),
            Step::HumanHungUp => progress.on(Input::HumanHungUp),
        };
        check(script.kind, step, &outputs, &mut seen);
        assert_eq!(progress.is_ended(), seen.ended);
        let timers = [
            progress.awaits_invite_response(),
            progress.rings(),
            progress.cancels(),
            progress.awaits_refer_response(),
        ];
        assert!(timers.iter().filter(|on| **on).count() <= 1, "{timers:?}");
        if seen.ended {
            assert_eq!(timers, [false; 4], "a timer runs after the end");
        }
    }
});

/// The invariants of one step's outputs, given everything before it.
fn check(kind: Kind, step: &Step, outputs: &[Output], seen: &mut Seen) {
    if seen.ended || !seen.started {
        assert!(
            outputs.is_empty(),
            "{outputs:?} after the end or before the start"
        );
        return;
    }
    for (i, output) in outputs.iter().enumerate() {
        if output.is_terminal() {
            assert_eq!(
                i,
                outputs.len() - 1,
                "the terminal outcome is not last: {outputs:?}"
            );
            seen.ended = true;
        }
        match output {
            Output::Completed => completed_rightly(kind, step, seen),
            Output::Failed(failure) => assert!(!failure.detail.is_empty()),
            Output::Report(Report::Offered(_)) => seen.offered += 1,
            Output::Report(Report::Ringing(_)) => seen.ringing += 1,
            Output::Report(Report::Answered(_)) => seen.answered += 1,
            Output::Report(Report::ContextDelivered) => assert!(seen.answered > 0),
            Output::Report(Report::Connected(_)) => {
                seen.connected += 1;
                assert_eq!(
                    outputs.last(),
                    Some(&Output::Completed),
                    "CONNECTED without COMPLETED"
                );
            }
            Output::Act(Action::SendInvite) => seen.invites += 1,
            Output::Act(Action::CancelInvite) => seen.cancels += 1,
            Output::Act(Action::SendRefer) => seen.refers += 1,
            Output::Act(Action::HangUp | Action::HangUpUnlessReplaced) => {
                seen.hang_ups += 1;
                assert_ne!(kind, Kind::Blind, "a blind transfer holds no leg of ours");
                assert!(
                    matches!(
                        step,
                        Step::InviteResponse {
                            status: 200..=299,
                            ..
                        }
                    ) || seen.answered > 0
                );
            }
        }
    }
    assert!(seen.offered <= 1 && seen.ringing <= 1 && seen.answered <= 1 && seen.connected <= 1);
    // The first INVITE and one answer to a challenge; one CANCEL each.
    assert!(seen.invites <= 2 && seen.cancels <= seen.invites && seen.refers <= 1);
    assert!(seen.hang_ups <= 1, "the human's leg is hung up once");
    if kind == Kind::Blind {
        assert_eq!(seen.invites, 0);
    }
}

/// COMPLETED comes from a 2xx sipfrag of the REFER's own subscription once
/// the REFER is out, or (warm, no caller leg) from the human's 2xx.
fn completed_rightly(kind: Kind, step: &Step, seen: &Seen) {
    match step {
        Step::Notify { dialog, body } => {
            assert!(dialog.is_ours(), "COMPLETED on another dialog's NOTIFY");
            assert!(matches!(
                sipfrag_outcome(body),
                baton_sip_transfer::SipfragOutcome::Final(Ok(()))
            ));
            assert_eq!(seen.refers, 1, "COMPLETED before the REFER went out");
            assert!(kind == Kind::Blind || seen.answered == 1);
        }
        Step::InviteResponse { status, .. } => {
            assert_eq!(kind, Kind::WarmWithoutCallerLeg);
            assert!((200..300).contains(status));
        }
        other => panic!("COMPLETED on {other:?}"),
    }
}
