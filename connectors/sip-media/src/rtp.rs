//! RTP packets (RFC 3550): the fixed 12-byte header, written for the
//! brief and read from what the human's phone sends (its DTMF).

use crate::{PCMU, SAMPLES_PER_PACKET, g711};

/// The fields of an RTP header this connector uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    pub marker: bool,
    pub payload_type: u8,
    pub sequence: u16,
    pub timestamp: u32,
    pub ssrc: u32,
}

impl Header {
    /// The packet: version 2, no padding, no extension, no CSRC.
    pub fn packet(&self, payload: &[u8]) -> Vec<u8> {
        let mut packet = Vec::with_capacity(12 + payload.len());
        packet.push(0x80);
        packet.push((u8::from(self.marker) << 7) | (self.payload_type & 0x7f));
        packet.extend_from_slice(&self.sequence.to_be_bytes());
        packet.extend_from_slice(&self.timestamp.to_be_bytes());
        packet.extend_from_slice(&self.ssrc.to_be_bytes());
        packet.extend_from_slice(payload);
        packet
    }
}

/// Reads an RTP packet: its header and payload (past CSRCs and any
/// header extension, without padding); `None` for anything that is not
/// RTP version 2.
pub fn parse(packet: &[u8]) -> Option<(Header, &[u8])> {
    if packet.len() < 12 || packet[0] >> 6 != 2 {
        return None;
    }
    let csrc_count = usize::from(packet[0] & 0x0f);
    let mut start = 12 + 4 * csrc_count;
    if packet[0] & 0x10 != 0 {
        let words = packet.get(start + 2..start + 4)?;
        start += 4 + 4 * usize::from(u16::from_be_bytes([words[0], words[1]]));
    }
    let mut end = packet.len();
    if packet[0] & 0x20 != 0 {
        end = end.checked_sub(usize::from(*packet.last()?))?;
    }
    let payload = packet.get(start..end)?;
    let header = Header {
        marker: packet[1] & 0x80 != 0,
        payload_type: packet[1] & 0x7f,
        sequence: u16::from_be_bytes([packet[2], packet[3]]),
        timestamp: u32::from_be_bytes([packet[4], packet[5], packet[6], packet[7]]),
        ssrc: u32::from_be_bytes([packet[8], packet[9], packet[10], packet[11]]),
    };
    Some((header, payload))
}

/// The PCMU packets of one stream: random SSRC, first sequence number and
/// first timestamp (RFC 3550 5.1), the marker on the first packet of a
/// talkspurt (RFC 3551 4.1), 160 samples per packet.
#[derive(Debug, Clone)]
pub struct Packetizer {
    ssrc: u32,
    sequence: u16,
    timestamp: u32,
    talkspurt_starts: bool,
}

impl Packetizer {
    pub fn new() -> Self {
        Self::starting_at(rand::random(), rand::random(), rand::random())
    }

    pub fn starting_at(ssrc: u32, sequence: u16, timestamp: u32) -> Self {
        Self {
            ssrc,
            sequence,
            timestamp,
            talkspurt_starts: true,
        }
    }

    pub fn ssrc(&self) -> u32 {
        self.ssrc
    }

    /// The next packet, carrying up to 160 µ-law samples (a short last
    /// chunk is completed with silence); sequence and timestamp move on.
    pub fn next_packet(&mut self, ulaw: &[u8]) -> Vec<u8> {
        let mut payload = [g711::SILENCE; SAMPLES_PER_PACKET];
        let n = ulaw.len().min(SAMPLES_PER_PACKET);
        payload[..n].copy_from_slice(&ulaw[..n]);
        let header = Header {
            marker: self.talkspurt_starts,
            payload_type: PCMU,
            sequence: self.sequence,
            timestamp: self.timestamp,
            ssrc: self.ssrc,
        };
        self.talkspurt_starts = false;
        self.sequence = self.sequence.wrapping_add(1);
        self.timestamp = self.timestamp.wrapping_add(SAMPLES_PER_PACKET as u32);
        header.packet(&payload)
    }

    /// Every packet of `ulaw`, in order.
    pub fn packets(&mut self, ulaw: &[u8]) -> Vec<Vec<u8>> {
        ulaw.chunks(SAMPLES_PER_PACKET)
            .map(|chunk| self.next_packet(chunk))
            .collect()
    }

