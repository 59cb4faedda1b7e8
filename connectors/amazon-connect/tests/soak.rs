//! Transfers arriving at twice Amazon Connect's default quota (2 requests
//! per second per operation, a burst of 5) queue in the connector, with the
//! wait reported as QUEUED, and the contract server, which throttles at
//! that quota, never answers 429.

mod common;

use std::time::Duration;

use baton_proto::connector::v1::TransferEventKind as Kind;
use common::*;

/// Transfers in the soak, and how far apart they start: 4 per second,
/// twice the quota (each transfer calls every operation at least once).
const TRANSFERS: u32 = 12;
const SPACING: Duration = Duration::from_millis(250);

#[tokio::test]
async fn transfers_at_twice_the_quota_queue_in_the_connector_and_are_never_throttled() {
    let server = ContractServer::start().await;
    let config = config(&server);
    assert_eq!(
        (config.rate_per_second, config.burst),
        (2.0, 5),
        "the defaults"
    );
    let grpc = start_connector(config).await;

    let mut running = Vec::new();
    for i in 0..TRANSFERS {
        let contact = contact_id("TASK", 1000 + i);
        running.push(tokio::spawn(transfer(
            grpc,
            request(&format!("h-soak-{i}"), &contact, "instant"),
        )));
        tokio::time::sleep(SPACING).await;
    }
    let mut connected = 0;
    let mut paced = 0;
    let mut longest_wait = Duration::ZERO;
    for handle in running {
        let events = handle.await.expect("transfer task");
        let kinds = kinds(&events);
        assert_eq!(kinds.last(), Some(&Kind::Completed), "{events:#?}");
        if kinds.contains(&Kind::Connected) {
            connected += 1;
        }
        let waits: Vec<Duration> = events
            .iter()
            .filter(|e| e.kind == Kind::Queued as i32 && e.detail.contains("rate limit"))
            .filter_map(|e| e.estimated_wait.and_then(|d| Duration::try_from(d).ok()))
            .collect();
        if !waits.is_empty() {
            paced += 1;
        }
        longest_wait = waits.into_iter().fold(longest_wait, Duration::max);
    }
    let stats = server.stats().await;
    println!(
        "soak: {TRANSFERS} transfers at 4/s; {connected} connected; {paced} waited for the rate limit, longest reported wait {} ms; server: {} requests, {} throttled; by operation {}",
        longest_wait.as_millis(),
        stats["requests"],
        stats["throttled"],
        stats["by_operation"]
    );
    assert_eq!(connected, TRANSFERS);
    assert_eq!(stats["throttled"], 0, "{stats}");
    server.assert_all_accepted().await;
    assert!(paced > 0, "transfers beyond the burst report their wait");
    assert!(!longest_wait.is_zero());
}
