//! What a transfer holds on the wire (an INVITE out to the human, the
//! human's answered leg, a REFER out to the caller's gateway) and how to
//! end it: CANCEL, BYE, or following the REFER's NOTIFYs.
//!
//! The same [`Leg`] is kept in memory, for `cancel` after a transfer's
//! future is dropped, and in the SDK's journal as the transfer's note
//! ([`Leg::to_note`], JSON), so that a process started after a crash or a
//! drain that timed out can end what its predecessor held without ever
//! sending a new INVITE.

use std::sync::Arc;

use rsip::Method;
use rsip::prelude::*;
use serde::{Deserialize, Serialize};

use crate::message::{self, HeaderLines};
use crate::origin::Expected;
use crate::stack::{Peer, SipError, SipStack, random_token};

/// What one transfer holds on the wire.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "leg", rename_all = "snake_case")]
pub enum Leg {
    /// The INVITE to the human is out without a final response: a CANCEL
    /// ends it.
    Inviting(PendingInvite),
    /// The human answered and no REFER is out yet: a BYE ends it.
    Answered(Dialog),
    /// A REFER is out to the caller's gateway (warm: with the human's
    /// answered leg, which a BYE ends; blind: nothing of ours to end). Its
    /// NOTIFYs, on the REFER's Call-ID, tell how it ends.
    Referring {
        refer_call_id: String,
        dialog: Option<Dialog>,
        /// The REFER's From tag, which its NOTIFYs carry as their To tag.
        /// Absent in notes of older versions: their NOTIFYs are then
        /// matched by Call-ID alone.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        refer_tag: Option<String>,
    },
    /// The transfer connected and waits for the human to hand the
    /// customer back at the address of this token
    /// ([`crate::hand_back`]): nothing of ours to end; a new process opens
    /// the address again.
    HandBackOpen { token: String },
}

/// An INVITE without a final response: what its CANCEL (RFC 3261 9.1)
/// and the ACK of its final response need.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PendingInvite {
    /// The INVITE's Request-URI, which the CANCEL repeats.
    pub request_uri: String,
    /// The CANCEL's header lines: the INVITE's Via (its branch), From, To,
    /// Call-ID and Route, and `CSeq: <n> CANCEL`.
    pub lines: HeaderLines,
    /// The INVITE's Via branch, shared by the CANCEL.
    pub branch: String,
    /// The INVITE's CSeq number.
    pub cseq: u32,
    /// Where the INVITE went.
    pub to: Peer,
}

impl PendingInvite {
    /// Sends the CANCEL and waits for its own final response (the
    /// INVITE's comes to the INVITE's transaction).
    pub async fn cancel(&self, stack: &Arc<SipStack>) -> Result<rsip::Response, SipError> {
        stack
            .non_invite(
                Method::Cancel,
                &self.request_uri,
                &self.lines,
                &self.branch,
                b"",
                self.to,
            )
            .await
    }
}

/// The dialog with the human, from the connector's side.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Dialog {
    pub call_id: String,
    /// Our From header (with our tag), as sent in the INVITE.
    pub from: String,
    /// The human's To header (with their tag), as answered.
    pub to: String,
    pub local_tag: String,
    pub remote_tag: String,
    /// The human's Contact: where in-dialog requests go.
    pub remote_target: String,
    /// Record-Route, reversed: the Route of in-dialog requests.
    pub route_set: Vec<String>,
    /// The last CSeq number we used in the dialog; a BYE takes the next.
    pub cseq: u32,
    /// The URI the human was called at (the Refer-To when proxies are in
    /// the path).
    pub target_uri: String,
}

impl Leg {
    /// The leg as the transfer's journal note.
    pub fn to_note(&self) -> String {
        // A plain struct of strings and numbers always serializes.
        serde_json::to_string(self).unwrap_or_default()
    }

    /// The leg a predecessor noted; `None` for a note this version cannot
    /// read.
    pub fn from_note(note: &str) -> Option<Self> {
        serde_json::from_str(note)
            .map_err(|error| tracing::warn!(%error, "unreadable SIP leg note"))
            .ok()
    }
}

