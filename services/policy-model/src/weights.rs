//! The weights file: what the trainer writes and [`crate::Model`] reads.
//!
//! Little-endian throughout:
//!
//! | offset | size | field |
//! |-------:|-----:|-------|
//! | 0 | 4 | magic `BPMW` |
//! | 4 | 2 | version, `2` (`1`: byte 11 is `0`) |
//! | 6 | 1 | `buckets_log2` (8..=24) |
//! | 7 | 1 | shortest character n-gram (1..=8) |
//! | 8 | 1 | longest character n-gram (min..=8) |
//! | 9 | 1 | label count, `4` |
//! | 10 | 1 | widest gap of a word skip pair (0: none; else 2..=8) |
//! | 11 | 1 | word-prefix length (low 4 bits: 0 none, else 3..=8) and negation window (high 4 bits: 0..=8) |
//! | 12 | 48 | per label, in [`Label::ALL`] order: bias, scale, threshold (`f32` each) |
//! | 60 | 4 | entry count (`u32`) |
//! | 64 | … | entries, by increasing row: the gap since the previous row (LEB128; the first is the row itself), then one `i8` weight per label |
//! | end − 4 | 4 | CRC-32 (IEEE) of every byte before it |
//!
//! A label's weight is `scale × i8`; rows not listed are zero.

use std::fmt;

use crate::Label;
use crate::features::FeatureConfig;

/// A weights file larger than this is refused before it is read.
pub const MAX_WEIGHTS_BYTES: usize = 1 << 20;

const MAGIC: &[u8; 4] = b"BPMW";
const VERSION: u16 = 2;
/// Files before word prefixes and negation; byte 11 must be `0`.
const VERSION_1: u16 = 1;
const HEADER: usize = 64;
const TRAILER: usize = 4;
const LABELS: usize = Label::ALL.len();

/// Why a weights file was refused.
#[derive(Debug, Clone, PartialEq)]
pub enum WeightsError {
    /// Larger than [`MAX_WEIGHTS_BYTES`].
    TooLarge { len: usize },
    /// Shorter than the fixed header and trailer.
    TooShort { len: usize },
    /// Not a Baton policy-model file.
    BadMagic,
    /// Written by a trainer this reader does not know.
    UnsupportedVersion(u16),
    /// The bytes changed after the trainer wrote them.
    ChecksumMismatch { stored: u32, computed: u32 },
    /// The checksum holds but a field is out of range.
    Malformed(String),
}

impl fmt::Display for WeightsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::TooLarge { len } => write!(
                f,
                "policy-model weights: {len} bytes, more than the {MAX_WEIGHTS_BYTES} allowed"
            ),
            Self::TooShort { len } => write!(
                f,
                "policy-model weights: {len} bytes, shorter than the {} of header and checksum",
                HEADER + TRAILER
            ),
            Self::BadMagic => write!(f, "policy-model weights: no BPMW magic, not a weights file"),
            Self::UnsupportedVersion(v) => write!(
                f,
                "policy-model weights: version {v}, this reader knows versions {VERSION_1} and {VERSION}"
            ),
            Self::ChecksumMismatch { stored, computed } => write!(
                f,
                "policy-model weights: damaged, CRC-32 {computed:08x} but the file says {stored:08x}"
            ),
            Self::Malformed(what) => write!(f, "policy-model weights: {what}"),
        }
    }
}

impl std::error::Error for WeightsError {}

/// One label's linear model: `logit = bias + scale × Σ weight / √n`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct LabelParams {
    pub bias: f32,
    pub scale: f32,
    pub threshold: f32,
}

/// The decoded file: a dense table of `[i8; 4]` rows.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Weights {
    pub features: FeatureConfig,
    pub labels: [LabelParams; LABELS],
    pub rows: Vec<[i8; LABELS]>,
}

