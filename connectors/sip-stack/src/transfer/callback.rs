//! The signalling of an agent-first callback ([`CallBack`]): the agent's
//! leg and every customer dial are client INVITEs of [`invite`](super::invite)
//! (retransmission, timer B, ring timeout and CANCEL, digest through the
//! trunk's credentials), each followed by the progress of an attended
//! transfer without a caller leg: its "consulting" state is exactly "the
//! phone answered and we hold the leg", which is where a callback leg stops
//! and [`join`] takes over.
//!
//! Both legs sit in the transfers' legs (the customer's under
//! [`customer_key`]), so that `cancel` ends them even after the caller
//! dropped the callback's future.

mod join;
mod sdp;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use baton_connector_sdk::{FailureReason, Transfer, TransferEvents, TransferTarget};
use baton_sip_transfer::TransferProgress;
use tokio::sync::{oneshot, watch};

use super::context::Destination;
use super::invite::Call;
use super::{Failure, Flow, Held, Run, Transfers, delivered_detail, new_subscription};
use crate::callback::CallBack;
use crate::leg::{self, Dialog};

/// The callbacks under way, by (handoff id, attempt): `cancel` sets their
/// flag, and the callback stops where it is (its legs are `cancel`'s to end).
#[derive(Clone, Default)]
pub(super) struct Running(Arc<Mutex<CancelFlags>>);

type CancelFlags = HashMap<(String, u32), watch::Sender<bool>>;

impl Running {
    fn lock(&self) -> std::sync::MutexGuard<'_, CancelFlags> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn start(&self, key: (String, u32)) -> watch::Receiver<bool> {
        let (cancel, cancelled) = watch::channel(false);
        self.lock().insert(key, cancel);
        cancelled
    }

    fn end(&self, key: &(String, u32)) {
        self.lock().remove(key);
    }

    pub(super) fn cancel(&self, key: &(String, u32)) {
        if let Some(cancel) = self.lock().remove(key) {
            cancel.send_replace(true);
        }
    }
}

/// Where the customer's leg of `transfer`'s callback is held: apart from
/// the agent's, which is under the transfer's own key.
pub(super) fn customer_key(transfer: &Transfer) -> (String, u32) {
    (customer_transfer(transfer, "").handoff_id, transfer.attempt)
}

/// The customer's dial as a transfer of its own: the number as target, no
/// context (the context is the agent's alone) and its own key.
fn customer_transfer(transfer: &Transfer, number: &str) -> Transfer {
    let mut customer = transfer.clone();
    customer.handoff_id = format!("{} callback customer", transfer.handoff_id);
    customer.target = TransferTarget::PhoneNumber(number.to_owned());
    customer.envelope = Default::default();
    customer.remembered = None;
    customer.disclosure = None;
    customer.callback = None;
    customer
}

/// How the customer's dials ended, short of the join.
enum Dials {
    /// The customer answered: their leg, answered with their SDP.
    Answered(Box<Answered>),
    /// Every attempt failed; the last one's failure.
    Exhausted(Failure),
    AgentHungUp,
}

/// A leg whose phone answered: the dialog, the SDP of the 200, and what
/// fires when that phone hangs up (a BYE in the dialog).
struct Answered {
    dialog: Dialog,
    sdp: Vec<u8>,
    hung_up: HangUp,
}

impl Transfers {
    /// Runs `call` to CONNECTED or its one terminal event: CANCELLED when
    /// `cancel` came first (if the caller still awaits this).
    pub(crate) async fn call_back(&self, call: CallBack, events: &TransferEvents) {
        let key = Self::key(&call.transfer);
        let mut cancelled = self.call_backs.start(key.clone());
        // Biased: once cancelled, the callback makes no further step, so
        // that `cancel` finds every leg it holds.
        let outcome = tokio::select! {
            biased;
            _ = cancelled.wait_for(|cancelled| *cancelled) => None,
            outcome = self.run_call_back(&call, events) => Some(outcome),
        };
        self.call_backs.end(&key);
        match outcome {
            Some(Ok(())) => {}
            Some(Err(failure)) => {
                tracing::info!(reason = ?failure.reason, detail = %failure.detail, "callback failed");
                events.failed(failure.reason, &failure.detail).await;
            }
            None => events.cancelled("the callback was cancelled").await,
        }
    }

