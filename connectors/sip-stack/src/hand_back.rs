//! Hand-back to the AI runtime in SIP. Each transfer that has a caller's
//! gateway gets an address of its own on the connector,
//! `sip:handback-<token>@<connector>`, advertised to the human's side (a
//! `Call-Info` with `purpose=hand-back`: in the INVITE to the human, or in
//! the Refer-To of a blind transfer). When the human hands the customer
//! back, their phone transfers the call there (a blind transfer), and the
//! caller's gateway INVITEs that address. The connector answers `302 Moved
//! Temporarily` with the runtime's URI as Contact, the handoff id in its
//! User-to-User (RFC 7433 section 4.1: UUI in a redirect's Contact), so
//! that the gateway takes the customer to the runtime, and the transfer
//! reports HANDED_BACK with the wrap-up the INVITE carried
//! (`X-Baton-Disposition`, `X-Baton-Notes`, `X-Baton-Instruction`).
//!
//! The token is 128 random bits, so only who received the INVITE (or the
//! REFER) can hand back; it is bound to the one transfer (tenant, handoff,
//! attempt) that opened it, and takes one hand-back. An address nobody
//! opened gets 404; one whose transfer ended (handed back, cancelled,
//! failed, or the window passed) gets 403.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use baton_proto::types::v1::WrapUp;
use serde::Deserialize;
use tokio::sync::oneshot;

use crate::message::{self, HeaderLines};

/// The user part of every hand-back address, before its token.
const PREFIX: &str = "handback-";
/// The token's length: 128 bits in hex.
const TOKEN_HEX_LEN: usize = 32;
/// The ended addresses remembered (for their 403); older ones get 404.
const ENDED_KEPT: usize = 10_000;
/// The most bytes taken from the INVITE for each part of the wrap-up.
pub const DISPOSITION_MAX_BYTES: usize = 128;
/// Notes and instruction: what fits a header line.
pub const NOTE_MAX_BYTES: usize = 900;

/// The `[hand_back]` section: where a customer handed back goes.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HandBackConfig {
    /// The AI runtime's SIP URI, e.g. `sip:ai@runtime.example:5060`: the
    /// Contact of the 302 that takes the customer back. Required.
    pub runtime_uri: String,
    /// How long after CONNECTED the hand-back address stays open; then the
    /// transfer reports COMPLETED (the connector does not see the call end
    /// once the gateway has joined the customer to the human). Default
    /// `4h`.
    #[serde(default = "default_window", with = "humantime_serde")]
    pub window: Duration,
}

fn default_window() -> Duration {
    Duration::from_secs(4 * 60 * 60)
}

impl HandBackConfig {
    /// Checks what serde cannot, naming the key.
    pub fn validate(&self) -> Result<(), String> {
        let uri = self.runtime_uri.as_str();
        let parsed = rsip::Uri::try_from(uri).ok();
        let sip = parsed.as_ref().is_some_and(|u| {
            matches!(u.scheme, Some(rsip::Scheme::Sip) | Some(rsip::Scheme::Sips))
        });
        // Its User-to-User is added as a URI header: it must have none.
        if !sip || !message::is_safe_uri(uri) || uri.contains('?') {
            return Err(
                "hand_back.runtime_uri must be a sip: or sips: URI without ?headers".into(),
            );
        }
        if self.window.is_zero() {
            return Err("hand_back.window must be more than 0".into());
        }
        Ok(())
    }
}

/// What the human's side handed back.
#[derive(Debug, Clone, PartialEq)]
pub struct HandedBack {
    /// From the INVITE's `X-Baton-*` headers; empty when it had none.
    pub wrap_up: WrapUp,
}

/// One transfer's hand-back address, open while this is held: dropping it
/// (the transfer ended, or was cancelled) ends the address.
pub struct HandBackAddress {
    token: String,
    uri: String,
    received: oneshot::Receiver<HandedBack>,
    registry: Arc<HandBacks>,
}

