//! `baton-conformance`: checks a connector against the `baton.connector.v1`
//! contract over its gRPC address, in the spirit of Kubernetes' csi-sanity.
//!
//! The contract says what every connector must do; a [`Profile`] says what
//! the kit cannot know from it: sample targets that connect, fail or hold
//! (connectors differ in how a transfer progresses). Checks that need a
//! sample the profile lacks, or a connector the kit did not launch, are
//! skipped with the reason, never passed.
//!
//! ```no_run
//! # async fn example() -> anyhow::Result<()> {
//! use baton_conformance::{Profile, Subject, run};
//! let profile = Profile::from_toml(r#"
//!     [[targets]]
//!     queue = "support"
//!     expect = "connects"
//! "#).map_err(anyhow::Error::msg)?;
//! let report = run(Subject::Address("http://127.0.0.1:50061".into()), &profile).await;
//! print!("{}", report.render_text());
//! # Ok(()) }
//! ```

pub mod checks;
pub mod client;
pub mod events;
pub mod human;
pub mod launch;
pub mod profile;
pub mod report;
pub mod requests;

use std::path::Path;
use std::sync::Arc;

pub use human::{ChatHuman, HumanFuture};
pub use launch::Launched;
pub use profile::{Expectation, Mode, Profile, SampleTarget};
pub use report::{CheckResult, Outcome, Report};

/// The connector under test.
#[derive(Debug)]
pub enum Subject {
    /// A connector running elsewhere, by its gRPC endpoint (`http://host:port`).
    Address(String),
    /// A connector the kit started: the shutdown check runs last.
    Launched(Box<Launched>),
}

/// Runs every check against `subject` and returns the report.
pub async fn run(subject: Subject, profile: &Profile) -> Report {
    checks::run_all(subject, profile, None).await
}

/// [`run`], with the human side of the connector's chats for the `chat.*`
/// checks.
pub async fn run_with_human(
    subject: Subject,
    profile: &Profile,
    human: Arc<dyn ChatHuman>,
) -> Report {
    checks::run_all(subject, profile, Some(human)).await
}

/// For a connector's own tests: launches `binary --config config`, runs
/// every check of `profile` (TOML) and asserts that all of them passed,
/// none skipped, at least 25 in all. The connector's logs go to
/// `connector.log` beside `config`, shown when the assertion fails.
/// Without a human side the `chat.*` checks of a chat connector are
/// skipped, and that alone is allowed: [`assert_conforms_with`] runs them.
///
/// # Panics
/// When the connector does not start or does not conform.
pub async fn assert_conforms(binary: &Path, config: &Path, profile: &str) {
    assert_conforms_with(binary, config, profile, None).await;
}

/// [`assert_conforms`], with the human side of the connector's chats.
///
/// # Panics
/// When the connector does not start or does not conform.
pub async fn assert_conforms_with(
    binary: &Path,
    config: &Path,
    profile: &str,
    human: Option<Arc<dyn ChatHuman>>,
) {
    let log = config.with_file_name("connector.log");
    let command = [
        binary.display().to_string(),
        "--config".into(),
        config.display().to_string(),
    ];
    let launched = Launched::start(&command, Some(&log))
        .await
        .unwrap_or_else(|e| panic!("launch {}: {e:#}", binary.display()));
    let profile = Profile::from_toml(profile).expect("profile");
    let human_missing = human.is_none();
    let report = checks::run_all(Subject::Launched(Box::new(launched)), &profile, human).await;
    println!("{}", report.render_text());
    let unexpected_skips = report
        .skipped()
        .iter()
        .filter(|id| !(human_missing && id.starts_with("chat.")))
        .count();
    assert!(
        report.failed().is_empty() && unexpected_skips == 0,
        "{}\nconnector log:\n{}",
        report.render_text(),
        std::fs::read_to_string(&log).unwrap_or_default()
    );
    assert!(report.passed().len() >= 25, "{}", report.render_text());
}
