//! A transfer that a previous process of the connector was running when
//! it stopped (kill -9, or a SIGTERM whose drain timed out), taken over
//! when the control service re-attaches to it: the new process never
//! sends a second INVITE for it. It reads the leg its predecessor noted in
//! the SDK's journal and ends it (CANCEL a ringing INVITE, BYE an answered
//! leg) or, when a REFER was out, follows the REFER's NOTIFYs to learn
//! what became of the caller.

use std::sync::Arc;
use std::time::Duration;

use baton_connector_sdk::{FailureReason, Transfer, TransferEvents};
use baton_sip_transfer::{SipfragOutcome, sipfrag_outcome};
use rsip::Method;

use crate::leg::{self, Dialog, Leg};
use crate::origin::{self, Expected};
use crate::stack::SipStack;

/// The start of every FAILED detail a resumed transfer reports.
pub const INTERRUPTED: &str = "interrupted by a restart of the SIP connector";

/// Ends or follows what `transfer.remembered` names and reports the
/// transfer's one terminal event.
pub async fn resume(
    stack: &Arc<SipStack>,
    notify_timeout: Duration,
    transfer: &Transfer,
    events: &TransferEvents,
) {
    let Some(note) = transfer.remembered.as_deref() else {
        // The predecessor stopped before its INVITE or REFER left.
        let detail = format!("{INTERRUPTED} before anything was sent to the human");
        events.failed(FailureReason::Interrupted, &detail).await;
        return;
    };
    let Some(held) = Leg::from_note(note) else {
        let detail = format!(
            "{INTERRUPTED}; its note of the call could not be read, so the call could not be ended"
        );
        events.failed(FailureReason::Interrupted, &detail).await;
        return;
    };
    tracing::info!(
        leg = leg_name(&held),
        "taking over the leg of an interrupted transfer"
    );
    match held {
        Leg::Referring {
            refer_call_id,
            dialog,
            refer_tag,
        } => {
            let subscription = Subscription {
                call_id: refer_call_id,
                tag: refer_tag,
                gateway: transfer
                    .envelope
                    .conversation
                    .as_ref()
                    .and_then(|c| c.call.as_ref())
                    .map(|call| call.sip_gateway_uri.clone())
                    .unwrap_or_default(),
            };
            follow_refer(stack, notify_timeout, &subscription, dialog, events).await
        }
        // Hand-back is no longer configured (the transfers with it open
        // the address again instead): the human has the customer.
        Leg::HandBackOpen { .. } => {
            events
                .connected("the transfer had connected before the SIP connector restarted")
                .await;
            events
                .completed("its hand-back address ended with the restart")
                .await;
        }
        held => {
            let how = leg::end(stack, held).await;
            let detail = format!("{INTERRUPTED}; {how}");
            events.failed(FailureReason::Interrupted, &detail).await;
        }
    }
}

fn leg_name(held: &Leg) -> &'static str {
    match held {
        Leg::Inviting(_) => "inviting",
        Leg::Answered(_) => "answered",
        Leg::Referring { .. } => "referring",
        Leg::HandBackOpen { .. } => "waiting for a hand-back",
    }
}

/// The REFER a predecessor sent: its Call-ID, its From tag (which the
/// NOTIFYs carry; none in notes of older versions) and the gateway it
/// went to (whose NOTIFYs alone are taken).
struct Subscription {
    call_id: String,
    tag: Option<String>,
    gateway: String,
}

/// The predecessor had sent the REFER, which may well have moved the
/// caller: its NOTIFYs (on the REFER's Call-ID, to this same address) say
/// so. Success is reported as such; a failure, or no final NOTIFY within
/// `notify_timeout`, hangs up the human's leg (warm) and fails.
async fn follow_refer(
    stack: &Arc<SipStack>,
    notify_timeout: Duration,
    subscription: &Subscription,
    dialog: Option<Dialog>,
    events: &TransferEvents,
) {
    if let Some(dialog) = &dialog {
        // The human's phone hangs up our leg once Replaces takes it.
        let expected = leg::expected_in(stack, dialog, None).await;
        stack.remember_answered(&dialog.call_id, expected);
    }
    let expected = match &subscription.tag {
        Some(tag) => {
            let sent_to = stack.resolve(&subscription.gateway).await.ok();
            Some(Expected {
                local_tag: tag.clone(),
                remote_tag: None,
                peers: origin::peers_for(&subscription.gateway, sent_to).await,
            })
        }
        None => None,
    };
    let mut notifies = stack.register_dialog(&subscription.call_id, expected);
    let deadline = tokio::time::sleep(notify_timeout);
    tokio::pin!(deadline);
    let outcome = loop {
        tokio::select! {
            request = notifies.receiver.recv() => {
                let Some(request) = request else { break None };
                if request.method == Method::Notify
                    && let SipfragOutcome::Final(outcome) = sipfrag_outcome(&request.body)
                {
                    break Some(outcome);
                }
            }
            () = &mut deadline => break None,
        }
    };
    match outcome {
        Some(Ok(())) => {
            events
                .connected("the REFER sent before the SIP connector restarted succeeded")
                .await;
            events.completed("").await;
        }
        Some(Err(failure)) => {
            let hung_up = hang_up(stack, dialog).await;
            let detail = format!(
                "{}, after a restart of the SIP connector{hung_up}",
                failure.detail
            );
            events.failed(failure.reason, &detail).await;
        }
        None => {
            let hung_up = hang_up(stack, dialog).await;
            let detail = format!(
                "{INTERRUPTED} while its REFER was out; no final NOTIFY came within {notify_timeout:?}{hung_up}"
            );
            events.failed(FailureReason::Interrupted, &detail).await;
        }
    }
}

async fn hang_up(stack: &Arc<SipStack>, dialog: Option<Dialog>) -> String {
    match dialog {
        Some(dialog) => format!("; {}", leg::end(stack, Leg::Answered(dialog)).await),
        None => String::new(),
    }
}
