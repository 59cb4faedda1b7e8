//! Features of a normalised turn and where they land in the weight table.
//!
//! Three kinds, each hashed with its own namespace byte so that the word
//! "a" and the character "a" never share a hash:
//! - words (`w`): every word;
//! - word pairs (`b`): every two neighbouring words, plus the first word
//!   after the start (`^`) and the last before the end (`$`), so "agent"
//!   alone differs from "agent" inside a sentence;
//! - skip pairs (`s`): two words with one to `skip_max - 1` words between
//!   them, the gap not recorded, so "don't … talk" and "no … hablar" can
//!   carry a negation that a pair of neighbours misses;
//! - character n-grams (`c`): fastText-style, of each word framed by one
//!   space on each side, `min..=max` characters long (the lone frame is
//!   not a feature). A Japanese sentence is one long word; its n-grams
//!   are what the model reads;
//! - word prefixes (`p`): the first `prefix_len` characters of a longer
//!   word, a crude stem shared by inflections ("operat|or", "operat|eur",
//!   "operat|ore");
//! - negated words (`n`): a word within `negation_window` words after a
//!   negation word (`data/negation.txt`), again under its own name, so
//!   "not … agent" can weigh otherwise than "agent".
//!
//! Hashing is FNV-1a 64 over the UTF-8 bytes, folded to 32 bits and masked
//! to the table size: fixed, and the same on every platform.

const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
const FNV_PRIME: u64 = 0x0000_0100_0000_01b3;

const WORD: u8 = b'w';
const PAIR: u8 = b'b';
const CHARS: u8 = b'c';
const SKIP: u8 = b's';
const PREFIX: u8 = b'p';
const NEGATED: u8 = b'n';

/// Negation words, normalised, one a line (`#` starts a comment).
const NEGATION_WORDS: &str = include_str!("../data/negation.txt");

fn negation_words() -> &'static [&'static str] {
    static WORDS: std::sync::OnceLock<Vec<&'static str>> = std::sync::OnceLock::new();
    WORDS.get_or_init(|| {
        let mut words: Vec<&str> = NEGATION_WORDS
            .lines()
            .map(|l| l.split('#').next().unwrap_or("").trim())
            .filter(|w| !w.is_empty())
            .collect();
        words.sort_unstable();
        words.dedup();
        words
    })
}

fn is_negation(word: &str) -> bool {
    negation_words().binary_search(&word).is_ok()
}

/// Words a skip pair can reach back over, at most.
const SKIP_WINDOW: usize = 8;

/// The start and end of a turn, in word pairs. Never a normalised word
/// (normalisation keeps letters and digits only).
pub(crate) const START: &str = "^";
pub(crate) const END: &str = "$";

/// How features are read; stored in the weights file so that weights and
/// reader agree.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FeatureConfig {
    /// The table has `1 << buckets_log2` rows.
    pub buckets_log2: u8,
    /// Shortest character n-gram, counting the frame spaces.
    pub char_min: u8,
    /// Longest character n-gram, counting the frame spaces.
    pub char_max: u8,
    /// Widest distance between the words of a skip pair (2..=8: pairs
    /// of words 2..=skip_max apart); 0 for none.
    pub skip_max: u8,
    /// Characters of a word-prefix feature (3..=8), for words longer
    /// than that; 0 for none.
    pub prefix_len: u8,
    /// Words after a negation word that also count as negated (1..=8);
    /// 0 for none.
    pub negation_window: u8,
}

impl Default for FeatureConfig {
    fn default() -> Self {
        Self {
            buckets_log2: 18,
            char_min: 1,
            char_max: 4,
            // Grouped cross-validation (corpus and older sets): skip pairs
            // and negated words add recall at the target precision; word
            // prefixes were neutral and cost a feature per word.
            skip_max: 3,
            prefix_len: 0,
            negation_window: 3,
        }
    }
}

impl FeatureConfig {
    pub(crate) fn buckets(&self) -> usize {
        1 << self.buckets_log2
    }

    /// The row of the weight table for a feature hash.
    #[inline]
    pub(crate) fn bucket(&self, hash: u64) -> usize {
        let folded = (hash ^ (hash >> 32)) as u32;
        (folded & ((1u32 << self.buckets_log2) - 1)) as usize
    }
}

