//! The webhook connector through the conformance kit (`baton-conformance`),
//! as a vendor would run it: the real binary, delivering to a receiver that
//! enforces the Standard Webhooks contract. Queue `billing` is accepted by
//! the receiver (connects); `refused` posts with a secret the receiver does
//! not know (401: fails); `pending` waits for the receiving system's own
//! report, which never comes (holds until cancelled or the deadline).

mod common;

use common::{OTHER_SECRET, SECRET, receiver, start_receiver};

const PROFILE: &str = r#"
settle = "300ms"
grace = "3s"
# The connector under test drains for 1s on SIGTERM.
drain = "1s"

[[targets]]
queue = "billing"
expect = "connects"

[[targets]]
queue = "refused"
expect = "fails"

[[targets]]
queue = "pending"
expect = "holds"
"#;

#[tokio::test]
async fn the_webhook_connector_conforms() {
    let receiver = receiver(
        &[("crm", vec![]), ("strict", vec![]), ("desk", vec![])],
        None,
    );
    let receiver_addr = start_receiver(receiver.clone()).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let config = dir.path().join("webhook.toml");
    std::fs::write(
        &config,
        format!(
            r#"
listen = "127.0.0.1:0"
http_listen = "127.0.0.1:0"
delivery_log = {log:?}
data_dir = {data:?}
drain_timeout = "1s"

[retry]
max_attempts = 1

[endpoints.crm]
url = "http://{receiver_addr}/hooks/crm"
secret = "{SECRET}"

[endpoints.strict]
url = "http://{receiver_addr}/hooks/strict"
secret = "{OTHER_SECRET}"

[endpoints.desk]
url = "http://{receiver_addr}/hooks/desk"
secret = "{SECRET}"
completion = "reported"

[queues]
billing = ["crm"]
refused = ["strict"]
pending = ["desk"]
"#,
            log = dir.path().join("deliveries.sqlite3").display().to_string(),
            data = dir.path().join("data").display().to_string(),
        ),
    )
    .expect("write the connector's config");
    baton_conformance::assert_conforms(
        &baton_tests::binary("baton-connector-webhook"),
        &config,
        PROFILE,
    )
    .await;
    assert!(
        receiver
            .received()
            .iter()
            .any(|r| r.endpoint == "crm" && r.status == 200),
        "the kit's transfers reached the receiver"
    );
}
