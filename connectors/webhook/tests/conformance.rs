//! The webhook connector through the conformance kit (`baton-conformance`),
//! as a vendor would run it: the real binary, delivering to a receiver that
//! enforces the Standard Webhooks contract. Queue `billing` is accepted by
//! the receiver (connects); `refused` posts with a secret the receiver does
//! not know (401: fails); `pending` waits for the receiving system's own
//! report, which never comes (holds until cancelled or the deadline).
//! Queue `chats` takes chat handoffs at the receiver's chat endpoint, which
//! plays the human for the kit's `chat.*` checks: it posts the human's
//! messages to the connector signed with the endpoint's secret, and
//! reports the entries it verified and accepted.

mod common;

use std::sync::Arc;

use baton_conformance::{ChatHuman, HumanFuture};
use common::{OTHER_SECRET, Receiver, SECRET, post_signed, receiver, start_receiver};
use serde_json::json;

/// The platform's human, through the receiver.
struct PlatformHuman {
    receiver: Arc<Receiver>,
}

impl ChatHuman for PlatformHuman {
    fn say<'a>(
        &'a self,
        handoff_id: &'a str,
        _attempt: u32,
        id: &'a str,
        text: &'a str,
    ) -> HumanFuture<'a, ()> {
        Box::pin(async move {
            // Where to answer: the chat transfer's message says.
            let reply_url = self
                .receiver
                .received()
                .iter()
                .find(|r| r.body["data"]["handoff_id"] == handoff_id)
                .and_then(|r| {
                    r.body["data"]["chat"]["reply_url"]
                        .as_str()
                        .map(str::to_owned)
                })
                .ok_or_else(|| {
                    anyhow::anyhow!("no chat transfer of {handoff_id} reached the platform")
                })?;
            let body = json!({ "kind": "message", "message": { "id": id, "text": text } });
            let (status, answer) = post_signed(&reply_url, &body.to_string(), SECRET).await;
            anyhow::ensure!(status == 204, "the connector answered {status}: {answer}");
            Ok(())
        })
    }

    fn received<'a>(&'a self, handoff_id: &'a str) -> HumanFuture<'a, Vec<u64>> {
        Box::pin(async move {
            Ok(self
                .receiver
                .received()
                .iter()
                .filter(|r| {
                    r.status == 200
                        && r.body["data"]["handoff_id"] == handoff_id
                        && matches!(
                            r.body["type"].as_str(),
                            Some("baton.chat.message" | "baton.chat.ended")
                        )
                })
                .filter_map(|r| r.body["data"]["sequence"].as_u64())
                .collect())
        })
    }
}

const PROFILE: &str = include_str!("conformance.toml");

#[tokio::test]
async fn the_webhook_connector_conforms() {
    let receiver = receiver(
        &[
            ("crm", vec![]),
            ("strict", vec![]),
            ("desk", vec![]),
            ("chat", vec![]),
        ],
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

[endpoints.chat]
url = "http://{receiver_addr}/hooks/chat"
chat_url = "http://{receiver_addr}/chat/chat"
secret = "{SECRET}"

[queues]
billing = ["crm"]
refused = ["strict"]
pending = ["desk"]
chats = ["chat"]
"#,
            log = dir.path().join("deliveries.sqlite3").display().to_string(),
            data = dir.path().join("data").display().to_string(),
        ),
    )
    .expect("write the connector's config");
    baton_conformance::assert_conforms_with(
        &baton_tests::binary("baton-connector-webhook"),
        &config,
        PROFILE,
        Some(Arc::new(PlatformHuman {
            receiver: receiver.clone(),
        })),
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
