//! The transfers themselves: warm (INVITE the human, then REFER with
//! Replaces to the caller's gateway) and blind (an out-of-dialog REFER), and
//! the context each carries in the signalling.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use baton_connector_sdk::{
    ContextMechanism, FailureReason, Transfer, TransferEvents, TransferMode, TransferTarget,
};
use baton_proto::types::v1::CallReference;
use rsip::Method;
use rsip::prelude::*;

use crate::config::{
    CallerIdPolicy, NumberFormat, SensitiveValue, UserAgentConfig, UuiPlacement, is_e164,
};
use crate::digest::Challenge;
use crate::leg::{self, Dialog, Leg, PendingInvite};
use crate::message::{self, HeaderLines};
use crate::origin::{self, Expected};
use crate::stack::{ALLOW, Peer, SipError, SipStack, Transport, random_token};

/// The User-to-User limit many carriers enforce, in bytes on the wire; hex
/// doubles the token, so a connector carries (and advertises) half.
pub const UUI_TOKEN_MAX_BYTES: u32 = 128 / 2;
/// The SIP_HEADERS payload limit a connector advertises to the control
/// service.
pub const SIP_HEADERS_MAX_BYTES: u32 = 1024;

/// Why a transfer failed, as reported to the control service.
#[derive(Debug, Clone, PartialEq)]
pub struct Failure {
    pub reason: FailureReason,
    pub detail: String,
}

impl Failure {
    pub(crate) fn new(reason: FailureReason, detail: impl Into<String>) -> Self {
        Self {
            reason,
            detail: detail.into(),
        }
    }

    fn transport(error: &SipError) -> Self {
        Self::new(FailureReason::Unreachable, error.to_string())
    }
}

/// The failure a final SIP status means (RFC 3261 21.4-21.6).
pub fn failure_for_status(code: u16) -> FailureReason {
    match code {
        486 | 600 => FailureReason::Busy,
        408 | 480 | 487 => FailureReason::NoAnswer,
        403 | 603 => FailureReason::Rejected,
        405 | 420 | 501 => FailureReason::Unsupported,
        _ => FailureReason::Unreachable,
    }
}

/// Where the human is called, and as whom.
#[derive(Debug, Clone)]
struct Destination {
    request_uri: String,
    from_uri: String,
    credentials: Option<(String, String)>,
}

