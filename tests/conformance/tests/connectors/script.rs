//! The script connector: every kind and mode, targets scripted to connect,
//! fail and hold.

use std::time::Duration;

use baton_conformance::Profile;

use crate::common::{assert_report, bin, check_launched};

const SCRIPT: &str = r#"
name = "script"
listen = "127.0.0.1:0"
default_script = ["ringing", "answered", "context_delivered", "connected", "completed"]

[targets]
busy = ["ringing", "failed:busy"]
hold = ["queued:2:40s", "ringing", "hold"]
"+15555550111" = ["queued:1:10s", "offered", "answered", "connected", "wrap_up:resolved:ok"]
"sip:hold@127.0.0.1" = ["ringing", "hold"]
"#;

const PROFILE: &str = r#"
settle = "300ms"
grace = "3s"
# The connector under test drains for 1s on SIGTERM.
drain = "1s"

[[targets]]
queue = "support"
expect = "connects"

[[targets]]
queue = "busy"
expect = "fails"
reason = "busy"

[[targets]]
queue = "hold"
expect = "holds"
holds_after = "ringing"

[[targets]]
phone_number = "+15555550111"
expect = "connects"

[[targets]]
sip_uri = "sip:hold@127.0.0.1"
expect = "holds"
holds_after = "ringing"
"#;

#[tokio::test]
async fn the_script_connector_conforms() {
    let dir = tempfile::tempdir().expect("tempdir");
    let log = dir.path().join("connector.log");
    let config = dir.path().join("script.toml");
    // The journal lets the restarted connector replay and resume.
    let journal = format!(
        "data_dir = {:?}\ndrain_timeout = \"1s\"\n",
        dir.path().join("data").display().to_string()
    );
    std::fs::write(&config, journal + SCRIPT).expect("write script config");
    let profile = Profile::from_toml(PROFILE).expect("profile");
    assert_eq!(profile.settle, Duration::from_millis(300));
    let report = check_launched(
        &[
            bin("baton-connector-script"),
            "--config".into(),
            config.display().to_string(),
        ],
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