    async fn run_call_back(&self, call: &CallBack, events: &TransferEvents) -> Result<(), Failure> {
        let customer = customer_transfer(&call.transfer, &call.customer);
        // Checked before the agent's phone rings: a customer no trunk
        // reaches is never worth an agent's answer.
        let customer_destination = self.destination(&customer)?;
        let mut agent = self
            .answer_agent(&call.transfer, events)
            .await
            .map_err(|failure| {
                Failure::new(failure.reason, format!("agent's phone: {}", failure.detail))
            })?;
        let customer_leg = match self
            .dial_customer(call, &customer, &customer_destination, &mut agent, events)
            .await
        {
            Dials::Answered(customer_leg) => customer_leg,
            Dials::Exhausted(last) => {
                self.release_held(&call.transfer);
                let attempts = match call.attempts.max(1) {
                    1 => "1 callback attempt".to_owned(),
                    n => format!("{n} callback attempts"),
                };
                return Err(Failure::new(
                    last.reason,
                    format!("the customer did not answer {attempts}"),
                ));
            }
            Dials::AgentHungUp => {
                // The agent's leg is over (the stack answered their BYE);
                // the customer's INVITE is CANCELled.
                self.forget(&call.transfer);
                self.release_held(&customer);
                return Err(Failure::new(
                    FailureReason::Rejected,
                    "the agent hung up before the customer answered",
                ));
            }
        };
        let joined = join::join(&self.stack, agent, *customer_leg).await;
        // Joined or not, neither leg is `cancel`'s any more.
        self.forget(&call.transfer);
        self.forget(&customer);
        match joined {
            Ok(relay) => {
                events
                    .connected("the customer answered; the agent and the customer are joined")
                    .await;
                relay.spawn(&self.stack);
                Ok(())
            }
            Err(failure) => Err(failure),
        }
    }

    /// Calls the agent with the context (as a warm transfer's INVITE) and
    /// holds the answered leg: RINGING, ANSWERED and CONTEXT_DELIVERED are
    /// reported on the way.
    async fn answer_agent(
        &self,
        transfer: &Transfer,
        events: &TransferEvents,
    ) -> Result<Answered, Failure> {
        let destination = self.destination(transfer)?;
        let context = self.context_headers(transfer);
        let run = Run {
            transfers: self,
            transfer,
            events,
            progress: self.callback_progress(),
            delivered: delivered_detail(&context),
            hand_back: None,
            consult: None,
            agent_leg: true,
        };
        self.answered_leg(run, Call::new(self, &destination, context, None))
            .await
    }

    /// Dials the customer up to `call.attempts` times, offering the
    /// agent's SDP, while the agent waits on hold.
    async fn dial_customer(
        &self,
        call: &CallBack,
        customer: &Transfer,
        destination: &Destination,
        agent: &mut Answered,
        events: &TransferEvents,
    ) -> Dials {
        let offer = sdp::offer_from_answer(&agent.sdp);
        let attempts = call.attempts.max(1);
        let agent_hung_up = &mut agent.hung_up;
        let mut last = Failure::new(FailureReason::NoAnswer, "not dialed");
        for attempt in 1..=attempts {
            if attempt > 1 {
                tokio::select! {
                    () = tokio::time::sleep(call.retry_delay) => {}
                    () = agent_hung_up.heard() => return Dials::AgentHungUp,
                }
            }
            events
                .callback_dialing(&format!(
                    "dialing the customer, attempt {attempt} of {attempts}"
                ))
                .await;
            // The customer's leg reports nowhere: its progress is the
            // callback's to read, not the control service's.
            let (quiet, _unread) = TransferEvents::channel();
            let run = Run {
                transfers: self,
                transfer: customer,
                events: &quiet,
                progress: self.callback_progress(),
                delivered: None,
                hand_back: None,
                consult: None,
                agent_leg: false,
            };
            let new_call = async {
                Call::new(self, destination, Vec::new(), Some(offer.clone()))
                    .await
                    .map(|call_| call_.with_ring_timeout(call.customer_ring_timeout))
            };
            let outcome = tokio::select! {
                outcome = self.answered_leg(run, new_call) => outcome,
                () = agent_hung_up.heard() => return Dials::AgentHungUp,
            };
            match outcome {
                Ok(answered) => return Dials::Answered(Box::new(answered)),
                Err(failure) => {
                    // The reason only: a detail may quote the Request-URI,
                    // which holds the customer's number.
                    tracing::info!(
                        attempt,
                        reason = ?failure.reason,
                        "the customer's phone did not answer"
                    );
                    last = failure;
                }
            }
        }
        Dials::Exhausted(last)
    }

