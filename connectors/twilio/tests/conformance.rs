//! The Twilio connector through the conformance kit (`baton-conformance`),
//! as a vendor would run it: the real binary against the Twilio contract
//! server of `contract.rs`, which checks every call update and then plays
//! the call with signed callbacks. Every sample transfer moves a call of
//! its own (`CA{handoff_hex}`, in progress). Queue `billing` is a Flex
//! queue whose agent is bridged (connects); `+14155550111` is busy (fails
//! BUSY, the caller held for the next target); `sip:ringing@pbx.example`
//! rings without an answer (holds until cancelled or the deadline).

mod common;

use std::sync::Arc;

use common::*;

const PROFILE: &str = include_str!("conformance.toml");

#[tokio::test]
async fn the_twilio_connector_conforms() {
    let mut server = Twilio {
        any_call_in_progress: true,
        ..Default::default()
    };
    server.outcomes.get_mut().expect("lock").extend([
        ("billing".to_owned(), Outcome::Bridged),
        ("+14155550111".to_owned(), Outcome::Busy),
        ("sip:ringing@pbx.example".to_owned(), Outcome::Silent),
    ]);
    let server = Arc::new(server);
    let api = start_twilio(server.clone()).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let config = dir.path().join("twilio.toml");
    std::fs::write(
        &config,
        format!(
            r#"
api_base = "http://{api}"
rate_per_second = 50.0
burst = 10
workflow_sid = "{WORKFLOW_SID}"

[server]
grpc_listen = "127.0.0.1:0"
drain_timeout = "1s"

[store]
data_dir = {data:?}

[credentials]
account_sid = "{ACCOUNT_SID}"
auth_token = "{AUTH_TOKEN}"

[callbacks]
listen = "127.0.0.1:0"
"#,
            data = dir.path().join("data").display().to_string(),
        ),
    )
    .expect("write the connector's config");
    baton_conformance::assert_conforms(
        &baton_tests::binary("baton-connector-twilio"),
        &config,
        PROFILE,
    )
    .await;
    assert!(
        !server.updates().is_empty(),
        "the kit's transfers updated calls"
    );
}
