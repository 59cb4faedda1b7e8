//! The `baton-conformance` command: flags instead of a profile, the report
//! on stdout, JUnit XML, and its exit status.

use std::path::PathBuf;

use tokio::process::Command;

const KIT: &str = env!("CARGO_BIN_EXE_baton-conformance");

/// Runs the kit as `command` says: its exit status and its report (stdout).
async fn run_kit(command: &mut Command) -> (Option<i32>, String) {
    let output = command.output().await.expect("runs");
    let report = String::from_utf8_lossy(&output.stdout).into_owned();
    (output.status.code(), report)
}

fn python_example() -> String {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../connectors/examples/python/connector.py")
        .display()
        .to_string()
}

#[tokio::test]
async fn a_conforming_connector_exits_0_and_gets_junit_xml() {
    let dir = tempfile::tempdir().expect("tempdir");
    let junit = dir.path().join("conformance.xml");
    // No flag sets the drain: a profile beside the flags says the
    // connector drains for 1 s (it is launched with --drain-timeout 1), so
    // that the SIGTERM check need not wait the default 30 s.
    let profile = dir.path().join("profile.toml");
    std::fs::write(&profile, "drain = \"1s\"\n").expect("profile written");
    let journal = dir.path().join("journal");
    let (status, report) = run_kit(
        Command::new(KIT)
            .args(["--connects", "queue:support", "--fails", "queue:busy"])
            .args(["--holds", "sip_uri:sip:hold@127.0.0.1", "--junit"])
            .arg(&junit)
            .arg("--profile")
            .arg(&profile)
            .args(["--launch", "python3", &python_example()])
            .args(["--listen", "127.0.0.1:0", "--drain-timeout", "1"])
            .arg("--data-dir")
            .arg(&journal),
    )
    .await;
    assert_eq!(status, Some(0), "{report}");
    assert!(report.contains("PASS shutdown.drains"), "{report}");
    assert!(
        report.contains("PASS restart.recovers_from_journal"),
        "{report}"
    );
    assert!(report.contains(" 0 failed, 0 skipped"), "{report}");
    let xml = std::fs::read_to_string(&junit).expect("JUnit XML written");
    assert!(
        xml.contains("<testsuites name=\"baton-conformance\""),
        "{xml}"
    );
    assert!(xml.contains("failures=\"0\""), "{xml}");
    assert!(
        xml.contains("name=\"idempotency.replay_while_running\""),
        "{xml}"
    );
}

#[tokio::test]
async fn a_failing_check_makes_the_exit_status_1_and_missing_samples_are_skipped() {
    let dir = tempfile::tempdir().expect("tempdir");
    let junit = dir.path().join("conformance.xml");
    // The script connector connects every target, so a sample said to fail
    // fails its checks; what needs a missing sample (one that holds, a SIP
    // URI) is skipped, not passed.
    let (status, report) = run_kit(
        Command::new(KIT)
            .args(["--fails", "queue:support"])
            .arg("--junit")
            .arg(&junit)
            .args([
                "--launch",
                &baton_tests::binary("baton-connector-script")
                    .display()
                    .to_string(),
                "--listen",
                "127.0.0.1:0",
            ]),
    )
    .await;
    assert_eq!(status, Some(1), "{report}");
    assert!(report.contains("\nFAIL "), "{report}");
    assert!(report.contains("PASS context.oversize_refused"), "{report}");
    for skipped in [
        "SKIP capabilities.kind.sip_uri.works",
        "SKIP idempotency.replay_while_running",
        "SKIP deadline.expires",
        "SKIP shutdown.drains",
    ] {
        assert!(report.contains(skipped), "{skipped} in {report}");
    }
    let xml = std::fs::read_to_string(&junit).expect("JUnit XML written");
    assert!(xml.contains("<skipped message=\"no sample target"), "{xml}");
    assert!(xml.contains("<failure message="), "{xml}");
}

#[tokio::test]
async fn bad_usage_exits_2() {
    let output = Command::new(KIT)
        .args(["127.0.0.1:9", "--holds", "route:x"])
        .output()
        .await
        .expect("runs");
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("unknown kind"));
}
