//! The transfers themselves: warm (INVITE the human, then REFER with
//! Replaces to the caller's gateway), attended (the same, with a consult
//! between the human's answer and the REFER: [`consult`] speaks the brief
//! of [`brief`] and hears the human's decision) and blind (an
//! out-of-dialog REFER).
//! What each response, NOTIFY, timer and BYE means is decided by
//! [`TransferProgress`] (`baton-sip-transfer`, no I/O); this module puts
//! its decisions on the wire and in the transfer's events: [`invite`]
//! calls the human, [`refer`] sends the REFER and follows its NOTIFYs,
//! [`context`] says what the signalling carries and where it goes.

mod brief;
mod callback;
mod consult;
mod context;
mod invite;
mod refer;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use baton_connector_sdk::{FailureReason, Transfer, TransferEvents, TransferMode};
use baton_sip_transfer::{Action, Input, Output, Report, Subscription, TransferProgress};
pub use baton_sip_transfer::{Failure, failure_for_status};
use tokio::sync::oneshot;

use crate::config::{ConsultConfig, UserAgentConfig};
use crate::hand_back::{self, HandBackAddress, HandBackConfig};
use crate::leg::{self, Dialog, Leg, PendingInvite};
use crate::origin::Expected;
use crate::stack::{SipError, SipStack, random_token};
use context::{Destination, call_reference};
use invite::Call;

/// The User-to-User limit many carriers enforce, in bytes on the wire; hex
/// doubles the token, so a connector carries (and advertises) half.
pub const UUI_TOKEN_MAX_BYTES: u32 = 128 / 2;
/// The SIP_HEADERS payload limit a connector advertises to the control
/// service.
pub const SIP_HEADERS_MAX_BYTES: u32 = 1024;

/// The transfers one SIP endpoint runs, and the legs they hold.
pub struct Transfers {
    config: Arc<UserAgentConfig>,
    stack: Arc<SipStack>,
    legs: Legs,
    /// Where customers handed back go; `None`: no hand-back addresses.
    hand_back: Option<HandBackConfig>,
    /// The consult leg of attended transfers.
    consult: Arc<ConsultConfig>,
    /// The callbacks under way, told through their sender when cancelled.
    call_backs: callback::Running,
}

type Legs = Arc<Mutex<HashMap<(String, u32), Leg>>>;

/// Hangs up every leg still held when the connector stops, so that no
/// human's phone keeps ringing for a transfer nobody follows any more.
#[derive(Clone)]
pub struct LegReleaser {
    legs: Legs,
    stack: Arc<SipStack>,
}

impl std::fmt::Debug for LegReleaser {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LegReleaser").finish_non_exhaustive()
    }
}

impl LegReleaser {
    /// CANCELs ringing INVITEs and BYEs answered legs, waiting at most
    /// `wait` for their responses.
    pub async fn release_all(&self, wait: std::time::Duration) {
        let legs: Vec<Leg> = self
            .legs
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .drain()
            .map(|(_, leg)| leg)
            .collect();
        if legs.is_empty() {
            return;
        }
        tracing::info!(legs = legs.len(), "hanging up the legs still held");
        let handles: Vec<_> = legs
            .into_iter()
            .map(|leg| leg::release(&self.stack, leg))
            .collect();
        let deadline = tokio::time::Instant::now() + wait;
        for handle in handles {
            let _ = tokio::time::timeout_at(deadline, handle).await;
        }
    }
}

impl std::fmt::Debug for Transfers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Transfers")
            .field("sip_addr", &self.stack.local_addr())
            .finish_non_exhaustive()
    }
}

impl Transfers {
    pub fn new(config: Arc<UserAgentConfig>, stack: Arc<SipStack>) -> Self {
        Self {
            config,
            stack,
            legs: Arc::new(Mutex::new(HashMap::new())),
            hand_back: None,
            consult: Arc::new(ConsultConfig::default()),
            call_backs: callback::Running::default(),
        }
    }

    /// The consult leg of attended transfers (default: [`ConsultConfig`]'s
    /// defaults).
    pub fn with_consult(mut self, config: ConsultConfig) -> Self {
        self.consult = Arc::new(config);
        self
    }

