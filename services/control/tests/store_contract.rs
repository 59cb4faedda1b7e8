//! The store contract, run against both backends: the embedded SQLite
//! store and PostgreSQL (a real throwaway server from Debian's packages;
//! the test fails when PostgreSQL is missing). Each case gets a fresh
//! store: a new directory, or a new database.

use std::sync::Arc;
use std::time::Duration;

use baton_control::domain::{
    Attempt, ConcreteTarget, ConnectorPosition, DEFAULT_TENANT, Durability, EventKind, Handoff,
    HandoffState, NewEvent, PlannedTarget, TransferMode,
};
use baton_control::store::{
    AuditAction, AuditEntry, CreateOutcome, HandoffStore, NewLease, Notice, PgStore, SqliteStore,
    StoreError,
};
use baton_proto::types::v1 as pb;
use baton_tests::postgres::Postgres;

/// A place to keep one store's data, which can be opened (again).
trait Backend {
    async fn open(&self) -> Arc<dyn HandoffStore>;
    /// Whether several processes share the store (and announce events).
    fn shared(&self) -> bool;
}

struct Sqlite(tempfile::TempDir);

impl Backend for Sqlite {
    async fn open(&self) -> Arc<dyn HandoffStore> {
        Arc::new(SqliteStore::open(self.0.path()).expect("open the SQLite store"))
    }
    fn shared(&self) -> bool {
        false
    }
}

struct Pg(String);

impl Backend for Pg {
    async fn open(&self) -> Arc<dyn HandoffStore> {
        Arc::new(
            PgStore::connect(&self.0, 8, Duration::from_secs(5))
                .await
                .expect("open the PostgreSQL store"),
        )
    }
    fn shared(&self) -> bool {
        true
    }
}

/// Runs every case against fresh stores from `fresh`.
macro_rules! contract {
    ($fresh:expr, $($case:ident),+ $(,)?) => {
        $(
            println!("store contract: {}", stringify!($case));
            $case(&$fresh).await;
        )+
    };
}

macro_rules! all_cases {
    ($fresh:expr) => {
        contract!(
            $fresh,
            create_is_idempotent_and_durable,
            events_acknowledged_before_sync_are_stored_in_order,
            a_reused_request_id_returns_the_original_request,
            concurrent_creates_with_one_key_store_one_handoff,
            tenants_are_isolated,
            append_goes_through_the_state_machine_and_dedupes_connector_events,
            list_pages_newest_first_within_the_tenant,
            a_lease_has_one_owner_until_released_or_expired,
            a_retried_create_takes_no_lease,
            an_ended_handoff_has_no_lease,
            concurrent_claims_share_out_the_orphans,
            a_shared_store_announces_every_event,
            the_audit_log_is_durable_newest_first_and_per_tenant,
            repeated_views_count_on_one_record_per_window,
            creations_and_events_are_audited_in_the_same_commit,
            what_a_write_returns_is_what_a_read_finds,
            revoking_tokens_is_per_tenant_durable_and_audited,
            the_purge_deletes_only_contexts_of_handoffs_ended_before_the_cutoff,
        )
    };
}

#[tokio::test]
async fn the_sqlite_store_meets_the_contract() {
    all_cases!(Sqlite(tempfile::tempdir().expect("tempdir")));
}

#[tokio::test]
async fn the_postgres_store_meets_the_contract() {
    let server = Postgres::start().expect("start PostgreSQL (apt-get install postgresql)");
    all_cases!(Pg(server.create_database().expect("create a database")));
}

