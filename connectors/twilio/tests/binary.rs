//! The `baton-connector-twilio` binary: its command line, its readiness
//! line, secrets kept out of its logs, and a bad configuration refused.

use tokio::process::Command;

const BINARY: &str = env!("CARGO_BIN_EXE_baton-connector-twilio");
const AUTH_TOKEN: &str = "auth-token-that-must-not-be-logged";

#[tokio::test]
async fn help_names_the_options() {
    baton_tests::assert_help_names(BINARY, &["--config", "--listen", "--callbacks-listen"]).await;
}

#[tokio::test]
async fn one_readiness_line_names_both_addresses_and_the_token_stays_out_of_logs() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut command = Command::new(BINARY);
    command
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
        .arg("--data-dir")
        .arg(dir.path());
    let logs = baton_tests::assert_first_line_ready(
        command,
        "baton-connector-twilio",
        &["grpc", "callbacks"],
    )
    .await;
    assert!(logs.contains("Event Callback URL"), "{logs}");
    assert!(!logs.contains(AUTH_TOKEN), "{logs}");
}

#[tokio::test]
async fn a_configuration_without_credentials_is_refused_at_start_by_key() {
    let mut command = Command::new(BINARY);
    command.args([
        "--listen",
        "127.0.0.1:0",
        "--callbacks-listen",
        "127.0.0.1:0",
    ]);
    baton_tests::assert_refused_naming(command, "credentials.account_sid").await;
}
