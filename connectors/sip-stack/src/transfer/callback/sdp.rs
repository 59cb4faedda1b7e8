//! The SDP a callback passes between the two phones. Baton is the one
//! party each phone sees, so what it forwards must read as its own offer:
//! the session origin stays Baton's across the agent's dialog (RFC 3264 8:
//! a new offer keeps the origin and raises its version), and the agent's
//! answer to our inactive placeholder becomes a two-way offer.

use std::net::IpAddr;

/// The agent's answer (to our inactive placeholder) as the offer to the
/// customer: the agent's media, both ways.
pub(super) fn offer_from_answer(answer: &[u8]) -> String {
    map_lines(answer, |line| match line {
        // The agent answered "inactive" because we offered it; the call
        // we set up is two-way.
        "a=inactive" | "a=recvonly" | "a=sendonly" => "a=sendrecv".to_owned(),
        other => other.to_owned(),
    })
}

/// The customer's answer as our next offer in the agent's dialog: the
/// customer's media under Baton's origin, version `version` (the
/// placeholder was version 0).
pub(super) fn reoffer(answer: &[u8], local: IpAddr, version: u32) -> String {
    let family = if local.is_ipv6() { "IP6" } else { "IP4" };
    map_lines(answer, |line| {
        if line.starts_with("o=") {
            format!("o=baton 0 {version} IN {family} {local}")
        } else {
            line.to_owned()
        }
    })
}

fn map_lines(sdp: &[u8], map: impl Fn(&str) -> String) -> String {
    String::from_utf8_lossy(sdp)
        .lines()
        .map(|line| line.trim_end_matches('\r'))
        .filter(|line| !line.is_empty())
        .map(|line| map(line) + "\r\n")
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const AGENT: &[u8] = b"v=0\r\no=agent 42 7 IN IP4 10.0.0.2\r\ns=-\r\nc=IN IP4 10.0.0.2\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0\r\na=inactive\r\n";

    #[test]
    fn the_agents_answer_offers_their_media_both_ways() {
        let offer = offer_from_answer(AGENT);
        assert!(offer.contains("c=IN IP4 10.0.0.2\r\n"));
        assert!(offer.contains("m=audio 4000 RTP/AVP 0\r\n"));
        assert!(offer.contains("a=sendrecv\r\n"));
        assert!(!offer.contains("inactive"));
    }

    #[test]
    fn the_customers_answer_is_offered_under_batons_origin() {
        let customer = b"v=0\no=customer 9 9 IN IP4 10.0.0.3\ns=-\nc=IN IP4 10.0.0.3\nt=0 0\nm=audio 5000 RTP/AVP 0\n";
        let offer = reoffer(customer, std::net::Ipv4Addr::LOCALHOST.into(), 1);
        assert!(offer.starts_with("v=0\r\no=baton 0 1 IN IP4 127.0.0.1\r\n"));
        assert!(offer.contains("c=IN IP4 10.0.0.3\r\nt=0 0\r\nm=audio 5000 RTP/AVP 0\r\n"));
        assert!(!offer.contains("customer"));
    }
}