/// The transfers one SIP endpoint runs, and the legs they hold.
pub struct Transfers {
    config: Arc<UserAgentConfig>,
    stack: Arc<SipStack>,
    legs: Legs,
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
        }
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

    fn destination(&self, transfer: &Transfer) -> Result<Destination, Failure> {
        let call = transfer
            .envelope
            .conversation
            .as_ref()
            .and_then(|c| c.call.clone())
            .unwrap_or_default();
        match &transfer.target {
            TransferTarget::SipUri(uri) => {
                let parsed = rsip::Uri::try_from(uri.as_str()).ok();
                let sips = parsed
                    .as_ref()
                    .is_some_and(|u| u.scheme == Some(rsip::Scheme::Sips));
                if sips && self.stack.tls().is_none() {
                    return Err(Failure::new(
                        FailureReason::Unsupported,
                        "sips: targets need TLS, and sip.tls is not configured",
                    ));
                }
                let sip = sips || parsed.is_some_and(|u| u.scheme == Some(rsip::Scheme::Sip));
                if !sip || !message::is_safe_uri(uri) {
                    return Err(Failure::new(
                        FailureReason::Unreachable,
                        "the target is not a valid sip: URI",
                    ));
                }
                Ok(Destination {
                    request_uri: uri.clone(),
                    from_uri: self.stack.own_uri(),
                    credentials: self.config.credentials_for(uri),
                })
            }
            TransferTarget::PhoneNumber(number) => {
                if !is_e164(number) {
                    return Err(Failure::new(
                        FailureReason::Unreachable,
                        "the phone number is not E.164",
                    ));
                }
                let Some(trunk) = self.config.trunk_for(number) else {
                    return Err(Failure::new(
                        FailureReason::Unsupported,
                        "no trunk is configured for this number",
                    ));
                };
                let user = match trunk.number_format {
                    NumberFormat::E164 => number.clone(),
                    NumberFormat::Digits => number.trim_start_matches('+').to_owned(),
                };
                // The caller's number is sensitive: it goes into the From
                // only when configuration lets it out.
                let caller = match trunk.caller_id_policy {
                    CallerIdPolicy::Original
                        if is_e164(&call.caller_number)
                            && self.config.headers.may_send(SensitiveValue::CallerNumber) =>
                    {
                        Some(call.caller_number.clone())
                    }
                    _ => trunk.caller_id.clone(),
                };
                let from_user = caller.unwrap_or_else(|| self.config.sip.user.clone());
                let transport = match trunk.transport {
                    Transport::Udp => "",
                    Transport::Tcp => ";transport=tcp",
                    Transport::Tls => ";transport=tls",
                };
                Ok(Destination {
                    request_uri: format!("sip:{user}@{};user=phone{transport}", trunk.host),
                    from_uri: format!("sip:{from_user}@{}", trunk.host),
                    credentials: trunk.username.clone().zip(trunk.password.clone()),
                })
            }
            TransferTarget::Queue { .. } => Err(Failure::new(
                FailureReason::Unsupported,
                "the SIP connector does not serve queues",
            )),
        }
    }

    /// The handoff token for User-to-User: the SIP_USER_TO_USER payload, else
    /// the reference's token; None when absent, disabled or over the limit.
    fn uui(&self, transfer: &Transfer) -> Option<String> {
        if !self.config.headers.user_to_user {
            return None;
        }
        let envelope = &transfer.envelope;
        let token = envelope
            .payloads
            .iter()
            .find(|p| p.mechanism == ContextMechanism::SipUserToUser as i32)
            .map(|p| p.content.clone())
            .filter(|c| !c.is_empty())
            .or_else(|| envelope.reference.as_ref().map(|r| r.token.clone()))
            .filter(|t| !t.is_empty())?;
        if token.len() > UUI_TOKEN_MAX_BYTES as usize {
            tracing::warn!("handoff token too long for User-to-User; not sent");
            return None;
        }
        let purpose = message::sanitize(&self.config.headers.uui_purpose, 64);
        let purpose: String = purpose
            .chars()
            .filter(|c| c.is_ascii_alphanumeric() || *c == '-')
            .collect();
        Some(format!(
            "{};encoding=hex;purpose={purpose}",
            message::hex(token.as_bytes())
        ))
    }

    /// The context headers of the INVITE to the human: User-to-User,
    /// Call-Info, X-Baton-* and P-Asserted-Identity.
    fn context_headers(&self, transfer: &Transfer) -> HeaderLines {
        let policy = &self.config.headers;
        let mut lines = HeaderLines::new();
        if let Some(uui) = self.uui(transfer) {
            lines.push(("User-to-User".into(), uui));
        }
        let reference = transfer.envelope.reference.clone().unwrap_or_default();
        if policy.call_info && message::is_safe_uri(&reference.screen_pop_url) {
            lines.push((
                "Call-Info".into(),
                format!("<{}>;purpose=info", reference.screen_pop_url),
            ));
        }
        if !policy.x_headers.is_empty() {
            let fields = transfer
                .envelope
                .payloads
                .iter()
                .find(|p| p.mechanism == ContextMechanism::SipHeaders as i32)
                .and_then(|p| {
                    serde_json::from_str::<serde_json::Map<String, serde_json::Value>>(&p.content)
                        .ok()
                })
                .unwrap_or_default();
            for field in &policy.x_headers {
                let value = match fields.get(field) {
                    Some(serde_json::Value::String(s)) if !s.is_empty() => s.clone(),
                    Some(serde_json::Value::Number(n)) => n.to_string(),
                    Some(serde_json::Value::Bool(b)) => b.to_string(),
                    _ => continue,
                };
                let name = format!("X-Baton-{}", header_case(field));
                if message::is_token(&name) {
                    let value = message::sanitize(&value, message::max_value_len(&name));
                    lines.push((name, value));
                }
            }
        }
        if message::is_safe_uri(&transfer.handoff_id) {
            lines.push(("X-Baton-Handoff-Id".into(), transfer.handoff_id.clone()));
        }
        lines.extend(trace_context());
        let caller = transfer
            .envelope
            .conversation
            .as_ref()
            .and_then(|c| c.call.as_ref())
            .map(|c| c.caller_number.clone())
            .unwrap_or_default();
        if policy.p_asserted_identity
            && policy.may_send(SensitiveValue::CallerNumber)
            && is_e164(&caller)
        {
            lines.push(("P-Asserted-Identity".into(), format!("<tel:{caller}>")));
        }
        lines
    }

    /// Calls the human: INVITE with the context, ringing and answered
    /// events, ring timeout with CANCEL, digest on 401/407.
    async fn call_human(
        &self,
        transfer: &Transfer,
        destination: &Destination,
        context: &HeaderLines,
        events: &TransferEvents,
    ) -> Result<Dialog, Failure> {
        let stack = &self.stack;
        let call_id = format!("{}@baton", random_token());
        let local_tag = random_token();
        let from = format!("<{}>;tag={local_tag}", destination.from_uri);
        let to_without_tag = format!("<{}>", destination.request_uri);
        let to_addr = stack
            .resolve(&destination.request_uri)
            .await
            .map_err(|e| Failure::transport(&e))?;
        let sdp = placeholder_sdp(stack.local_addr());
        let mut cseq = 1;
        let mut authorization: Option<(String, String)> = None;
        let mut rang = false;
        let ring_deadline = tokio::time::Instant::now() + self.config.ring_timeout;
        loop {
            let branch = format!("z9hG4bK{}", random_token());
            let mut lines: HeaderLines = vec![
                ("Via".into(), stack.via(&branch, to_addr.transport)),
                ("Max-Forwards".into(), "70".into()),
                ("From".into(), from.clone()),
                ("To".into(), to_without_tag.clone()),
                ("Call-ID".into(), call_id.clone()),
                ("CSeq".into(), format!("{cseq} INVITE")),
                ("Contact".into(), stack.contact(to_addr.transport)),
                ("Supported".into(), "replaces, tdialog".into()),
                ("Allow".into(), ALLOW.into()),
                (
                    "User-Agent".into(),
                    format!("baton-connector-sip/{}", env!("CARGO_PKG_VERSION")),
                ),
            ];
            lines.extend(context.iter().cloned());
            if let Some(auth) = &authorization {
                lines.push(auth.clone());
            }
            lines.push(("Content-Type".into(), "application/sdp".into()));
            let bytes = message::render_request(
                Method::Invite,
                &destination.request_uri,
                &lines,
                sdp.as_bytes(),
            )
            .map_err(|e| Failure::new(FailureReason::ConnectorError, e))?;
            let mut registration = stack.register_transaction(&branch, &Method::Invite, to_addr);
            let cancel_lines = leg::cancel_lines(&lines, cseq);
            let invite = PendingInvite {
                request_uri: destination.request_uri.clone(),
                lines: cancel_lines.clone(),
                branch: branch.clone(),
                cseq,
                to: to_addr,
            };
            self.hold(transfer, events, Leg::Inviting(invite)).await;
            stack
                .send(&bytes, to_addr)
                .await
                .map_err(|e| Failure::transport(&e))?;
            if cseq == 1 {
                // At once, so that the control service knows the transfer
                // is under way: a target that never answers takes timer B
                // (64*T1, 32 s by default) to fail, longer than a generic
                // wait for a connector's first event.
                events.offered("INVITE sent to the target").await;
            }

            let mut interval = stack.t1();
            let mut provisional = false;
            let timer_b = tokio::time::Instant::now() + stack.t1() * 64;
            let mut cancelled_at: Option<tokio::time::Instant> = None;
            let final_response = loop {
                // After a CANCEL, the INVITE gets 64*T1 to end (timer B again).
                let cancel_gives_up = cancelled_at
                    .map(|at| at + stack.t1() * 64)
                    .unwrap_or_else(tokio::time::Instant::now);
                // Timer A runs on UDP only: TCP does its own retransmission.
                let retransmit =
                    !provisional && cancelled_at.is_none() && to_addr.transport == Transport::Udp;
                tokio::select! {
                    response = registration.receiver.recv() => {
                        let Some(response) = response else {
                            return Err(Failure::new(FailureReason::ConnectorError, "transaction closed"));
                        };
                        let code = response.status_code.code();
                        if code < 200 {
                            provisional = true;
                            if (code == 180 || code == 183) && !rang && cancelled_at.is_none() {
                                rang = true;
                                events.ringing(&format!("{code} from the target")).await;
                            }
                            continue;
                        }
                        break response;
                    }
                    () = tokio::time::sleep(interval), if retransmit => {
                        // Timer A: retransmit, doubling, until any response.
                        stack.send(&bytes, to_addr).await.map_err(|e| Failure::transport(&e))?;
                        interval *= 2;
                    }
                    () = tokio::time::sleep_until(timer_b), if !provisional && cancelled_at.is_none() => {
                        self.legs().remove(&Self::key(transfer));
                        return Err(Failure::new(
                            FailureReason::Unreachable,
                            format!("408 Request Timeout (timer B): no response to the INVITE within {:?}", stack.t1() * 64),
                        ));
                    }
                    // RFC 3261 9.1: no CANCEL before a provisional response.
                    // A silent target is timer B's (unreachable), never the
                    // ring timeout's (no answer).
                    () = tokio::time::sleep_until(ring_deadline), if cancelled_at.is_none() && provisional => {
                        // Ring timeout: CANCEL, then wait for the 487 (or a
                        // 200 that crossed the CANCEL) to close the INVITE.
                        cancelled_at = Some(tokio::time::Instant::now());
                        self.legs().remove(&Self::key(transfer));
                        self.spawn_cancel(destination.request_uri.clone(), cancel_lines.clone(), branch.clone(), to_addr);
                    }
                    () = tokio::time::sleep_until(cancel_gives_up), if cancelled_at.is_some() => {
                        return Err(Failure::new(FailureReason::NoAnswer, "ring timeout; cancelled"));
                    }
                }
            };
            let code = final_response.status_code.code();
            if code >= 300 {
                // Non-2xx: the ACK belongs to the INVITE transaction.
                let ack = leg::ack_lines(&lines, &final_response, &branch, cseq, &[]);
                if let Ok(ack) =
                    message::render_request(Method::Ack, &destination.request_uri, &ack, b"")
                {
                    let _ = stack.send(&ack, to_addr).await;
                }
                if cancelled_at.is_some() {
                    return Err(Failure::new(
                        FailureReason::NoAnswer,
                        "ring timeout; cancelled",
                    ));
                }
                if (code == 401 || code == 407)
                    && authorization.is_none()
                    && let Some((username, password)) = &destination.credentials
                {
                    let answer = answer_challenge(
                        &final_response,
                        username,
                        password,
                        &Method::Invite,
                        &destination.request_uri,
                    );
                    if let Some(answer) = answer {
                        authorization = Some(answer);
                        cseq += 1;
                        continue;
                    }
                }
                self.legs().remove(&Self::key(transfer));
                return Err(Failure::new(
                    failure_for_status(code),
                    format!("{code} from the target"),
                ));
            }
            // 2xx: the dialog exists; ACK it end to end.
            let dialog =
                leg::answered_dialog(&final_response, &lines, &destination.request_uri, cseq);
            leg::ack_answer(stack, &lines, &final_response, &dialog, to_addr).await;
            if cancelled_at.is_some() {
                // The human answered as the ring timeout passed: hang up.
                leg::spawn_bye(stack, dialog);
                return Err(Failure::new(
                    FailureReason::NoAnswer,
                    "ring timeout; cancelled",
                ));
            }
            self.hold(transfer, events, Leg::Answered(dialog.clone()))
                .await;
            let expected = leg::expected_in(stack, &dialog, Some(to_addr)).await;
            stack.remember_answered(&dialog.call_id, expected);
            return Ok(dialog);
        }
    }

    fn spawn_cancel(&self, uri: String, lines: HeaderLines, branch: String, to: Peer) {
        spawn_cancel(&self.stack, uri, lines, branch, to);
    }

    /// Sends a REFER to the caller's gateway and follows its NOTIFYs until
    /// the sipfrag gives a final outcome (RFC 3515); a 202 alone is not
    /// success. `on_ringing` reports a 180 sipfrag (blind transfers).
    /// `subscription` is the REFER's Call-ID and From tag, which its NOTIFYs
    /// must carry, from the gateway (or the proxy it went through).
    async fn refer(
        &self,
        gateway: &str,
        refer_to: &str,
        call: &CallReference,
        subscription: &ReferSubscription,
        events: Option<&TransferEvents>,
    ) -> Result<(), Failure> {
        let call_id = subscription.call_id.as_str();
        let stack = &self.stack;
        if !message::is_safe_uri(gateway) || rsip::Uri::try_from(gateway).is_err() {
            return Err(Failure::new(
                FailureReason::Unreachable,
                "the caller's gateway URI is not a valid SIP URI",
            ));
        }
        let branch = format!("z9hG4bK{}", random_token());
        let own = stack.own_uri();
        let to = stack
            .resolve(gateway)
            .await
            .map_err(|e| Failure::transport(&e))?;
        let mut lines: HeaderLines = vec![
            ("Via".into(), stack.via(&branch, to.transport)),
            ("Max-Forwards".into(), "70".into()),
            ("From".into(), format!("<{own}>;tag={}", subscription.tag)),
            ("To".into(), format!("<{gateway}>")),
            ("Call-ID".into(), call_id.to_owned()),
            ("CSeq".into(), "1 REFER".into()),
            ("Contact".into(), stack.contact(to.transport)),
            ("Refer-To".into(), format!("<{refer_to}>")),
            ("Referred-By".into(), format!("<{own}>")),
        ];
        if !call.sip_call_id.is_empty() {
            // RFC 4538: the gateway's tag is local, the customer's remote.
            lines.push((
                "Target-Dialog".into(),
                format!(
                    "{};local-tag={};remote-tag={}",
                    message::sanitize(&call.sip_call_id, 256),
                    message::sanitize(&call.sip_to_tag, 128),
                    message::sanitize(&call.sip_from_tag, 128)
                ),
            ));
        }
        lines.push(("Supported".into(), "tdialog, replaces".into()));
        lines.extend(trace_context());
        lines.push((
            "User-Agent".into(),
            format!("baton-connector-sip/{}", env!("CARGO_PKG_VERSION")),
        ));
        // Listen for the NOTIFYs before the REFER leaves: they may overtake the 202.
        let expected = Expected {
            local_tag: subscription.tag.clone(),
            remote_tag: None,
            peers: origin::peers_for(gateway, Some(to)).await,
        };
        let mut notifies = stack.register_dialog(call_id, Some(expected));
        let refer = {
            let stack = stack.clone();
            let credentials = self.config.credentials_for(gateway);
            let gateway = gateway.to_owned();
            async move {
                let response = stack
                    .non_invite(Method::Refer, &gateway, &lines, &branch, b"", to)
                    .await?;
                let code = response.status_code.code();
                let answer = match (&credentials, code) {
                    (Some((username, password)), 401 | 407) => {
                        answer_challenge(&response, username, password, &Method::Refer, &gateway)
                    }
                    _ => None,
                };
                let Some(answer) = answer else {
                    return Ok(response);
                };
                // Once more, authenticated: a new transaction, the next CSeq.
                let branch = format!("z9hG4bK{}", random_token());
                let mut lines: HeaderLines = lines
                    .into_iter()
                    .map(|(name, value)| match name.as_str() {
                        "Via" => (name, stack.via(&branch, to.transport)),
                        "CSeq" => (name, "2 REFER".to_owned()),
                        _ => (name, value),
                    })
                    .collect();
                lines.push(answer);
                stack
                    .non_invite(Method::Refer, &gateway, &lines, &branch, b"", to)
                    .await
            }
        };
        tokio::pin!(refer);
        let deadline = tokio::time::sleep(self.config.notify_timeout);
        tokio::pin!(deadline);
        let mut accepted = false;
        let mut rang = false;
        loop {
            tokio::select! {
                result = &mut refer, if !accepted => match result {
                    Ok(response) if response.status_code.code() < 300 => accepted = true,
                    Ok(response) => {
                        let code = response.status_code.code();
                        return Err(Failure::new(failure_for_status(code), format!("REFER answered {code}")));
                    }
                    Err(error) => return Err(Failure::transport(&error)),
                },
                request = notifies.receiver.recv() => {
                    let Some(request) = request else { continue };
                    match notify_outcome(&request) {
                        NotifyOutcome::Progress(code) => {
                            if (code == 180 || code == 183) && !rang {
                                rang = true;
                                if let Some(events) = events {
                                    events.ringing(&format!("NOTIFY sipfrag {code}")).await;
                                }
                            }
                        }
                        NotifyOutcome::Final(outcome) => return outcome,
                        NotifyOutcome::None => {}
                    }
                }
                () = &mut deadline => {
                    let reason = if rang { FailureReason::NoAnswer } else { FailureReason::Unreachable };
                    return Err(Failure::new(reason, "no final NOTIFY for the REFER in time"));
                }
            }
        }
    }

    /// The Refer-To URI: `target` with `?Replaces=…` (warm) and, when so
    /// placed, `User-to-User=…`.
    fn refer_to(&self, target: &str, replaces: Option<&Dialog>, uui: Option<&str>) -> String {
        let mut headers = Vec::new();
        if let Some(dialog) = replaces {
            // RFC 3891: the dialog at the recipient (the human), whose tag is
            // the to-tag; ours is the from-tag.
            headers.push(format!(
                "Replaces={}",
                message::escape_uri_header(&format!(
                    "{};to-tag={};from-tag={}",
                    dialog.call_id, dialog.remote_tag, dialog.local_tag
                ))
            ));
        }
        if let Some(uui) = uui {
            headers.push(format!("User-to-User={}", message::escape_uri_header(uui)));
        }
        if headers.is_empty() {
            target.to_owned()
        } else {
            format!("{target}?{}", headers.join("&"))
        }
    }

    async fn warm(&self, transfer: &Transfer, events: &TransferEvents) -> Result<(), Failure> {
        let destination = self.destination(transfer)?;
        let context = self.context_headers(transfer);
        let dialog = self
            .call_human(transfer, &destination, &context, events)
            .await?;
        events.answered("200 OK from the target").await;
        let delivered: Vec<&str> = context
            .iter()
            .map(|(name, _)| name.as_str())
            .filter(|name| *name != "P-Asserted-Identity")
            .collect();
        if !delivered.is_empty() {
            events
                .context_delivered(&format!("in the INVITE: {}", delivered.join(", ")))
                .await;
        }
        let call = call_reference(transfer);
        if call.sip_gateway_uri.is_empty() {
            // No caller leg to join (chat, or a test): answering is
            // connecting, and the connector's own leg, which carries no
            // media, has done its part: hang it up.
            self.legs().remove(&Self::key(transfer));
            events.connected("answered; no caller leg to join").await;
            events.completed("").await;
            leg::spawn_bye(&self.stack, dialog);
            return Ok(());
        }
        // Refer the caller to the human's device when it is reachable
        // directly, else to the URI we called (proxies route it).
        let target = if dialog.route_set.is_empty() && message::is_safe_uri(&dialog.remote_target) {
            dialog.remote_target.clone()
        } else {
            dialog.target_uri.clone()
        };
        let uui = self.uui(transfer).filter(|_| {
            self.config
                .headers
                .uui_placement_for(target_name(&transfer.target))
                == UuiPlacement::ReferTo
        });
        let refer_to = self.refer_to(&target, Some(&dialog), uui.as_deref());
        let subscription = ReferSubscription::new();
        let referring = Leg::Referring {
            refer_call_id: subscription.call_id.clone(),
            dialog: Some(dialog.clone()),
            refer_tag: Some(subscription.tag.clone()),
        };
        self.hold(transfer, events, referring).await;
        match self
            .refer(&call.sip_gateway_uri, &refer_to, &call, &subscription, None)
            .await
        {
            Ok(()) => {
                // The human's phone hangs up our leg when Replaces takes
                // it; if it does not within 64*T1, the connector does.
                self.legs().remove(&Self::key(transfer));
                leg::spawn_bye_unless_hung_up(&self.stack, dialog, self.stack.t1() * 64);
                events.connected("REFER with Replaces succeeded").await;
                events.completed("").await;
                Ok(())
            }
            Err(failure) => {
                self.legs().remove(&Self::key(transfer));
                leg::spawn_bye(&self.stack, dialog);
                Err(failure)
            }
        }
    }

    async fn blind(&self, transfer: &Transfer, events: &TransferEvents) -> Result<(), Failure> {
        let destination = self.destination(transfer)?;
        let call = call_reference(transfer);
        if call.sip_gateway_uri.is_empty() {
            return Err(Failure::new(
                FailureReason::Unsupported,
                "a blind transfer needs the caller's gateway (conversation.call.sip_gateway_uri)",
            ));
        }
        // There is no INVITE of ours: User-to-User travels in the Refer-To.
        let uui = self.uui(transfer);
        let refer_to = self.refer_to(&destination.request_uri, None, uui.as_deref());
        let subscription = ReferSubscription::new();
        let referring = Leg::Referring {
            refer_call_id: subscription.call_id.clone(),
            dialog: None,
            refer_tag: Some(subscription.tag.clone()),
        };
        self.hold(transfer, events, referring).await;
        // The REFER may take timer F (64*T1) to fail: say at once that the
        // transfer is under way.
        events.offered("REFER sent to the caller's gateway").await;
        let referred = self
            .refer(
                &call.sip_gateway_uri,
                &refer_to,
                &call,
                &subscription,
                Some(events),
            )
            .await;
        self.legs().remove(&Self::key(transfer));
        referred?;
        events.answered("NOTIFY sipfrag 200").await;
        if uui.is_some() {
            events
                .context_delivered("User-to-User in the Refer-To")
                .await;
        }
        events.connected("REFER succeeded").await;
        events.completed("").await;
        Ok(())
    }
}

