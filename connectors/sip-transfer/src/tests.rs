use std::time::Duration;

use super::*;

const CALL_ID: &str = "refer@baton";
const TAG: &str = "ours";

fn subscription() -> Subscription {
    Subscription {
        call_id: CALL_ID.into(),
        tag: TAG.into(),
    }
}

fn warm() -> TransferProgress {
    TransferProgress::warm(subscription(), true, Duration::from_secs(32))
}

fn invite(status: u16) -> Input<'static> {
    Input::InviteResponse {
        status,
        can_authenticate: false,
    }
}

fn notify(body: &'static str) -> Input<'static> {
    Input::Notify {
        call_id: CALL_ID,
        to_tag: Some(TAG),
        body: body.as_bytes(),
    }
}

fn failed(outputs: &[Output]) -> Option<(FailureReason, &str)> {
    match outputs.last() {
        Some(Output::Failed(failure)) => Some((failure.reason, failure.detail.as_str())),
        _ => None,
    }
}

/// A warm transfer whose human answered and whose REFER is out.
fn referring() -> TransferProgress {
    let mut progress = warm();
    progress.start();
    progress.on(Input::InviteSent);
    progress.on(invite(180));
    let outputs = progress.on(invite(200));
    assert_eq!(outputs.last(), Some(&Output::Act(Action::SendRefer)));
    progress
}

#[test]
fn a_warm_transfer_completes_only_on_a_2xx_sipfrag_of_its_own_subscription() {
    let mut progress = warm();
    assert_eq!(progress.start(), [Output::Act(Action::SendInvite)]);
    assert_eq!(
        progress.on(Input::InviteSent),
        [Output::Report(Report::Offered("INVITE sent to the target"))]
    );
    assert!(progress.on(invite(100)).is_empty());
    assert_eq!(
        progress.on(invite(180)),
        [Output::Report(Report::Ringing(
            "180 from the target".into()
        ))]
    );
    assert!(progress.on(invite(183)).is_empty(), "ringing is said once");
    assert_eq!(
        progress.on(invite(200)),
        [
            Output::Report(Report::Answered("200 OK from the target")),
            Output::Report(Report::ContextDelivered),
            Output::Act(Action::SendRefer),
        ]
    );
    // A 202 is not success, nor a 200 sipfrag in another dialog.
    assert!(progress.on(Input::ReferResponse { status: 202 }).is_empty());
    for (call_id, to_tag) in [
        ("other@baton", Some(TAG)),
        (CALL_ID, Some("theirs")),
        (CALL_ID, None),
    ] {
        let forged = Input::Notify {
            call_id,
            to_tag,
            body: b"SIP/2.0 200 OK\r\n",
        };
        assert!(progress.on(forged).is_empty());
    }
    assert!(progress.on(notify("SIP/2.0 100 Trying\r\n")).is_empty());
    assert!(!progress.is_ended());
    assert_eq!(
        progress.on(notify("SIP/2.0 200 OK\r\n")),
        [
            Output::Act(Action::HangUpUnlessReplaced),
            Output::Report(Report::Connected("REFER with Replaces succeeded")),
            Output::Completed,
        ]
    );
    assert!(progress.is_ended());
    assert!(
        progress
            .on(notify("SIP/2.0 503 Unavailable\r\n"))
            .is_empty()
    );
    assert!(progress.on(Input::NotifyTimedOut).is_empty());
}

#[test]
fn a_notify_that_overtakes_the_202_counts_and_the_late_202_does_nothing() {
    let mut progress = referring();
    let outputs = progress.on(notify("SIP/2.0 200 OK\r\n"));
    assert_eq!(outputs.last(), Some(&Output::Completed));
    assert!(progress.on(Input::ReferResponse { status: 202 }).is_empty());
}

#[test]
fn a_refer_that_fails_hangs_up_the_humans_leg_unless_they_hung_up() {
    let mut progress = referring();
    let outputs = progress.on(Input::ReferResponse { status: 403 });
    assert_eq!(outputs[0], Output::Act(Action::HangUp));
    assert_eq!(
        failed(&outputs),
        Some((FailureReason::Rejected, "REFER answered 403"))
    );

    let mut progress = referring();
    progress.on(Input::ReferResponse { status: 202 });
    let outputs = progress.on(notify("SIP/2.0 486 Busy Here\r\n"));
    assert_eq!(outputs[0], Output::Act(Action::HangUp));
    assert_eq!(
        failed(&outputs),
        Some((FailureReason::Busy, "NOTIFY sipfrag 486"))
    );

    let mut progress = referring();
    progress.on(Input::HumanHungUp);
    let outputs = progress.on(Input::Unsent {
        detail: "no response",
    });
    assert_eq!(outputs.len(), 1, "{outputs:?}");
    assert_eq!(
        failed(&outputs),
        Some((FailureReason::Unreachable, "no response"))
    );

    // Replaces took the leg: nothing left to hang up.
    let mut progress = referring();
    progress.on(Input::HumanHungUp);
    assert_eq!(
        progress.on(notify("SIP/2.0 200 OK\r\n")),
        [
            Output::Report(Report::Connected("REFER with Replaces succeeded")),
            Output::Completed,
        ]
    );
}

#[test]
fn no_final_notify_is_unreachable_unless_the_target_rang() {
    let mut progress = referring();
    progress.on(Input::ReferResponse { status: 202 });
    let outputs = progress.on(Input::NotifyTimedOut);
    assert_eq!(
        failed(&outputs).map(|f| f.0),
        Some(FailureReason::Unreachable)
    );

    let mut progress = referring();
    // The human's INVITE rang; the REFER's target did not.
    assert!(progress.on(notify("SIP/2.0 180 Ringing\r\n")).is_empty());
    let outputs = progress.on(Input::NotifyTimedOut);
    assert_eq!(failed(&outputs).map(|f| f.0), Some(FailureReason::NoAnswer));
}

#[test]
fn a_silent_target_fails_on_timer_b_and_is_never_cancelled() {
    let mut progress = warm();
    progress.start();
    progress.on(Input::InviteSent);
    assert!(progress.awaits_invite_response());
    assert!(!progress.rings());
    assert!(progress.on(Input::RingTimeout).is_empty());
    let outputs = progress.on(Input::InviteTimedOut);
    let (reason, detail) = failed(&outputs).expect("failed");
    assert_eq!(reason, FailureReason::Unreachable);
    assert!(
        detail.contains("timer B") && detail.contains("32s"),
        "{detail}"
    );
}

#[test]
fn the_ring_timeout_cancels_and_whatever_ends_the_invite_is_no_answer() {
    let ringing_then_cancelled = || {
        let mut progress = warm();
        progress.start();
        progress.on(Input::InviteSent);
        progress.on(invite(180));
        assert!(progress.rings());
        assert!(
            progress.on(Input::InviteTimedOut).is_empty(),
            "timer B stops"
        );
        assert_eq!(
            progress.on(Input::RingTimeout),
            [Output::Act(Action::CancelInvite)]
        );
        assert!(progress.cancels() && !progress.rings());
        assert!(progress.on(Input::RingTimeout).is_empty(), "one CANCEL");
        progress
    };
    let no_answer = Some((FailureReason::NoAnswer, "ring timeout; cancelled"));

    let mut progress = ringing_then_cancelled();
    assert_eq!(failed(&progress.on(invite(487))), no_answer);

    let mut progress = ringing_then_cancelled();
    let outputs = progress.on(invite(200));
    assert_eq!(outputs[0], Output::Act(Action::HangUp), "answered too late");
    assert_eq!(failed(&outputs), no_answer);

    let mut progress = ringing_then_cancelled();
    assert_eq!(failed(&progress.on(Input::CancelTimedOut)), no_answer);
}

#[test]
fn one_challenge_is_answered_and_a_second_fails() {
    let mut progress = warm();
    progress.start();
    progress.on(Input::InviteSent);
    let challenged = Input::InviteResponse {
        status: 407,
        can_authenticate: true,
    };
    assert_eq!(progress.on(challenged), [Output::Act(Action::SendInvite)]);
    assert!(progress.on(Input::InviteSent).is_empty(), "offered once");
    assert!(progress.awaits_invite_response(), "timers start again");
    assert_eq!(
        failed(&progress.on(challenged)),
        Some((FailureReason::Unreachable, "407 from the target"))
    );

    let mut progress = warm();
    progress.start();
    assert_eq!(
        failed(&progress.on(invite(401))),
        Some((FailureReason::Unreachable, "401 from the target")),
        "no credentials for the challenge"
    );
}

#[test]
fn a_refusal_of_the_invite_is_the_reason_its_status_means() {
    for (status, reason) in [
        (486, FailureReason::Busy),
        (480, FailureReason::NoAnswer),
        (603, FailureReason::Rejected),
        (404, FailureReason::Unreachable),
    ] {
        let mut progress = warm();
        progress.start();
        let outputs = progress.on(invite(status));
        assert_eq!(outputs.len(), 1, "nothing to hang up: {outputs:?}");
        assert_eq!(failed(&outputs).map(|f| f.0), Some(reason));
    }
}

#[test]
fn without_a_caller_leg_answering_is_connecting() {
    let mut progress = TransferProgress::warm(subscription(), false, Duration::from_secs(32));
    progress.start();
    assert_eq!(
        progress.on(invite(200)),
        [
            Output::Report(Report::Answered("200 OK from the target")),
            Output::Report(Report::ContextDelivered),
            Output::Act(Action::HangUp),
            Output::Report(Report::Connected("answered; no caller leg to join")),
            Output::Completed,
        ]
    );
}

#[test]
fn a_blind_transfer_reports_the_sipfrags_and_holds_nothing_to_hang_up() {
    let mut progress = TransferProgress::blind(subscription());
    assert_eq!(
        progress.start(),
        [
            Output::Report(Report::Offered("REFER sent to the caller's gateway")),
            Output::Act(Action::SendRefer),
        ]
    );
    assert!(progress.on(invite(200)).is_empty(), "no INVITE of ours");
    assert_eq!(
        progress.on(notify("SIP/2.0 180 Ringing\r\n")),
        [Output::Report(Report::Ringing("NOTIFY sipfrag 180".into()))]
    );
    assert!(progress.on(notify("SIP/2.0 183 Progress\r\n")).is_empty());
    assert_eq!(
        progress.on(notify("SIP/2.0 200 OK\r\n")),
        [
            Output::Report(Report::Answered("NOTIFY sipfrag 200")),
            Output::Report(Report::ContextDelivered),
            Output::Report(Report::Connected("REFER succeeded")),
            Output::Completed,
        ]
    );

    let mut progress = TransferProgress::blind(subscription());
    progress.start();
    assert_eq!(
        progress.on(Input::ReferResponse { status: 603 }),
        [Output::Failed(Failure::new(
            FailureReason::Rejected,
            "REFER answered 603"
        ))]
    );
}

#[test]
fn nothing_happens_before_the_start() {
    let mut progress = warm();
    assert!(progress.on(invite(200)).is_empty());
    assert!(progress.on(notify("SIP/2.0 200 OK\r\n")).is_empty());
    assert!(!progress.is_ended());
    assert_eq!(progress.start().len(), 1);
    assert!(progress.start().is_empty(), "started once");
}

#[test]
fn every_final_status_maps_to_the_reason_the_control_service_falls_back_on() {
    assert_eq!(failure_for_status(486), FailureReason::Busy);
    assert_eq!(failure_for_status(600), FailureReason::Busy);
    assert_eq!(failure_for_status(480), FailureReason::NoAnswer);
    assert_eq!(failure_for_status(408), FailureReason::NoAnswer);
    assert_eq!(failure_for_status(603), FailureReason::Rejected);
    assert_eq!(failure_for_status(404), FailureReason::Unreachable);
    assert_eq!(failure_for_status(503), FailureReason::Unreachable);
}

/// An attended transfer whose human answered and is deciding.
fn consulting(caller_leg: bool) -> TransferProgress {
    let mut progress =
        TransferProgress::attended(subscription(), caller_leg, Duration::from_secs(32));
    progress.start();
    progress.on(Input::InviteSent);
    let outputs = progress.on(invite(200));
    assert_eq!(
        outputs,
        [
            Output::Report(Report::Answered("200 OK from the target")),
            Output::Report(Report::ContextDelivered),
        ],
        "nothing goes to the caller's gateway before the human decides"
    );
    assert!(progress.consults());
    progress
}

#[test]
fn an_accepted_consult_sends_the_refer_and_completes_on_its_sipfrag() {
    let mut progress = consulting(true);
    // Nothing of the REFER's applies while the human decides.
    assert!(progress.on(notify("SIP/2.0 200 OK")).is_empty());
    assert!(progress.on(Input::NotifyTimedOut).is_empty());
    assert_eq!(
        progress.on(Input::ConsultAccepted),
        [Output::Act(Action::SendRefer)]
    );
    assert!(!progress.consults());
    progress.on(Input::ReferResponse { status: 202 });
    let outputs = progress.on(notify("SIP/2.0 200 OK"));
    assert_eq!(outputs.last(), Some(&Output::Completed));
}

#[test]
fn a_declined_consult_hangs_up_and_fails_rejected() {
    let mut progress = consulting(true);
    let outputs = progress.on(Input::ConsultDeclined {
        detail: "the human pressed 2 to decline",
    });
    assert_eq!(outputs[0], Output::Act(Action::HangUp));
    assert_eq!(
        failed(&outputs),
        Some((FailureReason::Rejected, "the human pressed 2 to decline"))
    );
    assert!(progress.is_ended());
    assert!(
        progress.on(Input::ConsultAccepted).is_empty(),
        "nothing after the end"
    );
}

#[test]
fn a_consult_the_human_hung_up_fails_rejected_without_a_bye_of_ours() {
    let mut progress = consulting(true);
    assert!(progress.on(Input::HumanHungUp).is_empty());
    let outputs = progress.on(Input::ConsultDeclined {
        detail: "the human hung up during the consult",
    });
    assert_eq!(outputs.len(), 1, "no HangUp: {outputs:?}");
    assert_eq!(failed(&outputs).map(|f| f.0), Some(FailureReason::Rejected));
    // An accept racing the hang-up cannot join a leg that is gone.
    let mut progress = consulting(true);
    progress.on(Input::HumanHungUp);
    let outputs = progress.on(Input::ConsultAccepted);
    assert_eq!(failed(&outputs).map(|f| f.0), Some(FailureReason::Rejected));
}

#[test]
fn an_accepted_consult_without_a_caller_leg_connects_and_hangs_up() {
    let mut progress = consulting(false);
    let outputs = progress.on(Input::ConsultAccepted);
    assert_eq!(outputs[0], Output::Act(Action::HangUp));
    assert!(matches!(outputs[1], Output::Report(Report::Connected(_))));
    assert_eq!(outputs.last(), Some(&Output::Completed));
}

#[test]
fn an_attended_transfer_that_is_not_answered_fails_as_warm_does() {
    let mut progress = TransferProgress::attended(subscription(), true, Duration::from_secs(32));
    progress.start();
    progress.on(Input::InviteSent);
    let outputs = progress.on(invite(486));
    assert_eq!(failed(&outputs).map(|f| f.0), Some(FailureReason::Busy));
    assert!(!progress.consults());
}
