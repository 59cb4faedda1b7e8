//! The SIP connector with sipp as every far end: a phone that answers
//! when the handoff token arrives in User-to-User (also the trunk for phone
//! numbers), one that accepts an attended transfer's consult leg with key
//! 1, one that is busy, one that rings until cancelled, and a caller's
//! gateway that accepts blind REFERs.

use std::path::{Path, PathBuf};
use std::time::Duration;

use baton_tests::sipp::{Sipp, sip_connector_scenario};

use crate::common::{assert_report, check_launched, profile, with_config, write_config};

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
    let answers_attended = sipp(&here("answers_attended"));
    let gateway = sipp(&here("gateway_blind"));
    let busy = sipp(&sip_connector_scenario("agent_busy"));
    let rings = sipp(&sip_connector_scenario("agent_never_answers"));

    let config = write_config(
        dir.path(),
        "sip.toml",
        &format!(
            r#"
listen = "127.0.0.1:0"
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
        ),
    );
    let profile = profile(
        "sip",
        &[
            ("answers", answers.addr().port()),
            ("answers_attended", answers_attended.addr().port()),
            ("gateway", gateway.addr().port()),
            ("busy", busy.addr().port()),
            ("rings", rings.addr().port()),
        ],
    );

    let report = check_launched(&with_config("baton-connector-sip", &config), &profile, &log).await;
    assert_report(&report, &[], &[], &log);
    assert!(
        report.get("cancel.at_stage.ringing").is_some(),
        "a cancel while the human's phone rings\n{}",
        report.render_text()
    );
}
