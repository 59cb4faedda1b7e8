//! The audit log's contract: durable, newest first, per tenant, written
//! in the same commit as what it records, repeated reads counted on one
//! record, and context-token revocation recorded once per handoff.

use baton_control::domain::{EventKind, NewEvent};
use baton_control::store::{AuditAction, AuditEntry, AuditFilter, StoreError};

use crate::{Backend, audit, handoff, unique};

contract_suite!(
    the_audit_log_is_durable_newest_first_and_per_tenant,
    repeated_views_count_on_one_record_per_window,
    creations_and_events_are_audited_in_the_same_commit,
    revoking_tokens_is_per_tenant_durable_and_audited,
    disclosures_name_their_connector_and_list_by_connector_and_action,
);

/// Disclosures (issue 20) keep the connector they went to, and the log
/// lists by connector and by action, alone or with the handoff, per
/// tenant, newest first, a page at a time.
async fn disclosures_name_their_connector_and_list_by_connector_and_action(backend: &impl Backend) {
    let store = backend.open().await;
    let (mine, theirs) = (unique("disclosed-a"), unique("disclosed-b"));
    let (first, second) = (
        uuid::Uuid::now_v7().to_string(),
        uuid::Uuid::now_v7().to_string(),
    );
    let disclosed = |tenant: &str, id: &str, connector: &str, time_ms: i64| AuditEntry {
        connector: connector.into(),
        detail: format!("{{\"connector\":\"{connector}\"}}"),
        ..audit(tenant, id, AuditAction::Disclosed, time_ms)
    };
    for entry in [
        audit(&mine, &first, AuditAction::Created, 1),
        disclosed(&mine, &first, "webhook", 2),
        disclosed(&mine, &first, "twilio", 3),
        disclosed(&mine, &second, "webhook", 4),
        disclosed(&theirs, &first, "webhook", 5),
    ] {
        store.record_audit(entry).await.expect("record");
    }
    drop(store);
    let store = backend.open().await;
    let list = |filter: AuditFilter, before: Option<i64>| {
        let (store, mine) = (&store, &mine);
        async move {
            store
                .audit_records(mine, &filter, 10, before)
                .await
                .expect("list")
        }
    };
    let to_webhook = list(
        AuditFilter {
            connector: Some("webhook".into()),
            ..AuditFilter::default()
        },
        None,
    )
    .await;
    let times: Vec<_> = to_webhook.iter().map(|r| r.entry.time_ms).collect();
    assert_eq!(times, [4, 2], "mine only, newest first");
    assert_eq!(to_webhook[0].entry, disclosed(&mine, &second, "webhook", 4));
    let of_first = list(
        AuditFilter {
            handoff_id: Some(first.clone()),
            action: Some(AuditAction::Disclosed),
            ..AuditFilter::default()
        },
        None,
    )
    .await;
    let connectors: Vec<_> = of_first
        .iter()
        .map(|r| r.entry.connector.as_str())
        .collect();
    assert_eq!(connectors, ["twilio", "webhook"]);
    let created = list(
        AuditFilter {
            action: Some(AuditAction::Created),
            ..AuditFilter::default()
        },
        None,
    )
    .await;
    assert_eq!(created.len(), 1);
    assert_eq!(
        created[0].entry.connector, "",
        "no connector but on disclosures"
    );
    let older = list(
        AuditFilter {
            connector: Some("webhook".into()),
            ..AuditFilter::default()
        },
        Some(to_webhook[0].sequence),
    )
    .await;
    assert_eq!(older.len(), 1);
    assert_eq!(older[0].entry.time_ms, 2);
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