/// The REFER's Call-ID and From tag: the NOTIFYs of its implicit
/// subscription (RFC 3515) come in that dialog.
struct ReferSubscription {
    call_id: String,
    tag: String,
}

impl ReferSubscription {
    fn new() -> Self {
        Self {
            call_id: format!("{}@baton", random_token()),
            tag: random_token(),
        }
    }
}

/// What one request in a REFER's subscription says (RFC 3515: NOTIFYs
/// with a `message/sipfrag` status).
pub(crate) enum NotifyOutcome {
    /// A provisional status (180 ringing, 100 trying).
    Progress(u16),
    /// The REFER's final outcome: success, or the failure it means.
    Final(Result<(), Failure>),
    /// Not a NOTIFY, or no sipfrag status.
    None,
}

pub(crate) fn notify_outcome(request: &rsip::Request) -> NotifyOutcome {
    if request.method != Method::Notify {
        return NotifyOutcome::None;
    }
    match message::sipfrag_status(&request.body) {
        Some(code) if code < 200 => NotifyOutcome::Progress(code),
        Some(code) if code < 300 => NotifyOutcome::Final(Ok(())),
        Some(code) => NotifyOutcome::Final(Err(Failure::new(
            failure_for_status(code),
            format!("NOTIFY sipfrag {code}"),
        ))),
        None => {
            tracing::debug!("NOTIFY without a sipfrag status ignored");
            NotifyOutcome::None
        }
    }
}

