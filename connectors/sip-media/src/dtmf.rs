//! The human's key, as their phone sends it: RFC 4733 telephone-events in
//! RTP, or a SIP INFO (`application/dtmf-relay`, `application/dtmf`).

/// One RFC 4733 telephone-event payload (section 2.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TelephoneEvent {
    pub event: u8,
    /// The E bit: the event's last packets (sent three times).
    pub end: bool,
    pub volume: u8,
    pub duration: u16,
}

impl TelephoneEvent {
    pub fn parse(payload: &[u8]) -> Option<Self> {
        let bytes = payload.get(..4)?;
        Some(Self {
            event: bytes[0],
            end: bytes[1] & 0x80 != 0,
            volume: bytes[1] & 0x3f,
            duration: u16::from_be_bytes([bytes[2], bytes[3]]),
        })
    }

    /// The payload, for a test's phone.
    pub fn to_bytes(self) -> [u8; 4] {
        let duration = self.duration.to_be_bytes();
        [
            self.event,
            (u8::from(self.end) << 7) | (self.volume & 0x3f),
            duration[0],
            duration[1],
        ]
    }

    /// The key of a DTMF event (RFC 4733 3.2: 0–9, * 10, # 11, A–D 12–15).
    pub fn digit(self) -> Option<char> {
        event_digit(self.event)
    }
}

fn event_digit(event: u8) -> Option<char> {
    match event {
        0..=9 => char::from_digit(u32::from(event), 10),
        10 => Some('*'),
        11 => Some('#'),
        12..=15 => Some(char::from(b'A' + event - 12)),
        _ => None,
    }
}

/// Hears keys in telephone-event packets: each key once, when its end
/// arrives, however many of its end packets come (they are sent three
/// times) and in whatever order its packets arrive.
#[derive(Debug, Default)]
pub struct EventReceiver {
    /// The (SSRC, RTP timestamp) of the keys already heard, most recent
    /// last: an event keeps its timestamp for all its packets.
    heard: std::collections::VecDeque<(u32, u32)>,
}

impl EventReceiver {
    /// The key an event packet ends, once.
    pub fn on_packet(&mut self, ssrc: u32, timestamp: u32, payload: &[u8]) -> Option<char> {
        let event = TelephoneEvent::parse(payload)?;
        if !event.end {
            return None;
        }
        let digit = event.digit()?;
        if self.heard.contains(&(ssrc, timestamp)) {
            return None;
        }
        if self.heard.len() == 16 {
            self.heard.pop_front();
        }
        self.heard.push_back((ssrc, timestamp));
        Some(digit)
    }
}

/// The key in a SIP INFO body of `content_type`: `application/dtmf-relay`
/// (`Signal=1`, with `Duration=…`) or `application/dtmf` (the key alone).
/// `Signal=10` and `11` are `*` and `#`, as some phones send them.
pub fn info_digit(content_type: &str, body: &[u8]) -> Option<char> {
    let media_type = content_type
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    let body = std::str::from_utf8(body).ok()?;
    let signal = match media_type.as_str() {
        "application/dtmf-relay" => body.lines().find_map(|line| {
            let (key, value) = line.split_once('=')?;
            key.trim()
                .eq_ignore_ascii_case("signal")
                .then(|| value.trim())
        })?,
        "application/dtmf" => body.trim(),
        _ => return None,
    };
    match signal {
        "10" => Some('*'),
        "11" => Some('#'),
        _ => {
            let mut chars = signal.chars();
            let key = chars.next()?.to_ascii_uppercase();
            let valid = key.is_ascii_digit() || matches!(key, '*' | '#' | 'A'..='D');
            (chars.next().is_none() && valid).then_some(key)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(event: u8, end: bool, duration: u16) -> [u8; 4] {
        TelephoneEvent {
            event,
            end,
            volume: 10,
            duration,
        }
        .to_bytes()
    }

    #[test]
    fn parses_the_rfc_4733_payload() {
        let parsed = TelephoneEvent::parse(&[0x0b, 0x8a, 0x03, 0x20]).expect("parses");
        assert_eq!(
            parsed,
            TelephoneEvent {
                event: 11,
                end: true,
                volume: 10,
                duration: 800
            }
        );
        assert_eq!(parsed.digit(), Some('#'));
        assert_eq!(TelephoneEvent::parse(&[1, 2, 3]), None);
        let digits: String = (0..=15).filter_map(event_digit).collect();
        assert_eq!(digits, "0123456789*#ABCD");
        assert_eq!(event_digit(16), None, "not a DTMF event");
    }

    #[test]
    fn a_key_counts_once_at_its_end_however_many_end_packets_come() {
        let mut receiver = EventReceiver::default();
        let mut heard = Vec::new();
        // Key 1: start, continuation, three end packets (same timestamp).
        for (end, duration) in [
            (false, 160),
            (false, 320),
            (true, 480),
            (true, 480),
            (true, 480),
        ] {
            heard.extend(receiver.on_packet(7, 1000, &event(1, end, duration)));
        }
        assert_eq!(heard, ['1']);
        // The same key again is a new event: a new timestamp.
        for _ in 0..3 {
            heard.extend(receiver.on_packet(7, 2000, &event(1, true, 480)));
        }
        // A lost start still counts at the end.
        heard.extend(receiver.on_packet(7, 3000, &event(2, true, 400)));
        assert_eq!(heard, ['1', '1', '2']);
    }

    #[test]
    fn a_key_without_its_end_and_a_non_dtmf_event_count_for_nothing() {
        let mut receiver = EventReceiver::default();
        assert_eq!(receiver.on_packet(1, 10, &event(5, false, 160)), None);
        assert_eq!(receiver.on_packet(1, 20, &event(32, true, 160)), None);
        assert_eq!(receiver.on_packet(1, 30, &[1]), None);
    }

    #[test]
    fn info_bodies_of_both_content_types() {
        assert_eq!(
            info_digit("application/dtmf-relay", b"Signal=1\r\nDuration=160\r\n"),
            Some('1')
        );
        assert_eq!(
            info_digit(
                "Application/DTMF-Relay; charset=x",
                b"signal= 2\nDuration=250"
            ),
            Some('2')
        );
        assert_eq!(
            info_digit("application/dtmf-relay", b"Signal=11\r\n"),
            Some('#')
        );
        assert_eq!(
            info_digit("application/dtmf-relay", b"Signal=*\r\n"),
            Some('*')
        );
        assert_eq!(info_digit("application/dtmf", b"5"), Some('5'));
        assert_eq!(info_digit("application/dtmf", b" d\r\n"), Some('D'));
    }

    #[test]
    fn info_bodies_without_one_key_give_none() {
        assert_eq!(info_digit("application/dtmf-relay", b"Duration=160"), None);
        assert_eq!(info_digit("application/dtmf-relay", b"Signal=12"), None);
        assert_eq!(info_digit("application/dtmf", b"E"), None);
        assert_eq!(info_digit("application/dtmf", b""), None);
        assert_eq!(info_digit("text/plain", b"Signal=1"), None);
        assert_eq!(info_digit("application/dtmf", &[0xff, 0xfe]), None);
    }
}
