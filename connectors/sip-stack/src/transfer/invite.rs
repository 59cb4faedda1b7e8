//! The INVITE to the human (RFC 3261 client INVITE transaction): sent with
//! the context, retransmitted on UDP (timer A), answered with digest on a
//! challenge, cancelled when the progress says so; every response and
//! timer is an input of the transfer's progress.

use std::net::SocketAddr;
use std::sync::Arc;

use baton_connector_sdk::FailureReason;
use baton_sip_transfer::Input;
use rsip::Method;
use rsip::prelude::*;
use tokio::time::Instant;

use super::context::Destination;
use super::{Failure, Flow, Held, Run, Transfers, unreachable};
use crate::digest::Challenge;
use crate::leg::{self, PendingInvite};
use crate::message::{self, HeaderLines};
use crate::stack::{ALLOW, Peer, SipStack, Transport, random_token};

/// The call to the human: one dialog's worth of INVITEs (a second one
/// answers a challenge).
pub(super) struct Call {
    request_uri: String,
    /// Our From, with our tag.
    from: String,
    to_without_tag: String,
    call_id: String,
    to: Peer,
    sdp: String,
    /// The context headers every INVITE carries.
    context: HeaderLines,
    credentials: Option<(String, String)>,
    cseq: u32,
    /// The answer to the last challenge, for the next INVITE.
    authorization: Option<(String, String)>,
    /// When the ring timeout passes: it runs from the first INVITE.
    ring_deadline: Instant,
}

/// One INVITE as sent.
struct Sent {
    lines: HeaderLines,
    branch: String,
    bytes: Vec<u8>,
}

impl Call {
    /// Resolves where the human is called; `offer`: the consult leg's SDP
    /// (attended), else an offer without media.
    pub(super) async fn new(
        transfers: &Transfers,
        destination: &Destination,
        context: HeaderLines,
        offer: Option<String>,
    ) -> Result<Self, Failure> {
        let stack = &transfers.stack;
        let to = stack
            .resolve(&destination.request_uri)
            .await
            .map_err(|e| unreachable(&e))?;
        Ok(Self {
            request_uri: destination.request_uri.clone(),
            from: format!("<{}>;tag={}", destination.from_uri, random_token()),
            to_without_tag: format!("<{}>", destination.request_uri),
            call_id: format!("{}@baton", random_token()),
            to,
            sdp: offer.unwrap_or_else(|| placeholder_sdp(stack.local_addr())),
            context,
            credentials: destination.credentials.clone(),
            cseq: 1,
            authorization: None,
            ring_deadline: Instant::now() + transfers.config.ring_timeout,
        })
    }

    /// Rings for `timeout` instead of the configured `ring_timeout` (a
    /// callback's customer dial has its own).
    pub(super) fn with_ring_timeout(mut self, timeout: std::time::Duration) -> Self {
        self.ring_deadline = Instant::now() + timeout;
        self
    }

    fn render(&self, stack: &SipStack) -> Result<Sent, Failure> {
        let branch = format!("z9hG4bK{}", random_token());
        let mut lines: HeaderLines = vec![
            ("Via".into(), stack.via(&branch, self.to.transport)),
            ("Max-Forwards".into(), "70".into()),
            ("From".into(), self.from.clone()),
            ("To".into(), self.to_without_tag.clone()),
            ("Call-ID".into(), self.call_id.clone()),
            ("CSeq".into(), format!("{} INVITE", self.cseq)),
            ("Contact".into(), stack.contact(self.to.transport)),
            ("Supported".into(), "replaces, tdialog".into()),
            ("Allow".into(), ALLOW.into()),
            (
                "User-Agent".into(),
                format!("baton-connector-sip/{}", env!("CARGO_PKG_VERSION")),
            ),
        ];
        lines.extend(self.context.iter().cloned());
        if let Some(auth) = &self.authorization {
            lines.push(auth.clone());
        }
        lines.push(("Content-Type".into(), "application/sdp".into()));
        let bytes = message::render_request(
            Method::Invite,
            &self.request_uri,
            &lines,
            self.sdp.as_bytes(),
        )
        .map_err(|e| Failure::new(FailureReason::ConnectorError, e))?;
        Ok(Sent {
            lines,
            branch,
            bytes,
        })
    }
}

