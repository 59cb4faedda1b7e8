//! The `baton-connector-webhook` binary: its command line, its readiness
//! line and its refusal of a bad configuration at start.

use tokio::process::Command;

const BINARY: &str = env!("CARGO_BIN_EXE_baton-connector-webhook");

#[tokio::test]
async fn help_names_the_options() {
    baton_tests::assert_help_names(
        BINARY,
        &["--config", "--listen", "--http-listen", "--delivery-log"],
    )
    .await;
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
    let mut command = Command::new(BINARY);
    command
        .arg("--config")
        .arg(&path)
        .args(["--listen", "127.0.0.1:0", "--http-listen", "127.0.0.1:0"])
        .arg("--delivery-log")
        .arg(dir.path().join("log.sqlite3"))
        .arg("--data-dir")
        .arg(dir.path().join("data"))
        // The secret comes from the environment, as the README advises.
        .env(
            "BATON_WEBHOOK_ENDPOINTS__CRM__SECRET",
            "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
        );
    let logs =
        baton_tests::assert_first_line_ready(command, "baton-connector-webhook", &["grpc", "http"])
            .await;
    assert!(!logs.contains("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"), "{logs}");
}

#[tokio::test]
async fn a_bad_configuration_is_refused_at_start_by_key() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("webhook.toml");
    std::fs::write(&path, "[queues]\nbilling = [\"crm\"]\n").expect("writes");
    let mut command = Command::new(BINARY);
    command.arg("--config").arg(&path);
    baton_tests::assert_refused_naming(command, "queues.billing").await;
}
