//! The SIP connector with sipp as every far end: a phone that answers
//! when the handoff token arrives in User-to-User (also the trunk for phone
//! numbers), one that is busy, one that rings until cancelled, and a
//! caller's gateway that accepts blind REFERs.

use std::path::{Path, PathBuf};
use std::time::Duration;

use baton_conformance::Profile;
use baton_tests::sipp::{Sipp, sip_connector_scenario};

use crate::common::{assert_report, bin, check_launched};

/// sipp playing `scenario` for every call it gets (up to 100), as long
/// as the conformance run may take.
fn sipp(scenario: &Path) -> Sipp {
    Sipp::play(scenario)
        .calls(100)
        .timeout(Duration::from_secs(600))
        .start()
}

fn here(scenario: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/scenarios")
        .join(format!("{scenario}.xml"))
}

#[tokio::test]
async fn the_sip_connector_conforms() {
    let dir = tempfile::tempdir().expect("tempdir");
    let log = dir.path().join("connector.log");
    let answers = sipp(&here("answers"));
    let gateway = sipp(&here("gateway_blind"));
    let busy = sipp(&sip_connector_scenario("agent_busy"));
    let rings = sipp(&sip_connector_scenario("agent_never_answers"));

    let config = dir.path().join("sip.toml");
    std::fs::write(
        &config,
        format!(
            r#"
listen = "127.0.0.1:0"
data_dir = {data:?}
drain_timeout = "1s"
ring_timeout = "60s"
notify_timeout = "10s"

[sip]
bind = "127.0.0.1:0"
t1 = "100ms"

# Only the sample number goes through the trunk: the kit's made-up
# +15555550100 finds no trunk and reaches no one.
[[trunks]]
name = "answers"
prefixes = ["+1555555014"]
host = "127.0.0.1:{answers}"
"#,
            answers = answers.addr().port(),
            data = dir.path().join("data").display().to_string(),
        ),
    )
    .expect("write sip config");
    let profile = Profile::from_toml(&format!(
        r#"
settle = "400ms"
grace = "5s"
# The connector under test drains for 1s on SIGTERM.
drain = "1s"

[[targets]]
sip_uri = "sip:agent@127.0.0.1:{answers}"
expect = "connects"
modes = ["warm", "attended"]

[[targets]]
sip_uri = "sip:agent@127.0.0.1:{answers}"
sip_gateway_uri = "sip:gw@127.0.0.1:{gateway}"
expect = "connects"
modes = ["blind"]

[[targets]]
phone_number = "+15555550142"
expect = "connects"
modes = ["warm"]

[[targets]]
sip_uri = "sip:agent@127.0.0.1:{busy}"
expect = "fails"
reason = "busy"

[[targets]]
sip_uri = "sip:agent@127.0.0.1:{rings}"
expect = "holds"
holds_after = "ringing"
modes = ["warm"]
"#,
        answers = answers.addr().port(),
        gateway = gateway.addr().port(),
        busy = busy.addr().port(),
        rings = rings.addr().port(),
    ))
    .expect("profile");

    let report = check_launched(
        &[
            bin("baton-connector-sip"),
            "--config".into(),
            config.display().to_string(),
        ],
        &profile,
        &log,
    )
    .await;
    assert_report(&report, &[], &[], &log);
    assert!(
        report.get("cancel.at_stage.ringing").is_some(),
        "a cancel while the human's phone rings\n{}",
        report.render_text()
    );
}