    /// Gives every transfer with a caller's gateway a hand-back address
    /// that redirects the customer to `config.runtime_uri` (see
    /// [`hand_back`]).
    pub fn with_hand_back(mut self, config: Option<HandBackConfig>) -> Self {
        self.hand_back = config;
        self
    }

    /// Validates `config`, binds its SIP endpoint (UDP and TCP on
    /// `sip.bind`, port 0 picks a free one; TLS with `sip.tls`) and makes
    /// the transfers that run on it. Receiving starts with
    /// [`SipStack::run`] on [`Self::stack`].
    pub async fn bind(config: UserAgentConfig) -> anyhow::Result<Self> {
        config
            .validate()
            .map_err(|e| anyhow::anyhow!("configuration: {e}"))?;
        let endpoint = &config.sip;
        let stack = SipStack::bind(
            endpoint.bind,
            endpoint.transport,
            endpoint.public_address.clone(),
            endpoint.user.clone(),
            endpoint.t1,
            endpoint.outbound_proxy.clone(),
        )
        .await?;
        if let Some(tls) = &endpoint.tls {
            stack.enable_tls(crate::tls::SipTls::bind(tls, stack.advertised()).await?);
        }
        stack.limit_reply_cache(endpoint.reply_cache_bytes);
        Ok(Self::new(Arc::new(config), stack))
    }

    /// The SIP endpoint the transfers run on.
    pub fn stack(&self) -> &Arc<SipStack> {
        &self.stack
    }

    /// What hangs up the legs still held when their owner stops.
    pub fn releaser(&self) -> LegReleaser {
        LegReleaser {
            legs: self.legs.clone(),
            stack: self.stack.clone(),
        }
    }

    fn legs(&self) -> std::sync::MutexGuard<'_, HashMap<(String, u32), Leg>> {
        self.legs.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Keeps `leg` for `cancel` and, before it goes on the wire, in the
    /// journal for a process that takes the transfer over after a restart.
    async fn hold(&self, transfer: &Transfer, events: &TransferEvents, leg: Leg) {
        events.remember(&leg.to_note()).await;
        self.legs().insert(Self::key(transfer), leg);
    }

    fn key(transfer: &Transfer) -> (String, u32) {
        (transfer.handoff_id.clone(), transfer.attempt)
    }

    /// Lets go of what `transfer` holds: it ended, or its leg is being
    /// ended, and `cancel` has nothing more to do for it.
    fn forget(&self, transfer: &Transfer) {
        self.legs().remove(&Self::key(transfer));
    }

    /// Runs `transfer` (warm, attended or blind) to its one terminal
    /// event, reported through `events`. With a hand-back address, a
    /// connected transfer ends HANDED_BACK when the human's side transfers
    /// the customer there, or COMPLETED once `hand_back.window` passed.
    pub async fn run(&self, transfer: Transfer, events: TransferEvents) {
        let hand_back = self.open_hand_back(&transfer);
        let call_info = hand_back.as_ref().map(HandBackAddress::call_info);
        let result = match transfer.mode {
            TransferMode::Blind => self.blind(&transfer, &events, call_info).await,
            TransferMode::Attended => self.warm(&transfer, &events, call_info, true).await,
            _ => self.warm(&transfer, &events, call_info, false).await,
        };
        self.forget(&transfer);
        match (result, hand_back) {
            (Ok(()), Some(address)) => {
                // A process started after this one stopped opens it again.
                let open = Leg::HandBackOpen {
                    token: address.token().to_owned(),
                };
                events.remember(&open.to_note()).await;
                self.until_handed_back(address, &events).await;
            }
            (Ok(()), None) => events.completed("").await,
            (Err(failure), _) => {
                tracing::info!(reason = ?failure.reason, detail = %failure.detail, "transfer failed");
                events.failed(failure.reason, &failure.detail).await;
            }
        }
    }

    /// A hand-back address for `transfer`, when hand-back is configured
    /// and the customer's call has a gateway to transfer it back.
    fn open_hand_back(&self, transfer: &Transfer) -> Option<HandBackAddress> {
        let contact = self.runtime_contact(transfer)?;
        if call_reference(transfer).sip_gateway_uri.is_empty() {
            return None;
        }
        Some(
            self.stack
                .hand_backs()
                .open(self.stack.advertised(), contact),
        )
    }

