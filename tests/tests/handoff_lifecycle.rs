//! The control service end to end, through gRPC, against a real scripted
//! connector process: create, idempotency, watch and resume, cancel.

mod common;

use HandoffEventKind as K;
use baton_proto::handoff::v1::*;
use baton_proto::types::v1 as pb;
use common::*;

#[tokio::test]
async fn a_handoff_reaches_a_human_and_the_connector_gets_the_context() {
    let stack = Stack::start().await;
    let mut client = stack.client().await;
    let response = client
        .create_handoff(request("happy-1", queue("agents")))
        .await
        .expect("create")
        .into_inner();
    assert!(response.created);
    let handoff = response.handoff.expect("handoff");
    assert_eq!(handoff.state(), HandoffState::Pending);
    assert!(handoff.customer_message.contains("won't need to repeat"));
    assert_eq!(handoff.mode(), pb::TransferMode::Warm);

    let events = watch_all(&mut client, &handoff.id, 0).await;
    assert_eq!(
        kinds(&events),
        [&[K::Created, K::TargetStarted][..], &AGENTS_ANSWER].concat()
    );
    let sequences: Vec<u64> = events.iter().map(|e| e.sequence).collect();
    assert_eq!(sequences, (1..=9).collect::<Vec<_>>());
    let queued = events[2].queue_status.expect("queue status");
    assert_eq!(queued.position, 2);
    assert_eq!(queued.estimated_wait.expect("wait").seconds, 40);
    let attempt = events[1].attempt.as_ref().expect("attempt");
    assert_eq!((attempt.attempt, attempt.connector.as_str()), (1, "script"));

    let done = baton_tests::get_handoff(&mut client, handoff.id.clone()).await;
    assert_eq!(done.state(), HandoffState::Completed);
    assert_eq!(done.last_sequence, 9);

    // The connector received the structured context and a signed reference,
    // and nothing sensitive in the signalling payloads.
    let transfers = stack.transfers();
    assert_eq!(transfers.len(), 1);
    let transfer = &transfers[0];
    assert_eq!(transfer["handoff_id"], handoff.id.as_str());
    assert_eq!(
        transfer["summary"],
        "Customer was charged twice for the March invoice"
    );
    let token = transfer["token"].as_str().expect("token");
    assert!(!token.is_empty() && token.len() <= 64);
    for payload in transfer["payloads"].as_array().expect("payloads") {
        let content = payload["content"].as_str().expect("content");
        assert!(!content.contains("ACC-99887766"), "{content}");
        assert!(!content.contains("+14155550123"), "{content}");
    }
}

#[tokio::test]
async fn create_is_idempotent_by_request_id() {
    let stack = Stack::start().await;
    let mut client = stack.client().await;
    let first = client
        .create_handoff(request("same-key", queue("hold")))
        .await
        .expect("create")
        .into_inner();
    let retry = client
        .create_handoff(request("same-key", queue("hold")))
        .await
        .expect("retry")
        .into_inner();
    assert!(first.created);
    assert!(!retry.created);
    let id = first.handoff.expect("handoff").id;
    assert_eq!(retry.handoff.expect("handoff").id, id);

    let reused = client
        .create_handoff(request("same-key", queue("agents")))
        .await;
    let status = reused.expect_err("a different request under the same key");
    assert_eq!(status.code(), tonic::Code::AlreadyExists);

    // One transfer only, whatever the retries.
    watch_until(&mut client, &id, K::Ringing).await;
    let started = stack
        .transfers()
        .iter()
        .filter(|t| t["handoff_id"] == id.as_str())
        .count();
    assert_eq!(started, 1);
    let listed = client
        .list_handoffs(ListHandoffsRequest::default())
        .await
        .expect("list")
        .into_inner();
    assert_eq!(listed.handoffs.len(), 1);
}

#[tokio::test]
async fn a_watcher_that_reconnects_misses_nothing_and_sees_nothing_twice() {
    let stack = Stack::start().await;
    let mut client = stack.client().await;
    let id = create(&mut client, request("resume-1", queue("agents"))).await;
    // Disconnect after the first QUEUED, then resume from its sequence.
    let first_part = watch_until(&mut client, &id, K::Queued).await;
    let last_seen = first_part.last().expect("event").sequence;
    let rest = watch_all(&mut client, &id, last_seen).await;
    let mut joined = first_part.clone();
    joined.extend(rest.clone());
    let sequences: Vec<u64> = joined.iter().map(|e| e.sequence).collect();
    assert_eq!(sequences, (1..=sequences.len() as u64).collect::<Vec<_>>());
    assert_eq!(joined.last().expect("event").kind(), K::Completed);

    // A replay of the whole log is identical to what was seen live.
    let replay = watch_all(&mut client, &id, 0).await;
    assert_eq!(replay, joined);
}

