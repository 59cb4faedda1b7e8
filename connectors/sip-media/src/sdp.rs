//! SDP (RFC 4566) for the consult leg: the offer of PCMU and
//! telephone-event on one RTP port, and where the human's answer says
//! audio goes (RFC 3264).

use std::net::{IpAddr, SocketAddr};

use crate::{PCMU, TELEPHONE_EVENT};

/// The offer: PCMU/8000 (payload 0) and telephone-event/8000 (101, keys
/// 0-15), 20 ms packets, send and receive, at `rtp`.
pub fn offer(rtp: SocketAddr, session_id: u64) -> String {
    let ip = rtp.ip();
    let family = if ip.is_ipv6() { "IP6" } else { "IP4" };
    let port = rtp.port();
    format!(
        "v=0\r\no=baton {session_id} {session_id} IN {family} {ip}\r\ns=baton consult\r\n\
         c=IN {family} {ip}\r\nt=0 0\r\nm=audio {port} RTP/AVP {PCMU} {TELEPHONE_EVENT}\r\n\
         a=rtpmap:{PCMU} PCMU/8000\r\na=rtpmap:{TELEPHONE_EVENT} telephone-event/8000\r\n\
         a=fmtp:{TELEPHONE_EVENT} 0-15\r\na=ptime:20\r\na=sendrecv\r\n"
    )
}

/// What the human's answer says about the audio stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    /// Where RTP goes.
    pub rtp: SocketAddr,
    /// The payload type the answer gives telephone-event, if any.
    pub telephone_event: Option<u8>,
    /// The answer accepted PCMU.
    pub pcmu: bool,
    /// The answer says the human's side does not want to receive
    /// (`sendonly`, `inactive`).
    pub receives: bool,
}

/// Reads the first audio stream of an SDP answer; `None` when there is
/// none, it was refused (port 0) or has no address.
pub fn parse_answer(body: &[u8]) -> Option<Answer> {
    let text = std::str::from_utf8(body).ok()?;
    let mut session_ip: Option<IpAddr> = None;
    let mut media_ip: Option<IpAddr> = None;
    let mut audio: Option<(u16, Vec<u8>)> = None;
    let mut in_audio = false;
    let mut telephone_event = None;
    let mut receives = true;
    let mut session_receives = true;
    for line in text.lines().map(str::trim) {
        let Some((kind, value)) = line.split_once('=') else {
            continue;
        };
        match kind {
            "m" => {
                if audio.is_some() {
                    // Only the first audio stream counts.
                    if in_audio {
                        in_audio = false;
                    }
                    continue;
                }
                let mut fields = value.split_whitespace();
                in_audio = fields.next() == Some("audio");
                if in_audio {
                    let port: u16 = fields.next()?.split('/').next()?.parse().ok()?;
                    let _proto = fields.next()?;
                    let formats = fields.filter_map(|f| f.parse().ok()).collect();
                    audio = Some((port, formats));
                }
            }
            "c" => {
                let ip = value
                    .split_whitespace()
                    .nth(2)?
                    .split('/')
                    .next()?
                    .parse()
                    .ok();
                if audio.is_none() {
                    session_ip = ip;
                } else if in_audio {
                    media_ip = ip;
                }
            }
            "a" if audio.is_none() || in_audio => {
                let direction = matches!(value, "sendonly" | "inactive");
                if matches!(value, "sendonly" | "inactive" | "recvonly" | "sendrecv") {
                    if audio.is_none() {
                        session_receives = !direction;
                    } else {
                        receives = !direction;
                    }
                }
                if let Some(map) = value.strip_prefix("rtpmap:")
                    && in_audio
                {
                    let (pt, encoding) = map.split_once(' ')?;
                    if encoding
                        .to_ascii_lowercase()
                        .starts_with("telephone-event/8000")
                    {
                        telephone_event = pt.parse().ok();
                    }
                }
            }
            _ => {}
        }
    }
    let (port, formats) = audio?;
    if port == 0 {
        return None;
    }
    let ip = media_ip.or(session_ip)?;
    Some(Answer {
        rtp: SocketAddr::new(ip, port),
        telephone_event,
        pcmu: formats.contains(&PCMU),
        receives: receives && session_receives,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_offer_names_pcmu_and_telephone_event_at_the_rtp_socket() {
        let offer = offer("192.0.2.10:40000".parse().expect("addr"), 7);
        assert!(offer.contains("c=IN IP4 192.0.2.10\r\n"), "{offer}");
        assert!(offer.contains("m=audio 40000 RTP/AVP 0 101\r\n"), "{offer}");
        assert!(offer.contains("a=rtpmap:0 PCMU/8000\r\n"));
        assert!(offer.contains("a=rtpmap:101 telephone-event/8000\r\n"));
        // Our own offer reads as an answer to the same place.
        let read = parse_answer(offer.as_bytes()).expect("parses");
        assert_eq!(read.rtp, "192.0.2.10:40000".parse().expect("addr"));
        assert_eq!(read.telephone_event, Some(101));
        assert!(read.pcmu && read.receives);
        let v6 = super::offer("[::1]:5004".parse().expect("addr"), 1);
        assert!(v6.contains("c=IN IP6 ::1\r\n"), "{v6}");
    }

    #[test]
    fn the_media_address_wins_over_the_session_address() {
        let answer = b"v=0\r\no=- 1 1 IN IP4 10.0.0.1\r\ns=-\r\nc=IN IP4 10.0.0.1\r\nt=0 0\r\n\
            m=audio 6000 RTP/AVP 0 96\r\nc=IN IP4 10.0.0.2\r\na=rtpmap:96 telephone-event/8000\r\n\
            m=video 6002 RTP/AVP 97\r\nc=IN IP4 10.0.0.3\r\n";
        let read = parse_answer(answer).expect("parses");
        assert_eq!(read.rtp, "10.0.0.2:6000".parse().expect("addr"));
        assert_eq!(read.telephone_event, Some(96));
    }

    #[test]
    fn a_refused_stream_or_no_address_is_no_answer() {
        assert_eq!(
            parse_answer(b"v=0\r\nm=audio 0 RTP/AVP 0\r\nc=IN IP4 10.0.0.1\r\n"),
            None
        );
        assert_eq!(parse_answer(b"v=0\r\nm=audio 4000 RTP/AVP 0\r\n"), None);
        assert_eq!(
            parse_answer(b"v=0\r\nc=IN IP4 10.0.0.1\r\nm=video 4000 RTP/AVP 0\r\n"),
            None
        );
        assert_eq!(parse_answer(&[0xff]), None);
    }

    #[test]
    fn an_inactive_answer_does_not_receive() {
        let read =
            parse_answer(b"v=0\r\nc=IN IP4 10.0.0.1\r\nm=audio 4000 RTP/AVP 8\r\na=inactive\r\n")
                .expect("parses");
        assert!(!read.receives && !read.pcmu);
    }
}
