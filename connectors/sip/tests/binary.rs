//! The `baton-connector-sip` binary: its command line and its readiness line.

use tokio::process::Command;

const BINARY: &str = env!("CARGO_BIN_EXE_baton-connector-sip");

#[tokio::test]
async fn help_names_the_options() {
    baton_tests::assert_help_names(BINARY, &["--config", "--listen", "--sip-bind"]).await;
}

#[tokio::test]
async fn one_readiness_line_names_the_grpc_and_sip_addresses() {
    let mut command = Command::new(BINARY);
    command.args(["--listen", "127.0.0.1:0", "--sip-bind", "127.0.0.1:0"]);
    baton_tests::assert_first_line_ready(command, "baton-connector-sip", &["grpc", "sip"]).await;
}

#[tokio::test]
async fn an_unknown_key_is_refused_at_start_by_name() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("sip.toml");
    std::fs::write(&path, "[sip]\nbnid = \"127.0.0.1:0\"\n").expect("writes");
    let mut command = Command::new(BINARY);
    command.arg("--config").arg(&path);
    baton_tests::assert_refused_naming(command, "bnid").await;
}
