//! Attended transfers through SIP, end to end: the control service, the
//! SIP connector and sipp as the humans' phones and the caller's gateway,
//! all real processes on loopback. Each phone's SDP answer points its
//! audio at a UDP socket of the test, which checks that the brief really
//! arrives as PCMU RTP (version 2, payload 0, 160 samples, consecutive
//! sequence numbers and timestamps, marker on the first packet) and can
//! press a key there as RFC 4733 telephone-events. The human accepts with
//! 1 in a SIP INFO (CONSULTING, CONSULT_ACCEPTED, then the REFER with
//! Replaces to CONNECTED), declines with 2 in RTP (CONSULT_DECLINED, the
//! connector's BYE, and the route's next target), or hangs up during the
//! brief (CONSULT_DECLINED, FAILED).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use HandoffEventKind as K;
use baton_proto::handoff::v1::*;
use baton_proto::types::v1 as pb;
use baton_sip_media::dtmf::TelephoneEvent;
use baton_sip_media::rtp;
use baton_tests::sipp::{Sipp, sip_connector_scenario};
use baton_tests::{Service, event_kinds, in_order, sip_request};
use tokio::net::UdpSocket;

/// A failure guard for each wait, never a measured time.
const WAIT: Duration = Duration::from_secs(30);
/// Packets of the brief each phone checks: half a second.
const BRIEF_PACKETS: usize = 25;

/// A human's phone: sipp for SIP, and the test's socket for its audio.
struct Phone {
    sipp: Sipp,
    audio: UdpSocket,
}

impl Phone {
    async fn start(scenario: &str) -> Self {
        let audio = UdpSocket::bind("127.0.0.1:0").await.expect("bind RTP");
        let port = audio.local_addr().expect("addr").port();
        let sipp = Sipp::play(&sip_connector_scenario(scenario))
            .timeout(Duration::from_secs(40))
            .args(["-key".to_owned(), "rtp_port".to_owned(), port.to_string()])
            .start();
        Self { sipp, audio }
    }

    /// Hears the brief (checking every packet) and, with `press`, presses
    /// that key in RTP once `BRIEF_PACKETS` arrived, in the background.
    fn listen(self, press: Option<char>) -> (Sipp, tokio::task::JoinHandle<Result<usize, String>>) {
        let audio = Arc::new(self.audio);
        let heard = tokio::spawn(hear_brief(audio, press));
        (self.sipp, heard)
    }
}

/// sipp as the caller's gateway holding the call (`gateway_warm`), its
/// scenario bounded by `timeout`.
fn gateway(timeout: Duration) -> Sipp {
    Sipp::play(&sip_connector_scenario("gateway_warm"))
        .timeout(timeout)
        .start()
}

/// Reads the brief's RTP until `BRIEF_PACKETS` packets arrived, checking
/// each; then presses `press` (three end packets of one event, RFC 4733)
/// back to where the audio comes from.
async fn hear_brief(audio: Arc<UdpSocket>, press: Option<char>) -> Result<usize, String> {
    let mut buffer = [0u8; 2048];
    let mut last: Option<rtp::Header> = None;
    let mut from: Option<SocketAddr> = None;
    let mut count = 0;
    while count < BRIEF_PACKETS {
        let (n, sender) = tokio::time::timeout(WAIT, audio.recv_from(&mut buffer))
            .await
            .map_err(|_| format!("no RTP after {count} packets"))?
            .map_err(|e| e.to_string())?;
        let (header, payload) = rtp::parse(&buffer[..n])
            .ok_or_else(|| format!("not RTP: {:?}", &buffer[..n.min(16)]))?;
        if header.payload_type != 0 || payload.len() != 160 {
            return Err(format!(
                "not 20 ms of PCMU: {header:?}, {} bytes",
                payload.len()
            ));
        }
        match last {
            None if !header.marker => return Err("the first packet has no marker".into()),
            Some(previous) => {
                let in_step = header.sequence == previous.sequence.wrapping_add(1)
                    && header.timestamp == previous.timestamp.wrapping_add(160)
                    && header.ssrc == previous.ssrc
                    && !header.marker;
                if !in_step {
                    return Err(format!("{header:?} does not follow {previous:?}"));
                }
            }
            None => {}
        }
        if payload.iter().all(|&b| b == 0xff) && count == BRIEF_PACKETS - 1 {
            // Half a second of pure silence is no brief.
            return Err("the brief is silent".into());
        }
        last = Some(header);
        from = Some(sender);
        count += 1;
    }
    if let (Some(key), Some(to)) = (press, from) {
        let event = match key {
            '0'..='9' => key as u8 - b'0',
            _ => return Err(format!("no event for {key}")),
        };
        for sequence in 0..3u16 {
            let header = rtp::Header {
                marker: false,
                payload_type: 101,
                sequence,
                timestamp: 8000,
                ssrc: 0x5eed,
            };
            let payload = TelephoneEvent {
                event,
                end: true,
                volume: 10,
                duration: 800,
            }
            .to_bytes();
            audio
                .send_to(&header.packet(&payload), to)
                .await
                .map_err(|e| e.to_string())?;
        }
    }
    Ok(count)
}

/// The SIP connector (consult keys 1 and 2, a short decide timeout, the
/// structured context for the brief) and the control service, with a
/// route from `first` to `second`.
struct Stack {
    _dir: tempfile::TempDir,
    _connector: Service,
    control: Service,
}

