//! The handoff log's contract: creates are idempotent per tenant and
//! request, every event goes through the state machine in order, reads see
//! exactly what writes returned, and a shared store announces every event.

use std::sync::Arc;
use std::time::Duration;

use baton_control::convert::context::{context, encode_context};
use baton_control::domain::{
    Attempt, ConcreteTarget, ConnectorPosition, DEFAULT_TENANT, Durability, EventKind,
    FailureReason, HandoffState, NewEvent, PlannedTarget, WrapUp,
};
use baton_control::store::{CreateOutcome, HandoffStore, Notice, StoreError};
use baton_proto::types::v1 as pb;

use crate::{Backend, LONG, create_leased, first_attempt, handoff, unique};

contract_suite!(
    create_is_idempotent_and_durable,
    events_acknowledged_before_sync_are_stored_in_order,
    a_reused_request_id_returns_the_original_request,
    concurrent_creates_with_one_key_store_one_handoff,
    tenants_are_isolated,
    append_goes_through_the_state_machine_and_dedupes_connector_events,
    list_pages_newest_first_within_the_tenant,
    what_a_write_returns_is_what_a_read_finds,
    a_shared_store_announces_every_event,
);

async fn create_is_idempotent_and_durable(backend: &impl Backend) {
    let store = backend.open().await;
    let request_id = unique("r");
    let first = handoff(&request_id);
    let CreateOutcome {
        handoff: created,
        created_event,
    } = store
        .create(first.clone(), None, None)
        .await
        .expect("create");
    let event = created_event.expect("a new handoff");
    assert_eq!(event.sequence, 1);
    assert_eq!(event.kind, EventKind::Created);
    assert_eq!(created.last_sequence, 1);
    assert_eq!(created.state, HandoffState::Pending);
    assert_eq!(context(&created.context).summary, "s");
    assert_eq!(created.plan, first.plan);
    let retry = store
        .create(handoff(&request_id), None, None)
        .await
        .expect("retry");
    assert!(retry.created_event.is_none());
    assert_eq!(retry.handoff.id, first.id);
    drop(store);

    let reopened = backend.open().await;
    let stored = reopened.get(DEFAULT_TENANT, &first.id).await.expect("get");
    assert_eq!(stored.id, first.id);
    assert_eq!(stored.request_id, request_id);
    assert_eq!(
        reopened.find_by_id(&first.id).await.expect("find").id,
        first.id
    );
    let retry = reopened
        .create(handoff(&request_id), None, None)
        .await
        .expect("retry after reopening");
    assert!(retry.created_event.is_none());
    assert_eq!(retry.handoff.id, first.id);
}

/// TARGET_STARTED is acknowledged before it is synced (`Durability::Written`),
/// yet it is stored like any event: read back at once, kept when the store
/// is reopened, and made durable by the synced write that follows.
async fn events_acknowledged_before_sync_are_stored_in_order(backend: &impl Backend) {
    let store = backend.open().await;
    let h = handoff(&unique("written"));
    store.create(h.clone(), None, None).await.expect("create");
    let started = NewEvent::new(EventKind::TargetStarted).attempt(first_attempt(&h));
    assert_eq!(started.durability(), Durability::Written);
    let (after_start, _) = store
        .append(DEFAULT_TENANT, &h.id, started)
        .await
        .expect("start");
    assert_eq!(after_start.state, HandoffState::Routing);
    let cancel = NewEvent::new(EventKind::Cancelled);
    assert_eq!(cancel.durability(), Durability::Synced);
    store
        .append(DEFAULT_TENANT, &h.id, cancel)
        .await
        .expect("cancel");
    drop(store);

    let reopened = backend.open().await;
    let kinds: Vec<EventKind> = reopened
        .events_after(DEFAULT_TENANT, &h.id, 0, 10)
        .await
        .expect("events")
        .into_iter()
        .map(|e| e.kind)
        .collect();
    assert_eq!(
        kinds,
        [
            EventKind::Created,
            EventKind::TargetStarted,
            EventKind::Cancelled
        ]
    );
}

/// The same key with another body returns the stored handoff, whose
/// fingerprint differs from the new request's: the API answers
/// REQUEST_ID_REUSED instead of creating or transferring anything.
async fn a_reused_request_id_returns_the_original_request(backend: &impl Backend) {
    let store = backend.open().await;
    let request_id = unique("reused");
    let original = handoff(&request_id);
    store
        .create(original.clone(), None, None)
        .await
        .expect("create");
    let mut other = handoff(&request_id);
    other.request_fingerprint = "another body".into();
    other.context = encode_context(&pb::HandoffContext {
        summary: "another summary".into(),
        ..Default::default()
    });
    let outcome = store.create(other, None, None).await.expect("create again");
    assert!(outcome.created_event.is_none());
    assert_eq!(outcome.handoff.id, original.id);
    assert_eq!(outcome.handoff.request_fingerprint, "f");
    assert_eq!(context(&outcome.handoff.context).summary, "s");
}

