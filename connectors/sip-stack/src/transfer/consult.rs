//! The consult leg of an attended transfer: the INVITE to the human offers
//! real audio (PCMU and telephone-event on an RTP socket of our own), and
//! once they answer they hear the brief while the customer stays on the
//! caller's gateway, which is sent nothing until the human accepts with a
//! key (RFC 4733 in RTP, or SIP INFO). A decline, a hang-up or no decision
//! in time fails the transfer REJECTED; [`ConsultKeys`] decides, the
//! progress says what follows.

use std::net::{IpAddr, SocketAddr};

use baton_connector_sdk::Transfer;
use baton_sip_media::sdp;
use baton_sip_media::session::{MediaSocket, Speaking};
use baton_sip_transfer::{ConsultEvent, Decision, Input};
use rsip::Method;
use rsip::prelude::*;
use tokio::time::Instant;

use super::{Flow, Held, Run, Transfers, brief};
use crate::message;

/// What a consult needs before the INVITE leaves: the RTP socket its offer
/// names, and the brief, spoken already.
pub(super) struct Consult {
    socket: MediaSocket,
    /// Where the offer says audio goes.
    rtp: SocketAddr,
    /// The brief as 8 kHz µ-law; `None` when the TTS failed (`why`).
    brief: Result<Vec<u8>, String>,
}

impl Consult {
    /// Binds the RTP socket on the SIP endpoint's address and synthesizes
    /// the brief of `transfer`.
    pub(super) async fn prepare(
        transfers: &Transfers,
        transfer: &Transfer,
    ) -> std::io::Result<Self> {
        let stack = &transfers.stack;
        let local = stack.local_addr().ip();
        let socket = MediaSocket::bind(local).await?;
        let port = socket.local_addr()?.port();
        let rtp = SocketAddr::new(advertised_ip(local, stack.advertised()), port);
        let config = &transfers.consult;
        let (text, voice) = brief::brief(config, transfer);
        let brief = baton_sip_media::tts::synthesize(
            &config.tts_command,
            &voice,
            &text,
            config.tts_timeout,
        )
        .await
        .map_err(|error| {
            tracing::warn!(%error, "the brief could not be synthesized; the consult goes on without it");
            error.to_string()
        });
        Ok(Self { socket, rtp, brief })
    }

    /// The SDP offer of the consult leg's INVITE.
    pub(super) fn offer(&self) -> String {
        sdp::offer(self.rtp, rand::random::<u32>().into())
    }
}

/// The address the offer names: the SIP endpoint's, or, bound to all
/// addresses, the advertised host when it is an address.
fn advertised_ip(local: IpAddr, advertised: &str) -> IpAddr {
    if !local.is_unspecified() {
        return local;
    }
    let host = advertised
        .rsplit_once(':')
        .map_or(advertised, |(host, _)| host)
        .trim_start_matches('[')
        .trim_end_matches(']');
    host.parse().unwrap_or(local)
}

impl Transfers {
    /// The human answered the consult leg: speaks the brief, waits for
    /// their decision and feeds it to the progress.
    pub(super) async fn consult(&self, run: &mut Run<'_>, held: &mut Held) -> Flow {
        let stack = &self.stack;
        let (Some(consult), Some(dialog)) = (run.consult.take(), held.dialog.clone()) else {
            let detail = "the consult leg has no media";
            return run.step(Input::ConsultDeclined { detail }, held).await;
        };
        // The human's INFO and BYE in the consult leg come here until
        // they decide; afterwards their BYE is Replaces at work again.
        let mut requests = stack.register_dialog(&dialog.call_id, held.expected.clone());
        let answer = sdp::parse_answer(&held.answer_sdp);
        let plays = 1 + self.consult.repeat;
        let (mut speaking, detail) = match (answer, consult.brief) {
            (Some(answer), Ok(brief)) if answer.receives => {
                let detail = format!(
                    "the human hears the brief ({} s) at {}; {} accepts, {} declines",
                    brief.len() / baton_sip_media::SAMPLE_RATE as usize,
                    answer.rtp,
                    self.consult.accept_digit,
                    self.consult.decline_digit
                );
                (Some(consult.socket.speak(&answer, brief, plays)), detail)
            }
            (Some(answer), Err(why)) => {
                // The keys are still heard: the socket listens.
                let speaking = consult.socket.speak(&answer, Vec::new(), 1);
                (Some(speaking), format!("no brief: {why}"))
            }
            (Some(_), Ok(_)) => (None, "the human's answer does not receive audio".into()),
            (None, _) => (None, "the human's answer has no audio stream".into()),
        };
        run.events.consulting(&detail).await;
        let keys = self.consult.keys();
        let mut deadline: Option<Instant> = None;
        if speaking.is_none() {
            deadline = Some(Instant::now() + self.consult.decide_timeout);
        }
        let mut spoken_signal = speaking.as_ref().map(Speaking::spoken_signal);
        let decision = loop {
            let event = tokio::select! {
                request = requests.receiver.recv() => match request {
                    Some(request) => match consult_event(&request) {
                        Some(event) => event,
                        None => continue,
                    },
                    None => continue,
                },
                digit = digit(&mut speaking) => ConsultEvent::Digit(digit),
                () = spoken(&mut spoken_signal), if deadline.is_none() => {
                    deadline = Some(Instant::now() + self.consult.decide_timeout);
                    continue;
                }
                by_human = super::refer::hung_up(&mut held.hung_up) => {
                    held.hung_up = None;
                    if !by_human {
                        continue;
                    }
                    ConsultEvent::HungUp
                }
                () = sleep_until(deadline) => ConsultEvent::TimedOut,
            };
            if let Some(decision) = keys.decide(event) {
                break decision;
            }
        };
        // The brief stops at once, whatever was decided.
        drop(speaking.take());
        drop(requests);
        match decision {
            Decision::Accepted { detail } => {
                tracing::info!(%detail, "the human accepted the consult");
                run.events.consult_accepted(&detail).await;
                run.step(Input::ConsultAccepted, held).await
            }
            Decision::Declined { detail, hung_up } => {
                tracing::info!(%detail, "the human declined the consult");
                run.events.consult_declined(&detail).await;
                if hung_up {
                    stack.forget_answered(&dialog.call_id);
                    let flow = run.step(Input::HumanHungUp, held).await;
                    if !matches!(flow, Flow::Wait | Flow::Consult) {
                        return flow;
                    }
                }
                run.step(Input::ConsultDeclined { detail: &detail }, held)
                    .await
            }
        }
    }
}

