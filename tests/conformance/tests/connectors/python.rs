//! The Python example connector (grpcio): the contract is language-neutral.

use std::path::PathBuf;

use crate::common::{assert_report, check_launched, profile};

#[tokio::test]
async fn the_python_example_conforms() {
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../connectors/examples/python/connector.py");
    let profile = profile("python", &[]);
    let dir = tempfile::tempdir().expect("tempdir");
    let log = dir.path().join("connector.log");
    // Its journal in the temp dir: the restart check starts the same
    // command again and it must find its transfers there.
    let report = check_launched(
        &[
            "python3".into(),
            script.display().to_string(),
            "--listen".into(),
            "127.0.0.1:0".into(),
            "--data-dir".into(),
            dir.path().join("journal").display().to_string(),
            "--drain-timeout".into(),
            "1".into(),
        ],
        &profile,
        &log,
    )
    .await;
    // It validates its own context limits: nothing is a known failure.
    assert_report(&report, &[], &[], &log);
    // Killed and started again, it recovered its transfers from its journal.
    assert!(
        crate::common::is_pass(&report, "restart.recovers_from_journal"),
        "restart.recovers_from_journal"
    );
    // It advertises neither phone numbers nor attended transfers: the kit
    // checked the refusals.
    for refused in [
        "capabilities.kind.phone_number.refused",
        "capabilities.mode.attended.refused",
    ] {
        assert!(crate::common::is_pass(&report, refused), "{refused}");
    }
}