impl Weights {
    /// The rows with a weight, as the file lists them.
    fn entries(&self) -> impl Iterator<Item = (usize, [i8; LABELS])> + '_ {
        self.rows
            .iter()
            .enumerate()
            .filter(|(_, r)| r.iter().any(|&q| q != 0))
            .map(|(i, r)| (i, *r))
    }

    pub(crate) fn nonzero_rows(&self) -> usize {
        self.entries().count()
    }

    pub(crate) fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(HEADER + 6 * self.nonzero_rows() + TRAILER);
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&VERSION.to_le_bytes());
        out.push(self.features.buckets_log2);
        out.push(self.features.char_min);
        out.push(self.features.char_max);
        out.push(LABELS as u8);
        out.push(self.features.skip_max);
        out.push(self.features.prefix_len | (self.features.negation_window << 4));
        for p in &self.labels {
            out.extend_from_slice(&p.bias.to_le_bytes());
            out.extend_from_slice(&p.scale.to_le_bytes());
            out.extend_from_slice(&p.threshold.to_le_bytes());
        }
        let count = self.nonzero_rows() as u32;
        out.extend_from_slice(&count.to_le_bytes());
        let mut next = 0usize;
        for (row, q) in self.entries() {
            write_leb128(&mut out, (row - next) as u32);
            out.extend(q.iter().map(|&v| v as u8));
            next = row + 1;
        }
        let crc = crc32(&out);
        out.extend_from_slice(&crc.to_le_bytes());
        out
    }

    pub(crate) fn decode(bytes: &[u8]) -> Result<Self, WeightsError> {
        let len = bytes.len();
        if len > MAX_WEIGHTS_BYTES {
            return Err(WeightsError::TooLarge { len });
        }
        if len < HEADER + TRAILER {
            return Err(WeightsError::TooShort { len });
        }
        if &bytes[0..4] != MAGIC {
            return Err(WeightsError::BadMagic);
        }
        let version = u16::from_le_bytes([bytes[4], bytes[5]]);
        if version != VERSION && version != VERSION_1 {
            return Err(WeightsError::UnsupportedVersion(version));
        }
        let (body, trailer) = bytes.split_at(len - TRAILER);
        let stored = u32::from_le_bytes([trailer[0], trailer[1], trailer[2], trailer[3]]);
        let computed = crc32(body);
        if stored != computed {
            return Err(WeightsError::ChecksumMismatch { stored, computed });
        }
        let malformed = |what: String| Err(WeightsError::Malformed(what));

        let features = FeatureConfig {
            buckets_log2: body[6],
            char_min: body[7],
            char_max: body[8],
            skip_max: body[10],
            prefix_len: body[11] & 0x0f,
            negation_window: body[11] >> 4,
        };
        if version == VERSION_1 && body[11] != 0 {
            return malformed(format!("version 1 with byte 11 {}, not 0", body[11]));
        }
        if matches!(features.prefix_len, 1 | 2) || features.prefix_len > 8 {
            return malformed(format!(
                "word-prefix length {} outside 0 or 3..=8",
                features.prefix_len
            ));
        }
        if features.negation_window > 8 {
            return malformed(format!(
                "negation window {} outside 0..=8",
                features.negation_window
            ));
        }
        if !(8..=24).contains(&features.buckets_log2) {
            return malformed(format!(
                "buckets_log2 {} outside 8..=24",
                features.buckets_log2
            ));
        }
        if features.char_min == 0 || features.char_min > features.char_max || features.char_max > 8
        {
            return malformed(format!(
                "character n-grams {}..={} outside 1..=8",
                features.char_min, features.char_max
            ));
        }
        if features.skip_max == 1 || features.skip_max > 8 {
            return malformed(format!(
                "skip-pair gap {} outside 0 or 2..=8",
                features.skip_max
            ));
        }
        if usize::from(body[9]) != LABELS {
            return malformed(format!("{} labels, this reader knows {LABELS}", body[9]));
        }
        let mut labels = [LabelParams {
            bias: 0.0,
            scale: 0.0,
            threshold: 0.0,
        }; LABELS];
        for (i, (p, label)) in labels.iter_mut().zip(Label::ALL).enumerate() {
            let at = 12 + 12 * i;
            let f = |o: usize| {
                f32::from_le_bytes([
                    body[at + o],
                    body[at + o + 1],
                    body[at + o + 2],
                    body[at + o + 3],
                ])
            };
            *p = LabelParams {
                bias: f(0),
                scale: f(4),
                threshold: f(8),
            };
            if !p.bias.is_finite() || !p.scale.is_finite() || p.scale < 0.0 {
                return malformed(format!("{label}: bias or scale not a finite number"));
            }
            if !(0.0..=1.0).contains(&p.threshold) {
                return malformed(format!("{label}: threshold {} outside 0..=1", p.threshold));
            }
        }

        let buckets = features.buckets();
        let count = u32::from_le_bytes([body[60], body[61], body[62], body[63]]) as usize;
        if count > buckets {
            return malformed(format!("{count} entries for {buckets} rows"));
        }
        let mut rows = vec![[0i8; LABELS]; buckets];
        let mut at = HEADER;
        let mut next = 0usize;
        for _ in 0..count {
            let Some((gap, used)) = read_leb128(&body[at..]) else {
                return malformed(format!("entry at byte {at}: bad row gap"));
            };
            at += used;
            let row = next + gap as usize;
            if row >= buckets {
                return malformed(format!("entry at byte {at}: row {row} beyond {buckets}"));
            }
            let Some(q) = body.get(at..at + LABELS) else {
                return malformed(format!("entry at byte {at}: cut short"));
            };
            for (slot, &b) in rows[row].iter_mut().zip(q) {
                *slot = b as i8;
            }
            at += LABELS;
            next = row + 1;
        }
        if at != body.len() {
            return malformed(format!(
                "{} bytes after the last of {count} entries",
                body.len() - at
            ));
        }
        Ok(Self {
            features,
            labels,
            rows,
        })
    }
}

fn write_leb128(out: &mut Vec<u8>, mut v: u32) {
    loop {
        let byte = (v & 0x7f) as u8;
        v >>= 7;
        if v == 0 {
            out.push(byte);
            return;
        }
        out.push(byte | 0x80);
    }
}

/// The value and the bytes it took; `None` if cut short or over 32 bits.
fn read_leb128(bytes: &[u8]) -> Option<(u32, usize)> {
    let mut v: u32 = 0;
    for (i, &b) in bytes.iter().enumerate().take(5) {
        let part = u32::from(b & 0x7f);
        if i == 4 && part > 0x0f {
            return None;
        }
        v |= part << (7 * i);
        if b & 0x80 == 0 {
            return Some((v, i + 1));
        }
    }
    None
}

const CRC_TABLE: [u32; 256] = {
    let mut table = [0u32; 256];
    let mut i = 0;
    while i < 256 {
        let mut c = i as u32;
        let mut k = 0;
        while k < 8 {
            c = if c & 1 != 0 {
                0xEDB8_8320 ^ (c >> 1)
            } else {
                c >> 1
            };
            k += 1;
        }
        table[i] = c;
        i += 1;
    }
    table
};

/// CRC-32 (IEEE 802.3, as zlib and PNG).
pub(crate) fn crc32(bytes: &[u8]) -> u32 {
    let mut c = !0u32;
    for &b in bytes {
        c = CRC_TABLE[((c ^ u32::from(b)) & 0xff) as usize] ^ (c >> 8);
    }
    !c
}

#[cfg(test)]
mod tests;
