//! The script connector: every kind and mode, targets scripted to connect,
//! fail and hold.

use std::time::Duration;

use crate::common::{assert_script_conforms, profile};

#[tokio::test]
async fn the_script_connector_conforms() {
    let profile = profile("script", &[]);
    assert_eq!(profile.settle, Duration::from_millis(300));
    let report = assert_script_conforms(include_str!("script.toml"), &profile).await;
    // The holding target passes QUEUED then RINGING: a cancel at each.
    for stage in ["cancel.at_stage.queued", "cancel.at_stage.ringing"] {
        assert!(report.get(stage).is_some(), "{stage} ran");
    }
}