/// What one in-dialog request of the consult leg says: a key in an INFO, a
/// hang-up in a BYE (both were answered 200 by the stack).
fn consult_event(request: &rsip::Request) -> Option<ConsultEvent> {
    match request.method {
        Method::Bye => Some(ConsultEvent::HungUp),
        Method::Info => {
            let content_type =
                message::header_value(request.headers(), "Content-Type").unwrap_or_default();
            let digit = baton_sip_media::dtmf::info_digit(&content_type, &request.body);
            if digit.is_none() {
                tracing::debug!(%content_type, "INFO without a key on the consult leg");
            }
            digit.map(ConsultEvent::Digit)
        }
        _ => None,
    }
}

async fn digit(speaking: &mut Option<Speaking>) -> char {
    match speaking {
        Some(speaking) => speaking.digit().await,
        None => std::future::pending().await,
    }
}

/// Resolves once the brief was spoken; never without one.
async fn spoken(signal: &mut Option<tokio::sync::watch::Receiver<bool>>) {
    if let Some(signal) = signal
        && signal.wait_for(|done| *done).await.is_ok()
    {
        return;
    }
    std::future::pending().await
}

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(deadline) => tokio::time::sleep_until(deadline).await,
        None => std::future::pending().await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_offer_names_an_address_a_phone_can_send_to() {
        let loopback: IpAddr = "127.0.0.1".parse().expect("ip");
        let any: IpAddr = "0.0.0.0".parse().expect("ip");
        assert_eq!(advertised_ip(loopback, "sip.example:5060"), loopback);
        assert_eq!(
            advertised_ip(any, "192.0.2.7:5060"),
            "192.0.2.7".parse::<IpAddr>().expect("ip")
        );
        assert_eq!(
            advertised_ip("::".parse().expect("ip"), "[2001:db8::1]:5060"),
            "2001:db8::1".parse::<IpAddr>().expect("ip")
        );
        assert_eq!(advertised_ip(any, "sip.example:5060"), any);
    }

    fn info(content_type: &str, body: &str) -> rsip::Request {
        let text = format!(
            "INFO sip:baton@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bK1\r\n\
             From: <sip:agent@127.0.0.1>;tag=a\r\nTo: <sip:baton@127.0.0.1>;tag=b\r\nCall-ID: c\r\n\
             CSeq: 2 INFO\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        );
        rsip::Request::try_from(text.as_bytes()).expect("a request")
    }

    #[test]
    fn an_info_with_a_key_and_a_bye_are_consult_events() {
        assert_eq!(
            consult_event(&info(
                "application/dtmf-relay",
                "Signal=1\r\nDuration=160\r\n"
            )),
            Some(ConsultEvent::Digit('1'))
        );
        assert_eq!(
            consult_event(&info("application/dtmf", "2")),
            Some(ConsultEvent::Digit('2'))
        );
        assert_eq!(consult_event(&info("text/plain", "1")), None);
        let mut bye = info("application/dtmf", "2");
        bye.method = Method::Bye;
        assert_eq!(consult_event(&bye), Some(ConsultEvent::HungUp));
    }
}