/// How an INVITE that was cancelled ended.
#[derive(Debug, Clone, PartialEq)]
pub enum InviteEnd {
    /// A non-2xx final response (487 after the CANCEL, or the human's own
    /// refusal), acknowledged.
    Refused(u16),
    /// The human answered as the CANCEL went out: the leg was acknowledged
    /// and hung up (the BYE's status, or `None` without a final answer).
    AnsweredThenHungUp(Option<u16>),
    /// No final response within 64*T1 (the CANCEL got `cancel_status`).
    NoFinalResponse { cancel_status: Option<u16> },
}

/// Ends what `leg` holds and says how, waiting for the far end's answers
/// (at most about 64*T1): CANCEL an INVITE (acknowledging its final
/// response, and hanging up if the human answered meanwhile), BYE an
/// answered leg. A blind REFER holds nothing of ours.
pub async fn end(stack: &Arc<SipStack>, leg: Leg) -> String {
    match leg {
        Leg::Inviting(invite) => match end_invite(stack, &invite).await {
            InviteEnd::Refused(code) => format!("the INVITE to the human was cancelled ({code})"),
            InviteEnd::AnsweredThenHungUp(status) => format!(
                "the human answered as the INVITE was cancelled; the call was hung up (BYE {})",
                status_text(status)
            ),
            InviteEnd::NoFinalResponse { cancel_status } => format!(
                "the INVITE to the human was cancelled (CANCEL {}); its final response did not come",
                status_text(cancel_status)
            ),
        },
        Leg::Answered(dialog)
        | Leg::Referring {
            dialog: Some(dialog),
            ..
        } => {
            let status = bye(stack, dialog).await.ok();
            format!(
                "the human's answered call was hung up (BYE {})",
                status_text(status)
            )
        }
        Leg::Referring { dialog: None, .. } | Leg::HandBackOpen { .. } => {
            "no call of the connector's was held".to_owned()
        }
    }
}

fn status_text(status: Option<u16>) -> String {
    status.map_or_else(|| "unanswered".to_owned(), |code| code.to_string())
}

/// Ends one leg in the background (the transfer's outcome does not wait).
pub fn release(stack: &Arc<SipStack>, leg: Leg) -> tokio::task::JoinHandle<()> {
    let stack = stack.clone();
    tokio::spawn(async move {
        let how = end(&stack, leg).await;
        tracing::debug!(how, "leg released");
    })
}

/// CANCELs an INVITE nobody else follows, and follows its final response:
/// a non-2xx is acknowledged; a 2xx (the human answered as the CANCEL
/// crossed it) is acknowledged and hung up.
pub async fn end_invite(stack: &Arc<SipStack>, invite: &PendingInvite) -> InviteEnd {
    // Listen for the INVITE's final response before the CANCEL leaves.
    let mut responses = stack.register_transaction(&invite.branch, &Method::Invite, invite.to);
    let cancel = invite.cancel(stack);
    tokio::pin!(cancel);
    let give_up = tokio::time::sleep(stack.t1() * 64);
    tokio::pin!(give_up);
    let mut cancel_status = None;
    let mut cancel_done = false;
    let response = loop {
        tokio::select! {
            result = &mut cancel, if !cancel_done => {
                cancel_done = true;
                match result {
                    Ok(response) => cancel_status = Some(response.status_code.code()),
                    Err(error) => tracing::warn!(%error, "CANCEL got no final response"),
                }
            }
            response = responses.receiver.recv() => match response {
                Some(response) if response.status_code.code() >= 200 => break response,
                Some(_) => {}
                None => return InviteEnd::NoFinalResponse { cancel_status },
            },
            () = &mut give_up => return InviteEnd::NoFinalResponse { cancel_status },
        }
    };
    let code = response.status_code.code();
    if code >= 300 {
        let ack = ack_lines(&invite.lines, &response, &invite.branch, invite.cseq, &[]);
        if let Ok(ack) = message::render_request(Method::Ack, &invite.request_uri, &ack, b"") {
            let _ = stack.send(&ack, invite.to).await;
        }
        return InviteEnd::Refused(code);
    }
    let dialog = answered_dialog(&response, &invite.lines, &invite.request_uri, invite.cseq);
    ack_answer(stack, &invite.lines, &response, &dialog, invite.to).await;
    InviteEnd::AnsweredThenHungUp(bye(stack, dialog).await.ok())
}

