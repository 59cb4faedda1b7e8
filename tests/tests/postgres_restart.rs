//! PostgreSQL restarted under load: while it is down the control service
//! says so honestly (UNAVAILABLE with retry information, readiness
//! NOT_SERVING); once it is back the service serves again, and every
//! acknowledged handoff completes with exactly one transfer. Watchers on a
//! second replica, following handoffs through the restart, see every event.

mod common;

use std::collections::BTreeSet;
use std::time::Duration;

use baton_proto::handoff::v1::*;
use common::cluster::{Cluster, Figures, watch_to_end};
use common::{queue, request};
use tonic::Code;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_client::HealthClient;
use tonic_types::StatusExt;

/// The overall readiness of a replica: SERVING is 1, NOT_SERVING 2.
async fn readiness(endpoint: &str) -> i32 {
    let Ok(endpoint) = tonic::transport::Endpoint::from_shared(endpoint.to_owned()) else {
        return 0;
    };
    let Ok(channel) = endpoint.connect().await else {
        return 0;
    };
    let mut client = HealthClient::new(channel);
    client
        .check(HealthCheckRequest {
            service: String::new(),
        })
        .await
        .map(|r| r.into_inner().status)
        .unwrap_or(0)
}

/// Polls readiness until it is `status`, at most 100 times.
async fn wait_readiness(endpoint: &str, status: i32) -> bool {
    for _ in 0..100 {
        if readiness(endpoint).await == status {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    false
}

type Client = baton_proto::handoff::v1::handoff_service_client::HandoffServiceClient<
    tonic::transport::Channel,
>;

async fn create(client: &mut Client, request_id: String) -> Result<String, tonic::Status> {
    let mut call = tonic::Request::new(request(&request_id, queue("support")));
    call.set_timeout(Duration::from_secs(10));
    client
        .create_handoff(call)
        .await
        .map(|r| r.into_inner().handoff.expect("handoff").id)
}

#[tokio::test]
async fn a_postgres_restart_under_load_loses_no_acknowledged_handoff() {
    let cluster = Cluster::start(2).await;
    let endpoint = cluster.replica(0).endpoint("grpc");
    let mut client = cluster.client(0).await;
    let mut figures = Figures::default();
    let mut acknowledged = BTreeSet::new();
    let mut unavailable = 0;

    // Load before the restart: these are in flight when the database goes.
    for n in 0..15 {
        figures.sent += 1;
        let id = create(&mut client, format!("before-{n}"))
            .await
            .expect("create while the database is up");
        acknowledged.insert(id);
    }

    // Followed through the restart from the other replica.
    let watcher = cluster.client(1).await;
    let through_the_restart: Vec<_> = acknowledged
        .iter()
        .map(|id| {
            (
                id.clone(),
                tokio::spawn(watch_to_end(
                    watcher.clone(),
                    id.clone(),
                    Duration::from_secs(60),
                )),
            )
        })
        .collect();

    cluster.postgres.stop().expect("stop PostgreSQL");
    assert!(
        wait_readiness(&endpoint, 2).await,
        "readiness must turn NOT_SERVING while the database is down"
    );
    // Calls fail honestly, telling the caller to retry.
    let mut refused = Vec::new();
    for n in 0..5 {
        figures.sent += 1;
        let request_id = format!("during-{n}");
        match create(&mut client, request_id.clone()).await {
            Ok(id) => {
                acknowledged.insert(id);
            }
            Err(status) => {
                unavailable += 1;
                assert_eq!(status.code(), Code::Unavailable, "{status:?}");
                let retry = status.get_details_retry_info();
                assert!(retry.is_some(), "UNAVAILABLE carries RetryInfo: {status:?}");
                refused.push(request_id);
            }
        }
    }
    assert!(unavailable > 0, "the database was down");

    cluster
        .postgres
        .start_again()
        .expect("start PostgreSQL again");
    assert!(
        wait_readiness(&endpoint, 1).await,
        "readiness must return to SERVING once the database is back"
    );
    // The runtime retries what was refused (same request ids), then goes on.
    for request_id in refused {
        let id = create(&mut client, request_id)
            .await
            .expect("a retried create succeeds once the database is back");
        acknowledged.insert(id);
    }
    for n in 0..10 {
        figures.sent += 1;
        let id = create(&mut client, format!("after-{n}"))
            .await
            .expect("create after the restart");
        acknowledged.insert(id);
    }
    figures.acknowledged = acknowledged.len();

    let mut problems = Vec::new();
    for id in &acknowledged {
        match watch_to_end(client.clone(), id.clone(), Duration::from_secs(60)).await {
            Some(events) => {
                let sequences: Vec<u64> = events.iter().map(|e| e.sequence).collect();
                let expected: Vec<u64> = (1..=events.len() as u64).collect();
                if sequences != expected {
                    problems.push(format!("{id}: sequences {sequences:?}"));
                }
                match events.last().map(|e| e.kind()) {
                    Some(HandoffEventKind::Completed) => figures.completed += 1,
                    other => {
                        figures.lost += 1;
                        problems.push(format!("{id}: ended with {other:?}: {events:?}"));
                    }
                }
            }
            None => {
                figures.lost += 1;
                problems.push(format!("{id}: did not end"));
            }
        }
    }
    for (id, watch) in through_the_restart {
        match watch.await.expect("watch task") {
            Some(events) => {
                let sequences: Vec<u64> = events.iter().map(|e| e.sequence).collect();
                let expected: Vec<u64> = (1..=events.len() as u64).collect();
                if sequences != expected
                    || events.last().map(|e| e.kind()) != Some(HandoffEventKind::Completed)
                {
                    problems.push(format!("{id}: watched through the restart: {events:?}"));
                }
            }
            None => problems.push(format!("{id}: the watch through the restart did not end")),
        }
    }
    let transfers = cluster.transfers_by_handoff();
    for id in &acknowledged {
        let n = transfers.get(id).copied().unwrap_or(0);
        if n > 1 {
            figures.duplicated += 1;
        }
        if n != 1 {
            problems.push(format!("{id}: transferred {n} times"));
        }
    }
    figures.print("PostgreSQL restarted under load");
    println!("calls refused with UNAVAILABLE while the database was down: {unavailable}");
    assert!(
        problems.is_empty(),
        "{problems:#?}\nlogs:\n{}",
        cluster.logs()
    );
    assert_eq!(figures.completed, figures.acknowledged);
    // Both replicas listen for each other's events again.
    for index in [0, 1] {
        let logs = cluster.replica(index).logs();
        assert!(
            logs.contains("listening for event notifications again"),
            "replica {index}:\n{logs}"
        );
    }
}
