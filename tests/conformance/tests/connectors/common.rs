//! Running the kit and judging its report.

use baton_conformance::{Launched, Outcome, Profile, Report, Subject, run};

/// Launches `command` through the kit and runs every check.
pub async fn check_launched(command: &[String], profile: &Profile) -> Report {
    let launched = Launched::start(command)
        .await
        .unwrap_or_else(|e| panic!("launch {command:?}: {e:#}"));
    check(Subject::Launched(Box::new(launched)), profile).await
}

pub async fn check(subject: Subject, profile: &Profile) -> Report {
    let report = run(subject, profile).await;
    // Shown when the test fails.
    println!("{}", report.render_text());
    report
}

/// Asserts every check passed, except `known_failures` (each must fail:
/// when its bug is fixed the test says so) and `skips` (each must be
/// skipped, for the reason the comment beside it gives).
pub fn assert_report(report: &Report, known_failures: &[&str], skips: &[&str]) {
    let mut problems = Vec::new();
    for result in &report.results {
        let expected = if known_failures.contains(&result.id.as_str()) {
            "FAIL"
        } else if skips.contains(&result.id.as_str()) {
            "SKIP"
        } else {
            "PASS"
        };
        if result.outcome.label() != expected {
            problems.push(format!(
                "{}: expected {expected}, got {} ({})",
                result.id,
                result.outcome.label(),
                result.outcome.text()
            ));
        }
    }
    for id in known_failures.iter().chain(skips) {
        if report.get(id).is_none() {
            problems.push(format!("{id}: did not run"));
        }
    }
    assert!(
        problems.is_empty(),
        "{}\n{}",
        problems.join("\n"),
        report.render_text()
    );
    assert!(
        report.results.len() >= 25,
        "too few checks ran:\n{}",
        report.render_text()
    );
}

/// Known bug, found by the kit: `baton-connector-sdk` does not check the
/// envelope against the limits the connector advertises, so a payload (or
/// structured context) larger than its mechanism's `max_bytes` is accepted
/// and the transfer runs (the SIP connector then drops a too-long
/// User-to-User silently). The contract's limits are the connector's own;
/// it should refuse with INVALID_ARGUMENT naming `envelope.…`.
pub const SDK_ACCEPTS_OVERSIZE_CONTEXT: &str = "context.oversize_refused";

pub fn bin(name: &str) -> String {
    baton_tests::binary(name).display().to_string()
}

pub fn is_pass(report: &Report, id: &str) -> bool {
    matches!(report.get(id).map(|r| &r.outcome), Some(Outcome::Pass(_)))
}
