//! The script connector: every kind and mode, targets scripted to connect,
//! fail and hold.

use std::time::Duration;

use crate::common::{assert_report, check_launched, profile, with_config, write_config};

#[tokio::test]
async fn the_script_connector_conforms() {
    let dir = tempfile::tempdir().expect("tempdir");
    let log = dir.path().join("connector.log");
    let config = write_config(dir.path(), "script.toml", include_str!("script.toml"));
    let profile = profile("script", &[]);
    assert_eq!(profile.settle, Duration::from_millis(300));
    let report = check_launched(
        &with_config("baton-connector-script", &config),
        &profile,
        &log,
    )
    .await;
    assert_report(&report, &[], &[], &log);
    // The holding target passes QUEUED then RINGING: a cancel at each.
    for stage in ["cancel.at_stage.queued", "cancel.at_stage.ringing"] {
        assert!(report.get(stage).is_some(), "{stage} ran");
    }
}
