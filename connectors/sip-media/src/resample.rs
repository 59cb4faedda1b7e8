//! Resampling the TTS voice (espeak-ng speaks at 22050 Hz) to the 8 kHz of
//! G.711. Each output sample averages the input samples of its own span
//! (a box filter): enough low-pass against aliasing for speech, with no
//! filter design to keep.

/// `samples` at `from` Hz, at `to` Hz. Equal rates copy; an empty input
/// or a zero rate gives nothing.
pub fn resample(samples: &[i16], from: u32, to: u32) -> Vec<i16> {
    if from == 0 || to == 0 || samples.is_empty() {
        return Vec::new();
    }
    if from == to {
        return samples.to_vec();
    }
    let out_len = (samples.len() as u64 * u64::from(to) / u64::from(from)) as usize;
    let step = f64::from(from) / f64::from(to);
    (0..out_len)
        .map(|i| {
            let start = i as f64 * step;
            if step <= 1.0 {
                // Upsampling: interpolate between the two neighbours.
                let left = start.floor() as usize;
                let right = (left + 1).min(samples.len() - 1);
                let frac = start - left as f64;
                let value =
                    f64::from(samples[left]) * (1.0 - frac) + f64::from(samples[right]) * frac;
                return value.round() as i16;
            }
            let first = start.floor() as usize;
            let last = (((i + 1) as f64 * step).ceil() as usize).min(samples.len());
            let span = &samples[first.min(last.saturating_sub(1))..last];
            let sum: i64 = span.iter().map(|&s| i64::from(s)).sum();
            (sum / span.len().max(1) as i64) as i16
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tone(freq: f64, rate: u32, seconds: f64) -> Vec<i16> {
        let n = (f64::from(rate) * seconds) as usize;
        (0..n)
            .map(|i| {
                (10_000.0 * (2.0 * std::f64::consts::PI * freq * i as f64 / f64::from(rate)).sin())
                    as i16
            })
            .collect()
    }

    /// The strength of `freq` in `samples` (one DFT bin).
    fn power(samples: &[i16], freq: f64, rate: u32) -> f64 {
        let (mut re, mut im) = (0.0, 0.0);
        for (i, &s) in samples.iter().enumerate() {
            let phase = 2.0 * std::f64::consts::PI * freq * i as f64 / f64::from(rate);
            re += f64::from(s) * phase.cos();
            im += f64::from(s) * phase.sin();
        }
        (re * re + im * im).sqrt() / samples.len() as f64
    }

    #[test]
    fn one_second_at_22050_is_one_second_at_8000() {
        let out = resample(&vec![0; 22050], 22050, 8000);
        assert_eq!(out.len(), 8000);
        assert!(resample(&[], 22050, 8000).is_empty());
        assert_eq!(resample(&[1, 2, 3], 8000, 8000), [1, 2, 3]);
    }

    #[test]
    fn a_voice_band_tone_keeps_its_frequency_and_level() {
        let out = resample(&tone(440.0, 22050, 0.5), 22050, 8000);
        let at_440 = power(&out, 440.0, 8000);
        // A sine of amplitude A has A/2 in its bin.
        assert!(at_440 > 4_000.0, "440 Hz at {at_440}");
        assert!(power(&out, 1000.0, 8000) < at_440 / 20.0);
    }

    #[test]
    fn a_constant_stays_constant() {
        let out = resample(&[1234; 441], 22050, 8000);
        assert!(out.iter().all(|&s| s == 1234), "{out:?}");
    }
}
