//! The dispatch leases' contract: one owner at a time, taken over only
//! once released or expired, gone when the handoff ends, orphans shared
//! out without a handoff claimed twice, appends fenced by the lease, and
//! the resume position of each attempt.

use std::sync::Arc;
use std::time::Duration;

use baton_control::domain::{
    Attempt, ConnectorPosition, DEFAULT_TENANT, EventKind, HandoffState, NewEvent,
};
use baton_control::store::{HandoffStore, NewLease, StoreError};

use crate::{Backend, LONG, create_leased, first_attempt, handoff, unique};

contract_suite!(
    a_lease_has_one_owner_until_released_or_expired,
    a_retried_create_takes_no_lease,
    an_ended_handoff_has_no_lease,
    concurrent_claims_share_out_the_orphans,
    appends_are_fenced_by_the_lease,
    the_resume_position_is_per_attempt_and_connector_run,
);

/// Whether `owner` may renew its lease of `id`, that is, still holds it.
async fn renews(store: &Arc<dyn HandoffStore>, id: &str, owner: &str) -> bool {
    store
        .renew_lease(DEFAULT_TENANT, id, owner, LONG)
        .await
        .expect("renew")
}

async fn a_lease_has_one_owner_until_released_or_expired(backend: &impl Backend) {
    let store = backend.open().await;
    let h = handoff(&unique("lease"));
    create_leased(&store, &h, "a", LONG).await;
    let id = h.id.as_str();
    let claimed_by = |owner: &'static str| {
        let store = store.clone();
        async move {
            let orphans = store.claim_orphans(owner, LONG, 100).await.expect("claim");
            orphans.into_iter().find(|x| x.id == id)
        }
    };
    assert!(
        claimed_by("b").await.is_none(),
        "a holds it from the create"
    );
    assert!(renews(&store, id, "a").await, "a renews");
    assert!(!renews(&store, id, "b").await, "b cannot renew");

    // Released: the next claim takes it.
    store
        .release_lease(DEFAULT_TENANT, id, "b")
        .await
        .expect("b's release is a no-op");
    assert!(claimed_by("b").await.is_none(), "still a's");
    store
        .release_lease(DEFAULT_TENANT, id, "a")
        .await
        .expect("a releases");
    let claimed = claimed_by("b").await.expect("b claimed it");
    assert_eq!(claimed.state, HandoffState::Pending);
    assert!(!renews(&store, id, "a").await, "a lost it");
    assert!(claimed_by("a").await.is_none(), "b's now");

    // Expired: another owner takes over, and the old owner cannot renew.
    let brief = handoff(&unique("brief"));
    create_leased(&store, &brief, "a", Duration::from_millis(1)).await;
    tokio::time::sleep(Duration::from_millis(50)).await;
    let orphans = store.claim_orphans("c", LONG, 100).await.expect("claim");
    assert!(
        orphans.iter().any(|x| x.id == brief.id),
        "an expired lease is an orphan"
    );
    assert!(!renews(&store, &brief.id, "a").await, "taken over");
    assert!(renews(&store, &brief.id, "c").await, "c renews");
}

async fn a_retried_create_takes_no_lease(backend: &impl Backend) {
    let store = backend.open().await;
    let h = handoff(&unique("retry"));
    create_leased(&store, &h, "a", LONG).await;
    let lease = NewLease {
        owner: "b",
        ttl: LONG,
    };
    let again = store
        .create(h.clone(), None, Some(lease))
        .await
        .expect("create again");
    assert!(again.created_event.is_none());
    assert!(!renews(&store, &h.id, "b").await, "renew");
    assert!(renews(&store, &h.id, "a").await, "renew");
}

async fn an_ended_handoff_has_no_lease(backend: &impl Backend) {
    let store = backend.open().await;
    let h = handoff(&unique("ended"));
    create_leased(&store, &h, "a", LONG).await;
    store
        .append(DEFAULT_TENANT, &h.id, NewEvent::new(EventKind::Cancelled))
        .await
        .expect("cancel");
    assert!(!renews(&store, &h.id, "a").await, "renew");
    let orphans = store.claim_orphans("b", LONG, 100).await.expect("claim");
    assert!(!orphans.iter().any(|x| x.id == h.id));
}

