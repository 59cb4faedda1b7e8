//! Callbacks as the connector runs them: once the agent accepted (and has
//! the screen pop), the SIP user agent calls the agent's phone with the
//! context, then dials the customer (`VoiceLegs::call_back`), and its
//! progress becomes the transfer's: the agent leg's ringing, answered and
//! context delivered, CALLBACK_DIALING per dial of the customer, then
//! CONNECTED or FAILED. The number never reaches a log or an event.

use baton_connector_sdk::{FailureReason, Transfer, TransferEvents, mask_number};
use baton_proto::connector::v1::TransferEventKind;
use baton_sip_stack::CallBack;

use super::{QueueConnector, Voice};
use crate::domain::{CallbackRequest, Dial};

/// What a callback's transfer does once its contact is connected to an
/// agent, given how far the dial went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Next {
    /// Not dialed yet (just accepted, or accepted before a restart): dial.
    Dial,
    /// The customer answered before a restart: the call is the phones'
    /// (media flows phone to phone), so it is reported connected.
    Connected,
    /// A restart cut a dial short: its signalling is gone with the
    /// process, and a second dial would call the customer twice.
    Interrupted,
}

/// What to do with a callback contact connected to its agent, when its
/// transfer is not dialing (this process's own dial runs to its end before
/// the transfer looks again).
pub(super) fn next(callback: &CallbackRequest) -> Next {
    match callback.dial {
        Dial::NotYet => Next::Dial,
        Dial::Connected => Next::Connected,
        Dial::Dialing { .. } => Next::Interrupted,
    }
}

impl QueueConnector {
    /// Follows a callback contact connected to its agent: dials, unless a
    /// restart came between (see [`Next`]).
    pub(super) async fn follow_callback(
        &self,
        transfer: &Transfer,
        callback: &CallbackRequest,
        agent_name: &str,
        events: &TransferEvents,
    ) -> Result<(), (FailureReason, String)> {
        let Some(voice) = self.voice.as_deref() else {
            return Err((
                FailureReason::Unsupported,
                "callback: voice is off in this queue, so nobody can dial the customer".into(),
            ));
        };
        match next(callback) {
            Next::Dial => {
                events
                    .context_delivered(&format!(
                        "callback accepted by {agent_name}; screen pop shown in the agent desktop"
                    ))
                    .await;
                self.call_back(voice, transfer, callback, agent_name, events)
                    .await
            }
            Next::Connected => {
                events
                    .connected(&format!(
                        "callback: the customer is connected to {agent_name}"
                    ))
                    .await;
                Ok(())
            }
            Next::Interrupted => Err((
                FailureReason::Interrupted,
                "callback: the queue restarted while dialing the customer; not dialed twice".into(),
            )),
        }
    }

    /// Calls the agent who accepted at their contact address, then the
    /// customer, reporting as it goes; returns once the two are connected,
    /// or the failure (the last dial's reason) otherwise.
    async fn call_back(
        &self,
        voice: &Voice,
        transfer: &Transfer,
        callback: &CallbackRequest,
        agent_name: &str,
        events: &TransferEvents,
    ) -> Result<(), (FailureReason, String)> {
        let target = self.agent_phone(transfer, agent_name, "to call the customer back from")?;
        let number = callback.number.clone();
        let attempts = voice.callback.attempts;
        let call = CallBack {
            // Same handoff and attempt, so that `cancel` finds the call.
            transfer: Transfer {
                target,
                mode: voice.mode,
                callback: None,
                ..transfer.clone()
            },
            customer: number.clone(),
            attempts,
            retry_delay: voice.callback.retry_delay,
            customer_ring_timeout: voice.callback.customer_ring_timeout,
        };
        // Whatever the SIP side says, the customer's number shows masked.
        let masked = mask_number(&number);
        let scrub = |detail: &str| detail.replace(&number, &masked);
        let (call_events, mut received) = TransferEvents::channel();
        let forward = async {
            let mut dials = 0;
            while let Some(event) = received.recv().await {
                let detail = scrub(&event.detail);
                let agent_leg = format!("callback, {agent_name}'s phone: {detail}");
                match TransferEventKind::try_from(event.kind) {
                    Ok(TransferEventKind::Ringing) => events.ringing(&agent_leg).await,
                    Ok(TransferEventKind::Answered) => events.answered(&agent_leg).await,
                    Ok(TransferEventKind::ContextDelivered) => {
                        events.context_delivered(&agent_leg).await
                    }
                    Ok(TransferEventKind::CallbackDialing) => {
                        dials += 1;
                        self.desk.note_dial(
                            &transfer.handoff_id,
                            Dial::Dialing {
                                attempt: dials,
                                of: attempts,
                            },
                        );
                        events
                            .callback_dialing(&format!("calling the customer back: {detail}"))
                            .await;
                    }
                    Ok(TransferEventKind::Connected) => {
                        self.desk.note_dial(&transfer.handoff_id, Dial::Connected);
                        events
                            .connected(&format!(
                                "callback: the customer is connected to {agent_name}"
                            ))
                            .await;
                        return Ok(());
                    }
                    Ok(TransferEventKind::Failed) => {
                        let reason = FailureReason::try_from(event.failure_reason)
                            .unwrap_or(FailureReason::Unreachable);
                        return Err((reason, format!("callback: {detail}")));
                    }
                    Ok(TransferEventKind::Cancelled) => {
                        return Err((FailureReason::Unreachable, format!("callback: {detail}")));
                    }
                    _ => {}
                }
            }
            Err((
                FailureReason::Unreachable,
                "callback: the call ended without connecting".to_owned(),
            ))
        };
        let ((), outcome) = tokio::join!(voice.legs.call_back(call, call_events), forward);
        outcome
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(dial: Dial) -> CallbackRequest {
        CallbackRequest {
            number: "+15550100123".into(),
            window_start: None,
            window_end: None,
            dial,
        }
    }

    #[test]
    fn a_restart_never_dials_twice() {
        assert_eq!(next(&at(Dial::NotYet)), Next::Dial);
        let dialing = Dial::Dialing { attempt: 1, of: 3 };
        assert_eq!(next(&at(dialing)), Next::Interrupted);
        assert_eq!(next(&at(Dial::Connected)), Next::Connected);
    }
}
