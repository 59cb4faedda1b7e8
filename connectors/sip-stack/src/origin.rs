//! Who may speak for a transaction or a dialog. Over UDP anyone who reads
//! the cleartext can copy a request's Via, Call-ID and tags; what a forger
//! cannot easily choose is where its datagram comes from. So a response is
//! taken only from the address its request was sent to (the proxy or trunk
//! when one is in the path), and an in-dialog request (NOTIFY, BYE) only
//! with the full dialog id (Call-ID and both tags) and from one of the
//! dialog's expected peers. Over TCP (and TLS) the peer's address is the
//! connection's, and a peer may open a new connection from another port,
//! so only the IP address is compared there.

use std::net::SocketAddr;

use rsip::prelude::*;
use serde::{Deserialize, Serialize};

use crate::message;
use crate::stack::{Peer, Transport};

/// Whether a message received from `from` can come from `peer`.
pub fn is_from(peer: &Peer, from: SocketAddr) -> bool {
    match peer.transport {
        Transport::Udp => peer.addr == from,
        _ => peer.addr.ip() == from.ip(),
    }
}

/// What an in-dialog request must carry, and where it may come from. For
/// the NOTIFYs of a REFER (RFC 3515) the notifier's tag is not known until
/// the first NOTIFY or the 202: the first request that passes every other
/// check fixes it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Expected {
    /// Our tag: the To tag of requests the far end sends in the dialog.
    pub local_tag: String,
    /// The far end's tag (their From tag); learnt from the first request
    /// when unknown.
    #[serde(default)]
    pub remote_tag: Option<String>,
    /// Where the far end's requests may come from.
    pub peers: Vec<Peer>,
}

/// Why an in-dialog request was not taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// The To or From tag is not the dialog's.
    Tags,
    /// It came from an address the dialog does not talk to.
    Peer,
}

impl Expected {
    /// Checks `request` received from `from`, learning the remote tag on
    /// the first request that passes.
    pub fn admit(&mut self, request: &rsip::Request, from: SocketAddr) -> Result<(), Refusal> {
        let to_tag = request
            .to_header()
            .ok()
            .and_then(|to| to.tag().ok().flatten())
            .map(|tag| tag.to_string());
        let from_tag = request
            .from_header()
            .ok()
            .and_then(|from| from.tag().ok().flatten())
            .map(|tag| tag.to_string());
        if to_tag.as_deref() != Some(self.local_tag.as_str()) {
            return Err(Refusal::Tags);
        }
        let Some(from_tag) = from_tag else {
            return Err(Refusal::Tags);
        };
        if self.remote_tag.as_ref().is_some_and(|tag| *tag != from_tag) {
            return Err(Refusal::Tags);
        }
        if !self.peers.iter().any(|peer| is_from(peer, from)) {
            return Err(Refusal::Peer);
        }
        self.remote_tag.get_or_insert(from_tag);
        Ok(())
    }
}

/// The peers that may speak for `uri`'s element: `sent_to` (where the
/// request went: the outbound proxy when there is one) and the URI's own
/// host, which may answer without the proxy (a proxy that does not
/// record-route leaves the NOTIFYs to come straight from the gateway).
pub async fn peers_for(uri: &str, sent_to: Option<Peer>) -> Vec<Peer> {
    let mut peers: Vec<Peer> = sent_to.into_iter().collect();
    let direct = rsip::Uri::try_from(message::addr_uri(uri))
        .ok()
        .map(|parsed| {
            let host = parsed.host_with_port;
            let transport = sent_to.map_or(Transport::Udp, |peer| peer.transport);
            // RFC 3261 19.1.2: 5061 for TLS, 5060 otherwise.
            let default_port = if matches!(transport, Transport::Udp | Transport::Tcp) {
                5060
            } else {
                5061
            };
            let port = host.port.map_or(default_port, |port| *port.value());
            (format!("{}:{port}", host.host), transport)
        });
    if let Some((target, transport)) = direct
        && let Ok(mut addresses) = tokio::net::lookup_host(target.as_str()).await
        && let Some(addr) = addresses.next()
    {
        let peer = Peer { addr, transport };
        if !peers.contains(&peer) {
            peers.push(peer);
        }
    }
    peers
}

/// The tag parameter of a From or To header value (`<sip:a@b>;tag=x`).
pub fn tag_of(value: &str) -> Option<String> {
    let after_uri = value.rsplit_once('>').map_or(value, |(_, rest)| rest);
    after_uri
        .split(';')
        .filter_map(|param| param.trim().split_once('='))
        .find(|(name, _)| name.trim().eq_ignore_ascii_case("tag"))
        .map(|(_, tag)| tag.trim().to_owned())
        .filter(|tag| !tag.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(to_tag: &str, from_tag: &str) -> rsip::Request {
        let text = format!(
            "NOTIFY sip:baton@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bK1\r\nFrom: <sip:gw@127.0.0.1>;tag={from_tag}\r\nTo: <sip:baton@127.0.0.1>;tag={to_tag}\r\nCall-ID: c1\r\nCSeq: 1 NOTIFY\r\nContent-Length: 0\r\n\r\n"
        );
        rsip::Request::try_from(text.as_bytes()).expect("parses")
    }

    fn udp(addr: &str) -> Peer {
        Peer {
            addr: addr.parse().expect("addr"),
            transport: Transport::Udp,
        }
    }

    #[test]
    fn the_dialog_id_and_the_peer_must_both_match() {
        let gateway = "127.0.0.1:5070".parse().expect("addr");
        let attacker = "127.0.0.1:5071".parse().expect("addr");
        let mut expected = Expected {
            local_tag: "ours".into(),
            remote_tag: None,
            peers: vec![udp("127.0.0.1:5070")],
        };
        assert_eq!(
            expected.admit(&request("other", "gw"), gateway),
            Err(Refusal::Tags)
        );
        assert_eq!(
            expected.admit(&request("ours", "gw"), attacker),
            Err(Refusal::Peer)
        );
        // Nothing refused taught the remote tag.
        assert_eq!(expected.remote_tag, None);
        assert_eq!(expected.admit(&request("ours", "gw"), gateway), Ok(()));
        assert_eq!(expected.remote_tag.as_deref(), Some("gw"));
        // The first NOTIFY fixed the notifier's tag.
        assert_eq!(
            expected.admit(&request("ours", "forged"), gateway),
            Err(Refusal::Tags)
        );
    }

    #[test]
    fn over_tcp_only_the_address_counts() {
        let peer = Peer {
            addr: "127.0.0.1:5070".parse().expect("addr"),
            transport: Transport::Tcp,
        };
        assert!(is_from(&peer, "127.0.0.1:40000".parse().expect("addr")));
        assert!(!is_from(&peer, "127.0.0.2:5070".parse().expect("addr")));
        assert!(!is_from(
            &udp("127.0.0.1:5070"),
            "127.0.0.1:40000".parse().expect("addr")
        ));
    }

    #[test]
    fn tags_are_read_after_the_uri_only() {
        assert_eq!(tag_of("<sip:a@b;tag=no>;tag=yes").as_deref(), Some("yes"));
        assert_eq!(tag_of("<sip:a@b>").as_deref(), None);
        assert_eq!(tag_of("sip:a@b;TAG=x").as_deref(), Some("x"));
    }
}
