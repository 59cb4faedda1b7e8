//! Runs the labelled evaluation set (tests/policy/ at the repository root)
//! and holds the explicit-request trigger to the bar: recall 100%,
//! precision at least 95%. Other triggers are reported, not asserted.

use baton_policy::{PolicyConfig, Trigger, evaluation};

const DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../tests/policy");

fn report(set: &str) -> evaluation::Report {
    let config = std::fs::read_to_string(format!("{DIR}/eval-config.json")).expect("eval config");
    let config = PolicyConfig::from_json(&config).expect("valid eval config");
    let cases =
        evaluation::load(&std::fs::read_to_string(format!("{DIR}/{set}")).expect("eval set"))
            .expect("parses");
    assert!(
        cases.len() >= 300 || set != "eval-set.jsonl",
        "the set needs at least 300 cases"
    );
    let report = evaluation::run(&config, &cases);
    println!("{set}\n{}", report.interval_table());
    for m in &report.misses {
        println!("{m}");
    }
    report
}

#[test]
fn explicit_request_recall_is_total_and_precision_at_least_95_percent() {
    let r = report("eval-set.jsonl");
    let c = r.counts(Trigger::ExplicitRequest);
    assert_eq!(
        c.false_negatives, 0,
        "every request for a human must be detected"
    );
    assert!(c.precision() >= 0.95, "precision {:.3}", c.precision());
    for lang in ["en", "es", "fr", "de", "pt"] {
        assert!(
            r.language_counts(Trigger::ExplicitRequest)
                .any(|(l, c)| l == lang && c.true_positives > 0),
            "{lang} covered"
        );
    }
}

/// Later sets, each written after a version of the engine and measured once
/// before the next round of changes; printed, not asserted (figures per
/// round are in the README).
#[test]
fn later_sets_are_reported() {
    for set in ["eval-holdout.jsonl", "eval-blind.jsonl", "eval-final.jsonl"] {
        assert!(report(set).cases > 0, "{set}");
    }
}

/// The generalization split of the corpus (tests/policy/corpus/*.eval.jsonl,
/// phrasing families no rule and no training turn uses): the floors below
/// are the figures the README reports, less a margin of about three points,
/// so a change that loses recall or precision on unseen phrasing fails here.
/// The targets (explicit recall 99% at precision 97%, distress 90/90)
/// are not met yet; these are where the policy stands.
#[test]
fn the_generalization_split_holds_its_reported_figures() {
    use baton_policy::Layers;
    let config = std::fs::read_to_string(format!("{DIR}/eval-config.json")).expect("eval config");
    let config = PolicyConfig::from_json(&config).expect("valid eval config");
    let mut cases = Vec::new();
    for entry in std::fs::read_dir(format!("{DIR}/corpus")).expect("corpus") {
        let path = entry.expect("entry").path();
        if path.to_string_lossy().ends_with(".eval.jsonl") {
            let text = std::fs::read_to_string(&path).expect("readable");
            cases.extend(evaluation::load(&text).expect("parses"));
        }
    }
    let rules = evaluation::run_with(
        &config,
        &cases,
        Layers {
            rules: true,
            model: false,
        },
    );
    let model = evaluation::run_with(
        &config,
        &cases,
        Layers {
            rules: false,
            model: true,
        },
    );
    let both = evaluation::run_with(&config, &cases, Layers::BOTH);
    println!("{}", both.interval_table());
    let explicit = both.counts(Trigger::ExplicitRequest);
    assert!(explicit.recall() >= 0.78, "recall {:.3}", explicit.recall());
    assert!(
        explicit.precision() >= 0.90,
        "precision {:.3}",
        explicit.precision()
    );
    let distress = both.counts(Trigger::Distress);
    assert!(distress.recall() >= 0.54, "recall {:.3}", distress.recall());
    assert!(
        distress.precision() >= 0.90,
        "precision {:.3}",
        distress.precision()
    );
    // The layers add up: together they find more than either alone.
    for trigger in [Trigger::ExplicitRequest, Trigger::Distress] {
        let together = both.counts(trigger).true_positives;
        assert!(
            together > rules.counts(trigger).true_positives,
            "{trigger:?}"
        );
        assert!(
            together > model.counts(trigger).true_positives,
            "{trigger:?}"
        );
    }
    // Every language's requests are found, most of them (the floor is the
    // weakest language, Japanese, less a margin).
    for (lang, counts) in both.language_counts(Trigger::ExplicitRequest) {
        assert!(counts.recall() >= 0.50, "{lang}: {:.3}", counts.recall());
    }
}