fn handoff(request_id: &str) -> Handoff {
    Handoff {
        id: uuid::Uuid::now_v7().to_string(),
        tenant: DEFAULT_TENANT.into(),
        request_id: request_id.into(),
        request_fingerprint: "f".into(),
        state: HandoffState::Pending,
        conversation: pb::Conversation::default(),
        context: pb::HandoffContext {
            summary: "s".into(),
            ..Default::default()
        },
        requested_target: pb::Target::default(),
        mode: TransferMode::Warm,
        plan: vec![PlannedTarget {
            connector: "c".into(),
            target: ConcreteTarget::SipUri {
                uri: "sip:a@b".into(),
            },
        }],
        customer_message: "m".into(),
        customer_message_language: "en".into(),
        created_at_ms: 1,
        updated_at_ms: 1,
        deadline_ms: 2,
        current_attempt: None,
        queue_status: None,
        failure: None,
        last_sequence: 0,
        decision: None,
        wrap_up: None,
    }
}

fn unique(prefix: &str) -> String {
    format!("{prefix}-{}", uuid::Uuid::now_v7())
}

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
    assert_eq!(created.context.summary, "s");
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
    let started = NewEvent::new(EventKind::TargetStarted).attempt(Attempt {
        number: 1,
        planned: h.plan[0].clone(),
    });
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
    other.context.summary = "another summary".into();
    let outcome = store.create(other, None, None).await.expect("create again");
    assert!(outcome.created_event.is_none());
    assert_eq!(outcome.handoff.id, original.id);
    assert_eq!(outcome.handoff.request_fingerprint, "f");
    assert_eq!(outcome.handoff.context.summary, "s");
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
    let attempt = Attempt {
        number: 1,
        planned: h.plan[0].clone(),
    };
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
                pb::FailureReason::Cancelled,
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

const LONG: Duration = Duration::from_secs(60);

/// Creates `handoff` with `owner`'s dispatch lease for `ttl`.
async fn create_leased(
    store: &Arc<dyn HandoffStore>,
    handoff: &Handoff,
    owner: &str,
    ttl: Duration,
) {
    let lease = NewLease { owner, ttl };
    let outcome = store
        .create(handoff.clone(), None, Some(lease))
        .await
        .expect("create");
    assert!(outcome.created_event.is_some());
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
    assert!(
        store
            .renew_lease(DEFAULT_TENANT, id, "a", LONG)
            .await
            .expect("a renews")
    );
    assert!(
        !store
            .renew_lease(DEFAULT_TENANT, id, "b", LONG)
            .await
            .expect("b cannot renew")
    );

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
    assert!(
        !store
            .renew_lease(DEFAULT_TENANT, id, "a", LONG)
            .await
            .expect("a lost it")
    );
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
    assert!(
        !store
            .renew_lease(DEFAULT_TENANT, &brief.id, "a", LONG)
            .await
            .expect("taken over")
    );
    assert!(
        store
            .renew_lease(DEFAULT_TENANT, &brief.id, "c", LONG)
            .await
            .expect("c renews")
    );
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
    assert!(
        !store
            .renew_lease(DEFAULT_TENANT, &h.id, "b", LONG)
            .await
            .expect("renew")
    );
    assert!(
        store
            .renew_lease(DEFAULT_TENANT, &h.id, "a", LONG)
            .await
            .expect("renew")
    );
}

