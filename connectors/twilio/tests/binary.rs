//! The `baton-connector-twilio` binary: its command line, its readiness
//! line, secrets kept out of its logs, and a bad configuration refused.

use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::Command;

const BINARY: &str = env!("CARGO_BIN_EXE_baton-connector-twilio");
const AUTH_TOKEN: &str = "auth-token-that-must-not-be-logged";

#[tokio::test]
async fn help_names_the_options() {
    let output = Command::new(BINARY)
        .arg("--help")
        .output()
        .await
        .expect("runs");
    assert!(output.status.success());
    let help = String::from_utf8_lossy(&output.stdout);
    for option in ["--config", "--listen", "--callbacks-listen"] {
        assert!(help.contains(option), "{option} missing from:\n{help}");
    }
}

#[tokio::test]
async fn one_readiness_line_names_both_addresses_and_the_token_stays_out_of_logs() {
    let mut child = Command::new(BINARY)
        .args([
            "--listen",
            "127.0.0.1:0",
            "--callbacks-listen",
            "127.0.0.1:0",
        ])
        .env(
            "BATON_TWILIO_CREDENTIALS__ACCOUNT_SID",
            "AC0123456789abcdef0123456789abcdef",
        )
        .env("BATON_TWILIO_CREDENTIALS__AUTH_TOKEN", AUTH_TOKEN)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("starts");
    let stdout = child.stdout.take().expect("stdout");
    let mut lines = BufReader::new(stdout).lines();
    let line = tokio::time::timeout(Duration::from_secs(30), lines.next_line())
        .await
        .expect("ready in time")
        .expect("reads")
        .expect("a line");
    let ready: serde_json::Value = serde_json::from_str(&line).expect("JSON");
    assert_eq!(ready["ready"]["service"], "baton-connector-twilio");
    for endpoint in ["grpc", "callbacks"] {
        let addr = ready["ready"][endpoint].as_str().expect("address");
        assert!(
            addr.starts_with("127.0.0.1:") && !addr.ends_with(":0"),
            "{line}"
        );
    }
    child.start_kill().expect("stops");
    let output = child.wait_with_output().await.expect("exits");
    let logs = String::from_utf8_lossy(&output.stderr);
    assert!(logs.contains("Event Callback URL"), "{logs}");
    assert!(!logs.contains(AUTH_TOKEN), "{logs}");
}

#[tokio::test]
async fn a_configuration_without_credentials_is_refused_at_start_by_key() {
    let output = Command::new(BINARY)
        .args([
            "--listen",
            "127.0.0.1:0",
            "--callbacks-listen",
            "127.0.0.1:0",
        ])
        .output()
        .await
        .expect("runs");
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("credentials.account_sid"), "{stderr}");
}