/// One feature of a turn, borrowed from the normalised text; turned into
/// a readable string only when an explanation asks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Feature<'a> {
    Word(&'a str),
    Pair(&'a str, &'a str),
    /// Two words with others between them.
    Skip(&'a str, &'a str),
    /// The first characters of a longer word.
    Prefix(&'a str),
    /// A word in the scope of a negation.
    Negated(&'a str),
    /// `text` framed by a space before (`start`) and after (`end`).
    Chars {
        text: &'a str,
        start: bool,
        end: bool,
    },
}

impl Feature<'_> {
    /// What an explanation shows: the words, or the characters with their
    /// frame spaces (`" hum"` starts a word). Features that read the same
    /// are one piece of evidence.
    pub(crate) fn display(&self) -> String {
        match *self {
            Feature::Word(w) => w.to_owned(),
            // At the start or end of a turn a pair shows as its word,
            // and adds to that word's evidence.
            Feature::Pair(START, w) | Feature::Pair(w, END) => w.to_owned(),
            Feature::Pair(a, b) => format!("{a} {b}"),
            Feature::Skip(a, b) => format!("{a} … {b}"),
            Feature::Prefix(p) => format!("{p}…"),
            Feature::Negated(w) => format!("¬{w}"),
            Feature::Chars { text, start, end } => {
                let mut s = String::with_capacity(text.len() + 2);
                if start {
                    s.push(' ');
                }
                s.push_str(text);
                if end {
                    s.push(' ');
                }
                s
            }
        }
    }
}

#[inline]
fn fnv(mut hash: u64, bytes: &[u8]) -> u64 {
    for &b in bytes {
        hash ^= u64::from(b);
        hash = hash.wrapping_mul(FNV_PRIME);
    }
    hash
}

/// FNV-1a 64 of `bytes`.
pub fn fnv1a64(bytes: &[u8]) -> u64 {
    fnv(FNV_OFFSET, bytes)
}

/// The hash of a word feature: FNV-1a 64 of `w` followed by the word.
pub fn word_hash(word: &str) -> u64 {
    fnv(fnv(FNV_OFFSET, &[WORD]), word.as_bytes())
}

fn hack_repeat() -> usize {
    static R: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
    *R.get_or_init(|| {
        std::env::var("HACK_REPEAT")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(1)
    })
}

fn kind_hash(kind: u8, text: &str) -> u64 {
    fnv(fnv(FNV_OFFSET, &[kind]), text.as_bytes())
}

fn pair_hash(kind: u8, a: &str, b: &str) -> u64 {
    let h = fnv(fnv(FNV_OFFSET, &[kind]), a.as_bytes());
    fnv(fnv(h, b" "), b.as_bytes())
}

/// Calls `emit` with the hash of every feature of `normalized` (the output
/// of [`crate::normalize`]), in a fixed order. Repeated features are
/// emitted each time they occur.
#[inline]
pub(crate) fn for_each_feature<'a, F>(normalized: &'a str, config: &FeatureConfig, mut emit: F)
where
    F: FnMut(u64, Feature<'a>),
{
    // The last words: word `seen` goes to `recent[seen % SKIP_WINDOW]`.
    let mut recent = [""; SKIP_WINDOW];
    let reach = usize::from(config.skip_max).min(SKIP_WINDOW);
    let mut previous = START;
    let prefix_len = usize::from(config.prefix_len);
    // Words still in the scope of the last negation word.
    let mut negated = 0u8;
    for (seen, word) in normalized.split(' ').filter(|w| !w.is_empty()).enumerate() {
        emit(word_hash(word), Feature::Word(word));
        for _ in 1..hack_repeat() {
            emit(word_hash(word), Feature::Word(word));
            emit(
                pair_hash(PAIR, previous, word),
                Feature::Pair(previous, word),
            );
        }
        if config.negation_window > 0 {
            if is_negation(word) {
                negated = config.negation_window;
            } else if negated > 0 {
                negated -= 1;
                emit(kind_hash(NEGATED, word), Feature::Negated(word));
            }
        }
        if prefix_len > 0
            && let Some((cut, _)) = word.char_indices().nth(prefix_len)
        {
            let prefix = &word[..cut];
            emit(kind_hash(PREFIX, prefix), Feature::Prefix(prefix));
        }
        emit(
            pair_hash(PAIR, previous, word),
            Feature::Pair(previous, word),
        );
        for gap in 2..=reach.min(seen) {
            let before = recent[(seen - gap) % SKIP_WINDOW];
            emit(pair_hash(SKIP, before, word), Feature::Skip(before, word));
        }
        char_grams(word, config, &mut emit);
        recent[seen % SKIP_WINDOW] = word;
        previous = word;
    }
    if previous != START {
        emit(pair_hash(PAIR, previous, END), Feature::Pair(previous, END));
    }
}

#[inline]
fn char_grams<'a, F>(word: &'a str, config: &FeatureConfig, emit: &mut F)
where
    F: FnMut(u64, Feature<'a>),
{
    grams_from(word, 0, true, config, emit);
    for (at, _) in word.char_indices() {
        grams_from(word, at, false, config, emit);
    }
}

/// The n-grams that begin at byte `at` of `word`, or at the frame before
/// it when `start`.
#[inline]
fn grams_from<'a, F>(word: &'a str, at: usize, start: bool, config: &FeatureConfig, emit: &mut F)
where
    F: FnMut(u64, Feature<'a>),
{
    let (min, max) = (usize::from(config.char_min), usize::from(config.char_max));
    let mut hash = fnv(FNV_OFFSET, &[CHARS]);
    let mut len = 0;
    if start {
        hash = fnv(hash, b" ");
        len = 1;
    }
    let rest = &word[at..];
    let mut utf8 = [0u8; 4];
    for (i, c) in rest.char_indices() {
        hash = fnv(hash, c.encode_utf8(&mut utf8).as_bytes());
        len += 1;
        if len >= min {
            let text = &rest[..i + c.len_utf8()];
            emit(
                hash,
                Feature::Chars {
                    text,
                    start,
                    end: false,
                },
            );
        }
        if len >= max {
            return;
        }
    }
    hash = fnv(hash, b" ");
    len += 1;
    if len >= min && len >= 2 {
        emit(
            hash,
            Feature::Chars {
                text: rest,
                start,
                end: true,
            },
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn features(text: &str, config: &FeatureConfig) -> Vec<String> {
        let mut out = Vec::new();
        for_each_feature(text, config, |_, f| out.push(f.display()));
        out
    }

    #[test]
    fn fnv_matches_the_published_vectors() {
        assert_eq!(fnv1a64(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a64(b"a"), 0xaf63_dc4c_8601_ec8c);
        assert_eq!(fnv1a64(b"foobar"), 0x8594_4171_f739_67e8);
    }

    #[test]
    fn a_fixed_feature_keeps_its_bucket() {
        // Pinned: a change here orphans every trained weight.
        let config = FeatureConfig::default();
        assert_eq!(word_hash("human"), fnv1a64(b"whuman"));
        assert_eq!(config.bucket(word_hash("human")), PINNED_HUMAN_BUCKET);
    }

    const PINNED_HUMAN_BUCKET: usize = 163_773;

    #[test]
    fn features_of_a_short_turn() {
        let config = FeatureConfig {
            buckets_log2: 10,
            char_min: 2,
            char_max: 3,
            skip_max: 0,
            prefix_len: 0,
            negation_window: 0,
        };
        let got = features("hi yo", &config);
        let want = [
            "hi", "hi", " h", " hi", "hi", "hi ", "i ", // "hi", "^ hi", chars
            "yo", "hi yo", " y", " yo", "yo", "yo ", "o ", // "yo", "hi yo", chars
            "yo", // "yo $"
        ];
        assert_eq!(got, want);
    }

    #[test]
    fn skip_pairs_reach_over_the_words_between() {
        let config = FeatureConfig {
            buckets_log2: 10,
            char_min: 8,
            char_max: 8,
            skip_max: 3,
            prefix_len: 0,
            negation_window: 0,
        };
        let got: Vec<String> = features("a b c d", &config)
            .into_iter()
            .filter(|f| f.contains('…'))
            .collect();
        assert_eq!(got, ["a … c", "b … d", "a … d"]);
    }

    #[test]
    fn prefixes_and_negated_words() {
        let config = FeatureConfig {
            buckets_log2: 10,
            char_min: 8,
            char_max: 8,
            skip_max: 0,
            prefix_len: 5,
            negation_window: 2,
        };
        let got: Vec<String> = features("i do not want an operator", &config)
            .into_iter()
            .filter(|f| f.contains('…') || f.contains('¬'))
            .collect();
        assert_eq!(got, ["¬want", "¬an", "opera…"]);
        assert!(is_negation("nicht") && is_negation("не") && !is_negation("agent"));
    }

    #[test]
    fn japanese_reads_as_character_grams() {
        let config = FeatureConfig::default();
        let got = features("人と話す", &config);
        assert!(got.contains(&"人と".to_owned()), "{got:?}");
        assert!(got.contains(&" 人".to_owned()), "{got:?}");
        assert!(got.contains(&"話す ".to_owned()), "{got:?}");
    }

    #[test]
    fn nothing_in_nothing_out() {
        assert!(features("", &FeatureConfig::default()).is_empty());
    }
}
