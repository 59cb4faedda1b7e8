//! G.711 µ-law (ITU-T G.711, the PCMU of RFC 3551): 16-bit linear samples
//! to 8-bit codes and back.

const BIAS: i32 = 0x84;
const CLIP: i32 = 32635;

/// The µ-law code of one 16-bit sample.
pub fn encode(sample: i16) -> u8 {
    let mut value = i32::from(sample);
    let sign = if value < 0 {
        value = -value;
        0x80
    } else {
        0
    };
    let value = value.min(CLIP) + BIAS;
    // The segment is the position of the highest set bit above bit 7.
    let exponent = (0..8u8)
        .rev()
        .find(|e| value & (0x80 << e) != 0)
        .unwrap_or(0);
    let mantissa = ((value >> (exponent + 3)) & 0x0f) as u8;
    !(sign | (exponent << 4) | mantissa)
}

/// The 16-bit sample a µ-law code stands for.
pub fn decode(code: u8) -> i16 {
    let code = !code;
    let exponent = (code >> 4) & 0x07;
    let mantissa = i32::from(code & 0x0f);
    let magnitude = (((mantissa << 3) + BIAS) << exponent) - BIAS;
    let value = if code & 0x80 != 0 {
        -magnitude
    } else {
        magnitude
    };
    value as i16
}

/// Encodes every sample.
pub fn encode_all(samples: &[i16]) -> Vec<u8> {
    samples.iter().map(|&s| encode(s)).collect()
}

/// The µ-law code of silence.
pub const SILENCE: u8 = 0xff;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_codes_of_the_standard() {
        // Reference values of the ITU-T G.711 µ-law table.
        assert_eq!(encode(0), 0xff);
        assert_eq!(encode(-1), 0x7f);
        assert_eq!(encode(i16::MAX), 0x80);
        assert_eq!(encode(i16::MIN), 0x00);
        assert_eq!(encode(8), 0xfe);
        assert_eq!(encode(-8), 0x7e);
        assert_eq!(decode(0xff), 0);
        assert_eq!(decode(0x80), 32124);
        assert_eq!(decode(0x00), -32124);
    }

    #[test]
    fn every_code_decodes_and_encodes_back_to_itself() {
        for code in 0..=255u8 {
            // 0x7f is -0, which encodes as +0 (0xff).
            if code == 0x7f {
                continue;
            }
            assert_eq!(encode(decode(code)), code, "code {code:#04x}");
        }
    }

    #[test]
    fn encoding_keeps_sign_and_order_and_error_stays_within_a_step() {
        let mut last = decode(encode(i16::MIN));
        for sample in (i16::MIN..=i16::MAX).step_by(97) {
            let back = decode(encode(sample));
            assert!(back >= last, "monotonic at {sample}");
            last = back;
            assert!(back.signum() * sample.signum() >= 0, "sign of {sample}");
            // The quantization step doubles per segment: at most 1/16 of
            // the magnitude, plus the smallest step.
            let error = (i32::from(back) - i32::from(sample)).abs();
            assert!(
                error <= i32::from(sample).abs() / 16 + 8,
                "{sample} -> {back}"
            );
        }
    }
}
