//! Running the kit and judging its report.

use std::path::Path;

use baton_conformance::{Launched, Outcome, Profile, Report, Subject, run};

/// Launches `command` through the kit, its logs in `log`, and runs every
/// check; the logs are shown when the test fails.
pub async fn check_launched(command: &[String], profile: &Profile, log: &Path) -> Report {
    let launched = launch(command, log).await;
    check(Subject::Launched(Box::new(launched)), profile).await
}

pub async fn launch(command: &[String], log: &Path) -> Launched {
    Launched::start(command, Some(log))
        .await
        .unwrap_or_else(|e| panic!("launch {command:?}: {e:#}\n{}", read(log)))
}

pub fn read(log: &Path) -> String {
    std::fs::read_to_string(log).unwrap_or_default()
}

/// The last 60 lines.
fn tail(text: &str) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(60)..].join("\n")
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
pub fn assert_report(report: &Report, known_failures: &[&str], skips: &[&str], log: &Path) {
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
        "{}\n{}\nconnector log:\n{}",
        problems.join("\n"),
        report.render_text(),
        tail(&read(log))
    );
    assert!(
        report.results.len() >= 25,
        "too few checks ran:\n{}",
        report.render_text()
    );
}

pub fn bin(name: &str) -> String {
    baton_tests::binary(name).display().to_string()
}

pub fn is_pass(report: &Report, id: &str) -> bool {
    matches!(report.get(id).map(|r| &r.outcome), Some(Outcome::Pass(_)))
}