impl std::fmt::Debug for HandBackAddress {
    // The token is the capability: it stays out of logs.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HandBackAddress").finish_non_exhaustive()
    }
}

impl HandBackAddress {
    /// The token, for the note that lets a new process open the address
    /// again ([`HandBacks::reopen`]).
    pub fn token(&self) -> &str {
        &self.token
    }

    /// The address, `sip:handback-<token>@<connector>`.
    pub fn uri(&self) -> &str {
        &self.uri
    }

    /// The `Call-Info` value that advertises it.
    pub fn call_info(&self) -> String {
        format!("<{}>;purpose=hand-back", self.uri)
    }

    /// Waits for the hand-back (held until asked for, if it came early);
    /// `None` if there will be none.
    pub async fn handed_back(&mut self) -> Option<HandedBack> {
        (&mut self.received).await.ok()
    }
}

impl Drop for HandBackAddress {
    fn drop(&mut self) {
        self.registry.end(&self.token);
    }
}

/// An address: open (with where the customer goes and who hears of the
/// hand-back), or ended.
enum State {
    Open {
        contact: String,
        hears: oneshot::Sender<HandedBack>,
    },
    Ended,
}

/// The hand-back addresses of one SIP endpoint.
#[derive(Default)]
pub struct HandBacks {
    addresses: Mutex<Addresses>,
}

#[derive(Default)]
struct Addresses {
    by_token: HashMap<String, State>,
    /// Ended tokens, oldest first, bounded by [`ENDED_KEPT`].
    ended: VecDeque<String>,
}

impl Addresses {
    /// Ends the address of `token`, returning what it was (`None`: no
    /// such address). Ended addresses are remembered, the oldest
    /// forgotten first.
    fn close(&mut self, token: &str) -> Option<State> {
        let state = std::mem::replace(self.by_token.get_mut(token)?, State::Ended);
        if matches!(state, State::Open { .. }) {
            self.ended.push_back(token.to_owned());
            while self.ended.len() > ENDED_KEPT {
                if let Some(oldest) = self.ended.pop_front() {
                    self.by_token.remove(&oldest);
                }
            }
        }
        Some(state)
    }
}

impl std::fmt::Debug for HandBacks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HandBacks").finish_non_exhaustive()
    }
}

/// How an out-of-dialog INVITE to a hand-back address is answered.
#[derive(Debug, PartialEq)]
pub struct Answer {
    pub code: u16,
    pub reason: &'static str,
    /// The 302's Contact.
    pub headers: HeaderLines,
}

