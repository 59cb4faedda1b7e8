//! The format of a language file, `data/<tag>.toml`: what each key holds and
//! the rules every entry keeps. Serde does the checking, so a file that
//! breaks a rule does not parse (`lexicon::tests` parses every file).
//!
//! Every key is required; a language that has no such words writes `[]`,
//! which says "none" on purpose rather than "forgotten". Unknown keys are
//! rejected. A *word* is one token as the detectors see it: non-empty,
//! letters and digits only, already lower-cased and accent-folded (`"ecrit"`,
//! not `"écrit"`), because the text it is compared with has been through
//! [`fold`]. A *phrase* is words separated by single spaces.

use crate::normalize::fold;
use serde::Deserialize;
use std::collections::{HashMap, HashSet};
use std::hash::{BuildHasherDefault, Hasher};

/// One language file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct LanguageFile {
    /// Said to the customer when the conversation goes to a human; the
    /// default of `customer_messages.<tag>` in the policy config.
    pub customer_message: String,
    pub text: TextWords,
    pub explicit: ExplicitWords,
    pub distress: DistressWords,
}

/// `[text]`: words the tokeniser and the quote filter need.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct TextWords {
    /// "I": marks the customer's own words ("I said 'agent'").
    pub first_person: Words,
    /// "but", "pero": end a clause, so negation does not leak past them.
    pub clause_joins: Words,
    /// "said", "typed": after first person, the next quote is the
    /// customer's own words.
    pub quote_intro_verbs: Words,
    /// "dije", "falei": first person by themselves; the next quote is the
    /// customer's own words.
    pub first_person_quote_verbs: Words,
}

/// `[explicit]`: the explicit request for a human.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ExplicitWords {
    /// Human nouns that are a whole request alone ("AGENT!!").
    pub standalone_nouns: Words,
    /// Human nouns that count only after a verb. Never also standalone.
    pub nouns: Words,
    /// "someone": counts only after a verb of talking.
    pub generic_nouns: Words,
    /// Verbs of talking or connecting ("talk", "pásame").
    pub talk_verbs: Words,
    /// Verbs of wanting, asking or getting ("want", "quiero").
    pub want_verbs: Words,
    /// Want verbs that count only after first person ("I said agent").
    pub own_want_verbs: Words,
    /// Small words allowed between a verb and its noun.
    pub glue: Words,
    /// Small words allowed between a noun and a later verb ("someone who…").
    pub relative: Words,
    /// "phone", "line": "can I have someone on the phone?".
    pub phone: Words,
    /// "have": "can I have someone on the phone?".
    pub have: Words,
    /// Politeness and urgency around a bare noun or zeros ("agent please").
    pub filler: Words,
    /// Negation that drops a request ("I don't need a person").
    pub negations: Words,
    /// Ability next to a negation makes it a complaint ("why can't I…").
    pub ability: Words,
    /// Reported speech or a past event before the request.
    pub reporting: Words,
    /// Reporting words that drop the request even after first person.
    pub past_reporting: Words,
    /// Hypothetical or sarcastic openers ("as if").
    pub irrealis: Vec<Phrase>,
    /// The word before "agent" that gives it another sense ("travel").
    pub other_sense_before: Words,
    /// The word after "agent" that gives it another sense ("orange").
    pub other_sense_after: Words,
    /// "of" between the noun and an [`other_sense_of`](Self::other_sense_of) word.
    pub of_words: Words,
    /// "agente de X": the X that gives it another sense ("viajes").
    pub other_sense_of: Words,
    /// Zero as a word ("cero").
    pub zero_words: Words,
    /// Pressing a key ("press 0").
    pub press_verbs: Words,
    /// A next clause that turns the offer down ("no thanks").
    pub refusals: Vec<Phrase>,
    /// After "not" following the noun: a contrast ("an agent, not a bot").
    pub contrasts: Words,
    /// "talking" of "am I talking to a human?".
    pub describing_verbs: Words,
    /// "am" of "am I talking to a human?".
    pub describing_copulas: Words,
    /// "someday": not now.
    pub later: Words,
}

/// `[distress]`: the distress lexicon.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct DistressWords {
    /// Negation before a cue ("not angry").
    pub negators: Words,
    /// Words allowed between a negator and its cue ("not so angry").
    pub negation_bridges: Words,
    /// Words that strengthen the next cue ("so angry").
    pub intensifiers: Words,
    /// "fourth" of "the fourth time".
    pub counts: Words,
    /// "time" of "the fourth time".
    pub times: Words,
    /// Multi-word cues, in order (the order cues are reported in). A phrase
    /// listed twice counts twice.
    pub phrases: Vec<WeightedPhrase>,
    /// Single-word cues.
    pub words: Weights,
    /// Word starts ("denunci"); a whole word in `words` wins over a stem,
    /// and no stem may start another (so their order does not matter).
    pub stems: Weights,
}

