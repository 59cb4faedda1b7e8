//! The corpus in tests/policy/corpus/ (issue 26): the split the learned
//! layer is trained on and the split it is measured on must not share a
//! phrasing family or a text, or the evaluation measures memory.

use std::collections::{BTreeMap, BTreeSet};

use baton_policy::evaluation::{self, Case};

const DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../tests/policy/corpus");

/// The cases of every `*.<split>.jsonl`, by language.
fn split(split: &str) -> BTreeMap<String, Vec<Case>> {
    let mut by_language = BTreeMap::new();
    for entry in std::fs::read_dir(DIR).expect("corpus directory") {
        let path = entry.expect("entry").path();
        let name = path
            .file_name()
            .expect("a file")
            .to_string_lossy()
            .into_owned();
        let Some(lang) = name.strip_suffix(&format!(".{split}.jsonl")) else {
            continue;
        };
        let text = std::fs::read_to_string(&path).expect("readable");
        let cases = evaluation::load(&text).unwrap_or_else(|e| panic!("{name}: {e}"));
        for case in &cases {
            assert_eq!(case.lang, lang, "{name}: {}", case.id);
            assert!(case.family.is_some(), "{name}: {} has no family", case.id);
            assert!(case.text.is_some(), "{name}: {} is one turn", case.id);
        }
        by_language.insert(lang.to_owned(), cases);
    }
    by_language
}

/// Lower case, letters and digits only: the check's idea of "the same text".
fn folded(text: &str) -> String {
    text.to_lowercase()
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}

#[test]
fn train_and_eval_share_no_family_and_no_text() {
    let train = split("train");
    let eval = split("eval");
    assert_eq!(
        train.keys().collect::<Vec<_>>(),
        eval.keys().collect::<Vec<_>>(),
        "every language has both splits"
    );
    for (lang, train_cases) in &train {
        let eval_cases = &eval[lang];
        let families = |cases: &[Case]| -> BTreeSet<String> {
            cases.iter().filter_map(|c| c.family.clone()).collect()
        };
        let shared: Vec<_> = families(train_cases)
            .intersection(&families(eval_cases))
            .cloned()
            .collect();
        assert!(
            shared.is_empty(),
            "{lang}: families in both splits: {shared:?}"
        );
        let texts: BTreeSet<String> = train_cases
            .iter()
            .filter_map(|c| c.text.as_deref().map(folded))
            .collect();
        for case in eval_cases {
            let text = folded(case.text.as_deref().unwrap_or_default());
            assert!(
                !texts.contains(&text),
                "{lang}: {} is also in train",
                case.id
            );
        }
    }
}

#[test]
fn the_corpus_is_as_large_and_as_wide_as_the_issue_asks() {
    let train = split("train");
    let eval = split("eval");
    let turns: usize = train.values().chain(eval.values()).map(Vec::len).sum();
    assert!(turns >= 1500, "{turns} turns");
    assert!(train.len() >= 8, "{} languages", train.len());
    for lang in ["en", "es", "fr", "de", "pt", "it", "nl"] {
        assert!(train.contains_key(lang), "{lang}");
    }
    let non_latin = eval
        .values()
        .flatten()
        .filter(|c| {
            c.text
                .as_deref()
                .unwrap_or_default()
                .chars()
                .any(|ch| ch.is_alphabetic() && (ch as u32) > 0x24F)
        })
        .count();
    assert!(
        non_latin >= 100,
        "{non_latin} evaluation turns in a non-Latin script"
    );
    // Every language's evaluation split has positives and hard negatives
    // for both targets of the issue.
    for (lang, cases) in &eval {
        for trigger in [
            baton_policy::Trigger::ExplicitRequest,
            baton_policy::Trigger::Distress,
        ] {
            let positives = cases.iter().filter(|c| c.expect.contains(&trigger)).count();
            assert!(
                positives >= 15,
                "{lang}: {positives} {} cases",
                trigger.as_str()
            );
        }
        let negatives = cases.iter().filter(|c| c.expect.is_empty()).count();
        assert!(negatives >= 20, "{lang}: {negatives} cases with no trigger");
    }
}