impl Transfers {
    /// Sends the next INVITE of `call` and follows it until the progress
    /// asks for something else: ringing and answered are reported, a
    /// provisional response stops timer A and B and starts the ring
    /// timeout, whose passing CANCELs.
    pub(super) async fn invite(&self, run: &mut Run<'_>, held: &mut Held, call: &mut Call) -> Flow {
        let stack = &self.stack;
        let sent = match call.render(stack) {
            Ok(sent) => sent,
            Err(failure) => return Flow::Ended(Err(failure)),
        };
        let mut registration = stack.register_transaction(&sent.branch, &Method::Invite, call.to);
        let invite = PendingInvite {
            request_uri: call.request_uri.clone(),
            lines: leg::cancel_lines(&sent.lines, call.cseq),
            branch: sent.branch.clone(),
            cseq: call.cseq,
            to: call.to,
        };
        held.invite = Some(invite.clone());
        self.hold(run.transfer, run.events, leg::Leg::Inviting(invite))
            .await;
        if let Err(error) = stack.send(&sent.bytes, call.to).await {
            let detail = error.to_string();
            return run.step(Input::Unsent { detail: &detail }, held).await;
        }
        let mut flow = run.step(Input::InviteSent, held).await;
        let mut interval = stack.t1();
        let timer_b = Instant::now() + stack.t1() * 64;
        let mut cancelled_at: Option<Instant> = None;
        while let Flow::Wait = flow {
            // After a CANCEL, the INVITE gets 64*T1 to end (timer B again).
            let cancel_gives_up = cancelled_at.map_or_else(Instant::now, |at| at + stack.t1() * 64);
            // Timer A runs on UDP only: TCP does its own retransmission.
            let retransmit =
                run.progress.awaits_invite_response() && call.to.transport == Transport::Udp;
            flow = tokio::select! {
                response = registration.receiver.recv() => {
                    let Some(response) = response else {
                        let failure = Failure::new(FailureReason::ConnectorError, "transaction closed");
                        return Flow::Ended(Err(failure));
                    };
                    let input = self.read_response(call, held, &sent, &response).await;
                    run.step(input, held).await
                }
                () = tokio::time::sleep(interval), if retransmit => {
                    // Timer A: retransmit, doubling, until any response.
                    interval *= 2;
                    match stack.send(&sent.bytes, call.to).await {
                        Ok(()) => Flow::Wait,
                        Err(error) => {
                            let detail = error.to_string();
                            run.step(Input::Unsent { detail: &detail }, held).await
                        }
                    }
                }
                () = tokio::time::sleep_until(timer_b), if run.progress.awaits_invite_response() => {
                    run.step(Input::InviteTimedOut, held).await
                }
                () = tokio::time::sleep_until(call.ring_deadline), if run.progress.rings() => {
                    cancelled_at = Some(Instant::now());
                    run.step(Input::RingTimeout, held).await
                }
                () = tokio::time::sleep_until(cancel_gives_up), if run.progress.cancels() => {
                    run.step(Input::CancelTimedOut, held).await
                }
            };
        }
        if let Flow::SendInvite = flow {
            // Once more, authenticated: a new transaction, the next CSeq.
            call.cseq += 1;
        }
        flow
    }

    /// Acknowledges a final response (a 2xx end to end, making the dialog
    /// with the human) and reads it as the progress's input, with whether
    /// a challenge can be answered.
    async fn read_response(
        &self,
        call: &mut Call,
        held: &mut Held,
        sent: &Sent,
        response: &rsip::Response,
    ) -> Input<'static> {
        let stack = &self.stack;
        let status = response.status_code.code();
        if status >= 300 {
            // Non-2xx: the ACK belongs to the INVITE transaction.
            let ack = leg::ack_lines(&sent.lines, response, &sent.branch, call.cseq, &[]);
            if let Ok(ack) = message::render_request(Method::Ack, &call.request_uri, &ack, b"") {
                let _ = stack.send(&ack, call.to).await;
            }
        } else if status >= 200 {
            // 2xx: the dialog exists; ACK it end to end.
            let dialog = leg::answered_dialog(response, &sent.lines, &call.request_uri, call.cseq);
            leg::ack_answer(stack, &sent.lines, response, &dialog, call.to).await;
            held.dialog = Some(dialog);
            held.answer_sdp = response.body.clone();
        }
        let answer = match (&call.credentials, status) {
            (Some((username, password)), 401 | 407) => answer_challenge(
                response,
                username,
                password,
                &Method::Invite,
                &call.request_uri,
            ),
            _ => None,
        };
        let can_authenticate = answer.is_some();
        if can_authenticate {
            call.authorization = answer;
        }
        Input::InviteResponse {
            status,
            can_authenticate,
        }
    }
}

/// CANCELs `invite` in the background (RFC 3261 9.1): its final response
/// still comes to the INVITE's transaction.
pub(super) fn spawn_cancel(stack: &Arc<SipStack>, invite: PendingInvite) {
    let stack = stack.clone();
    tokio::spawn(async move {
        if let Err(error) = invite.cancel(&stack).await {
            tracing::warn!(%error, "CANCEL got no final response");
        }
    });
}

/// The Authorization (401) or Proxy-Authorization (407) header that
/// answers the challenge in `response`, when we can.
pub(super) fn answer_challenge(
    response: &rsip::Response,
    username: &str,
    password: &str,
    method: &Method,
    uri: &str,
) -> Option<(String, String)> {
    let (challenge, header) = match response.status_code.code() {
        401 => ("WWW-Authenticate", "Authorization"),
        407 => ("Proxy-Authenticate", "Proxy-Authorization"),
        _ => return None,
    };
    let challenge = Challenge::parse(&message::header_value(response.headers(), challenge)?)?;
    let uri = rsip::Uri::try_from(uri).ok()?;
    let answer = challenge.answer(username, password, method, &uri, &random_token())?;
    Some((header.to_owned(), answer))
}

/// An SDP offer with inactive audio: the connector holds the human's leg
/// only until the caller's gateway replaces it, and carries no media.
fn placeholder_sdp(local: SocketAddr) -> String {
    let ip = local.ip();
    let family = if ip.is_ipv6() { "IP6" } else { "IP4" };
    format!(
        "v=0\r\no=baton 0 0 IN {family} {ip}\r\ns=baton\r\nc=IN {family} {ip}\r\nt=0 0\r\nm=audio 9 RTP/AVP 0 8\r\na=inactive\r\n"
    )
}
