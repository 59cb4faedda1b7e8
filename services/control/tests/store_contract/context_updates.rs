//! A context update (UpdateHandoff) on every backend: made against the
//! version it names and no other, once per request id, recorded as a
//! CONTEXT_UPDATED event with its version in the same commit as the new
//! context (a store opened again reads both), and refused once a human has
//! the customer.

use baton_control::convert::context::{context, encode_context};
use baton_control::domain::{DEFAULT_TENANT, EventKind, HandoffState, NewEvent};
use baton_control::store::{ContextUpdate, ContextUpdateOutcome, StoreError};
use baton_proto::types::v1 as pb;

use crate::{Backend, advance, handoff, unique};

contract_suite!(
    an_update_against_the_current_version_is_stored_with_its_event,
    an_update_against_a_stale_version_is_a_conflict_naming_the_current_one,
    a_request_id_applies_once_and_a_reused_one_is_told_apart,
    no_update_once_a_human_has_the_customer,
);

fn update(request_id: &str, expected_version: u64, summary: &str) -> ContextUpdate {
    ContextUpdate {
        request_id: request_id.into(),
        fingerprint: format!("fingerprint of {summary}"),
        expected_version,
        context: Some(encode_context(&pb::HandoffContext {
            summary: summary.into(),
            ..Default::default()
        })),
    }
}

fn applied(
    outcome: ContextUpdateOutcome,
) -> (
    baton_control::domain::Handoff,
    baton_control::domain::EventRecord,
) {
    match outcome {
        ContextUpdateOutcome::Applied { handoff, event } => (handoff, *event),
        other => panic!("not applied: {other:?}"),
    }
}

async fn an_update_against_the_current_version_is_stored_with_its_event(backend: &impl Backend) {
    let store = backend.open().await;
    let h = handoff(&unique("update"));
    let created = store.create(h.clone(), None, None).await.expect("create");
    assert_eq!(created.handoff.context_version, 1);
    let (updated, event) = applied(
        store
            .update_context(DEFAULT_TENANT, &h.id, update("u1", 1, "second"))
            .await
            .expect("update"),
    );
    assert_eq!(updated.context_version, 2);
    assert_eq!(context(&updated.context).summary, "second");
    assert_eq!(updated.state, HandoffState::Pending, "the state stays");
    assert_eq!(updated.last_sequence, 2);
    assert_eq!(
        (
            event.sequence,
            event.kind,
            event.state,
            event.context_version
        ),
        (2, EventKind::ContextUpdated, HandoffState::Pending, Some(2))
    );

    // Another store on the same data (a restarted or second replica).
    let again = backend.open().await;
    let read = again.get(DEFAULT_TENANT, &h.id).await.expect("get");
    assert_eq!(read, updated);
    let events = again
        .events_after(DEFAULT_TENANT, &h.id, 1, 10)
        .await
        .expect("events");
    assert_eq!(events, [event]);
    // Another tenant sees no such handoff.
    let foreign = again
        .update_context("another-tenant", &h.id, update("u2", 2, "third"))
        .await;
    assert!(matches!(foreign, Err(StoreError::NotFound)), "{foreign:?}");
}

async fn an_update_against_a_stale_version_is_a_conflict_naming_the_current_one(
    backend: &impl Backend,
) {
    let store = backend.open().await;
    let h = handoff(&unique("update-conflict"));
    store.create(h.clone(), None, None).await.expect("create");
    applied(
        store
            .update_context(DEFAULT_TENANT, &h.id, update("u1", 1, "second"))
            .await
            .expect("update"),
    );
    let stale = store
        .update_context(DEFAULT_TENANT, &h.id, update("u2", 1, "lost"))
        .await;
    assert!(
        matches!(
            stale,
            Err(StoreError::ContextVersionConflict { current: 2 })
        ),
        "{stale:?}"
    );
    let mut no_context = update("u3", 2, "unread");
    no_context.context = None;
    let unbuilt = store
        .update_context(DEFAULT_TENANT, &h.id, no_context)
        .await;
    assert!(
        matches!(
            unbuilt,
            Err(StoreError::ContextVersionConflict { current: 2 })
        ),
        "{unbuilt:?}"
    );
    let read = store.get(DEFAULT_TENANT, &h.id).await.expect("get");
    assert_eq!(
        (
            read.context_version,
            context(&read.context).summary.as_str()
        ),
        (2, "second")
    );
    assert_eq!(read.last_sequence, 2, "no event for a refused update");
}

async fn a_request_id_applies_once_and_a_reused_one_is_told_apart(backend: &impl Backend) {
    let store = backend.open().await;
    let h = handoff(&unique("update-retry"));
    store.create(h.clone(), None, None).await.expect("create");
    let (first, _) = applied(
        store
            .update_context(DEFAULT_TENANT, &h.id, update("u1", 1, "second"))
            .await
            .expect("update"),
    );
    // The retry names the version it was made against, stale by now.
    match store
        .update_context(DEFAULT_TENANT, &h.id, update("u1", 1, "second"))
        .await
        .expect("retry")
    {
        ContextUpdateOutcome::Retried {
            handoff,
            version,
            same_request,
        } => {
            assert_eq!((version, same_request), (2, true));
            assert_eq!(handoff, first);
        }
        other => panic!("applied twice: {other:?}"),
    }
    match store
        .update_context(DEFAULT_TENANT, &h.id, update("u1", 2, "another"))
        .await
        .expect("reuse")
    {
        ContextUpdateOutcome::Retried { same_request, .. } => assert!(!same_request),
        other => panic!("a reused request id was applied: {other:?}"),
    }
    let read = store.get(DEFAULT_TENANT, &h.id).await.expect("get");
    assert_eq!((read.context_version, read.last_sequence), (2, 2));
    // The same request id on another handoff is another update.
    let other = handoff(&unique("update-retry-other"));
    store
        .create(other.clone(), None, None)
        .await
        .expect("create");
    applied(
        store
            .update_context(DEFAULT_TENANT, &other.id, update("u1", 1, "second"))
            .await
            .expect("update the other handoff"),
    );
}

async fn no_update_once_a_human_has_the_customer(backend: &impl Backend) {
    let store = backend.open().await;
    let h = handoff(&unique("update-connected"));
    store.create(h.clone(), None, None).await.expect("create");
    let attempt = advance(&*store, &h, &[EventKind::TargetStarted, EventKind::Queued]).await;
    let (queued, event) = applied(
        store
            .update_context(DEFAULT_TENANT, &h.id, update("u1", 1, "while queued"))
            .await
            .expect("update while queued"),
    );
    assert_eq!(queued.state, HandoffState::Queued);
    assert_eq!(event.state, HandoffState::Queued);
    store
        .append(
            DEFAULT_TENANT,
            &h.id,
            NewEvent::new(EventKind::Connected).attempt(attempt),
        )
        .await
        .expect("connected");
    let refused = store
        .update_context(DEFAULT_TENANT, &h.id, update("u2", 2, "too late"))
        .await;
    assert!(
        matches!(
            refused,
            Err(StoreError::IllegalTransition(ref t)) if t.from == HandoffState::Connected
        ),
        "{refused:?}"
    );
}