/// The dialog a 2xx to our INVITE creates: Call-ID, tags and From from
/// the INVITE's `lines`, the remote target and route set from the answer.
pub fn answered_dialog(
    response: &rsip::Response,
    lines: &HeaderLines,
    request_uri: &str,
    cseq: u32,
) -> Dialog {
    let line = |name: &str| {
        lines
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.clone())
            .unwrap_or_default()
    };
    let from = line("From");
    let local_tag = from
        .split(";tag=")
        .nth(1)
        .and_then(|rest| rest.split(';').next())
        .unwrap_or_default()
        .to_owned();
    let remote_tag = response
        .to_header()
        .ok()
        .and_then(|t| t.tag().ok().flatten())
        .map(|t| t.to_string())
        .unwrap_or_default();
    let remote_target = response
        .contact_header()
        .ok()
        .map(|c| message::addr_uri(c.value()).to_owned())
        .unwrap_or_else(|| request_uri.to_owned());
    let mut route_set: Vec<String> = message::headers_named(response.headers(), "Record-Route")
        .iter()
        .flat_map(|v| {
            v.split(',')
                .map(|r| r.trim().to_owned())
                .collect::<Vec<_>>()
        })
        .filter(|r| !r.is_empty())
        .collect();
    route_set.reverse();
    Dialog {
        call_id: line("Call-ID"),
        from,
        to: response
            .to_header()
            .map(|t| t.value().to_owned())
            .unwrap_or_default(),
        local_tag,
        remote_tag,
        remote_target,
        route_set,
        cseq,
        target_uri: request_uri.to_owned(),
    }
}

/// ACKs a 2xx end to end (RFC 3261 13.2.2.4): a new branch, to the remote
/// target through the route set; `fallback` when the next hop does not
/// resolve.
pub async fn ack_answer(
    stack: &Arc<SipStack>,
    invite: &HeaderLines,
    response: &rsip::Response,
    dialog: &Dialog,
    fallback: Peer,
) {
    let branch = format!("z9hG4bK{}", random_token());
    let ack = ack_lines(invite, response, &branch, dialog.cseq, &route_lines(dialog));
    let to = dialog_destination(stack, dialog).await.unwrap_or(fallback);
    if let Ok(ack) = message::render_request(Method::Ack, &dialog.remote_target, &ack, b"") {
        let _ = stack.send(&ack, to).await;
    }
}

/// The first lines of a request inside `dialog` (RFC 3261 12.2.1.1): a
/// Via with `branch` for the transport towards `to`, Max-Forwards, the
/// dialog's From, To and Call-ID, and the CSeq `cseq method`. The route
/// set ([`route_lines`]) goes after whatever the request adds.
pub fn in_dialog_lines(
    stack: &SipStack,
    dialog: &Dialog,
    branch: &str,
    to: Peer,
    cseq: u32,
    method: &Method,
) -> HeaderLines {
    vec![
        ("Via".into(), stack.via(branch, to.transport)),
        ("Max-Forwards".into(), "70".into()),
        ("From".into(), dialog.from.clone()),
        ("To".into(), dialog.to.clone()),
        ("Call-ID".into(), dialog.call_id.clone()),
        ("CSeq".into(), format!("{cseq} {method}")),
    ]
}

/// A Route line for each entry of `dialog`'s route set, in order.
pub fn route_lines(dialog: &Dialog) -> HeaderLines {
    dialog
        .route_set
        .iter()
        .map(|r| ("Route".to_owned(), r.clone()))
        .collect()
}

/// Hangs up an answered leg and returns the BYE's final status.
pub async fn bye(stack: &Arc<SipStack>, dialog: Dialog) -> Result<u16, SipError> {
    stack.forget_answered(&dialog.call_id);
    let cseq = dialog.cseq + 1;
    let branch = format!("z9hG4bK{}", random_token());
    let to = dialog_destination(stack, &dialog).await?;
    let mut lines = in_dialog_lines(stack, &dialog, &branch, to, cseq, &Method::Bye);
    lines.extend(route_lines(&dialog));
    let response = stack
        .non_invite(Method::Bye, &dialog.remote_target, &lines, &branch, b"", to)
        .await?;
    Ok(response.status_code.code())
}

/// What the human's requests in `dialog` (their BYE) must carry: the
/// dialog's tags, from the peer the INVITE went to (`invited`) or the
/// dialog's next hop.
pub async fn expected_in(stack: &SipStack, dialog: &Dialog, invited: Option<Peer>) -> Expected {
    let mut peers: Vec<Peer> = invited.into_iter().collect();
    if let Ok(next_hop) = dialog_destination(stack, dialog).await {
        peers.push(next_hop);
    }
    Expected {
        local_tag: dialog.local_tag.clone(),
        remote_tag: Some(dialog.remote_tag.clone()).filter(|tag| !tag.is_empty()),
        peers,
    }
}

