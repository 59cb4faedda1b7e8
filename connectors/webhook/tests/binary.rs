//! The `baton-connector-webhook` binary: its command line, its readiness
//! line and its refusal of a bad configuration at start.

use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::Command;

const BINARY: &str = env!("CARGO_BIN_EXE_baton-connector-webhook");

#[tokio::test]
async fn help_names_the_options() {
    let output = Command::new(BINARY)
        .arg("--help")
        .output()
        .await
        .expect("runs");
    assert!(output.status.success());
    let help = String::from_utf8_lossy(&output.stdout);
    for option in ["--config", "--listen", "--http-listen", "--delivery-log"] {
        assert!(help.contains(option), "{option} missing from:\n{help}");
    }
}

#[tokio::test]
async fn one_readiness_line_names_the_grpc_and_http_addresses_and_the_secret_stays_out_of_logs() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("webhook.toml");
    std::fs::write(
        &path,
        "[endpoints.crm]\nurl = \"http://127.0.0.1:9/hooks\"\n\n[queues]\nbilling = [\"crm\"]\n",
    )
    .expect("writes");
    let mut child = Command::new(BINARY)
        .arg("--config")
        .arg(&path)
        .args(["--listen", "127.0.0.1:0", "--http-listen", "127.0.0.1:0"])
        .arg("--delivery-log")
        .arg(dir.path().join("log.sqlite3"))
        // The secret comes from the environment, as the README advises.
        .env(
            "BATON_WEBHOOK_ENDPOINTS__CRM__SECRET",
            "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
        )
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
    assert_eq!(ready["ready"]["service"], "baton-connector-webhook");
    for endpoint in ["grpc", "http"] {
        let addr = ready["ready"][endpoint].as_str().expect("address");
        assert!(
            addr.starts_with("127.0.0.1:") && !addr.ends_with(":0"),
            "{line}"
        );
    }
    child.start_kill().expect("stops");
    let output = child.wait_with_output().await.expect("exits");
    let logs = String::from_utf8_lossy(&output.stderr);
    assert!(!logs.contains("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"), "{logs}");
}

#[tokio::test]
async fn a_bad_configuration_is_refused_at_start_by_key() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("webhook.toml");
    std::fs::write(&path, "[queues]\nbilling = [\"crm\"]\n").expect("writes");
    let output = Command::new(BINARY)
        .arg("--config")
        .arg(&path)
        .output()
        .await
        .expect("runs");
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("queues.billing"), "{stderr}");
}
