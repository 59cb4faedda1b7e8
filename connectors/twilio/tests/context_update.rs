//! Context updates (UpdateTransfer) at Twilio: the newer context replaces
//! the attributes of the transfer's TaskRouter task (`POST
//! /v1/Workspaces/{ws}/Tasks/{sid}` with `Attributes`, checked by the
//! contract server), rendered as the task was given it; an older version
//! never reaches Twilio.

mod common;

use baton_connector_sdk::testing::{self, start_transfer};
use baton_proto::connector::v1::{
    ContextMechanism, ContextPayload, TransferEventKind, UpdateOutcome, UpdateTransferRequest,
};
use common::*;

const HANDOFF: &str = "h-update-1";

fn update(version: u64, summary: &str) -> UpdateTransferRequest {
    let mut envelope = chat_request(HANDOFF).envelope.expect("an envelope");
    envelope.payloads = vec![ContextPayload {
        mechanism: ContextMechanism::TaskAttributes as i32,
        content: serde_json::json!({ "token": "signed.token", "summary": summary }).to_string(),
        omitted_fields: vec![],
    }];
    UpdateTransferRequest {
        handoff_id: HANDOFF.into(),
        attempt: 1,
        tenant: testing::TENANT.into(),
        envelope: Some(envelope),
        context_version: version,
    }
}

#[tokio::test]
async fn a_newer_context_replaces_the_task_attributes_and_an_older_one_never_arrives() {
    let (twilio, grpc, _) = chat_setup().await;
    let mut events = start_transfer(grpc, chat_request(HANDOFF)).await;
    until(&mut events, TransferEventKind::Connected).await;
    let mut client = testing::client(grpc).await;

    let applied = client
        .update_transfer(update(3, "Charged twice; now also asks for a refund"))
        .await
        .expect("UpdateTransfer")
        .into_inner();
    assert_eq!(applied.outcome(), UpdateOutcome::Applied);
    let task = &twilio.tasks()[0];
    assert_eq!(task.attributes.len(), 2, "created, then updated once");
    let now = &task.attributes[1];
    assert_eq!(now["summary"], "Charged twice; now also asks for a refund");
    assert!(now.get("intent").is_none(), "the whole context is replaced");
    assert_eq!(now["baton_handoff_id"], HANDOFF);
    assert_eq!(
        now["conversationSid"],
        task.attributes[0]["conversationSid"]
    );
    assert_eq!(now["queue"], "billing");

    let stale = client
        .update_transfer(update(2, "an older summary"))
        .await
        .expect("UpdateTransfer")
        .into_inner();
    assert_eq!(stale.outcome(), UpdateOutcome::Stale);
    assert_eq!(
        twilio.tasks()[0].attributes.len(),
        2,
        "the older version never reached Twilio"
    );
}
