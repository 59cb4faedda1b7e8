//! The `baton-connector-sip` binary: its command line and its readiness line.

use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::Command;

const BINARY: &str = env!("CARGO_BIN_EXE_baton-connector-sip");

#[tokio::test]
async fn help_names_the_options() {
    let output = Command::new(BINARY)
        .arg("--help")
        .output()
        .await
        .expect("runs");
    assert!(output.status.success());
    let help = String::from_utf8_lossy(&output.stdout);
    for option in ["--config", "--listen", "--sip-bind"] {
        assert!(help.contains(option), "{option} missing from:\n{help}");
    }
}

#[tokio::test]
async fn one_readiness_line_names_the_grpc_and_sip_addresses() {
    let mut child = Command::new(BINARY)
        .args(["--listen", "127.0.0.1:0", "--sip-bind", "127.0.0.1:0"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
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
    let grpc = ready["ready"]["grpc"].as_str().expect("grpc address");
    let sip = ready["ready"]["sip"].as_str().expect("sip address");
    assert!(
        grpc.starts_with("127.0.0.1:") && !grpc.ends_with(":0"),
        "{line}"
    );
    assert!(
        sip.starts_with("127.0.0.1:") && !sip.ends_with(":0"),
        "{line}"
    );
    child.kill().await.expect("stops");
}

#[tokio::test]
async fn an_unknown_key_is_refused_at_start_by_name() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("sip.toml");
    std::fs::write(&path, "[sip]\nbnid = \"127.0.0.1:0\"\n").expect("writes");
    let output = Command::new(BINARY)
        .arg("--config")
        .arg(&path)
        .output()
        .await
        .expect("runs");
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("bnid"));
}
