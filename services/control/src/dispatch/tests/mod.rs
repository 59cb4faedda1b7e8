//! The dispatcher against scripted in-memory connectors and a real SQLite
//! store in a temporary directory: the plan's fallbacks, streams that break
//! or go bad mid-transfer, re-attaching after a connector or a control
//! service restart, cancel, and the circuit breaker. No network: the real
//! connectors are exercised by the integration tests (`tests/tests`).

mod fake;
mod harness;

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Notify;

use crate::circuit::DispatchConfig;
use crate::connector::{StartRefused, TransferEvent, TransferEventKind as T};
use crate::domain::{
    DEFAULT_TENANT, EventKind, Failure, FailureReason, HandoffState, NewEvent, TargetKind,
};
use fake::{Call, End, ScriptedConnector, failed};
use harness::{Harness, fast, phone, queue};

const CONNECTS: &[T] = &[T::Ringing, T::Connected, T::Completed];

/// A handoff's log when its first target rang and connected, however often
/// the stream was replayed on the way.
const RANG_THEN_CONNECTED_AT_THE_FIRST_TARGET: &[(EventKind, u32)] = &[
    (EventKind::Created, 0),
    (EventKind::TargetStarted, 1),
    (EventKind::Ringing, 1),
    (EventKind::Connected, 1),
    (EventKind::Completed, 1),
];

#[tokio::test]
async fn the_plan_falls_back_target_by_target_until_one_connects() {
    let h = Harness::new();
    let sip = h.phone_connector(
        "sip",
        [Call::Stream(
            vec![
                TransferEvent::new("r1", 1, T::Ringing),
                failed("r1", 2, FailureReason::NoAnswer),
            ],
            End::Hold,
        )],
    );
    // Serves no phone numbers: fails without being called.
    let webhook = ScriptedConnector::new("webhook", &[TargetKind::Queue], [], &h.journal);
    let queue_connector = ScriptedConnector::new(
        "queue",
        &[TargetKind::Queue],
        [Call::events(
            "q1",
            &[T::Queued, T::Connected, T::Completed],
            End::Close,
        )],
        &h.journal,
    );
    let dispatcher = h.dispatcher(&[&sip, &webhook, &queue_connector], fast());
    let id = h
        .start(
            &dispatcher,
            &[("sip", phone()), ("webhook", phone()), ("queue", queue())],
        )
        .await;

    assert_eq!(h.ended(&id).await.state, HandoffState::Completed);
    assert_eq!(
        h.history(&id).await,
        [
            (EventKind::Created, 0),
            (EventKind::TargetStarted, 1),
            (EventKind::Ringing, 1),
            (EventKind::TargetFailed, 1),
            (EventKind::TargetStarted, 2),
            (EventKind::TargetFailed, 2),
            (EventKind::TargetStarted, 3),
            (EventKind::Queued, 3),
            (EventKind::Connected, 3),
            (EventKind::Completed, 3),
        ]
    );
    let reasons: Vec<_> = h
        .events(&id)
        .await
        .into_iter()
        .filter(|event| event.kind == EventKind::TargetFailed)
        .filter_map(|event| event.failure.map(|failure| failure.reason))
        .collect();
    assert_eq!(
        reasons,
        [FailureReason::NoAnswer, FailureReason::Unsupported]
    );
    assert_eq!(h.journal(), ["sip start 1", "queue start 3"]);
}

#[tokio::test]
async fn a_callback_that_failed_after_dialing_fails_the_handoff_without_a_fallback() {
    let h = Harness::new();
    let dials_twice = vec![
        TransferEvent::new("r1", 1, T::Queued),
        TransferEvent::new("r1", 2, T::Offered),
        TransferEvent::new("r1", 3, T::CallbackDialing),
        TransferEvent::new("r1", 4, T::CallbackDialing),
        failed("r1", 5, FailureReason::NoAnswer),
    ];
    let first = h.phone_connector("first", [Call::Stream(dials_twice, End::Hold)]);
    let second = h.phone_connector("second", [Call::events("r2", CONNECTS, End::Close)]);
    let dispatcher = h.dispatcher(&[&first, &second], fast());
    let id = h
        .start_callback(&dispatcher, &[("first", phone()), ("second", phone())])
        .await;

    let ended = h.ended(&id).await;
    assert_eq!(ended.state, HandoffState::Failed);
    assert_eq!(
        ended.failure.map(|f| f.reason),
        Some(FailureReason::NoAnswer)
    );
    assert_eq!(ended.callback.map(|c| c.dial_attempts), Some(2));
    assert_eq!(
        h.journal(),
        ["first start 1"],
        "the customer is dialed by one target only"
    );
}

