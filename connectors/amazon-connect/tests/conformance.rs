//! The Amazon Connect connector through the conformance kit
//! (`baton-conformance`), as a vendor would run it: the real binary against
//! the contract server. Every sample transfer moves a TASK contact of its
//! own (`task-{handoff_hex}`, made by the server on first sight). Queue
//! `support` has an agent who answers (connects); `missing` names a queue
//! the instance does not have (fails, unreachable); `waiting` has no agent
//! staffed (holds in the queue until cancelled or the deadline).

mod common;

use common::{ContractServer, config_toml};

const PROFILE: &str = include_str!("conformance.toml");

#[tokio::test]
async fn the_amazon_connect_connector_conforms() {
    // The kit starts many transfers back to back: the contract is under
    // test here, not the quota, so both sides allow more.
    let server = ContractServer::start_with_rate(100.0, 100).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let config = dir.path().join("amazon-connect.toml");
    std::fs::write(&config, config_toml(&server, 100.0, 100)).expect("writes");
    baton_conformance::assert_conforms(
        &baton_tests::binary("baton-connector-amazon-connect"),
        &config,
        PROFILE,
    )
    .await;
    let refused: Vec<String> = server
        .refused()
        .await
        .into_iter()
        // The `missing` sample's TransferContact is refused by design.
        .filter(|r| !r.contains("q-does-not-exist"))
        .collect();
    assert!(refused.is_empty(), "{refused:#?}");
}