async fn concurrent_claims_share_out_the_orphans(backend: &impl Backend) {
    let first = backend.open().await;
    // A second replica's own store; one process owns an embedded store.
    let second = if backend.shared() {
        backend.open().await
    } else {
        first.clone()
    };
    // Leave no older orphans around from other cases.
    while !first
        .claim_orphans("sweeper", LONG, 1000)
        .await
        .expect("sweep")
        .is_empty()
    {}
    let mut ids = std::collections::BTreeSet::new();
    for _ in 0..40 {
        let h = handoff(&unique("orphan"));
        ids.insert(h.id.clone());
        first.create(h, None, None).await.expect("create");
    }
    let mut claims = Vec::new();
    for (n, store) in [first.clone(), second.clone(), first, second]
        .into_iter()
        .enumerate()
    {
        claims.push(tokio::spawn(async move {
            let owner = format!("replica-{n}");
            let mut mine = Vec::new();
            for _ in 0..20 {
                let claimed = store.claim_orphans(&owner, LONG, 3).await.expect("claim");
                if claimed.is_empty() {
                    break;
                }
                mine.extend(claimed.into_iter().map(|h| h.id));
            }
            mine
        }));
    }
    let mut claimed = Vec::new();
    for claim in claims {
        claimed.extend(claim.await.expect("task"));
    }
    let distinct: std::collections::BTreeSet<String> = claimed.iter().cloned().collect();
    assert_eq!(
        claimed.len(),
        distinct.len(),
        "no handoff was claimed twice"
    );
    assert_eq!(distinct, ids, "every orphan was claimed");
}

/// Only the lease's holder records through `append_leased`: a replica
/// that lost the handoff to another cannot record over it.
async fn appends_are_fenced_by_the_lease(backend: &impl Backend) {
    let store = backend.open().await;
    let h = handoff(&unique("fenced"));
    create_leased(&store, &h, "a", LONG).await;
    let attempt = first_attempt(&h);
    let event = |kind| NewEvent::new(kind).attempt(attempt.clone());
    store
        .append_leased(DEFAULT_TENANT, &h.id, event(EventKind::TargetStarted), "a")
        .await
        .expect("the holder records");
    assert!(matches!(
        store
            .append_leased(DEFAULT_TENANT, &h.id, event(EventKind::Ringing), "b")
            .await,
        Err(StoreError::LeaseLost)
    ));

    // Taken over: the old holder no longer records, the new one does.
    store
        .release_lease(DEFAULT_TENANT, &h.id, "a")
        .await
        .expect("release");
    let claimed = store.claim_orphans("b", LONG, 1000).await.expect("claim");
    assert!(claimed.iter().any(|x| x.id == h.id));
    assert!(matches!(
        store
            .append_leased(DEFAULT_TENANT, &h.id, event(EventKind::Ringing), "a")
            .await,
        Err(StoreError::LeaseLost)
    ));
    let (ringing, record) = store
        .append_leased(DEFAULT_TENANT, &h.id, event(EventKind::Ringing), "b")
        .await
        .expect("the new holder records");
    assert_eq!(ringing.state, HandoffState::Ringing);
    assert_eq!(record.sequence, 3, "nothing of a's refused events was kept");
}

/// Where a replica taking a handoff over resumes each attempt's connector
/// stream: the connector position of the last event recorded for that
/// attempt, whatever its run, kept across a reopening.
async fn the_resume_position_is_per_attempt_and_connector_run(backend: &impl Backend) {
    let store = backend.open().await;
    let mut h = handoff(&unique("resume"));
    h.plan.push(h.plan[0].clone());
    store.create(h.clone(), None, None).await.expect("create");
    assert_eq!(
        store.last_connector_position(&h.id, 1).await.expect("read"),
        None
    );
    let first = first_attempt(&h);
    let second = Attempt {
        number: 2,
        planned: h.plan[1].clone(),
    };
    let reported = |attempt: &Attempt, kind, run: &str, sequence| {
        let mut event = NewEvent::new(kind).attempt(attempt.clone());
        event.connector_position = Some(ConnectorPosition {
            run_id: run.into(),
            sequence,
        });
        event
    };
    let events = [
        NewEvent::new(EventKind::TargetStarted).attempt(first.clone()),
        reported(&first, EventKind::Ringing, "run-1", 1),
        reported(&first, EventKind::Ringing, "run-1", 2),
        // The connector restarted and numbers its events from 1 again.
        reported(&first, EventKind::TargetFailed, "run-2", 1),
        NewEvent::new(EventKind::TargetStarted).attempt(second.clone()),
        reported(&second, EventKind::Ringing, "run-9", 5),
    ];
    for event in events {
        let kind = event.kind;
        store
            .append(DEFAULT_TENANT, &h.id, event)
            .await
            .unwrap_or_else(|e| panic!("{kind:?}: {e}"));
    }
    drop(store);
    let store = backend.open().await;
    assert_eq!(
        store.last_connector_position(&h.id, 1).await.expect("read"),
        Some(("run-2".to_string(), 1))
    );
    assert_eq!(
        store.last_connector_position(&h.id, 2).await.expect("read"),
        Some(("run-9".to_string(), 5))
    );
    assert_eq!(
        store.last_connector_position(&h.id, 3).await.expect("read"),
        None
    );
}
