//! Joins the two answered legs of a callback: a re-INVITE in the agent's
//! dialog offers the customer's SDP (the agent stops being held and the
//! phones send media to each other), then a relay waits for either phone's
//! BYE and hangs up the other.

use std::sync::Arc;

use baton_connector_sdk::FailureReason;
use rsip::Method;
use tokio::time::Instant;

use super::{Answered, HangUp, sdp};
use crate::leg::{self, Dialog};
use crate::message;
use crate::stack::{ALLOW, SipStack, Transport, random_token};
use crate::transfer::{Failure, failure_for_status, unreachable};

/// The joined call, until one of the phones hangs up.
pub(super) struct Relay {
    agent: (Dialog, HangUp),
    customer: (Dialog, HangUp),
}

/// Re-INVITEs the agent with the customer's SDP. On failure both legs are
/// hung up: a customer who answered must not be left in silence.
pub(super) async fn join(
    stack: &Arc<SipStack>,
    agent: Answered,
    customer: Answered,
) -> Result<Relay, Failure> {
    let Answered {
        dialog: mut agent_dialog,
        hung_up: agent_hung_up,
        ..
    } = agent;
    // Version 1: the placeholder the agent answered first was version 0.
    let offer = sdp::reoffer(&customer.sdp, stack.local_addr().ip(), 1);
    if let Err(failure) = reinvite(stack, &mut agent_dialog, &offer).await {
        leg::spawn_bye(stack, agent_dialog);
        leg::spawn_bye(stack, customer.dialog);
        return Err(Failure::new(
            failure.reason,
            format!("joining the agent to the customer: {}", failure.detail),
        ));
    }
    Ok(Relay {
        agent: (agent_dialog, agent_hung_up),
        customer: (customer.dialog, customer.hung_up),
    })
}

impl Relay {
    /// In the background: when either phone hangs up (the stack answers
    /// its BYE), BYE the other. A leg forgotten otherwise ends the relay
    /// without a BYE.
    pub(super) fn spawn(self, stack: &Arc<SipStack>) {
        let stack = stack.clone();
        let Self {
            agent: (agent, mut agent_hung_up),
            customer: (customer, mut customer_hung_up),
        } = self;
        tokio::spawn(async move {
            let other = tokio::select! {
                hung_up = agent_hung_up.ended() => hung_up.then_some((customer, "the agent")),
                hung_up = customer_hung_up.ended() => hung_up.then_some((agent, "the customer")),
            };
            if let Some((other, who)) = other {
                tracing::info!("{who} hung up the callback; hanging up the other party");
                if let Err(error) = leg::bye(&stack, other).await {
                    tracing::warn!(%error, "BYE to the other party of a callback failed");
                }
            }
        });
    }
}

/// An INVITE in `dialog` (RFC 3261 14: the next CSeq, the dialog's tags
/// and route set) carrying `sdp`, acknowledged end to end on its 2xx; a
/// client INVITE transaction of its own (timer A on UDP, timer B) since
/// the agent's phone answers a re-INVITE at once, without ringing.
async fn reinvite(stack: &Arc<SipStack>, dialog: &mut Dialog, sdp: &str) -> Result<(), Failure> {
    dialog.cseq += 1;
    let branch = format!("z9hG4bK{}", random_token());
    let to = leg::dialog_destination(stack, dialog)
        .await
        .map_err(|e| unreachable(&e))?;
    let routes = leg::route_lines(dialog);
    let mut lines = leg::in_dialog_lines(stack, dialog, &branch, to, dialog.cseq, &Method::Invite);
    lines.push(("Contact".into(), stack.contact(to.transport)));
    lines.push(("Allow".into(), ALLOW.into()));
    lines.extend(routes.iter().cloned());
    lines.push(("Content-Type".into(), "application/sdp".into()));
    let bytes = message::render_request(
        Method::Invite,
        &dialog.remote_target,
        &lines,
        sdp.as_bytes(),
    )
    .map_err(|e| Failure::new(FailureReason::ConnectorError, e))?;
    let mut registration = stack.register_transaction(&branch, &Method::Invite, to);
    stack.send(&bytes, to).await.map_err(|e| unreachable(&e))?;
    let timer_b = Instant::now() + stack.t1() * 64;
    let mut interval = stack.t1();
    let mut provisional = false;
    loop {
        tokio::select! {
            response = registration.receiver.recv() => {
                let Some(response) = response else {
                    return Err(Failure::new(FailureReason::ConnectorError, "transaction closed"));
                };
                let status = response.status_code.code();
                if status < 200 {
                    provisional = true;
                } else if status < 300 {
                    leg::ack_answer(stack, &lines, &response, dialog, to).await;
                    return Ok(());
                } else {
                    // Non-2xx: the ACK is the transaction's, with its branch
                    // and the INVITE's Route.
                    let ack = leg::ack_lines(&lines, &response, &branch, dialog.cseq, &routes);
                    if let Ok(ack) =
                        message::render_request(Method::Ack, &dialog.remote_target, &ack, b"")
                    {
                        let _ = stack.send(&ack, to).await;
                    }
                    return Err(Failure::new(
                        failure_for_status(status),
                        format!("{status} to the re-INVITE"),
                    ));
                }
            }
            () = tokio::time::sleep(interval), if !provisional && to.transport == Transport::Udp => {
                interval *= 2;
                stack.send(&bytes, to).await.map_err(|e| unreachable(&e))?;
            }
            // Bounds the whole exchange, provisional or not: a phone that
            // never answers its re-INVITE leaves nothing to join.
            () = tokio::time::sleep_until(timer_b) => {
                return Err(Failure::new(
                    FailureReason::Unreachable,
                    "no final response to the re-INVITE (timer B)",
                ));
            }
        }
    }
}
