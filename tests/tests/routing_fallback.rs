//! Fallback through a route's targets, deadlines, and the failure reasons
//! the AI runtime sees.

mod common;

use std::time::Duration;

use HandoffEventKind as K;
use baton_proto::handoff::v1::*;
use baton_proto::types::v1 as pb;
use common::*;

#[tokio::test]
async fn a_busy_target_falls_back_to_the_next_and_the_runtime_sees_it() {
    let stack = Stack::start().await;
    let mut client = stack.client().await;
    let id = create(
        &mut client,
        request("fallback-1", pb::target::Kind::Route("fallback".into())),
    )
    .await;
    let events = watch_all(&mut client, &id, 0).await;
    assert_eq!(
        kinds(&events),
        [
            &[
                K::Created,
                K::TargetStarted,
                K::Ringing,
                K::TargetFailed,
                K::TargetStarted
            ][..],
            &AGENTS_ANSWER
        ]
        .concat()
    );
    let failed = &events[3];
    assert_eq!(
        failed.failure.as_ref().expect("failure").reason(),
        pb::FailureReason::Busy
    );
    assert_eq!(failed.attempt.as_ref().expect("attempt").attempt, 1);
    let second = events[4].attempt.as_ref().expect("attempt");
    assert_eq!(second.attempt, 2);
    match second.target.as_ref().and_then(|t| t.kind.as_ref()) {
        Some(pb::target::Kind::Queue(queue)) => assert_eq!(queue.name, "agents"),
        other => panic!("unexpected fallback target {other:?}"),
    }
    // One transfer per attempt, never two for the same attempt.
    let attempts: Vec<u64> = stack
        .transfers()
        .iter()
        .filter(|t| t["handoff_id"] == id.as_str())
        .filter_map(|t| t["attempt"].as_u64())
        .collect();
    assert_eq!(attempts, [1, 2]);
}

#[tokio::test]
async fn an_unreachable_connector_is_skipped_for_the_next_target() {
    let stack = Stack::start().await;
    let mut client = stack.client().await;
    let id = create(
        &mut client,
        request("down-1", pb::target::Kind::Route("dead-then-alive".into())),
    )
    .await;
    let events = watch_all(&mut client, &id, 0).await;
    assert_failed_over_from(&events, "down");
}

#[tokio::test]
async fn when_every_target_fails_the_handoff_fails_with_the_last_reason() {
    let stack = Stack::start().await;
    let mut client = stack.client().await;
    let id = create(
        &mut client,
        request("all-busy-1", pb::target::Kind::Route("all-busy".into())),
    )
    .await;
    let events = watch_all(&mut client, &id, 0).await;
    let last = events.last().expect("event");
    assert_eq!(last.kind(), K::Failed);
    assert_eq!(last.state(), HandoffState::Failed);
    let failure = last.failure.as_ref().expect("failure");
    assert_eq!(failure.reason(), pb::FailureReason::AllTargetsFailed);
    assert!(failure.detail.contains("Busy"), "{}", failure.detail);
    assert_eq!(
        kinds(&events)
            .iter()
            .filter(|k| **k == K::TargetFailed)
            .count(),
        2
    );
}

#[tokio::test]
async fn a_handoff_that_finds_no_human_before_its_deadline_fails_clearly() {
    let stack = Stack::start().await;
    let mut client = stack.client().await;
    let mut with_options = request("deadline-1", queue("hold"));
    with_options.timeout =
        Some(prost_types::Duration::try_from(Duration::from_secs(1)).expect("duration"));
    let id = create(&mut client, with_options).await;
    let events = watch_all(&mut client, &id, 0).await;
    let last = events.last().expect("event");
    assert_eq!(last.kind(), K::Failed);
    assert_eq!(
        last.failure.as_ref().expect("failure").reason(),
        pb::FailureReason::DeadlineExceeded
    );
}