    /// The progress of one callback leg: an attended transfer without a
    /// caller leg stops, answered, where its consult would start.
    fn callback_progress(&self) -> TransferProgress {
        TransferProgress::attended(new_subscription(), false, self.stack.t1() * 64)
    }

    /// Sends `call`'s INVITE (again with credentials on a challenge) until
    /// the phone answers, held, or the leg fails.
    async fn answered_leg(
        &self,
        mut run: Run<'_>,
        call: impl std::future::Future<Output = Result<Call, Failure>>,
    ) -> Result<Answered, Failure> {
        let mut call = call.await?;
        let mut held = Held::default();
        let outputs = run.progress.start();
        let mut flow = run.apply(outputs, &mut held).await;
        loop {
            flow = match flow {
                Flow::SendInvite => self.invite(&mut run, &mut held, &mut call).await,
                Flow::Consult => break,
                Flow::Ended(Err(failure)) => return Err(failure),
                Flow::Ended(Ok(())) | Flow::Wait | Flow::SendRefer => {
                    return Err(Failure::new(
                        FailureReason::ConnectorError,
                        "the leg stopped without an answer",
                    ));
                }
            };
        }
        let (Some(dialog), Some(hung_up)) = (held.dialog.take(), held.hung_up.take()) else {
            return Err(Failure::new(
                FailureReason::ConnectorError,
                "the leg answered without a dialog",
            ));
        };
        if held.answer_sdp.is_empty() {
            // Without the phone's SDP there is nothing to offer the other
            // party (an offer in our ACK is not how this flow goes).
            self.release_held(run.transfer);
            return Err(Failure::new(
                FailureReason::Unsupported,
                "the phone answered without SDP",
            ));
        }
        Ok(Answered {
            dialog,
            sdp: held.answer_sdp,
            hung_up: HangUp(Some(hung_up)),
        })
    }

    /// Ends what is held under `transfer`'s key, in the background.
    fn release_held(&self, transfer: &Transfer) {
        if let Some(held) = self.legs().remove(&Self::key(transfer)) {
            leg::release(&self.stack, held);
        }
    }
}

/// What fires when a phone hangs up its answered leg (a BYE in the
/// dialog, answered 200 by the stack). The stack closes the signal instead
/// when the leg is forgotten (our own BYE, `cancel`): that is no hang-up.
pub(super) struct HangUp(Option<oneshot::Receiver<()>>);

impl HangUp {
    /// Whether the phone hung up (`false`: the leg was forgotten). Safe
    /// to drop and call again (as a `select!` branch): the signal is kept
    /// until it says something, and after that this returns at once.
    pub(super) async fn ended(&mut self) -> bool {
        let Some(signal) = self.0.as_mut() else {
            return false;
        };
        let hung_up = signal.await.is_ok();
        self.0 = None;
        hung_up
    }

    /// Resolves on the phone's BYE only.
    pub(super) async fn heard(&mut self) {
        if !self.ended().await {
            std::future::pending::<()>().await;
        }
    }
}