    /// Where a customer handed back from `transfer` goes; `None` without
    /// `[hand_back]`.
    fn runtime_contact(&self, transfer: &Transfer) -> Option<String> {
        let config = self.hand_back.as_ref()?;
        Some(hand_back::runtime_contact(
            &config.runtime_uri,
            &transfer.handoff_id,
            &self.uui_purpose(),
        ))
    }

    /// The hand-back address a predecessor noted for `transfer`, open
    /// again (its window starts anew); `None` when it noted none or
    /// `[hand_back]` is gone.
    fn reopen_hand_back(&self, transfer: &Transfer) -> Option<HandBackAddress> {
        let Leg::HandBackOpen { token } = Leg::from_note(transfer.remembered.as_deref()?)? else {
            return None;
        };
        let contact = self.runtime_contact(transfer)?;
        self.stack
            .hand_backs()
            .reopen(&token, self.stack.advertised(), contact)
    }

    /// After CONNECTED: HANDED_BACK when `address` is taken (it may have
    /// been already), COMPLETED when the window passes first. A cancel
    /// drops this, and the address with it.
    async fn until_handed_back(&self, mut address: HandBackAddress, events: &TransferEvents) {
        let window = self
            .hand_back
            .as_ref()
            .map(|config| config.window)
            .unwrap_or_default();
        tokio::select! {
            handed_back = address.handed_back() => match handed_back {
                Some(handed_back) => {
                    tracing::info!("the customer was handed back to the AI runtime");
                    let detail = "the human transferred the customer to the hand-back address, \
                        which redirected the call to the AI runtime";
                    events.handed_back(detail, handed_back.wrap_up).await;
                }
                None => events.completed("").await,
            },
            () = tokio::time::sleep(window) => {
                events.completed("the hand-back window passed").await;
            }
        }
    }

    /// Never a second INVITE: ends what the predecessor held, or follows
    /// its REFER (see [`restart`](crate::restart)).
    pub async fn resume(&self, transfer: Transfer, events: TransferEvents) {
        if let Some(address) = self.reopen_hand_back(&transfer) {
            // The human has had the customer since before the restart.
            events
                .connected("the transfer had connected before the SIP connector restarted")
                .await;
            self.until_handed_back(address, &events).await;
            return;
        }
        crate::restart::resume(&self.stack, self.config.notify_timeout, &transfer, &events).await;
    }

    /// Ends what this process holds for the transfer (in the background:
    /// the CANCELLED does not wait); for a transfer a predecessor held
    /// (`remembered`), ends its leg and waits a few round trips for it.
    pub async fn cancel(&self, transfer: &Transfer) {
        // A callback stops before its legs go, so that it holds no new one.
        self.call_backs.cancel(&Self::key(transfer));
        if let Some(customer) = self.legs().remove(&callback::customer_key(transfer)) {
            leg::release(&self.stack, customer);
        }
        let leg = self.legs().remove(&Self::key(transfer));
        if let Some(leg) = leg {
            leg::release(&self.stack, leg);
            return;
        }
        let Some(held) = transfer.remembered.as_deref().and_then(Leg::from_note) else {
            return;
        };
        let ending = leg::release(&self.stack, held);
        let _ = tokio::time::timeout(self.stack.t1() * 8, ending).await;
    }

    /// Warm, or, `attended`, with a consult leg: the INVITE offers audio
    /// and the REFER waits for the human's accept.
    async fn warm(
        &self,
        transfer: &Transfer,
        events: &TransferEvents,
        hand_back: Option<String>,
        attended: bool,
    ) -> Result<(), Failure> {
        let destination = self.destination(transfer)?;
        let mut context = self.context_headers(transfer);
        if let Some(call_info) = &hand_back {
            context.push(("Call-Info".into(), call_info.clone()));
        }
        let delivered = delivered_detail(&context);
        let caller_leg = !call_reference(transfer).sip_gateway_uri.is_empty();
        let consult = if attended {
            let prepared = consult::Consult::prepare(self, transfer)
                .await
                .map_err(|e| {
                    Failure::new(FailureReason::ConnectorError, format!("RTP socket: {e}"))
                })?;
            Some(prepared)
        } else {
            None
        };
        let offer = consult.as_ref().map(consult::Consult::offer);
        let call = Call::new(self, &destination, context, offer).await?;
        let timer_b = self.stack.t1() * 64;
        let progress = if attended {
            TransferProgress::attended(new_subscription(), caller_leg, timer_b)
        } else {
            TransferProgress::warm(new_subscription(), caller_leg, timer_b)
        };
        let mut run = Run {
            transfers: self,
            transfer,
            events,
            progress,
            delivered,
            hand_back,
            consult,
            agent_leg: false,
        };
        self.drive(&mut run, &destination, Some(call)).await
    }

