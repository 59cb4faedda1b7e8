//! Crash and restart of the control service: accepted handoffs survive,
//! in-flight ones resume by re-attaching to the connector's transfer, and
//! no transfer is started twice. A connector that stays down past the
//! re-attach window is fenced before the route falls back.

mod common;

use HandoffEventKind as K;
use baton_proto::handoff::v1::*;
use baton_proto::types::v1 as pb;
use common::*;

#[tokio::test]
async fn handoffs_survive_a_crash_and_resume_without_a_second_transfer() {
    let mut stack = Stack::start().await;
    let mut client = stack.client().await;
    let slow = create(&mut client, request("crash-slow", queue("slow"))).await;
    let held = create(&mut client, request("crash-held", queue("hold"))).await;
    watch_until(&mut client, &slow, K::Ringing).await;
    watch_until(&mut client, &held, K::Ringing).await;

    // SIGKILL: no shutdown sequence runs.
    stack
        .control
        .take()
        .expect("control")
        .crash()
        .await
        .expect("crash");
    stack.start_control().await;
    let mut client = stack.client().await;

    // The slow transfer finished on the connector while the control service
    // was down; re-attaching replays what was missed, exactly once.
    let events = watch_all(&mut client, &slow, 0).await;
    assert_eq!(kinds(&events), RANG_AND_COMPLETED);
    let sequences: Vec<u64> = events.iter().map(|e| e.sequence).collect();
    assert_eq!(sequences, [1, 2, 3, 4, 5, 6]);

    // The held one is still ringing, and can be cancelled after the restart.
    let handoff = baton_tests::get_handoff(&mut client, held.clone()).await;
    assert_eq!(handoff.state(), HandoffState::Ringing);
    client
        .cancel_handoff(CancelHandoffRequest {
            handoff_id: held.clone(),
            reason: String::new(),
        })
        .await
        .expect("cancel");

    // StartTransfer was repeated on resume, but the connector ran each
    // transfer once.
    for id in [&slow, &held] {
        let started = stack
            .transfers()
            .iter()
            .filter(|t| t["handoff_id"] == id.as_str())
            .count();
        assert_eq!(started, 1, "transfers of {id}");
    }
    let connector_logs = stack.connector.logs();
    assert!(
        connector_logs.contains("StartTransfer repeated"),
        "{connector_logs}"
    );

    // A retried create after the restart still finds the original handoff.
    let retry = client
        .create_handoff(request("crash-slow", queue("slow")))
        .await
        .expect("retry")
        .into_inner();
    assert!(!retry.created);
    assert_eq!(retry.handoff.expect("handoff").id, slow);
}

#[tokio::test]
async fn a_restarted_connector_is_re_attached_instead_of_failing_the_target() {
    let mut stack = Stack::start().await;
    let mut client = stack.client().await;
    let id = create(&mut client, request("connector-restart", queue("slow"))).await;
    watch_until(&mut client, &id, K::Ringing).await;

    stack.restart_connector().await;

    // The control service re-attached to the same attempt: no fallback, no
    // failure, and the restarted connector's run was recorded in full.
    let events = watch_all(&mut client, &id, 0).await;
    let seen = kinds(&events);
    assert!(!seen.contains(&K::TargetFailed), "{seen:?}");
    assert_eq!(seen.last(), Some(&K::Completed), "{seen:?}");
    assert!(
        events
            .iter()
            .all(|e| e.attempt.as_ref().is_none_or(|a| a.attempt == 1))
    );
    let control_logs = stack.control().logs();
    assert!(control_logs.contains("re-attaching"), "{control_logs}");
}

/// The connector is killed while its transfer rings and comes back only
/// after the re-attach window (1 s here): the control service cancels the
/// transfer and waits until the restarted connector confirms it, and only
/// then starts the route's next target; the runtime sees the typed reason.
#[tokio::test]
async fn a_connector_down_past_the_reattach_window_is_fenced_before_the_fallback() {
    let mut stack = Stack::start_with_env(&[], &[("BATON_DISPATCH__REATTACH_WINDOW", "1s")]).await;
    let mut client = stack.client().await;
    let route = pb::target::Kind::Route("hold-then-agents".into());
    let id = create(&mut client, request("connector-lost", route)).await;
    watch_until(&mut client, &id, K::Ringing).await;

    stack.crash_connector().await;
    // Past the window: the dispatcher gave up re-attaching and keeps
    // trying to cancel a connector that does not answer.
    tokio::time::sleep(std::time::Duration::from_secs(3)).await;
    let waiting = kinds(&watch_until(&mut client, &id, K::Ringing).await);
    assert!(
        !waiting.contains(&K::TargetFailed),
        "fell back unfenced: {waiting:?}"
    );
    let restarted_at = std::time::SystemTime::now();
    stack.start_connector_again().await;

    let events = watch_all(&mut client, &id, 0).await;
    let failed = events
        .iter()
        .find(|e| e.kind() == K::TargetFailed)
        .expect("attempt 1 failed");
    assert_eq!(
        failed.failure.as_ref().expect("failure").reason(),
        pb::FailureReason::ConnectorLost
    );
    assert_eq!(failed.attempt.as_ref().expect("attempt").attempt, 1);
    assert_eq!(kinds(&events).last(), Some(&K::Completed));
    let control_logs = stack.control().logs();
    assert!(control_logs.contains("transfer fenced"), "{control_logs}");
    // The fence needed the restarted connector's answer: attempt 1 failed
    // only after it was back.
    let failed_at = failed.time.expect("event time");
    let failed_at = std::time::UNIX_EPOCH
        + std::time::Duration::new(failed_at.seconds as u64, failed_at.nanos as u32);
    assert!(
        failed_at >= restarted_at,
        "attempt 1 failed before the connector was back"
    );
    let second = stack
        .transfers()
        .iter()
        .filter(|t| t["handoff_id"] == id.as_str() && t["attempt"] == 2)
        .count();
    assert_eq!(second, 1, "attempt 2 started once");
}
