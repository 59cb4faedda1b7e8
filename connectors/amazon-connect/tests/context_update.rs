//! Context updates (UpdateTransfer) at Amazon Connect: the newer context
//! reaches the contact's attributes through UpdateContactAttributes, which
//! the contract server checks against Amazon's published model and SigV4;
//! an older version never reaches Connect.

mod common;

use baton_connector_sdk::testing;
use baton_proto::connector::v1::TransferEventKind as Kind;
use baton_proto::connector::v1::{
    ContextMechanism, ContextPayload, UpdateOutcome, UpdateTransferRequest,
};
use common::*;

fn update(contact: &str, version: u64, summary: &str) -> UpdateTransferRequest {
    let mut envelope = request("h-update", contact, "waiting")
        .envelope
        .expect("an envelope");
    envelope.payloads = vec![ContextPayload {
        mechanism: ContextMechanism::TaskAttributes as i32,
        content: serde_json::json!({ "token": "signed.token", "summary": summary }).to_string(),
        omitted_fields: vec![],
    }];
    UpdateTransferRequest {
        handoff_id: "h-update".into(),
        attempt: 1,
        tenant: "acme".into(),
        envelope: Some(envelope),
        context_version: version,
    }
}

#[tokio::test]
async fn a_newer_context_reaches_the_contacts_attributes_and_an_older_one_never_does() {
    let server = ContractServer::start().await;
    let grpc = start_connector(config(&server)).await;
    let contact = contact_id("VOICE", 31);
    let mut client = testing::client(grpc).await;
    let mut stream = client
        .start_transfer(request("h-update", &contact, "waiting"))
        .await
        .expect("accepted")
        .into_inner();
    let first = stream.message().await.expect("ok").expect("an event");
    assert_eq!(first.kind, Kind::Queued as i32, "waiting in the queue");

    let applied = client
        .update_transfer(update(&contact, 4, "Charged twice; now asks for a refund"))
        .await
        .expect("UpdateTransfer")
        .into_inner();
    assert_eq!(applied.outcome(), UpdateOutcome::Applied);
    let attributes = &server.contact(&contact).await["Attributes"];
    assert_eq!(
        attributes["baton_summary"],
        "Charged twice; now asks for a refund"
    );
    assert_eq!(attributes["baton_context_version"], "4");
    assert_eq!(attributes["baton_handoff_id"], "h-update");

    let stale = client
        .update_transfer(update(&contact, 3, "an older summary"))
        .await
        .expect("UpdateTransfer")
        .into_inner();
    assert_eq!(stale.outcome(), UpdateOutcome::Stale);
    let attributes = &server.contact(&contact).await["Attributes"];
    assert_eq!(
        attributes["baton_context_version"], "4",
        "the older version never reached Connect"
    );
    server.assert_all_accepted().await;
}