impl HandBacks {
    fn lock(&self) -> std::sync::MutexGuard<'_, Addresses> {
        self.addresses.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Opens an address on `host` (the connector's `host:port`) whose 302
    /// sends the customer to `contact`.
    pub fn open(self: &Arc<Self>, host: &str, contact: String) -> HandBackAddress {
        let token = format!("{:032x}", rand::random::<u128>());
        self.register(token, host, contact)
    }

    /// Opens again the address of `token`, which a previous process
    /// opened and noted (the human's phone has it already); `None` for a
    /// token that is not one.
    pub fn reopen(
        self: &Arc<Self>,
        token: &str,
        host: &str,
        contact: String,
    ) -> Option<HandBackAddress> {
        is_token(token).then(|| self.register(token.to_owned(), host, contact))
    }

    fn register(self: &Arc<Self>, token: String, host: &str, contact: String) -> HandBackAddress {
        let (hears, received) = oneshot::channel();
        self.lock()
            .by_token
            .insert(token.clone(), State::Open { contact, hears });
        HandBackAddress {
            uri: format!("sip:{PREFIX}{token}@{host}"),
            token,
            received,
            registry: self.clone(),
        }
    }

    fn end(&self, token: &str) {
        self.lock().close(token);
    }

    /// The answer to an out-of-dialog INVITE, if its Request-URI is a
    /// hand-back address (`None`: it is not, and the INVITE is someone
    /// else's business). An open address is taken once: the transfer hears
    /// of the hand-back, and the address ends.
    pub fn answer(&self, invite: &rsip::Request) -> Option<Answer> {
        let user = invite.uri.auth.as_ref()?.user.as_str();
        let token = user.strip_prefix(PREFIX)?;
        let refuse = |code, reason| {
            Some(Answer {
                code,
                reason,
                headers: Vec::new(),
            })
        };
        if !is_token(token) {
            return refuse(404, "Not Found");
        }
        let Some(state) = self.lock().close(token) else {
            return refuse(404, "Not Found");
        };
        let State::Open { contact, hears } = state else {
            return refuse(403, "Forbidden");
        };
        let handed_back = HandedBack {
            wrap_up: wrap_up(&invite.headers),
        };
        if hears.send(handed_back).is_err() {
            // The transfer stopped listening as the INVITE came.
            return refuse(403, "Forbidden");
        }
        Some(Answer {
            code: 302,
            reason: "Moved Temporarily",
            headers: vec![("Contact".into(), contact)],
        })
    }
}

/// Whether `token` has the form of the tokens [`HandBacks::open`] makes.
fn is_token(token: &str) -> bool {
    token.len() == TOKEN_HEX_LEN
        && token
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// The 302's Contact: `runtime_uri` with User-to-User carrying `reference`
/// (hex, RFC 7433) as a URI header, so that the gateway's INVITE to the
/// runtime carries it; the bare URI when the reference does not fit.
pub fn runtime_contact(runtime_uri: &str, reference: &str, purpose: &str) -> String {
    if reference.is_empty() || reference.len() > crate::transfer::UUI_TOKEN_MAX_BYTES as usize {
        return format!("<{runtime_uri}>");
    }
    let uui = format!(
        "{};encoding=hex;purpose={purpose}",
        message::hex(reference.as_bytes())
    );
    format!(
        "<{runtime_uri}?User-to-User={}>",
        message::escape_uri_header(&uui)
    )
}

/// The wrap-up in the hand-back INVITE's `X-Baton-*` headers (the human's
/// phone or CTI sets them, e.g. as headers of the Refer-To URI that the
/// gateway copies into its INVITE): sanitized and bounded.
fn wrap_up(headers: &rsip::Headers) -> WrapUp {
    let field = |name: &str, max: usize| {
        message::header_value(headers, name)
            .map(|value| message::sanitize(&value, max))
            .unwrap_or_default()
    };
    WrapUp {
        disposition: field("X-Baton-Disposition", DISPOSITION_MAX_BYTES),
        notes: field("X-Baton-Notes", NOTE_MAX_BYTES),
        instruction: field("X-Baton-Instruction", NOTE_MAX_BYTES),
        // A phone has no one-click judgements to send.
        ..WrapUp::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn invite(user: &str, extra: &str) -> rsip::Request {
        let text = format!(
            "INVITE sip:{user}@127.0.0.1:5062 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bK1\r\nFrom: <sip:gw@127.0.0.1>;tag=1\r\nTo: <sip:{user}@127.0.0.1:5062>\r\nCall-ID: hb1\r\nCSeq: 1 INVITE\r\n{extra}Content-Length: 0\r\n\r\n"
        );
        match message::parse(text.as_bytes()).expect("parses") {
            rsip::SipMessage::Request(request) => request,
            rsip::SipMessage::Response(_) => unreachable!("a request"),
        }
    }

    fn user_of(address: &HandBackAddress) -> String {
        address
            .uri()
            .trim_start_matches("sip:")
            .split('@')
            .next()
            .unwrap_or_default()
            .to_owned()
    }

    #[tokio::test]
    async fn an_open_address_redirects_once_and_hands_the_wrap_up_to_its_transfer() {
        let registry = Arc::new(HandBacks::default());
        let mut address = registry.open("127.0.0.1:5062", "<sip:ai@runtime>".into());
        assert!(address.call_info().ends_with(">;purpose=hand-back"));
        let user = user_of(&address);
        let answer = registry
            .answer(&invite(
                &user,
                "X-Baton-Disposition: verified\r\nX-Baton-Instruction: finish the address change\r\n",
            ))
            .expect("a hand-back address");
        assert_eq!(
            (answer.code, answer.headers),
            (302, vec![("Contact".into(), "<sip:ai@runtime>".into())])
        );
        let handed_back = address.handed_back().await.expect("told");
        assert_eq!(handed_back.wrap_up.disposition, "verified");
        assert_eq!(handed_back.wrap_up.instruction, "finish the address change");
        assert_eq!(handed_back.wrap_up.notes, "");
        // Taken once: the same address again is refused, and so after the
        // transfer let go of it.
        assert_eq!(
            registry.answer(&invite(&user, "")).map(|a| a.code),
            Some(403)
        );
        drop(address);
        assert_eq!(
            registry.answer(&invite(&user, "")).map(|a| a.code),
            Some(403)
        );
    }

    #[tokio::test]
    async fn unknown_malformed_and_ended_addresses_are_refused_and_others_left_alone() {
        let registry = Arc::new(HandBacks::default());
        let address = registry.open("127.0.0.1:5062", "<sip:ai@runtime>".into());
        let user = user_of(&address);
        let code = |user: &str| registry.answer(&invite(user, "")).map(|a| a.code);
        assert_eq!(code(&format!("{PREFIX}{}", "0".repeat(32))), Some(404));
        assert_eq!(code(&format!("{PREFIX}{}", "A".repeat(32))), Some(404));
        assert_eq!(code(&format!("{PREFIX}{}", "0".repeat(4000))), Some(404));
        assert_eq!(code(PREFIX), Some(404));
        assert_eq!(code("agent"), None);
        drop(address);
        assert_eq!(code(&user), Some(403));
    }

    #[tokio::test]
    async fn a_noted_address_opens_again_in_a_new_registry() {
        let before = Arc::new(HandBacks::default());
        let token = before
            .open("127.0.0.1:5062", "<sip:ai@runtime>".into())
            .token()
            .to_owned();
        let after = Arc::new(HandBacks::default());
        assert!(
            after
                .reopen("not-a-token", "127.0.0.1:5062", String::new())
                .is_none()
        );
        let mut address = after
            .reopen(&token, "127.0.0.1:5062", "<sip:ai@runtime>".into())
            .expect("a token");
        let answer = after.answer(&invite(&format!("{PREFIX}{token}"), ""));
        assert_eq!(answer.map(|a| a.code), Some(302));
        assert!(address.handed_back().await.is_some());
    }

    #[test]
    fn the_runtime_contact_carries_the_reference_in_user_to_user_as_a_uri_header() {
        assert_eq!(
            runtime_contact("sip:ai@runtime.test:5070", "h1", "isdn-uui"),
            "<sip:ai@runtime.test:5070?User-to-User=6831%3Bencoding%3Dhex%3Bpurpose%3Disdn-uui>"
        );
        assert_eq!(
            runtime_contact("sip:ai@runtime.test", &"h".repeat(65), "isdn-uui"),
            "<sip:ai@runtime.test>"
        );
    }

    #[test]
    fn the_runtime_uri_must_be_a_sip_uri_without_headers() {
        let config = |uri: &str| HandBackConfig {
            runtime_uri: uri.into(),
            window: default_window(),
        };
        assert_eq!(config("sip:ai@runtime.test:5070").validate(), Ok(()));
        assert_eq!(config("sips:ai@runtime.test").validate(), Ok(()));
        for bad in [
            "",
            "https://runtime.test",
            "sip:ai@runtime.test?X=1",
            "sip:a b@c",
        ] {
            let error = config(bad).validate().expect_err(bad);
            assert!(error.starts_with("hand_back.runtime_uri"), "{error}");
        }
    }
}
