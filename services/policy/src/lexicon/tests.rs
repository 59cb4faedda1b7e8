//! Every language file parses, holds what each detector needs, and agrees
//! with the others where the merged lexicon needs agreement.

use super::schema::Words;
use super::*;
use std::collections::HashMap;

fn files() -> Vec<(&'static str, LanguageFile)> {
    LANGUAGES
        .iter()
        .map(|&(tag, text)| (tag, parse(tag, text).unwrap_or_else(|e| panic!("{e}"))))
        .collect()
}

fn subset(small: &Words, big: &Words) -> Vec<String> {
    small
        .iter()
        .filter(|w| !big.contains(w))
        .map(str::to_owned)
        .collect()
}

#[test]
fn todays_languages_are_all_there() {
    let tags: Vec<&str> = LANGUAGES.iter().map(|&(tag, _)| tag).collect();
    for tag in ["de", "en", "es", "fr", "it", "nl", "pt", "ru"] {
        assert!(tags.contains(&tag), "data/{tag}.toml is missing");
    }
}

#[test]
fn every_language_file_parses_and_holds_what_each_detector_needs() {
    for (tag, file) in files() {
        assert!(
            (2..=3).contains(&tag.len()) && tag.chars().all(|c| c.is_ascii_lowercase()),
            "{tag}: the file name is a primary language subtag (en, es, pt…)"
        );
        assert!(
            !file.customer_message.trim().is_empty(),
            "{tag}: customer_message"
        );
        let (t, e, d) = (&file.text, &file.explicit, &file.distress);
        let needed = [
            ("text.first_person", t.first_person.is_empty()),
            ("explicit.standalone_nouns", e.standalone_nouns.is_empty()),
            ("explicit.talk_verbs", e.talk_verbs.is_empty()),
            ("explicit.want_verbs", e.want_verbs.is_empty()),
            ("explicit.glue", e.glue.is_empty()),
            ("explicit.filler", e.filler.is_empty()),
            // Without negation every "I don't need an agent" would escalate.
            ("explicit.negations", e.negations.is_empty()),
            ("explicit.refusals", e.refusals.is_empty()),
            ("distress.negators", d.negators.is_empty()),
            ("distress.words", d.words.is_empty()),
            ("distress.phrases", d.phrases.is_empty()),
        ];
        for (key, empty) in needed {
            assert!(!empty, "{tag}: {key} must not be empty");
        }
        assert_eq!(
            subset(&e.past_reporting, &e.reporting),
            Vec::<String>::new(),
            "{tag}: explicit.past_reporting must be in explicit.reporting"
        );
        assert_eq!(
            subset(&e.own_want_verbs, &e.want_verbs),
            Vec::<String>::new(),
            "{tag}: explicit.own_want_verbs must be in explicit.want_verbs"
        );
    }
}

#[test]
fn languages_agree_where_the_merged_lexicon_needs_them_to() {
    let mut weights: HashMap<String, (f32, &str)> = HashMap::new();
    for (tag, file) in files() {
        for (word, weight) in file.distress.words.iter() {
            let (first, first_tag) = *weights.entry(word.to_owned()).or_insert((weight, tag));
            assert_eq!(
                first, weight,
                "distress.words.{word}: {first_tag} says {first}, {tag} says {weight}"
            );
        }
    }
    let lexicon = load(LANGUAGES).expect("every file parses");
    let explicit = &lexicon.explicit;
    let both = subset(&explicit.nouns, &explicit.standalone_nouns);
    assert_eq!(
        both.len(),
        explicit.nouns.iter().count(),
        "a noun is either standalone or not, in every language"
    );
    let stems: Vec<&str> = lexicon.distress.stems.iter().map(|(s, _)| s).collect();
    for a in &stems {
        for b in &stems {
            assert!(
                a == b || !b.starts_with(a),
                "distress.stems: \"{a}\" starts \"{b}\", so which one matches would depend on order"
            );
        }
    }
    assert_eq!(
        lexicon.customer_messages.len(),
        LANGUAGES.len(),
        "one customer message per language"
    );
}

#[test]
fn the_lexicon_parses_on_first_use() {
    let lexicon = lexicon();
    assert!(lexicon.explicit.standalone_nouns.contains("agent"));
    assert!(lexicon.explicit.nouns.contains("personne"));
    assert_eq!(lexicon.distress.words.get("harto"), Some(("harto", 0.65)));
}

/// The schema's rules bite: each broken copy of en.toml below must be
/// rejected, naming the file and the reason.
#[test]
fn a_broken_file_is_rejected_with_the_reason() {
    let (_, en) = LANGUAGES
        .iter()
        .find(|&&(tag, _)| tag == "en")
        .expect("en.toml");
    let later = "later = [\"someday\", \"eventually\", \"later\"]";
    let cases = [
        (
            "customer_message =",
            "greeting = \"hi\"\ncustomer_message =",
            "unknown field",
        ),
        (later, "", "missing field `later`"),
        (later, "later = [\"plus tard\"]", "not one word"),
        (later, "later = [\"Later\"]", "not folded"),
        (later, "later = [\"later\", \"later\"]", "listed twice"),
        ("hell = 0.3", "hell = 1.5", "not between 0 and 1"),
        ("\"still no\"", "\"still  no\"", "empty word"),
    ];
    for (from, to, reason) in cases {
        assert!(en.contains(from), "en.toml no longer has {from:?}");
        let err = parse("en", &en.replacen(from, to, 1)).expect_err(to);
        assert!(err.starts_with("services/policy/data/en.toml"), "{err}");
        assert!(err.contains(reason), "{to:?}: {err}");
    }
}
