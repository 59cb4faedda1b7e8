//! The WAV a TTS command writes: RIFF chunks, 16-bit PCM. The lengths of
//! a WAV written into a pipe are placeholders (espeak-ng writes
//! 0x7ffff000), so the data chunk runs to the end of what was read.

use crate::MediaError;

/// Mono 16-bit samples at `rate` Hz.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pcm {
    pub rate: u32,
    pub samples: Vec<i16>,
}

/// Reads 16-bit PCM from a WAV; several channels are mixed to one.
pub fn parse(bytes: &[u8]) -> Result<Pcm, MediaError> {
    if bytes.len() < 12 || &bytes[0..4] != b"RIFF" || &bytes[8..12] != b"WAVE" {
        return Err(MediaError::Wav("no RIFF/WAVE header"));
    }
    let mut at = 12;
    let mut format: Option<(u16, u16, u32, u16)> = None;
    while at + 8 <= bytes.len() {
        let id = &bytes[at..at + 4];
        let size = u32::from_le_bytes([bytes[at + 4], bytes[at + 5], bytes[at + 6], bytes[at + 7]])
            as usize;
        let body = at + 8;
        match id {
            b"fmt " => {
                let chunk = bytes
                    .get(body..body + 16)
                    .ok_or(MediaError::Wav("short fmt chunk"))?;
                let le16 = |i: usize| u16::from_le_bytes([chunk[i], chunk[i + 1]]);
                let rate = u32::from_le_bytes([chunk[4], chunk[5], chunk[6], chunk[7]]);
                format = Some((le16(0), le16(2), rate, le16(14)));
            }
            b"data" => {
                let (tag, channels, rate, bits) =
                    format.ok_or(MediaError::Wav("data before fmt"))?;
                // 1: PCM; 0xfffe: WAVE_FORMAT_EXTENSIBLE, PCM by its bits.
                if !matches!(tag, 1 | 0xfffe) || bits != 16 {
                    return Err(MediaError::Wav("not 16-bit PCM"));
                }
                if channels == 0 || rate == 0 {
                    return Err(MediaError::Wav("no channels or no sample rate"));
                }
                let end = body.saturating_add(size).min(bytes.len());
                let data = &bytes[body.min(end)..end];
                let channels = usize::from(channels);
                let samples = data
                    .chunks_exact(2 * channels)
                    .map(|frame| {
                        let sum: i32 = frame
                            .chunks_exact(2)
                            .map(|s| i32::from(i16::from_le_bytes([s[0], s[1]])))
                            .sum();
                        (sum / channels as i32) as i16
                    })
                    .collect();
                return Ok(Pcm { rate, samples });
            }
            _ => {}
        }
        // Chunks are padded to an even length.
        at = body.saturating_add(size).saturating_add(size & 1);
    }
    Err(MediaError::Wav("no data chunk"))
}

#[cfg(test)]
pub(crate) fn write(rate: u32, channels: u16, samples: &[i16], data_len: Option<u32>) -> Vec<u8> {
    let data: Vec<u8> = samples.iter().flat_map(|s| s.to_le_bytes()).collect();
    let data_len = data_len.unwrap_or(data.len() as u32);
    let mut out = Vec::new();
    out.extend_from_slice(b"RIFF");
    out.extend_from_slice(&data_len.wrapping_add(36).to_le_bytes());
    out.extend_from_slice(b"WAVEfmt ");
    out.extend_from_slice(&16u32.to_le_bytes());
    out.extend_from_slice(&1u16.to_le_bytes());
    out.extend_from_slice(&channels.to_le_bytes());
    out.extend_from_slice(&rate.to_le_bytes());
    out.extend_from_slice(&(rate * 2 * u32::from(channels)).to_le_bytes());
    out.extend_from_slice(&(2 * channels).to_le_bytes());
    out.extend_from_slice(&16u16.to_le_bytes());
    out.extend_from_slice(b"data");
    out.extend_from_slice(&data_len.to_le_bytes());
    out.extend_from_slice(&data);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_mono_pcm() {
        let pcm = parse(&write(22050, 1, &[1, -2, 300], None)).expect("parses");
        assert_eq!(
            pcm,
            Pcm {
                rate: 22050,
                samples: vec![1, -2, 300]
            }
        );
    }

    #[test]
    fn a_placeholder_length_reads_to_the_end_as_espeak_ng_writes_into_a_pipe() {
        let pcm = parse(&write(22050, 1, &[5, 6, 7, 8], Some(0x7fff_f000))).expect("parses");
        assert_eq!(pcm.samples, [5, 6, 7, 8]);
    }

    #[test]
    fn stereo_is_mixed_to_mono() {
        let pcm = parse(&write(8000, 2, &[100, 300, -10, -30], None)).expect("parses");
        assert_eq!(pcm.samples, [200, -20]);
    }

    #[test]
    fn what_is_not_a_pcm_wav_is_an_error_not_a_panic() {
        for bytes in [
            &b""[..],
            b"RIFF",
            b"RIFF\0\0\0\0WAVE",
            b"RIFF\0\0\0\0WAVEdata\xff\xff\xff\xff",
        ] {
            assert!(parse(bytes).is_err(), "{bytes:?}");
        }
        let mut eight_bit = write(8000, 1, &[1], None);
        eight_bit[34] = 8;
        assert!(parse(&eight_bit).is_err());
    }
}