/// A set of words, each checked by [`check_word`]; a word listed twice in
/// one list is an error, because it usually means a slip.
#[derive(Debug, Default, Deserialize)]
#[serde(try_from = "Vec<String>")]
pub(crate) struct Words(HashSet<String, Fnv>);

impl Words {
    pub fn contains(&self, word: &str) -> bool {
        self.0.contains(word)
    }

    #[cfg(test)]
    pub fn iter(&self) -> impl Iterator<Item = &str> {
        self.0.iter().map(String::as_str)
    }

    #[cfg(test)]
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Adds another language's words.
    pub fn absorb(&mut self, other: Words) {
        self.0.extend(other.0);
    }
}

impl TryFrom<Vec<String>> for Words {
    type Error = String;

    fn try_from(list: Vec<String>) -> Result<Self, String> {
        let mut set = HashSet::with_capacity_and_hasher(list.len(), Fnv::default());
        for word in list {
            check_word(&word)?;
            if set.contains(&word) {
                return Err(format!("\"{word}\" is listed twice"));
            }
            set.insert(word);
        }
        Ok(Self(set))
    }
}

/// Words in a row, as the detectors compare them with a clause.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(try_from = "String")]
pub(crate) struct Phrase(Vec<String>);

impl Phrase {
    pub fn words(&self) -> &[String] {
        &self.0
    }
}

impl TryFrom<String> for Phrase {
    type Error = String;

    fn try_from(text: String) -> Result<Self, String> {
        let words: Vec<String> = text.split(' ').map(str::to_owned).collect();
        for word in &words {
            check_word(word).map_err(|e| format!("phrase \"{text}\": {e}"))?;
        }
        Ok(Self(words))
    }
}

/// A multi-word distress cue.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct WeightedPhrase {
    pub text: Phrase,
    pub weight: Weight,
}

/// Single words or stems with their weights.
#[derive(Debug, Default, Deserialize)]
#[serde(try_from = "HashMap<String, Weight>")]
pub(crate) struct Weights(HashMap<String, f32, Fnv>);

impl Weights {
    /// The word as stored (a `'static` borrow for the lexicon) and its weight.
    pub fn get(&self, word: &str) -> Option<(&str, f32)> {
        self.0.get_key_value(word).map(|(w, &v)| (w.as_str(), v))
    }

    pub fn iter(&self) -> impl Iterator<Item = (&str, f32)> {
        self.0.iter().map(|(w, &v)| (w.as_str(), v))
    }

    #[cfg(test)]
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Adds another language's words; a word already present keeps its
    /// weight (the lexicon's tests require the two to agree).
    pub fn absorb(&mut self, other: Weights) {
        for (word, weight) in other.0 {
            self.0.entry(word).or_insert(weight);
        }
    }
}

impl TryFrom<HashMap<String, Weight>> for Weights {
    type Error = String;

    fn try_from(map: HashMap<String, Weight>) -> Result<Self, String> {
        let mut weights = HashMap::with_capacity_and_hasher(map.len(), Fnv::default());
        for (word, Weight(weight)) in map {
            check_word(&word)?;
            weights.insert(word, weight);
        }
        Ok(Self(weights))
    }
}

/// A cue's weight: how much one occurrence raises the noisy-OR, in `(0, 1)`.
#[derive(Debug, Clone, Copy, PartialEq, Deserialize)]
#[serde(try_from = "f32")]
pub(crate) struct Weight(pub f32);

impl TryFrom<f32> for Weight {
    type Error = String;

    fn try_from(weight: f32) -> Result<Self, String> {
        if weight > 0.0 && weight < 1.0 {
            Ok(Self(weight))
        } else {
            Err(format!("weight {weight} is not between 0 and 1"))
        }
    }
}

/// FNV-1a for the lexicon's sets. They are a fixed vocabulary of short words,
/// looked up several times for every token of every turn; SipHash's
/// defence against chosen keys buys nothing for a table only the build
/// fills, and costs about a tenth of an evaluation.
type Fnv = BuildHasherDefault<Fnv1a>;

#[derive(Debug)]
pub(crate) struct Fnv1a(u64);

impl Default for Fnv1a {
    fn default() -> Self {
        Self(0xcbf2_9ce4_8422_2325)
    }
}

impl Hasher for Fnv1a {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0 ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
        }
    }
}

/// A word as the tokeniser produces it: letters and digits, folded.
fn check_word(word: &str) -> Result<(), String> {
    if word.is_empty() {
        return Err("empty word".to_owned());
    }
    if !word.chars().all(char::is_alphanumeric) {
        return Err(format!(
            "\"{word}\" is not one word (letters and digits only)"
        ));
    }
    let folded = fold(word);
    if folded != word {
        return Err(format!(
            "\"{word}\" is not folded: write \"{folded}\" (lower case, no accents)"
        ));
    }
    Ok(())
}