async fn concurrent_creates_with_one_key_store_one_handoff(backend: &impl Backend) {
    let store = backend.open().await;
    let request_id = unique("race");
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let store = store.clone();
        let h = handoff(&request_id);
        tasks.push(tokio::spawn(
            async move { store.create(h, None, None).await },
        ));
    }
    let mut created = 0;
    let mut ids = std::collections::BTreeSet::new();
    for task in tasks {
        let outcome = task.await.expect("task").expect("create");
        created += usize::from(outcome.created_event.is_some());
        ids.insert(outcome.handoff.id);
    }
    assert_eq!(created, 1, "exactly one create stored the handoff");
    assert_eq!(ids.len(), 1, "every caller got the same handoff");
}

async fn tenants_are_isolated(backend: &impl Backend) {
    let store = backend.open().await;
    let request_id = unique("t");
    let mine = handoff(&request_id);
    create_leased(&store, &mine, "replica-a", LONG).await;
    assert!(matches!(
        store.get("other", &mine.id).await,
        Err(StoreError::NotFound)
    ));
    assert!(matches!(
        store.events_after("other", &mine.id, 0, 10).await,
        Err(StoreError::NotFound)
    ));
    assert!(matches!(
        store
            .append("other", &mine.id, NewEvent::new(EventKind::Cancelled))
            .await,
        Err(StoreError::NotFound)
    ));
    assert!(
        !store
            .renew_lease("other", &mine.id, "replica-a", LONG)
            .await
            .unwrap_or(false)
    );
    // The same request id in another tenant is another handoff.
    let mut theirs = handoff(&request_id);
    theirs.tenant = "other".into();
    let outcome = store
        .create(theirs.clone(), None, None)
        .await
        .expect("create other");
    assert!(outcome.created_event.is_some());
    assert_eq!(outcome.handoff.id, theirs.id);
    assert_eq!(
        store
            .get(DEFAULT_TENANT, &mine.id)
            .await
            .expect("mine")
            .state,
        HandoffState::Pending
    );
}

async fn append_goes_through_the_state_machine_and_dedupes_connector_events(
    backend: &impl Backend,
) {
    let store = backend.open().await;
    let h = handoff(&unique("r"));
    store.create(h.clone(), None, None).await.expect("create");
    let attempt = first_attempt(&h);
    let illegal = store
        .append(DEFAULT_TENANT, &h.id, NewEvent::new(EventKind::Completed))
        .await;
    assert!(matches!(illegal, Err(StoreError::IllegalTransition(_))));

    store
        .append(
            DEFAULT_TENANT,
            &h.id,
            NewEvent::new(EventKind::TargetStarted).attempt(attempt.clone()),
        )
        .await
        .expect("start");
    let mut ringing = NewEvent::new(EventKind::Ringing).attempt(attempt.clone());
    ringing.connector_position = Some(ConnectorPosition {
        run_id: "run-1".into(),
        sequence: 1,
    });
    let (after, record) = store
        .append(DEFAULT_TENANT, &h.id, ringing.clone())
        .await
        .expect("ring");
    assert_eq!(after.state, HandoffState::Ringing);
    assert_eq!(record.sequence, 3);
    assert_eq!(after.current_attempt.expect("attempt").number, 1);
    assert!(matches!(
        store.append(DEFAULT_TENANT, &h.id, ringing).await,
        Err(StoreError::Duplicate)
    ));
    assert_eq!(
        store.last_connector_position(&h.id, 1).await.expect("seq"),
        Some(("run-1".to_string(), 1))
    );
    // The same sequence in a new run (a restarted connector) is new.
    let mut restarted = NewEvent::new(EventKind::Ringing).attempt(attempt.clone());
    restarted.connector_position = Some(ConnectorPosition {
        run_id: "run-2".into(),
        sequence: 1,
    });
    store
        .append(DEFAULT_TENANT, &h.id, restarted)
        .await
        .expect("a restarted run is recorded");

    let events = store
        .events_after(DEFAULT_TENANT, &h.id, 1, 10)
        .await
        .expect("events");
    assert_eq!(
        events.iter().map(|e| e.sequence).collect::<Vec<_>>(),
        [2, 3, 4]
    );
    assert_eq!(
        events[1].attempt.as_ref().expect("attempt").planned,
        h.plan[0]
    );
    assert!(
        store
            .in_flight()
            .await
            .expect("in flight")
            .iter()
            .any(|x| x.id == h.id)
    );
    let (cancelled, _) = store
        .append(
            DEFAULT_TENANT,
            &h.id,
            NewEvent::new(EventKind::Cancelled).failure(baton_control::domain::Failure::new(
                FailureReason::Cancelled,
                "by the test",
            )),
        )
        .await
        .expect("cancel");
    assert_eq!(cancelled.state, HandoffState::Cancelled);
    assert_eq!(cancelled.failure.expect("failure").detail, "by the test");
    assert!(
        !store
            .in_flight()
            .await
            .expect("in flight")
            .iter()
            .any(|x| x.id == h.id)
    );
}

