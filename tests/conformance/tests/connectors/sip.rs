//! The SIP connector with sipp as every far end: a phone that answers
//! when the handoff token arrives in User-to-User (also the trunk for phone
//! numbers), one that is busy, one that rings until cancelled, and a
//! caller's gateway that accepts blind REFERs.

use std::net::UdpSocket;
use std::path::{Path, PathBuf};
use std::process::Stdio;

use baton_conformance::Profile;
use tokio::process::{Child, Command};

use crate::common::{assert_report, bin, check_launched};

fn free_udp_port() -> u16 {
    let socket = UdpSocket::bind("127.0.0.1:0").expect("bind a probe socket");
    socket.local_addr().expect("probe address").port()
}

/// sipp playing one scenario for every call it gets (up to 100).
struct Sipp {
    _child: Child,
    port: u16,
}

impl Sipp {
    fn start(scenario: &Path, dir: &Path) -> Self {
        let port = free_udp_port();
        let name = scenario
            .file_stem()
            .and_then(|s| s.to_str())
            .unwrap_or("sipp");
        let child = Command::new("sipp")
            .arg("-sf")
            .arg(scenario)
            .args(["-i", "127.0.0.1", "-p", &port.to_string()])
            .args(["-m", "100", "-nostdin", "-trace_err", "-error_file"])
            .arg(dir.join(format!("sipp-{name}-{port}.log")))
            .current_dir(dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("sipp is installed (Debian package sip-tester)");
        Self {
            _child: child,
            port,
        }
    }
}

fn here(scenario: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/scenarios")
        .join(format!("{scenario}.xml"))
}

fn sip_connector_scenario(scenario: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../connectors/sip/tests/scenarios")
        .join(format!("{scenario}.xml"))
}

#[tokio::test]
async fn the_sip_connector_conforms() {
    let dir = tempfile::tempdir().expect("tempdir");
    let log = dir.path().join("connector.log");
    let answers = Sipp::start(&here("answers"), dir.path());
    let gateway = Sipp::start(&here("gateway_blind"), dir.path());
    let busy = Sipp::start(&sip_connector_scenario("agent_busy"), dir.path());
    let rings = Sipp::start(&sip_connector_scenario("agent_never_answers"), dir.path());

    let config = dir.path().join("sip.toml");
    std::fs::write(
        &config,
        format!(
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
            answers = answers.port
        ),
    )
    .expect("write sip config");
    let profile = Profile::from_toml(&format!(
        r#"
settle = "400ms"
grace = "5s"

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
        answers = answers.port,
        gateway = gateway.port,
        busy = busy.port,
        rings = rings.port,
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