#[tokio::test]
async fn cancel_stops_the_transfer_and_ends_the_stream() {
    let stack = Stack::start().await;
    let mut client = stack.client().await;
    let id = create(&mut client, request("cancel-1", queue("hold"))).await;
    watch_until(&mut client, &id, K::Ringing).await;
    let cancelled = client
        .cancel_handoff(CancelHandoffRequest {
            handoff_id: id.clone(),
            reason: "customer hung up".into(),
        })
        .await
        .expect("cancel")
        .into_inner()
        .handoff
        .expect("handoff");
    assert_eq!(cancelled.state(), HandoffState::Cancelled);
    let failure = cancelled.failure.expect("failure");
    assert_eq!(failure.reason(), pb::FailureReason::Cancelled);

    let events = watch_all(&mut client, &id, 0).await;
    assert_eq!(
        kinds(&events),
        [K::Created, K::TargetStarted, K::Ringing, K::Cancelled]
    );

    // Cancelling again is harmless; the connector was told to stop.
    let again = client
        .cancel_handoff(CancelHandoffRequest {
            handoff_id: id.clone(),
            reason: String::new(),
        })
        .await
        .expect("cancel again")
        .into_inner();
    assert_eq!(
        again.handoff.expect("handoff").state(),
        HandoffState::Cancelled
    );
    let connector_logs = stack.connector.logs();
    assert!(
        connector_logs.contains("CancelTransfer"),
        "{connector_logs}"
    );
}

#[tokio::test]
async fn a_completed_handoff_cannot_be_cancelled() {
    let stack = Stack::start().await;
    let mut client = stack.client().await;
    let id = create(&mut client, request("done-1", queue("quick"))).await;
    watch_all(&mut client, &id, 0).await;
    let status = client
        .cancel_handoff(CancelHandoffRequest {
            handoff_id: id,
            reason: String::new(),
        })
        .await
        .expect_err("ended");
    assert_eq!(status.code(), tonic::Code::FailedPrecondition);
}

#[tokio::test]
async fn the_customer_message_follows_the_conversation_language() {
    let stack = Stack::start().await;
    let mut client = stack.client().await;
    let mut spanish = request("es-1", queue("hold"));
    spanish
        .conversation
        .as_mut()
        .expect("conversation")
        .language = "es-MX".into();
    let handoff = client
        .create_handoff(spanish)
        .await
        .expect("create")
        .into_inner()
        .handoff
        .expect("handoff");
    assert_eq!(
        handoff.customer_message,
        "Le paso con una persona que ya conoce su caso."
    );
    assert_eq!(handoff.customer_message_language, "es");
    let mut german = request("de-1", queue("hold"));
    german.conversation.as_mut().expect("conversation").language = "de".into();
    let handoff = client
        .create_handoff(german)
        .await
        .expect("create")
        .into_inner()
        .handoff
        .expect("handoff");
    assert!(handoff.customer_message.contains("nichts wiederholen"));
}

#[tokio::test]
async fn list_pages_and_filters_by_state() {
    let stack = Stack::start().await;
    let mut client = stack.client().await;
    let mut ids = Vec::new();
    for i in 0..5 {
        let handoff = client
            .create_handoff(request(&format!("list-{i}"), queue("hold")))
            .await
            .expect("create")
            .into_inner()
            .handoff
            .expect("handoff");
        ids.push(handoff.id);
    }
    let first = client
        .list_handoffs(ListHandoffsRequest {
            page_size: 3,
            ..Default::default()
        })
        .await
        .expect("page 1")
        .into_inner();
    assert_eq!(first.handoffs.len(), 3);
    assert!(!first.next_page_token.is_empty());
    let second = client
        .list_handoffs(ListHandoffsRequest {
            page_size: 3,
            page_token: first.next_page_token.clone(),
            ..Default::default()
        })
        .await
        .expect("page 2")
        .into_inner();
    assert_eq!(second.handoffs.len(), 2);
    assert!(second.next_page_token.is_empty());
    let mut listed: Vec<String> = first
        .handoffs
        .iter()
        .chain(&second.handoffs)
        .map(|h| h.id.clone())
        .collect();
    listed.reverse();
    assert_eq!(listed, ids);

    let completed = client
        .list_handoffs(ListHandoffsRequest {
            states: vec![HandoffState::Completed as i32],
            ..Default::default()
        })
        .await
        .expect("filter")
        .into_inner();
    assert!(completed.handoffs.is_empty());
}

#[tokio::test]
async fn the_humans_wrap_up_is_stored_on_the_handoff() {
    let stack = Stack::start().await;
    let mut client = stack.client().await;
    let id = create(&mut client, request("wrap-1", queue("wrapped"))).await;
    let events = watch_all(&mut client, &id, 0).await;
    let completed = events.last().expect("event");
    assert_eq!(completed.kind(), K::Completed);
    let wrap_up = completed.wrap_up.as_ref().expect("wrap-up on the event");
    assert_eq!(wrap_up.disposition, "refund issued");
    let handoff = baton_tests::get_handoff(&mut client, id).await;
    let stored = handoff.wrap_up.expect("wrap-up on the handoff");
    assert_eq!(stored.disposition, "refund issued");
    assert_eq!(stored.notes, "refunded the second charge");
}