    /// Marks the next packet as the start of a talkspurt (the brief played
    /// again after silence).
    pub fn new_talkspurt(&mut self) {
        self.talkspurt_starts = true;
    }

    /// A silence of `samples` sent as no packets: the timestamp still
    /// counts them (RFC 3550 5.1), the next packet starts a talkspurt.
    pub fn pause(&mut self, samples: u32) {
        self.timestamp = self.timestamp.wrapping_add(samples);
        self.talkspurt_starts = true;
    }
}

impl Default for Packetizer {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn packets_carry_160_samples_with_consecutive_sequence_and_timestamp() {
        let mut packetizer = Packetizer::starting_at(0xdead_beef, 65534, u32::MAX - 100);
        let audio = vec![0x55u8; 160 * 3 + 10];
        let packets = packetizer.packets(&audio);
        assert_eq!(packets.len(), 4);
        let headers: Vec<Header> = packets
            .iter()
            .map(|p| {
                assert_eq!(p.len(), 12 + 160);
                parse(p).expect("parses").0
            })
            .collect();
        assert_eq!(
            headers.iter().map(|h| h.sequence).collect::<Vec<_>>(),
            [65534, 65535, 0, 1],
            "sequence numbers wrap"
        );
        assert_eq!(
            headers.iter().map(|h| h.timestamp).collect::<Vec<_>>(),
            [u32::MAX - 100, 59, 219, 379],
            "timestamps advance 160 and wrap"
        );
        assert_eq!(
            headers.iter().map(|h| h.marker).collect::<Vec<_>>(),
            [true, false, false, false]
        );
        assert!(
            headers
                .iter()
                .all(|h| h.ssrc == 0xdead_beef && h.payload_type == PCMU)
        );
        // The short last chunk is completed with silence.
        let (_, last) = parse(&packets[3]).expect("parses");
        assert_eq!(&last[..10], &[0x55; 10]);
        assert!(last[10..].iter().all(|&b| b == g711::SILENCE));
        assert_eq!(packets[0][0], 0x80, "version 2, nothing else");
    }

    #[test]
    fn a_new_talkspurt_is_marked_again() {
        let mut packetizer = Packetizer::starting_at(1, 0, 0);
        packetizer.packets(&[0; 320]);
        packetizer.new_talkspurt();
        let next = packetizer.next_packet(&[0; 160]);
        let (header, _) = parse(&next).expect("parses");
        assert!(header.marker);
        assert_eq!((header.sequence, header.timestamp), (2, 320));
        // A pause moves the timestamp, not the sequence number.
        packetizer.pause(8000);
        let (header, _) = parse(&packetizer.next_packet(&[0; 160])).expect("parses");
        assert!(header.marker);
        assert_eq!((header.sequence, header.timestamp), (3, 480 + 8000));
    }

    #[test]
    fn parse_skips_csrcs_and_extension_and_drops_padding() {
        let mut packet = vec![0x80 | 0x20 | 0x10 | 0x01, 101, 0, 7, 0, 0, 0, 9, 0, 0, 0, 1];
        packet.extend_from_slice(&[0, 0, 0, 5]); // one CSRC
        packet.extend_from_slice(&[0xbe, 0xde, 0, 1, 1, 2, 3, 4]); // one-word extension
        packet.extend_from_slice(&[0x05, 0x8a, 0x03, 0x20]); // payload
        packet.extend_from_slice(&[0, 0, 3]); // padding of 3
        let (header, payload) = parse(&packet).expect("parses");
        assert_eq!(header.payload_type, 101);
        assert_eq!(header.sequence, 7);
        assert_eq!(header.timestamp, 9);
        assert_eq!(payload, [0x05, 0x8a, 0x03, 0x20]);
    }

    #[test]
    fn what_is_not_rtp_is_refused_without_panic() {
        assert!(parse(&[]).is_none());
        assert!(parse(&[0x40; 12]).is_none(), "version 1");
        assert!(
            parse(&[0x90, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]).is_none(),
            "extension cut"
        );
        assert!(
            parse(&[0xa0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 200]).is_none(),
            "padding too long"
        );
    }
}
