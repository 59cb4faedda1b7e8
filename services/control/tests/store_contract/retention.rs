//! Retention's contract: only contexts of handoffs ended before the
//! cutoff go, the record, its events and the audit log stay, each purge is
//! audited, and a purge takes at most its limit.

use baton_control::convert::context::{context, conversation, encode_context, encode_conversation};
use baton_control::domain::{EventKind, HandoffState, NewEvent};
use baton_control::store::AuditAction;
use baton_proto::types::v1 as pb;

use crate::{Backend, handoff, now_ms, unique};

contract_suite!(
    the_purge_deletes_only_contexts_of_handoffs_ended_before_the_cutoff,
    a_purge_takes_at_most_its_limit,
);

async fn the_purge_deletes_only_contexts_of_handoffs_ended_before_the_cutoff(
    backend: &impl Backend,
) {
    let store = backend.open().await;
    let tenant = unique("purge");
    let mut ended = handoff(&unique("ended"));
    ended.tenant = tenant.clone();
    ended.conversation = encode_conversation(&pb::Conversation {
        language: "fr".into(),
        ..Default::default()
    });
    let mut with_card = context(&ended.context);
    with_card.transcript.push(pb::Turn {
        text: "my card is 4111111111111111".into(),
        ..Default::default()
    });
    ended.context = encode_context(&with_card);
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
    assert_eq!(context(&kept.context).transcript.len(), 1);
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
    assert!(context(&gone.context).transcript.is_empty());
    assert!(context(&gone.context).summary.is_empty());
    assert!(conversation(&gone.conversation).language.is_empty());
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
    assert_eq!(context(&alive.context).transcript.len(), 1);
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

async fn a_purge_takes_at_most_its_limit(backend: &impl Backend) {
    let store = backend.open().await;
    let tenant = unique("limit");
    let mut ids = Vec::new();
    for _ in 0..3 {
        let mut h = handoff(&unique("ended"));
        h.tenant = tenant.clone();
        store.create(h.clone(), None, None).await.expect("create");
        store
            .append(&tenant, &h.id, NewEvent::new(EventKind::Cancelled))
            .await
            .expect("cancel");
        ids.push(h.id);
    }
    // At least these three are ended and unpurged.
    assert_eq!(
        store
            .purge_contexts(now_ms() + 1_000, 2)
            .await
            .expect("purge"),
        2
    );
    for _ in 0..100 {
        if store
            .purge_contexts(now_ms() + 1_000, 2)
            .await
            .expect("purge")
            == 0
        {
            break;
        }
    }
    for id in &ids {
        let access = store.context_access(id).await.expect("access");
        assert!(access.context_purged_at_ms.is_some(), "{id} purged");
    }
    let log = store.audit_log(&tenant, None, 10, None).await.expect("log");
    assert_eq!(log.len(), 3, "one record per purged handoff");
    assert!(log.iter().all(|r| r.entry.action == AuditAction::Purged));
}
