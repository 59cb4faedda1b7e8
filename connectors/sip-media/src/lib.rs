//! The media of an attended transfer's consult leg, where the human hears
//! a spoken brief of the handoff while the customer holds, and accepts or
//! declines with a key:
//!
//! - [`sdp`]: the offer (PCMU/8000 and telephone-event/8000 on one UDP
//!   port) and what the human's answer says about where audio goes;
//! - [`tts`]: the brief synthesized by a local command (`espeak-ng`),
//!   read from its WAV ([`wav`]), resampled to 8 kHz ([`resample`]) and
//!   µ-law encoded ([`g711`]);
//! - [`rtp`]: RTP packets (RFC 3550), 20 ms of audio each;
//! - [`dtmf`]: the human's key as RFC 4733 telephone-events or in a SIP
//!   INFO body;
//! - [`session`]: the UDP socket that speaks the brief and hears the keys.
//!
//! No SIP here: the user agent (`baton-sip-stack`) offers, answers and
//! decides; this crate moves the audio and hears the digits.
//!
//! Dependencies are kept to tokio: the RTP header is twelve bytes, µ-law a
//! dozen lines and the WAV of a TTS tool one chunk walk, while the `rtp`
//! crate brings the webrtc-util tree, and `hound` refuses the WAV that
//! `espeak-ng --stdout` writes into a pipe (its lengths are placeholders,
//! the data runs to the end of the stream).

pub mod dtmf;
pub mod g711;
pub mod resample;
pub mod rtp;
pub mod sdp;
pub mod session;
pub mod tts;
pub mod wav;

/// What can go wrong making the brief's audio.
#[derive(Debug, thiserror::Error)]
pub enum MediaError {
    #[error("the TTS output is not a WAV this connector reads: {0}")]
    Wav(&'static str),
    #[error("the TTS command {command:?} could not run: {source}")]
    TtsSpawn {
        command: String,
        source: std::io::Error,
    },
    #[error("the TTS command {command:?} failed: {detail}")]
    TtsFailed { command: String, detail: String },
    #[error("the TTS command {command:?} took longer than {timeout:?}")]
    TtsTimedOut {
        command: String,
        timeout: std::time::Duration,
    },
}

/// Samples per second of G.711 on the consult leg (RFC 3551 PCMU).
pub const SAMPLE_RATE: u32 = 8000;
/// Samples in one RTP packet: 20 ms at 8 kHz.
pub const SAMPLES_PER_PACKET: usize = 160;
/// The RTP payload type of PCMU (RFC 3551, static).
pub const PCMU: u8 = 0;
/// The dynamic payload type the offer gives telephone-event.
pub const TELEPHONE_EVENT: u8 = 101;
