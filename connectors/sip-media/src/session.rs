//! The consult leg's media: one UDP socket that speaks the brief to the
//! human (20 ms PCMU packets, paced) and hears their keys (RFC 4733
//! telephone-events), until it is dropped.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use tokio::net::UdpSocket;
use tokio::sync::{mpsc, watch};

use crate::dtmf::EventReceiver;
use crate::rtp::{self, Packetizer};
use crate::sdp::Answer;
use crate::{SAMPLE_RATE, SAMPLES_PER_PACKET, TELEPHONE_EVENT};

/// The silence between two plays of the brief.
const BETWEEN_PLAYS: Duration = Duration::from_secs(1);
const PACKET_TIME: Duration = Duration::from_millis(20);

/// The bound RTP socket of a consult leg, before the human answers.
#[derive(Debug)]
pub struct MediaSocket {
    socket: UdpSocket,
}

impl MediaSocket {
    /// Binds a free UDP port on `ip`.
    pub async fn bind(ip: IpAddr) -> std::io::Result<Self> {
        Ok(Self {
            socket: UdpSocket::bind(SocketAddr::new(ip, 0)).await?,
        })
    }

    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.socket.local_addr()
    }

    /// Speaks `brief` (8 kHz µ-law) `plays` times to where `answer` says,
    /// and hears keys from the answer's address, in the background until
    /// the returned [`Speaking`] is dropped.
    pub fn speak(self, answer: &Answer, brief: Vec<u8>, plays: u32) -> Speaking {
        let (digits, heard) = mpsc::channel(16);
        let (done, spoken) = watch::channel(false);
        let socket = Arc::new(self.socket);
        let talker = tokio::spawn(talk(socket.clone(), answer.rtp, brief, plays, done));
        let event_pt = answer.telephone_event.unwrap_or(TELEPHONE_EVENT);
        let listener = tokio::spawn(listen(socket, answer.rtp.ip(), event_pt, digits));
        Speaking {
            digits: heard,
            spoken,
            tasks: [talker, listener],
        }
    }
}

/// The brief being spoken, and the keys heard; dropping it stops both.
#[derive(Debug)]
pub struct Speaking {
    digits: mpsc::Receiver<char>,
    spoken: watch::Receiver<bool>,
    tasks: [tokio::task::JoinHandle<()>; 2],
}

impl Speaking {
    /// The next key the human pressed (as a telephone-event); pending
    /// forever once the socket failed.
    pub async fn digit(&mut self) -> char {
        match self.digits.recv().await {
            Some(digit) => digit,
            None => std::future::pending().await,
        }
    }

    /// Resolves once every play of the brief was sent (at once if it was).
    pub async fn spoken(&mut self) {
        if self.spoken.wait_for(|done| *done).await.is_err() {
            std::future::pending::<()>().await;
        }
    }

    /// Turns true once every play of the brief was sent, for a caller that
    /// waits on it beside [`digit`](Self::digit).
    pub fn spoken_signal(&self) -> watch::Receiver<bool> {
        self.spoken.clone()
    }

