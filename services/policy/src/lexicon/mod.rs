//! The detectors' vocabulary, kept as data: one TOML file per language in
//! `services/policy/data/`, embedded at build time (see `build.rs`) and
//! parsed once, on first use, into one [`Lexicon`] for all languages.
//!
//! All languages are merged because customers mix them and runtimes often
//! send no language tag, so a detector looks a word up in every language at
//! once. Adding a language is adding `data/<tag>.toml`; its format is in
//! [`schema`] and `data/README.md`.

mod schema;

use schema::LanguageFile;
pub(crate) use schema::{DistressWords, ExplicitWords, Phrase, TextWords};
use std::sync::LazyLock;

/// `(tag, file text)` for every `data/<tag>.toml`, in tag order.
const LANGUAGES: &[(&str, &str)] = include!(concat!(env!("OUT_DIR"), "/languages.rs"));

/// Every language's words, merged.
#[derive(Debug, Default)]
pub(crate) struct Lexicon {
    pub text: TextWords,
    pub explicit: ExplicitWords,
    pub distress: DistressWords,
    /// `(tag, message)` per language, in tag order.
    pub customer_messages: Vec<(&'static str, String)>,
}

/// The lexicon, parsed on first use.
///
/// # Panics
/// When a language file does not parse. The files are compiled in and
/// `lexicon::tests` parses every one, so this is a build defect, not input.
pub(crate) fn lexicon() -> &'static Lexicon {
    static LEXICON: LazyLock<Lexicon> =
        LazyLock::new(|| load(LANGUAGES).unwrap_or_else(|e| panic!("{e}")));
    &LEXICON
}

fn parse(tag: &str, text: &str) -> Result<LanguageFile, String> {
    toml::from_str(text).map_err(|e| format!("services/policy/data/{tag}.toml: {e}"))
}

fn load(languages: &[(&'static str, &str)]) -> Result<Lexicon, String> {
    let mut lexicon = Lexicon::default();
    for &(tag, text) in languages {
        let file = parse(tag, text)?;
        lexicon.customer_messages.push((tag, file.customer_message));
        lexicon.text.absorb(file.text);
        lexicon.explicit.absorb(file.explicit);
        lexicon.distress.absorb(file.distress);
    }
    Ok(lexicon)
}

// Merging destructures each file's struct, so a key added to the schema
// does not compile until it is merged too.

impl TextWords {
    fn absorb(&mut self, other: Self) {
        let Self {
            first_person,
            clause_joins,
            quote_intro_verbs,
            first_person_quote_verbs,
        } = other;
        self.first_person.absorb(first_person);
        self.clause_joins.absorb(clause_joins);
        self.quote_intro_verbs.absorb(quote_intro_verbs);
        self.first_person_quote_verbs
            .absorb(first_person_quote_verbs);
    }
}

impl ExplicitWords {
    fn absorb(&mut self, other: Self) {
        let Self {
            standalone_nouns,
            nouns,
            generic_nouns,
            talk_verbs,
            want_verbs,
            own_want_verbs,
            glue,
            relative,
            phone,
            have,
            filler,
            negations,
            ability,
            reporting,
            past_reporting,
            irrealis,
            other_sense_before,
            other_sense_after,
            of_words,
            other_sense_of,
            zero_words,
            press_verbs,
            refusals,
            contrasts,
            describing_verbs,
            describing_copulas,
            later,
        } = other;
        self.standalone_nouns.absorb(standalone_nouns);
        self.nouns.absorb(nouns);
        self.generic_nouns.absorb(generic_nouns);
        self.talk_verbs.absorb(talk_verbs);
        self.want_verbs.absorb(want_verbs);
        self.own_want_verbs.absorb(own_want_verbs);
        self.glue.absorb(glue);
        self.relative.absorb(relative);
        self.phone.absorb(phone);
        self.have.absorb(have);
        self.filler.absorb(filler);
        self.negations.absorb(negations);
        self.ability.absorb(ability);
        self.reporting.absorb(reporting);
        self.past_reporting.absorb(past_reporting);
        self.irrealis.extend(irrealis);
        self.other_sense_before.absorb(other_sense_before);
        self.other_sense_after.absorb(other_sense_after);
        self.of_words.absorb(of_words);
        self.other_sense_of.absorb(other_sense_of);
        self.zero_words.absorb(zero_words);
        self.press_verbs.absorb(press_verbs);
        self.refusals.extend(refusals);
        self.contrasts.absorb(contrasts);
        self.describing_verbs.absorb(describing_verbs);
        self.describing_copulas.absorb(describing_copulas);
        self.later.absorb(later);
    }
}

impl DistressWords {
    fn absorb(&mut self, other: Self) {
        let Self {
            negators,
            negation_bridges,
            intensifiers,
            counts,
            times,
            phrases,
            words,
            stems,
        } = other;
        self.negators.absorb(negators);
        self.negation_bridges.absorb(negation_bridges);
        self.intensifiers.absorb(intensifiers);
        self.counts.absorb(counts);
        self.times.absorb(times);
        self.phrases.extend(phrases);
        self.words.absorb(words);
        self.stems.absorb(stems);
    }
}

#[cfg(test)]
mod tests;