impl Stack {
    async fn start(first: &Sipp, second: &Sipp) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let consult = r#"[consult]
decide_timeout = "4s"
structured_context_bytes = 4096
"#;
        let connector = baton_tests::sip::start_loopback_connector(dir.path(), consult).await;
        let routes = format!(
            r#"
[[routes]]
name = "consult-fallback"
targets = [{{ connector = "sip", sip_uri = "{first}" }}, {{ connector = "sip", sip_uri = "{second}" }}]
"#,
            first = first.uri("agent"),
            second = second.uri("agent"),
        );
        let control = baton_tests::sip::start_control(dir.path(), &connector, &routes).await;
        Self {
            _dir: dir,
            _connector: connector,
            control,
        }
    }

    /// An attended handoff of a call held by `gateway`, to `target`; every
    /// event until it ends.
    async fn handoff(
        &self,
        request_id: &str,
        target: pb::target::Kind,
        gateway: &Sipp,
    ) -> Vec<HandoffEvent> {
        let mut request = sip_request(request_id, target);
        request.mode = pb::TransferMode::Attended as i32;
        baton_tests::sip::held_by_gateway(&mut request, gateway.uri("gw"));
        baton_tests::handoff_events(&self.control, request, Duration::from_secs(90)).await
    }
}

fn detail_of(events: &[HandoffEvent], kind: K) -> String {
    events
        .iter()
        .find(|e| e.kind() == kind)
        .map(|e| e.detail.clone())
        .unwrap_or_default()
}

async fn heard(brief: tokio::task::JoinHandle<Result<usize, String>>) -> usize {
    tokio::time::timeout(WAIT, brief)
        .await
        .expect("the phone's audio check ends")
        .expect("the audio check ran")
        .unwrap_or_else(|failure| panic!("the brief did not arrive as RTP: {failure}"))
}

#[tokio::test]
async fn the_human_hears_the_brief_accepts_with_1_and_the_customer_is_joined() {
    let (phone, brief) = Phone::start("agent_consult_accepts").await.listen(None);
    let gateway = gateway(Duration::from_secs(40));
    let stack = Stack::start(&phone, &phone).await;
    let events = stack
        .handoff(
            "attended-accept-1",
            pb::target::Kind::SipUri(phone.uri("agent")),
            &gateway,
        )
        .await;
    let kinds = event_kinds(&events);
    assert!(
        in_order(
            &kinds,
            &[
                K::Answered,
                K::Consulting,
                K::ConsultAccepted,
                K::Connected,
                K::Completed
            ]
        ),
        "{kinds:?}"
    );
    assert!(!kinds.contains(&K::ConsultDeclined), "{kinds:?}");
    assert!(
        detail_of(&events, K::ConsultAccepted).contains("pressed 1"),
        "{events:?}"
    );
    assert!(heard(brief).await >= BRIEF_PACKETS);
    // The gateway got the REFER (with Replaces) only after the accept, and
    // sent the 200 sipfrag; the phone pressed 1 and was released.
    gateway.assert_passed().await;
    phone.assert_passed().await;
}

#[tokio::test]
async fn a_human_who_presses_2_declines_and_the_route_falls_back_to_the_next_target() {
    let (decliner, declines) = Phone::start("agent_consult_listens")
        .await
        .listen(Some('2'));
    let (accepter, accepts) = Phone::start("agent_consult_accepts").await.listen(None);
    let gateway = gateway(Duration::from_secs(40));
    let stack = Stack::start(&decliner, &accepter).await;
    let events = stack
        .handoff(
            "attended-decline-1",
            pb::target::Kind::Route("consult-fallback".into()),
            &gateway,
        )
        .await;
    let kinds = event_kinds(&events);
    assert!(
        in_order(
            &kinds,
            &[
                K::Consulting,
                K::ConsultDeclined,
                K::TargetFailed,
                K::TargetStarted,
                K::Consulting,
                K::ConsultAccepted,
                K::Connected
            ]
        ),
        "{kinds:?}\n{events:#?}"
    );
    assert!(
        detail_of(&events, K::ConsultDeclined).contains("pressed 2"),
        "declined by the key, not by the timeout: {events:?}"
    );
    let failed = events
        .iter()
        .find(|e| e.kind() == K::TargetFailed)
        .and_then(|e| e.failure.as_ref())
        .expect("a failure");
    assert_eq!(failed.reason(), pb::FailureReason::Rejected);
    heard(declines).await;
    heard(accepts).await;
    // The decliner's scenario passes only if the connector BYEs its leg.
    decliner.assert_passed().await;
    accepter.assert_passed().await;
    gateway.assert_passed().await;
}

#[tokio::test]
async fn a_human_who_hangs_up_during_the_brief_declines() {
    let (phone, _brief) = Phone::start("agent_consult_hangs_up").await.listen(None);
    // Never reached: nothing goes to the gateway before an accept.
    let gateway = gateway(Duration::from_secs(5));
    let stack = Stack::start(&phone, &phone).await;
    let events = stack
        .handoff(
            "attended-hang-up-1",
            pb::target::Kind::SipUri(phone.uri("agent")),
            &gateway,
        )
        .await;
    let kinds = event_kinds(&events);
    assert!(
        in_order(&kinds, &[K::Consulting, K::ConsultDeclined, K::Failed]),
        "{kinds:?}"
    );
    assert!(!kinds.contains(&K::Connected), "{kinds:?}");
    assert!(
        detail_of(&events, K::ConsultDeclined).contains("hung up"),
        "declined by the BYE, not by the timeout: {events:?}"
    );
    phone.assert_passed().await;
    assert!(
        !gateway.messages().contains("REFER"),
        "the gateway was sent nothing"
    );
}