    /// Stops speaking and hearing now.
    pub fn stop(&self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

impl Drop for Speaking {
    fn drop(&mut self) {
        self.stop();
    }
}

async fn talk(
    socket: Arc<UdpSocket>,
    to: SocketAddr,
    brief: Vec<u8>,
    plays: u32,
    done: watch::Sender<bool>,
) {
    let mut packetizer = Packetizer::new();
    let mut ticks = tokio::time::interval(PACKET_TIME);
    // A late tick sends at once, keeping the timestamps' pace on average.
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    for play in 0..plays {
        if play > 0 {
            tokio::time::sleep(BETWEEN_PLAYS).await;
            packetizer.pause(SAMPLE_RATE * BETWEEN_PLAYS.as_millis() as u32 / 1000);
            ticks.reset();
        }
        for chunk in brief.chunks(SAMPLES_PER_PACKET) {
            ticks.tick().await;
            let packet = packetizer.next_packet(chunk);
            if let Err(error) = socket.send_to(&packet, to).await {
                tracing::debug!(%error, %to, "RTP packet not sent");
            }
        }
    }
    let _ = done.send(true);
}

async fn listen(socket: Arc<UdpSocket>, from_ip: IpAddr, event_pt: u8, digits: mpsc::Sender<char>) {
    let mut events = EventReceiver::default();
    let mut buffer = [0u8; 1500];
    loop {
        let (length, from) = match socket.recv_from(&mut buffer).await {
            Ok(received) => received,
            // ICMP port unreachable surfaces here on some systems.
            Err(error) => {
                tracing::debug!(%error, "RTP receive error");
                continue;
            }
        };
        if from.ip() != from_ip {
            tracing::debug!(%from, "RTP from an address the answer did not name; dropped");
            continue;
        }
        let Some((header, payload)) = rtp::parse(&buffer[..length]) else {
            continue;
        };
        if header.payload_type != event_pt && header.payload_type != TELEPHONE_EVENT {
            continue;
        }
        if let Some(digit) = events.on_packet(header.ssrc, header.timestamp, payload)
            && digits.send(digit).await.is_err()
        {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dtmf::TelephoneEvent;

    #[tokio::test]
    async fn speaks_the_brief_as_paced_rtp_and_hears_a_telephone_event() {
        let phone = UdpSocket::bind("127.0.0.1:0").await.expect("bind");
        let media = MediaSocket::bind("127.0.0.1".parse().expect("ip"))
            .await
            .expect("bind");
        let ours = media.local_addr().expect("addr");
        let answer = Answer {
            rtp: phone.local_addr().expect("addr"),
            telephone_event: Some(96),
            pcmu: true,
            receives: true,
        };
        let brief: Vec<u8> = (0..400).map(|i| i as u8).collect();
        let mut speaking = media.speak(&answer, brief.clone(), 2);
        let mut received = Vec::new();
        let mut buffer = [0u8; 1500];
        while received.len() < 6 {
            let (n, from) =
                tokio::time::timeout(Duration::from_secs(10), phone.recv_from(&mut buffer))
                    .await
                    .expect("RTP arrives")
                    .expect("recv");
            assert_eq!(from, ours, "symmetric: sent from the offered socket");
            received.push(rtp::parse(&buffer[..n]).expect("RTP").0);
        }
        let markers: Vec<bool> = received.iter().map(|h| h.marker).collect();
        assert_eq!(
            markers,
            [true, false, false, true, false, false],
            "each play starts a talkspurt"
        );
        assert_eq!(received[1].sequence, received[0].sequence.wrapping_add(1));
        assert_eq!(received[3].sequence, received[2].sequence.wrapping_add(1));
        assert!(
            received[3].timestamp.wrapping_sub(received[2].timestamp) > 160,
            "the silence between plays counts in the timestamp"
        );
        tokio::time::timeout(Duration::from_secs(10), speaking.spoken())
            .await
            .expect("spoken");
        // The phone presses 1: three end packets, one key.
        for _ in 0..3 {
            let event = TelephoneEvent {
                event: 1,
                end: true,
                volume: 10,
                duration: 800,
            };
            let header = rtp::Header {
                marker: false,
                payload_type: 96,
                sequence: 1,
                timestamp: 77,
                ssrc: 5,
            };
            phone
                .send_to(&header.packet(&event.to_bytes()), ours)
                .await
                .expect("send");
        }
        let digit = tokio::time::timeout(Duration::from_secs(10), speaking.digit())
            .await
            .expect("a key");
        assert_eq!(digit, '1');
        assert!(
            tokio::time::timeout(Duration::from_millis(300), speaking.digit())
                .await
                .is_err(),
            "the repeated end packets count once"
        );
    }
}
