//! Running the kit and judging its report.

use std::path::{Path, PathBuf};

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

/// The command line that starts the workspace's `binary` on `config`.
pub fn with_config(binary: &str, config: &Path) -> Vec<String> {
    vec![bin(binary), "--config".into(), config.display().to_string()]
}

/// Writes a connector's config to `dir/{file_name}`: its journal under
/// `dir/data` (so that the restart check finds its transfers) and a 1 s
/// drain (the `drain` of every profile here), then `rest`.
pub fn write_config(dir: &Path, file_name: &str, rest: &str) -> PathBuf {
    let path = dir.join(file_name);
    let journal = format!(
        "data_dir = {:?}\ndrain_timeout = \"1s\"\n",
        dir.join("data").display().to_string()
    );
    std::fs::write(&path, journal + rest)
        .unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
    path
}

/// The profile `tests/profiles/{name}.toml`, each `{placeholder}` in it
/// replaced by its value (the ports of the far ends a test started).
pub fn profile(name: &str, values: &[(&str, u16)]) -> Profile {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/profiles")
        .join(format!("{name}.toml"));
    let mut text =
        std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    for (placeholder, value) in values {
        text = text.replace(&format!("{{{placeholder}}}"), &value.to_string());
    }
    Profile::from_toml(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

pub fn is_pass(report: &Report, id: &str) -> bool {
    matches!(report.get(id).map(|r| &r.outcome), Some(Outcome::Pass(_)))
}

/// Runs the kit against the script connector with the configuration
/// `config` (TOML) and asserts that it conforms (no failure, no skip); its
/// report.
pub async fn assert_script_conforms(config: &str, profile: &Profile) -> Report {
    let dir = tempfile::tempdir().expect("tempdir");
    let log = dir.path().join("connector.log");
    let config = write_config(dir.path(), "script.toml", config);
    let report = check_launched(
        &with_config("baton-connector-script", &config),
        profile,
        &log,
    )
    .await;
    assert_report(&report, &[], &[], &log);
    report
}