fn spawn_cancel(
    stack: &Arc<SipStack>,
    uri: String,
    lines: HeaderLines,
    branch: String,
    to: Peer,
) -> tokio::task::JoinHandle<()> {
    let stack = stack.clone();
    tokio::spawn(async move {
        if let Err(error) = stack
            .non_invite(Method::Cancel, &uri, &lines, &branch, b"", to)
            .await
        {
            tracing::warn!(%error, "CANCEL got no final response");
        }
    })
}

/// The Authorization (401) or Proxy-Authorization (407) header that
/// answers the challenge in `response`, when we can.
fn answer_challenge(
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

/// The target as configured: its SIP URI or its number.
/// The W3C `traceparent` of the transfer's span as a SIP header, so that the
/// far end's spans (or a capture) join the handoff's trace. The value is
/// built by OpenTelemetry from hex digits and dashes; anything else is left
/// out rather than sent into a header.
fn trace_context() -> Option<(String, String)> {
    baton_service_kit::telemetry::current_traceparent()
        .filter(|value| {
            value
                .bytes()
                .all(|byte| byte.is_ascii_hexdigit() || byte == b'-')
        })
        .map(|value| ("traceparent".to_owned(), value))
}

fn target_name(target: &TransferTarget) -> &str {
    match target {
        TransferTarget::SipUri(uri) => uri,
        TransferTarget::PhoneNumber(number) => number,
        TransferTarget::Queue { name, .. } => name,
    }
}

fn call_reference(transfer: &Transfer) -> CallReference {
    transfer
        .envelope
        .conversation
        .as_ref()
        .and_then(|c| c.call.clone())
        .unwrap_or_default()
}

/// `intent` → `Intent`, `queue_name` → `Queue-Name`.
fn header_case(field: &str) -> String {
    field
        .split(['_', '-'])
        .filter(|part| !part.is_empty())
        .map(|part| {
            let mut chars = part.chars();
            chars
                .next()
                .map(|first| first.to_ascii_uppercase().to_string() + chars.as_str())
                .unwrap_or_default()
        })
        .collect::<Vec<_>>()
        .join("-")
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

impl Transfers {
    /// Runs `transfer` (warm, attended or blind) to its one terminal
    /// event, reported through `events`.
    pub async fn run(&self, transfer: Transfer, events: TransferEvents) {
        let result = match transfer.mode {
            TransferMode::Blind => self.blind(&transfer, &events).await,
            _ => self.warm(&transfer, &events).await,
        };
        if let Err(failure) = result {
            tracing::info!(reason = ?failure.reason, detail = %failure.detail, "transfer failed");
            events.failed(failure.reason, &failure.detail).await;
        }
    }

    /// Never a second INVITE: ends what the predecessor held, or follows
    /// its REFER (see [`restart`](crate::restart)).
    pub async fn resume(&self, transfer: Transfer, events: TransferEvents) {
        crate::restart::resume(&self.stack, self.config.notify_timeout, &transfer, &events).await;
    }

    /// Ends what this process holds for the transfer (in the background:
    /// the CANCELLED does not wait); for a transfer a predecessor held
    /// (`remembered`), ends its leg and waits a few round trips for it.
    pub async fn cancel(&self, transfer: &Transfer) {
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
}

#[cfg(test)]
mod tests {
    use super::*;
    use baton_connector_sdk::{ContextEnvelope, ContextPayload, ContextReference};

    async fn connector(config: UserAgentConfig) -> Transfers {
        let stack = SipStack::bind(
            "127.0.0.1:0".parse().expect("addr"),
            Transport::Udp,
            None,
            "baton".into(),
            std::time::Duration::from_millis(500),
            None,
        )
        .await
        .expect("binds");
        Transfers::new(Arc::new(config), stack)
    }

    fn transfer(token: &str, screen_pop: &str, headers_json: &str) -> Transfer {
        Transfer {
            handoff_id: "h1".into(),
            attempt: 1,
            target: TransferTarget::SipUri("sip:agent@127.0.0.1".into()),
            mode: TransferMode::Warm,
            envelope: ContextEnvelope {
                reference: Some(ContextReference {
                    handoff_id: "h1".into(),
                    token: token.into(),
                    context_url: String::new(),
                    screen_pop_url: screen_pop.into(),
                }),
                payloads: vec![ContextPayload {
                    mechanism: ContextMechanism::SipHeaders as i32,
                    content: headers_json.into(),
                    omitted_fields: vec![],
                }],
                ..Default::default()
            },
            deadline: std::time::SystemTime::now(),
            remembered: None,
        }
    }

    fn header<'a>(lines: &'a HeaderLines, name: &str) -> Option<&'a str> {
        lines
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    #[tokio::test]
    async fn context_headers_carry_the_token_and_fields_and_nothing_that_breaks_a_line() {
        let connector = connector(UserAgentConfig::ephemeral()).await;
        let long = "x".repeat(5000);
        let lines = connector.context_headers(&transfer(
            "tok",
            "https://baton.test/pop?t=1",
            &format!(r#"{{"intent":"a\r\nB: c","reason":"{long}","language":"en","priority":3,"summary":"secret"}}"#),
        ));
        assert_eq!(
            header(&lines, "User-to-User"),
            Some("746f6b;encoding=hex;purpose=isdn-uui")
        );
        assert_eq!(
            header(&lines, "Call-Info"),
            Some("<https://baton.test/pop?t=1>;purpose=info")
        );
        assert_eq!(header(&lines, "X-Baton-Intent"), Some("a  B: c"));
        assert_eq!(header(&lines, "X-Baton-Priority"), Some("3"));
        // Only configured fields go out.
        assert_eq!(header(&lines, "X-Baton-Summary"), None);
        for (name, value) in &lines {
            assert!(
                name.len() + 2 + value.len() < message::MAX_HEADER_LINE,
                "{name} too long"
            );
            assert!(!value.contains(['\r', '\n']));
        }
    }

    #[tokio::test]
    async fn a_token_over_the_uui_limit_and_an_unsafe_screen_pop_are_left_out() {
        let connector = connector(UserAgentConfig::ephemeral()).await;
        let lines = connector.context_headers(&transfer(
            &"t".repeat(65),
            "https://baton.test/pop?t=1>;evil",
            "{}",
        ));
        assert_eq!(header(&lines, "User-to-User"), None);
        assert_eq!(header(&lines, "Call-Info"), None);
    }

    #[tokio::test]
    async fn the_callers_number_leaves_only_when_configuration_names_it() {
        use crate::config::TrunkConfig;
        let trunk = TrunkConfig {
            name: "t".into(),
            prefixes: vec!["+49".into()],
            host: "trunk.example".into(),
            transport: Transport::Udp,
            username: None,
            password: None,
            number_format: NumberFormat::E164,
            caller_id: Some("+4930000000".into()),
            caller_id_policy: CallerIdPolicy::Original,
        };
        let mut transfer = transfer("tok", "", "{}");
        transfer.target = TransferTarget::PhoneNumber("+4930123".into());
        transfer.envelope.conversation = Some(baton_proto::types::v1::Conversation {
            call: Some(CallReference {
                caller_number: "+14155550123".into(),
                ..Default::default()
            }),
            ..Default::default()
        });
        for (send_sensitive, allowed) in
            [(vec![], false), (vec![SensitiveValue::CallerNumber], true)]
        {
            let mut config = UserAgentConfig::ephemeral();
            config.trunks = vec![trunk.clone()];
            config.headers.send_sensitive = send_sensitive;
            let connector = connector(config).await;
            let lines = connector.context_headers(&transfer);
            let from = connector.destination(&transfer).expect("a trunk").from_uri;
            let carried: Vec<&str> = lines
                .iter()
                .filter(|(_, value)| value.contains("14155550123"))
                .map(|(name, _)| name.as_str())
                .collect();
            if allowed {
                assert_eq!(carried, ["P-Asserted-Identity"]);
                assert!(from.starts_with("sip:+14155550123@"), "{from}");
            } else {
                assert!(carried.is_empty(), "{carried:?}");
                assert!(from.starts_with("sip:+4930000000@"), "{from}");
            }
        }
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
}