    async fn blind(
        &self,
        transfer: &Transfer,
        events: &TransferEvents,
        hand_back: Option<String>,
    ) -> Result<(), Failure> {
        let destination = self.destination(transfer)?;
        if call_reference(transfer).sip_gateway_uri.is_empty() {
            return Err(Failure::new(
                FailureReason::Unsupported,
                "a blind transfer needs the caller's gateway (conversation.call.sip_gateway_uri)",
            ));
        }
        // There is no INVITE of ours: User-to-User travels in the Refer-To.
        let delivered = self
            .uui(transfer)
            .map(|_| "User-to-User in the Refer-To".to_owned());
        let mut run = Run {
            transfers: self,
            transfer,
            events,
            progress: TransferProgress::blind(new_subscription()),
            delivered,
            hand_back,
            consult: None,
            agent_leg: false,
        };
        self.drive(&mut run, &destination, None).await
    }

    /// Follows `run` from its start to its outcome, sending what its
    /// progress asks for: the INVITE of `call` (warm), the REFER.
    async fn drive(
        &self,
        run: &mut Run<'_>,
        destination: &Destination,
        mut call: Option<Call>,
    ) -> Result<(), Failure> {
        let mut held = Held::default();
        let outputs = run.progress.start();
        let mut flow = run.apply(outputs, &mut held).await;
        loop {
            flow = match (flow, call.as_mut()) {
                (Flow::SendInvite, Some(call)) => self.invite(run, &mut held, call).await,
                (Flow::SendRefer, _) => self.refer(run, &mut held, destination).await,
                (Flow::Consult, _) => self.consult(run, &mut held).await,
                (Flow::Ended(result), _) => return result,
                (Flow::Wait | Flow::SendInvite, _) => {
                    return Err(Failure::new(
                        FailureReason::ConnectorError,
                        "the transfer stopped without an outcome",
                    ));
                }
            };
        }
    }
}

/// A new REFER subscription's Call-ID and From tag.
fn new_subscription() -> Subscription {
    Subscription {
        call_id: format!("{}@baton", random_token()),
        tag: random_token(),
    }
}

/// What CONTEXT_DELIVERED says of the INVITE's `context` headers; `None`
/// when they carry nothing of the handoff's (P-Asserted-Identity is the
/// caller's, not context).
fn delivered_detail(context: &crate::message::HeaderLines) -> Option<String> {
    let delivered: Vec<&str> = context
        .iter()
        .map(|(name, _)| name.as_str())
        .filter(|name| *name != "P-Asserted-Identity")
        .collect();
    (!delivered.is_empty()).then(|| format!("in the INVITE: {}", delivered.join(", ")))
}

/// A transport error as a transfer's failure.
fn unreachable(error: &SipError) -> Failure {
    Failure::new(FailureReason::Unreachable, error.to_string())
}

/// One transfer on the wire: its progress, and where it reports.
struct Run<'a> {
    transfers: &'a Transfers,
    transfer: &'a Transfer,
    events: &'a TransferEvents,
    progress: TransferProgress,
    /// What CONTEXT_DELIVERED says; nothing is reported without context.
    delivered: Option<String>,
    /// The `Call-Info` that advertises the transfer's hand-back address.
    hand_back: Option<String>,
    /// Attended: the consult leg's media, until the human answers.
    consult: Option<consult::Consult>,
    /// A callback's agent leg: its events name the agent's phone, and no
    /// OFFERED comes before RINGING.
    agent_leg: bool,
}