#[tokio::test]
async fn a_callback_not_yet_dialed_falls_back_like_any_handoff() {
    let h = Harness::new();
    let first = h.phone_connector(
        "first",
        [Call::Stream(
            vec![
                TransferEvent::new("r1", 1, T::Queued),
                failed("r1", 2, FailureReason::WaitTooLong),
            ],
            End::Hold,
        )],
    );
    let second = h.phone_connector(
        "second",
        [Call::events(
            "r2",
            &[T::Offered, T::CallbackDialing, T::Connected, T::Completed],
            End::Close,
        )],
    );
    let dispatcher = h.dispatcher(&[&first, &second], fast());
    let id = h
        .start_callback(&dispatcher, &[("first", phone()), ("second", phone())])
        .await;

    let ended = h.ended(&id).await;
    assert_eq!(ended.state, HandoffState::Completed);
    assert_eq!(ended.callback.map(|c| c.dial_attempts), Some(1));
    assert_eq!(h.journal(), ["first start 1", "second start 2"]);
}

#[tokio::test]
async fn a_plan_used_up_fails_the_handoff_naming_the_last_failure() {
    let h = Harness::new();
    let a = h.phone_connector(
        "a",
        [Call::Stream(
            vec![failed("r1", 1, FailureReason::Busy)],
            End::Hold,
        )],
    );
    let b = h.phone_connector(
        "b",
        [Call::Refuse(StartRefused::Unsupported(
            "no such extension".into(),
        ))],
    );
    let dispatcher = h.dispatcher(&[&a, &b], fast());
    let id = h
        .start(&dispatcher, &[("a", phone()), ("b", phone())])
        .await;

    let ended = h.ended(&id).await;
    assert_eq!(ended.state, HandoffState::Failed);
    let failure = ended.failure.expect("failure");
    assert_eq!(failure.reason, FailureReason::AllTargetsFailed);
    assert!(
        failure.detail.contains("Unsupported") && failure.detail.contains("no such extension"),
        "{}",
        failure.detail
    );
}

#[tokio::test]
async fn a_stream_broken_mid_transfer_is_re_attached_and_its_replay_recorded_once() {
    let h = Harness::new();
    let sip = h.phone_connector(
        "sip",
        [
            Call::events("r1", &[T::Ringing], End::Break),
            // The same run, replayed from its first event.
            Call::events("r1", CONNECTS, End::Close),
        ],
    );
    // A fallback that must not be used: the broken transfer is held.
    let spare = h.phone_connector("spare", []);
    let dispatcher = h.dispatcher(&[&sip, &spare], fast());
    let id = h
        .start(&dispatcher, &[("sip", phone()), ("spare", phone())])
        .await;

    assert_eq!(h.ended(&id).await.state, HandoffState::Completed);
    assert_eq!(
        h.history(&id).await,
        RANG_THEN_CONNECTED_AT_THE_FIRST_TARGET
    );
    assert_eq!(h.journal(), ["sip start 1", "sip start 1"]);
}

#[tokio::test]
async fn a_restarted_connector_is_re_attached_through_its_downtime_and_its_new_run_recorded() {
    let h = Harness::new();
    let sip = h.phone_connector(
        "sip",
        [
            Call::events("r1", &[T::Ringing], End::Break),
            Call::down(),
            Call::down(),
            Call::down(),
            // Back, with the transfer begun again from its journal.
            Call::events("r2", CONNECTS, End::Close),
        ],
    );
    let dispatcher = h.dispatcher(&[&sip], fast());
    let id = h.start(&dispatcher, &[("sip", phone())]).await;

    assert_eq!(h.ended(&id).await.state, HandoffState::Completed);
    assert_eq!(
        h.history(&id).await,
        [
            (EventKind::Created, 0),
            (EventKind::TargetStarted, 1),
            (EventKind::Ringing, 1),
            // The new run's own RINGING.
            (EventKind::Ringing, 1),
            (EventKind::Connected, 1),
            (EventKind::Completed, 1),
        ]
    );
    assert_eq!(h.journal(), vec!["sip start 1"; 5]);
}

#[tokio::test]
async fn a_connector_that_garbles_its_stream_is_fenced_before_the_next_target_rings() {
    let h = Harness::new();
    let a = h.phone_connector("a", [Call::events("r1", &[T::Ringing], End::Malformed)]);
    let b = h.phone_connector("b", [Call::events("r1", CONNECTS, End::Close)]);
    let dispatcher = h.dispatcher(&[&a, &b], fast());
    let id = h
        .start(&dispatcher, &[("a", phone()), ("b", phone())])
        .await;

    assert_eq!(h.ended(&id).await.state, HandoffState::Completed);
    assert_eq!(h.journal(), ["a start 1", "a cancel 1", "b start 2"]);
    let first = h.first_failure(&id).await;
    assert_eq!(first.reason, FailureReason::ConnectorError);
    assert!(first.detail.contains("malformed"), "{}", first.detail);
}