async fn list_pages_newest_first_within_the_tenant(backend: &impl Backend) {
    let store = backend.open().await;
    let tenant = unique("list");
    let mut ids = Vec::new();
    for i in 0..5 {
        let mut h = handoff(&format!("r{i}"));
        h.tenant = tenant.clone();
        ids.push(h.id.clone());
        store.create(h, None, None).await.expect("create");
    }
    store
        .create(handoff(&unique("r")), None, None)
        .await
        .expect("create in another tenant");

    let page = store.list(&tenant, &[], 3, None).await.expect("page 1");
    assert_eq!(
        page.iter().map(|h| &h.id).collect::<Vec<_>>(),
        [&ids[4], &ids[3], &ids[2]]
    );
    let page = store
        .list(&tenant, &[HandoffState::Pending], 3, Some(&ids[2]))
        .await
        .expect("page 2");
    assert_eq!(
        page.iter().map(|h| &h.id).collect::<Vec<_>>(),
        [&ids[1], &ids[0]]
    );
    assert!(
        store
            .list(&tenant, &[HandoffState::Failed], 3, None)
            .await
            .expect("none")
            .is_empty()
    );
}

async fn what_a_write_returns_is_what_a_read_finds(backend: &impl Backend) {
    let store = backend.open().await;
    let mut h = handoff(&unique("returned"));
    h.plan.push(PlannedTarget {
        connector: "q".into(),
        target: ConcreteTarget::Queue {
            name: "billing".into(),
            skills: vec!["es".into()],
        },
    });
    let outcome = store.create(h.clone(), None, None).await.expect("create");
    let read = |store: Arc<dyn HandoffStore>, id: String| async move {
        store.get(DEFAULT_TENANT, &id).await.expect("get")
    };
    assert_eq!(outcome.handoff, read(store.clone(), h.id.clone()).await);
    let second = Attempt {
        number: 2,
        planned: h.plan[1].clone(),
    };
    let queued = baton_control::domain::QueueStatus {
        position: 3,
        estimated_wait: Duration::from_millis(42_000),
    };
    let events = [
        NewEvent::new(EventKind::TargetStarted).attempt(first_attempt(&h)),
        NewEvent::new(EventKind::TargetFailed)
            .attempt(first_attempt(&h))
            .failure(baton_control::domain::Failure::new(
                FailureReason::Busy,
                "busy",
            )),
        NewEvent::new(EventKind::TargetStarted).attempt(second.clone()),
        NewEvent {
            queue_status: Some(queued),
            ..NewEvent::new(EventKind::Queued).attempt(second.clone())
        },
        NewEvent::new(EventKind::Queued).attempt(second.clone()),
        NewEvent::new(EventKind::Ringing).attempt(second.clone()),
        NewEvent::new(EventKind::Connected).attempt(second.clone()),
        NewEvent {
            wrap_up: Some(WrapUp {
                disposition: "resolved".into(),
                notes: "refunded".into(),
                ..WrapUp::default()
            }),
            ..NewEvent::new(EventKind::Completed).attempt(second.clone())
        },
    ];
    for event in events {
        let kind = event.kind;
        let (returned, _) = store
            .append(DEFAULT_TENANT, &h.id, event)
            .await
            .unwrap_or_else(|e| panic!("{kind:?}: {e}"));
        assert_eq!(
            returned,
            read(store.clone(), h.id.clone()).await,
            "after {kind:?}"
        );
        if kind == EventKind::Queued {
            assert_eq!(returned.queue_status, Some(queued), "kept while queued");
        }
    }
}

async fn a_shared_store_announces_every_event(backend: &impl Backend) {
    let store = backend.open().await;
    let notices = store.listen().await.expect("listen");
    let Some(mut notices) = notices else {
        assert!(!backend.shared(), "a shared store must announce events");
        return;
    };
    assert!(
        backend.shared(),
        "a store of one process needs no announcements"
    );
    // Another replica's store records; this one hears of it.
    let writer = backend.open().await;
    let h = handoff(&unique("notice"));
    writer.create(h.clone(), None, None).await.expect("create");
    writer
        .append(DEFAULT_TENANT, &h.id, NewEvent::new(EventKind::Cancelled))
        .await
        .expect("cancel");
    let mut sequences = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), async {
        while sequences.len() < 2 {
            match notices.recv().await.expect("notices keep coming") {
                Notice::Recorded(notice) if notice.handoff_id == h.id => {
                    assert_eq!(notice.tenant, DEFAULT_TENANT);
                    sequences.push(notice.sequence);
                }
                _ => {}
            }
        }
    })
    .await
    .expect("both events announced");
    assert_eq!(sequences, [1, 2]);
}
