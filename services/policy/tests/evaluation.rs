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
    println!("{set}\n{}", report.table());
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
            r.explicit_by_language
                .iter()
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