#[tokio::test]
async fn after_a_control_service_restart_the_transfer_is_re_attached_not_started_again() {
    let h = Harness::new();
    let sip = h.phone_connector("sip", [Call::events("r1", &[T::Ringing], End::Hold)]);
    let before = h.dispatcher(&[&sip], fast());
    let id = h.start(&before, &[("sip", phone())]).await;
    assert_eq!(
        h.reaches(&id, HandoffState::Ringing).await.state,
        HandoffState::Ringing
    );
    before.shutdown().await;

    // The connector still runs the transfer: it replays it to whoever
    // re-attaches, then goes on.
    sip.then([Call::events("r1", CONNECTS, End::Close)]);
    let after = h.dispatcher(&[&sip], fast());
    assert_eq!(after.resume_in_flight().await.expect("resume"), 1);

    assert_eq!(h.ended(&id).await.state, HandoffState::Completed);
    assert_eq!(
        h.history(&id).await,
        RANG_THEN_CONNECTED_AT_THE_FIRST_TARGET
    );
    assert_eq!(h.journal(), ["sip start 1", "sip start 1"]);
    after.shutdown().await;
}

#[tokio::test]
async fn cancelling_stops_the_dispatch_and_cancels_the_transfer_at_its_connector() {
    let h = Harness::new();
    let sip = h.phone_connector("sip", [Call::events("r1", &[T::Ringing], End::Hold)]);
    let dispatcher = h.dispatcher(&[&sip], fast());
    let id = h.start(&dispatcher, &[("sip", phone())]).await;
    h.reaches(&id, HandoffState::Ringing).await;

    // As CancelHandoff does: record, then stop.
    let event = NewEvent::new(EventKind::Cancelled)
        .failure(Failure::new(FailureReason::Cancelled, "customer hung up"));
    let (cancelled, _) = dispatcher
        .record(DEFAULT_TENANT, &id, event, None)
        .await
        .expect("cancel");
    dispatcher.stop(&cancelled).await;

    assert_eq!(h.ended(&id).await.state, HandoffState::Cancelled);
    assert_eq!(h.journal(), ["sip start 1", "sip cancel 1"]);
    assert_eq!(dispatcher.room(), fast().max_in_flight);
}

#[tokio::test]
async fn an_open_circuit_skips_its_connector_without_calling_it() {
    let h = Harness::new();
    let flaky = h.phone_connector("flaky", []);
    flaky.set_down(true);
    let steady = h.phone_connector(
        "steady",
        [
            Call::events("r1", CONNECTS, End::Close),
            Call::events("r2", CONNECTS, End::Close),
        ],
    );
    let config = DispatchConfig {
        failure_threshold: 1,
        open_cooldown: Duration::from_secs(600),
        ..fast()
    };
    let dispatcher = h.dispatcher(&[&flaky, &steady], config);
    let plan = [("flaky", phone()), ("steady", phone())];

    let first = h.start(&dispatcher, &plan).await;
    assert_eq!(h.ended(&first).await.state, HandoffState::Completed);
    // Back up, but its circuit stays open for the cool-down.
    flaky.set_down(false);
    let second = h.start(&dispatcher, &plan).await;
    assert_eq!(h.ended(&second).await.state, HandoffState::Completed);

    let skipped = h.first_failure(&second).await;
    assert!(
        skipped.detail.contains("circuit is open"),
        "{}",
        skipped.detail
    );
    assert_eq!(h.journal(), ["steady start 2", "steady start 2"]);
}

#[tokio::test]
async fn a_context_update_made_before_the_connector_registered_the_transfer_still_reaches_it() {
    let h = Harness::new();
    let registers = Arc::new(Notify::new());
    let queue_connector = ScriptedConnector::gated_taking_updates(
        "queue",
        &[TargetKind::Queue],
        [Call::events("q1", &[T::Queued], End::Hold)],
        &h.journal,
        registers.clone(),
    );
    let dispatcher = h.dispatcher(&[&queue_connector], fast());
    let id = h.start(&dispatcher, &[("queue", queue())]).await;
    h.journal_has("queue start 1").await;

    // The StartTransfer is on its way: the connector knows no such
    // transfer yet, and answers the update's forward UNKNOWN.
    let version = h.update_context(&dispatcher, &id).await;
    assert_eq!(h.journal(), ["queue start 1"]);

    registers.notify_one();
    h.reaches(&id, HandoffState::Queued).await;
    h.journal_has(&format!("queue update 1 v{version}")).await;
    assert_eq!(
        h.journal(),
        [
            "queue start 1".to_owned(),
            format!("queue update 1 v{version}")
        ]
    );
    dispatcher.shutdown().await;
}