async fn an_ended_handoff_has_no_lease(backend: &impl Backend) {
    let store = backend.open().await;
    let h = handoff(&unique("ended"));
    create_leased(&store, &h, "a", LONG).await;
    store
        .append(DEFAULT_TENANT, &h.id, NewEvent::new(EventKind::Cancelled))
        .await
        .expect("cancel");
    assert!(
        !store
            .renew_lease(DEFAULT_TENANT, &h.id, "a", LONG)
            .await
            .expect("renew")
    );
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

fn audit(tenant: &str, handoff_id: &str, action: AuditAction, time_ms: i64) -> AuditEntry {
    AuditEntry {
        tenant: tenant.into(),
        handoff_id: handoff_id.into(),
        action,
        actor: "bot".into(),
        credential: "key:0123456789abcdef".into(),
        time_ms,
        detail: format!("{action:?}"),
    }
}

fn now_ms() -> i64 {
    i64::try_from(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .expect("after 1970")
            .as_millis(),
    )
    .expect("fits")
}

async fn repeated_views_count_on_one_record_per_window(backend: &impl Backend) {
    let store = backend.open().await;
    let (mine, theirs) = (unique("views-a"), unique("views-b"));
    let id = uuid::Uuid::now_v7().to_string();
    let view = |tenant: &str, page: &str, time_ms: i64| AuditEntry {
        credential: page.into(),
        actor: "context-token".into(),
        ..audit(tenant, &id, AuditAction::Viewed, time_ms)
    };
    // 50 reads of one page within the window: one record, counted.
    for time_ms in 1_000..1_050 {
        store
            .record_view(view(&mine, "context", time_ms), 1_000)
            .await
            .expect("view");
    }
    // Another page, another tenant: records of their own.
    store
        .record_view(view(&mine, "screen-pop", 1_060), 1_000)
        .await
        .expect("view");
    store
        .record_view(view(&theirs, "context", 1_070), 1_000)
        .await
        .expect("view");
    // The window moved past the first record: a new one.
    store
        .record_view(view(&mine, "context", 9_000), 8_000)
        .await
        .expect("view");
    drop(store);
    let store = backend.open().await;
    let log = store
        .audit_log(&mine, Some(&id), 10, None)
        .await
        .expect("log");
    let summary: Vec<_> = log
        .iter()
        .map(|r| {
            (
                r.entry.credential.as_str(),
                r.count,
                r.entry.time_ms,
                r.last_ms,
            )
        })
        .collect();
    assert_eq!(
        summary,
        [
            ("context", 1, 9_000, 9_000),
            ("screen-pop", 1, 1_060, 1_060),
            ("context", 50, 1_000, 1_049),
        ]
    );
    let theirs = store
        .audit_log(&theirs, Some(&id), 10, None)
        .await
        .expect("log");
    assert_eq!(theirs.len(), 1);
    assert_eq!(theirs[0].count, 1);
    // Other actions are never counted together.
    store
        .record_audit(audit(&mine, &id, AuditAction::Revealed, 9_100))
        .await
        .expect("record");
    store
        .record_audit(audit(&mine, &id, AuditAction::Revealed, 9_101))
        .await
        .expect("record");
    let log = store
        .audit_log(&mine, Some(&id), 10, None)
        .await
        .expect("log");
    assert_eq!(log.len(), 5);
    assert!(log[..2].iter().all(|r| r.count == 1));
}

async fn the_audit_log_is_durable_newest_first_and_per_tenant(backend: &impl Backend) {
    let store = backend.open().await;
    let (mine, theirs) = (unique("audit-a"), unique("audit-b"));
    let (first, second) = (
        uuid::Uuid::now_v7().to_string(),
        uuid::Uuid::now_v7().to_string(),
    );
    store
        .record_audit(audit(&mine, &first, AuditAction::Created, 10))
        .await
        .expect("record");
    store
        .record_audit(audit(&theirs, &first, AuditAction::Viewed, 11))
        .await
        .expect("record");
    store
        .record_audit(audit(&mine, &second, AuditAction::Revealed, 12))
        .await
        .expect("record");
    store
        .record_audit(audit(&mine, &first, AuditAction::Cancelled, 13))
        .await
        .expect("record");
    drop(store);
    let store = backend.open().await;
    let log = store.audit_log(&mine, None, 10, None).await.expect("log");
    let actions: Vec<_> = log.iter().map(|r| r.entry.action).collect();
    assert_eq!(
        actions,
        [
            AuditAction::Cancelled,
            AuditAction::Revealed,
            AuditAction::Created
        ]
    );
    assert_eq!(
        log[1].entry,
        audit(&mine, &second, AuditAction::Revealed, 12)
    );
    assert!(log.iter().all(|r| r.entry.tenant == mine));
    // Paging and filtering by handoff.
    let page = store
        .audit_log(&mine, None, 1, Some(log[0].sequence))
        .await
        .expect("page");
    assert_eq!(page.len(), 1);
    assert_eq!(page[0].sequence, log[1].sequence);
    let of_first = store
        .audit_log(&mine, Some(&first), 10, None)
        .await
        .expect("by handoff");
    assert_eq!(of_first.len(), 2);
    let other = store.audit_log(&theirs, None, 10, None).await.expect("log");
    assert_eq!(other.len(), 1);
    assert_eq!(other[0].entry.action, AuditAction::Viewed);
}

async fn creations_and_events_are_audited_in_the_same_commit(backend: &impl Backend) {
    let store = backend.open().await;
    let mut h = handoff(&unique("audited"));
    h.tenant = unique("tenant");
    let created = audit(&h.tenant, &h.id, AuditAction::Created, 20);
    store
        .create(h.clone(), Some(created.clone()), None)
        .await
        .expect("create");
    // A retry stores nothing, so it audits nothing.
    store
        .create(h.clone(), Some(created.clone()), None)
        .await
        .expect("retry");
    let cancelled = audit(&h.tenant, &h.id, AuditAction::Cancelled, 21);
    store
        .append_as(
            &h.tenant,
            &h.id,
            NewEvent::new(EventKind::Cancelled),
            None,
            Some(cancelled.clone()),
        )
        .await
        .expect("cancel");
    // A refused event rolls its audit record back with it.
    let refused = store
        .append_as(
            &h.tenant,
            &h.id,
            NewEvent::new(EventKind::Cancelled),
            None,
            Some(audit(&h.tenant, &h.id, AuditAction::Cancelled, 22)),
        )
        .await;
    assert!(matches!(refused, Err(StoreError::IllegalTransition(_))));
    // So does a lease that is not held.
    let mut other = handoff(&unique("audited"));
    other.tenant = h.tenant.clone();
    store
        .create(other.clone(), None, None)
        .await
        .expect("create");
    let fenced = store
        .append_as(
            &other.tenant,
            &other.id,
            NewEvent::new(EventKind::Cancelled),
            Some("replica-nobody"),
            Some(audit(&other.tenant, &other.id, AuditAction::Cancelled, 23)),
        )
        .await;
    assert!(matches!(fenced, Err(StoreError::LeaseLost)));
    drop(store);
    let store = backend.open().await;
    let log = store
        .audit_log(&h.tenant, None, 10, None)
        .await
        .expect("log");
    let entries: Vec<_> = log.into_iter().map(|r| r.entry).collect();
    assert_eq!(entries, [cancelled, created]);
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
        NewEvent::new(EventKind::TargetStarted).attempt(Attempt {
            number: 1,
            planned: h.plan[0].clone(),
        }),
        NewEvent::new(EventKind::TargetFailed)
            .attempt(Attempt {
                number: 1,
                planned: h.plan[0].clone(),
            })
            .failure(baton_control::domain::Failure::new(
                pb::FailureReason::Busy,
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
            wrap_up: Some(pb::WrapUp {
                disposition: "resolved".into(),
                notes: "refunded".into(),
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

async fn revoking_tokens_is_per_tenant_durable_and_audited(backend: &impl Backend) {
    let store = backend.open().await;
    let mut h = handoff(&unique("revoke"));
    h.tenant = unique("tenant");
    store.create(h.clone(), None, None).await.expect("create");
    assert!(!store.context_access(&h.id).await.expect("access").closed());
    assert!(matches!(
        store
            .revoke_context_tokens(
                "other",
                &h.id,
                audit("other", &h.id, AuditAction::TokensRevoked, 5)
            )
            .await,
        Err(StoreError::NotFound)
    ));
    assert!(!store.context_access(&h.id).await.expect("access").closed());
    store
        .revoke_context_tokens(
            &h.tenant,
            &h.id,
            audit(&h.tenant, &h.id, AuditAction::TokensRevoked, 5),
        )
        .await
        .expect("revoke");
    store
        .revoke_context_tokens(
            &h.tenant,
            &h.id,
            audit(&h.tenant, &h.id, AuditAction::TokensRevoked, 9),
        )
        .await
        .expect("revoke again");
    drop(store);
    let store = backend.open().await;
    let access = store.context_access(&h.id).await.expect("access");
    assert_eq!(
        access.tokens_revoked_at_ms,
        Some(5),
        "the first revocation counts"
    );
    assert!(access.closed());
    assert_eq!(
        store
            .audit_log(&h.tenant, Some(&h.id), 10, None)
            .await
            .expect("log")
            .len(),
        2
    );
    assert!(
        store
            .audit_log("other", Some(&h.id), 10, None)
            .await
            .expect("log")
            .is_empty()
    );
    assert!(matches!(
        store
            .context_access(&uuid::Uuid::now_v7().to_string())
            .await,
        Err(StoreError::NotFound)
    ));
}

async fn the_purge_deletes_only_contexts_of_handoffs_ended_before_the_cutoff(
    backend: &impl Backend,
) {
    let store = backend.open().await;
    let tenant = unique("purge");
    let mut ended = handoff(&unique("ended"));
    ended.tenant = tenant.clone();
    ended.conversation.language = "fr".into();
    ended.context.transcript.push(pb::Turn {
        text: "my card is 4111111111111111".into(),
        ..Default::default()
    });
    let mut open = ended.clone();
    open.id = uuid::Uuid::now_v7().to_string();
    open.request_id = unique("open");
    store
        .create(ended.clone(), None, None)
        .await
        .expect("create");
    store
        .create(open.clone(), None, None)
        .await
        .expect("create");
    store
        .append(&tenant, &ended.id, NewEvent::new(EventKind::Cancelled))
        .await
        .expect("cancel");

    // Ended now: not before a cutoff an hour ago.
    store
        .purge_contexts(now_ms() - 3_600_000, 1000)
        .await
        .expect("purge");
    let kept = store.get(&tenant, &ended.id).await.expect("get");
    assert_eq!(kept.context.transcript.len(), 1);
    assert!(
        !store
            .context_access(&ended.id)
            .await
            .expect("access")
            .closed()
    );

    // A cutoff after it ended: its context goes, the record and events stay.
    let mut purged = 0;
    for _ in 0..100 {
        let n = store
            .purge_contexts(now_ms() + 1_000, 1000)
            .await
            .expect("purge");
        purged += n;
        if n == 0 {
            break;
        }
    }
    assert!(purged >= 1);
    drop(store);
    let store = backend.open().await;
    let gone = store
        .get(&tenant, &ended.id)
        .await
        .expect("the record stays");
    assert_eq!(gone.state, HandoffState::Cancelled);
    assert!(gone.context.transcript.is_empty());
    assert!(gone.context.summary.is_empty());
    assert!(gone.conversation.language.is_empty());
    assert_eq!(
        store
            .events_after(&tenant, &ended.id, 0, 10)
            .await
            .expect("events")
            .len(),
        2
    );
    assert!(
        store
            .context_access(&ended.id)
            .await
            .expect("access")
            .context_purged_at_ms
            .is_some()
    );
    let log = store.audit_log(&tenant, None, 10, None).await.expect("log");
    assert_eq!(log.len(), 1);
    assert_eq!(log[0].entry.action, AuditAction::Purged);
    assert_eq!(log[0].entry.handoff_id, ended.id);
    // The handoff in flight keeps everything, and a second purge finds nothing new of this tenant.
    let alive = store.get(&tenant, &open.id).await.expect("get");
    assert_eq!(alive.context.transcript.len(), 1);
    store
        .purge_contexts(now_ms() + 1_000, 1000)
        .await
        .expect("purge");
    assert_eq!(
        store
            .audit_log(&tenant, None, 10, None)
            .await
            .expect("log")
            .len(),
        1
    );
}