/// What a transfer holds on the wire, for the actions its progress asks
/// for.
#[derive(Default)]
struct Held {
    /// The INVITE out to the human, until it is answered.
    invite: Option<PendingInvite>,
    /// The human's answered leg, until it is hung up or handed over.
    dialog: Option<Dialog>,
    /// Fires when the human's phone hangs up the answered leg.
    hung_up: Option<oneshot::Receiver<()>>,
    /// What the human's requests in their answered leg carry.
    expected: Option<Expected>,
    /// The body of the human's 2xx: the SDP answer of a consult leg.
    answer_sdp: Vec<u8>,
}

/// What the driver does next.
#[derive(Debug)]
enum Flow {
    /// Wait for the next input.
    Wait,
    SendInvite,
    SendRefer,
    /// Attended: the human answered; speak the brief, hear the decision.
    Consult,
    Ended(Result<(), Failure>),
}

impl Run<'_> {
    /// Feeds `input` to the progress and applies what it answers.
    async fn step(&mut self, input: Input<'_>, held: &mut Held) -> Flow {
        let outputs = self.progress.on(input);
        self.apply(outputs, held).await
    }

    /// Puts `outputs` in the transfer's events and on the wire, in order,
    /// and says what the driver does next.
    async fn apply(&mut self, outputs: Vec<Output>, held: &mut Held) -> Flow {
        let stack = &self.transfers.stack;
        for output in outputs {
            match output {
                Output::Report(report) => {
                    if matches!(report, Report::Answered(_)) {
                        self.hold_answered(held).await;
                    }
                    self.report(report).await;
                }
                Output::Act(Action::SendInvite) => return Flow::SendInvite,
                Output::Act(Action::SendRefer) => return Flow::SendRefer,
                Output::Act(Action::CancelInvite) => {
                    self.transfers.forget(self.transfer);
                    if let Some(invite) = held.invite.clone() {
                        invite::spawn_cancel(stack, invite);
                    }
                }
                Output::Act(Action::HangUp) => {
                    self.transfers.forget(self.transfer);
                    if let Some(dialog) = held.dialog.take() {
                        leg::spawn_bye(stack, dialog);
                    }
                }
                Output::Act(Action::HangUpUnlessReplaced) => {
                    self.transfers.forget(self.transfer);
                    if let Some(dialog) = held.dialog.take() {
                        leg::spawn_bye_unless_hung_up(stack, dialog, stack.t1() * 64);
                    }
                }
                // Connected: the caller reports what ends the transfer.
                Output::Completed => {
                    self.transfers.forget(self.transfer);
                    return Flow::Ended(Ok(()));
                }
                Output::Failed(failure) => {
                    self.transfers.forget(self.transfer);
                    return Flow::Ended(Err(failure));
                }
            }
        }
        if self.progress.consults() {
            return Flow::Consult;
        }
        Flow::Wait
    }

    /// The human answered: their leg is held (for `cancel` and the
    /// journal) and its BYE expected from where the INVITE went.
    async fn hold_answered(&self, held: &mut Held) {
        let Some(dialog) = held.dialog.clone() else {
            return;
        };
        let invited = held.invite.take().map(|invite| invite.to);
        let stack = &self.transfers.stack;
        self.transfers
            .hold(self.transfer, self.events, Leg::Answered(dialog.clone()))
            .await;
        let expected = leg::expected_in(stack, &dialog, invited).await;
        held.expected = Some(expected.clone());
        held.hung_up = Some(stack.remember_answered(&dialog.call_id, expected));
    }

    async fn report(&self, report: Report) {
        let events = self.events;
        match report {
            Report::Offered(_) if self.agent_leg => {}
            Report::Ringing(_) if self.agent_leg => events.ringing("agent's phone ringing").await,
            Report::Answered(_) if self.agent_leg => events.answered("the agent answered").await,
            Report::Offered(detail) => events.offered(detail).await,
            Report::Ringing(detail) => events.ringing(&detail).await,
            Report::Answered(detail) => events.answered(detail).await,
            Report::ContextDelivered => {
                if let Some(detail) = &self.delivered {
                    events.context_delivered(detail).await;
                }
            }
            Report::Connected(detail) => events.connected(detail).await,
        }
    }
}