/// Hangs up an answered leg after `wait`, unless the human's side hung it
/// up first (the phone ends the leg that Replaces took over).
pub fn spawn_bye_unless_hung_up(stack: &Arc<SipStack>, dialog: Dialog, wait: std::time::Duration) {
    let stack = stack.clone();
    tokio::spawn(async move {
        tokio::time::sleep(wait).await;
        if stack.forget_answered(&dialog.call_id)
            && let Err(error) = bye(&stack, dialog).await
        {
            tracing::warn!(%error, "BYE to the human's replaced leg failed");
        }
    });
}

/// Hangs up an answered leg in the background.
pub fn spawn_bye(stack: &Arc<SipStack>, dialog: Dialog) {
    let stack = stack.clone();
    tokio::spawn(async move {
        if let Err(error) = bye(&stack, dialog).await {
            tracing::warn!(%error, "BYE to the human's leg failed");
        }
    });
}

/// The next hop in a dialog: the first route (loose routing), else the
/// remote target. A dialog whose target asked for TLS (`sips:`,
/// `;transport=tls`) never continues in clear, whatever the peer's Contact
/// or Record-Route say.
pub async fn dialog_destination(stack: &SipStack, dialog: &Dialog) -> Result<Peer, SipError> {
    let next_hop = dialog
        .route_set
        .first()
        .map(|r| message::addr_uri(r).to_owned());
    let next_hop = next_hop.as_deref().unwrap_or(&dialog.remote_target);
    let peer = stack.resolve(next_hop).await?;
    if peer.transport != crate::config::Transport::Tls && asks_for_tls(&dialog.target_uri) {
        return Err(SipError::Tls(format!(
            "the dialog was set up over TLS and its next hop {next_hop} is not: not sent in clear"
        )));
    }
    Ok(peer)
}

/// Whether `uri` is `sips:` or names `;transport=tls`.
fn asks_for_tls(uri: &str) -> bool {
    // A bare URI keeps its parameters; addr_uri would drop them.
    let bare = if uri.contains('<') {
        message::addr_uri(uri)
    } else {
        uri.trim()
    };
    rsip::Uri::try_from(bare).is_ok_and(|parsed| {
        parsed.scheme == Some(rsip::Scheme::Sips)
            || parsed
                .params
                .iter()
                .any(|p| matches!(p, rsip::Param::Transport(rsip::Transport::Tls)))
    })
}

/// The CANCEL for an INVITE (RFC 3261 9.1): same Request-URI, Via, From, To,
/// Call-ID and CSeq number, and the same Route.
pub fn cancel_lines(invite: &HeaderLines, cseq: u32) -> HeaderLines {
    invite
        .iter()
        .filter(|(name, _)| {
            matches!(
                name.as_str(),
                "Via" | "Max-Forwards" | "From" | "To" | "Call-ID" | "Route"
            )
        })
        .cloned()
        .chain(std::iter::once((
            "CSeq".to_owned(),
            format!("{cseq} CANCEL"),
        )))
        .collect()
}

/// The ACK for a final response: the INVITE's From and Call-ID, the
/// response's To (with its tag), the given branch and routes.
pub fn ack_lines(
    invite: &HeaderLines,
    response: &rsip::Response,
    branch: &str,
    cseq: u32,
    routes: &[(String, String)],
) -> HeaderLines {
    let mut lines = HeaderLines::new();
    for (name, value) in invite {
        match name.as_str() {
            "Via" => {
                let sent_by = value.split(";branch=").next().unwrap_or(value);
                lines.push(("Via".into(), format!("{sent_by};branch={branch};rport")));
            }
            "Max-Forwards" | "From" | "Call-ID" => lines.push((name.clone(), value.clone())),
            "To" => {
                let to = response
                    .to_header()
                    .map(|t| t.value().to_owned())
                    .unwrap_or_else(|_| value.clone());
                lines.push(("To".into(), to));
            }
            _ => {}
        }
    }
    lines.extend(routes.iter().cloned());
    lines.push(("CSeq".into(), format!("{cseq} ACK")));
    lines
}

#[cfg(test)]
mod tests;
