//! Several control-service replicas on one PostgreSQL: a burst of handoffs
//! spread over the replicas, one replica killed (SIGKILL) in the middle of
//! it. The others take over its handoffs: every acknowledged handoff
//! completes, the connector starts exactly one transfer per handoff, and
//! watchers on the surviving replicas see every event, in order.

mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use HandoffEventKind as K;
use baton_proto::handoff::v1::*;
use common::cluster::{Cluster, Figures, watch_to_end};
use common::{queue, request};

/// What a transfer through the test connector records, once each.
const EXPECTED: [K; 7] = [
    K::Created,
    K::TargetStarted,
    K::Ringing,
    K::Answered,
    K::ContextDelivered,
    K::Connected,
    K::Completed,
];

async fn burst_with_a_replica_killed(replicas: usize, handoffs: usize) {
    let mut cluster = Cluster::start(replicas).await;
    // Replica 0 dies; watchers and retries use the others.
    let victim = 0;
    let survivors: Vec<usize> = (1..replicas).collect();
    let mut clients = Vec::new();
    for index in 0..replicas {
        clients.push(cluster.client(index).await);
    }
    let mut figures = Figures::default();
    let mut acknowledged: BTreeMap<String, usize> = BTreeMap::new();
    let mut watchers = Vec::new();
    for n in 0..handoffs {
        if n == handoffs / 2 {
            // In the middle of the burst: its handoffs are in flight
            // (every transfer takes 1.5 s), some of them leased to it.
            cluster.crash(victim).await;
        }
        figures.sent += 1;
        let request_id = format!("burst-{replicas}-{n}");
        // The runtime retries on another replica with the same
        // request id when one does not answer.
        let mut created = None;
        for attempt in 0..replicas {
            let index = (n + attempt) % replicas;
            let mut call = tonic::Request::new(request(&request_id, queue("support")));
            call.set_timeout(Duration::from_secs(5));
            if let Ok(response) = clients[index].create_handoff(call).await {
                created = Some((index, response.into_inner()));
                break;
            }
        }
        let Some((index, response)) = created else {
            continue;
        };
        let id = response.handoff.expect("handoff").id;
        acknowledged.insert(id.clone(), index);
        // Watch from a survivor, usually not the replica that dispatches.
        let watcher = survivors[n % survivors.len()];
        watchers.push((
            id.clone(),
            tokio::spawn(watch_to_end(
                clients[watcher].clone(),
                id,
                Duration::from_secs(60),
            )),
        ));
    }
    figures.acknowledged = acknowledged.len();

    let mut completed = Vec::new();
    let mut problems = Vec::new();
    for (id, watcher) in watchers {
        match watcher.await.expect("watch task") {
            Some(events) => {
                let sequences: Vec<u64> = events.iter().map(|e| e.sequence).collect();
                let expected: Vec<u64> = (1..=events.len() as u64).collect();
                let kinds: Vec<K> = events.iter().map(|e| e.kind()).collect();
                if sequences != expected || kinds != EXPECTED {
                    problems.push(format!("{id}: saw {kinds:?} at {sequences:?}"));
                }
                if kinds.last() == Some(&K::Completed) {
                    completed.push(id);
                }
            }
            None => problems.push(format!("{id}: did not end within 60 s")),
        }
    }
    figures.completed = completed.len();

    // The store agrees, read through a survivor.
    let mut survivor = cluster.client(survivors[0]).await;
    for id in acknowledged.keys() {
        let handoff = survivor
            .get_handoff(GetHandoffRequest {
                handoff_id: id.clone(),
            })
            .await
            .map(|r| r.into_inner().handoff.expect("handoff").state());
        if handoff.as_ref().ok() != Some(&HandoffState::Completed) {
            figures.lost += 1;
            problems.push(format!("{id}: stored as {handoff:?}"));
        }
    }
    let transfers = cluster.transfers_by_handoff();
    for id in acknowledged.keys() {
        match transfers.get(id).copied().unwrap_or(0) {
            1 => {}
            0 => problems.push(format!("{id}: never transferred")),
            n => {
                figures.duplicated += 1;
                problems.push(format!("{id}: transferred {n} times"));
            }
        }
    }
    figures.print(&format!(
        "{replicas} replicas on PostgreSQL, one killed mid-burst"
    ));

    // The victim was dispatching some of them when it died: they were
    // taken over, not started again.
    let survivor_logs = cluster.logs();
    let taken_over = survivor_logs.matches("resuming handoff").count();
    println!("handoffs taken over from the killed replica: {taken_over}");
    assert!(problems.is_empty(), "{problems:#?}\nlogs:\n{survivor_logs}");
    assert_eq!(
        figures.acknowledged, figures.sent,
        "the runtime's retries found a replica"
    );
    assert_eq!(figures.completed, figures.acknowledged);
    assert!(taken_over > 0, "nothing was taken over:\n{survivor_logs}");
    assert!(
        cluster.connector.logs().contains("StartTransfer repeated"),
        "the survivors re-attached to the killed replica's transfers"
    );
}

#[tokio::test]
async fn two_replicas_take_over_from_a_killed_one() {
    burst_with_a_replica_killed(2, 30).await;
}

#[tokio::test]
async fn three_replicas_take_over_from_a_killed_one() {
    burst_with_a_replica_killed(3, 45).await;
}

/// A replica dies while its handoff rings; the handoff's deadline passes
/// before its lease expires. The replica that takes it over fails it with
/// DEADLINE_EXCEEDED, and the runtime watching another replica sees it.
#[tokio::test]
async fn a_dead_replicas_handoff_past_its_deadline_fails_clearly() {
    let mut cluster = Cluster::start(2).await;
    let mut creator = cluster.client(0).await;
    let watcher = cluster.client(1).await;
    let mut with_deadline = request("deadline-on-a-dead-replica", queue("hold"));
    with_deadline.timeout =
        Some(prost_types::Duration::try_from(Duration::from_secs(1)).expect("duration"));
    let id = baton_tests::create_handoff(&mut creator, with_deadline).await;
    let watch = tokio::spawn(watch_to_end(watcher, id.clone(), Duration::from_secs(30)));
    // Ringing: the transfer started; then the replica dies.
    for _ in 0..100 {
        if cluster.transfers_by_handoff().contains_key(&id) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    cluster.crash(0).await;

    let events = watch
        .await
        .expect("watch task")
        .expect("the handoff ends although its replica died");
    let last = events.last().expect("events");
    assert_eq!(last.kind(), K::Failed, "{events:?}");
    let failure = last.failure.as_ref().expect("failure");
    assert_eq!(
        failure.reason(),
        baton_proto::types::v1::FailureReason::DeadlineExceeded
    );
    assert!(failure.detail.contains("deadline"), "{failure:?}");
    let sequences: Vec<u64> = events.iter().map(|e| e.sequence).collect();
    assert_eq!(sequences, (1..=events.len() as u64).collect::<Vec<_>>());
    assert_eq!(cluster.transfers_by_handoff().get(&id), Some(&1));
}
