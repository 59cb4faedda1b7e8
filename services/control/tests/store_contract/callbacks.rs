//! Callbacks: the number, window and dial count travel with the handoff
//! through both backends, each CALLBACK_DIALING counts one dial, and the
//! retention purge erases the number with the rest of the context.

use baton_control::domain::callback::Callback;
use baton_control::domain::{DEFAULT_TENANT, EventKind, HandoffState, NewEvent};

use crate::{Backend, first_attempt, handoff, now_ms, read_again, unique};

contract_suite!(a_callback_is_stored_counts_its_dials_and_is_purged);

async fn a_callback_is_stored_counts_its_dials_and_is_purged(backend: &impl Backend) {
    let store = backend.open().await;
    let mut h = handoff(&unique("callback"));
    h.callback = Some(Callback {
        number: "+15550100123".into(),
        window_start_ms: Some(1_900_000_000_000),
        window_end_ms: Some(1_900_003_600_000),
        dial_attempts: 0,
    });
    store.create(h.clone(), None, None).await.expect("create");
    let read = store.get(DEFAULT_TENANT, &h.id).await.expect("get");
    assert_eq!(read.callback, h.callback);

    let attempt = first_attempt(&h);
    for kind in [
        EventKind::TargetStarted,
        EventKind::Offered,
        EventKind::CallbackDialing,
        EventKind::CallbackDialing,
    ] {
        let (appended, _) = store
            .append(
                &h.tenant,
                &h.id,
                NewEvent::new(kind).attempt(attempt.clone()),
            )
            .await
            .unwrap_or_else(|e| panic!("{kind:?}: {e}"));
        // What `append` answers is what a read finds.
        let read = store.get(DEFAULT_TENANT, &h.id).await.expect("get");
        assert_eq!(appended.callback, read.callback);
    }
    let dialing = read_again(backend, &h).await;
    assert_eq!(dialing.state, HandoffState::CallingBack);
    assert_eq!(dialing.callback.as_ref().map(|c| c.dial_attempts), Some(2));
    // Once dialed, a target failing is not a fallback.
    assert!(
        store
            .append(
                &h.tenant,
                &h.id,
                NewEvent::new(EventKind::TargetFailed).attempt(attempt.clone())
            )
            .await
            .is_err()
    );
    store
        .append(&h.tenant, &h.id, NewEvent::new(EventKind::Failed))
        .await
        .expect("failed");
    while store
        .purge_contexts(now_ms() + 1_000, 1000)
        .await
        .expect("purge")
        > 0
    {}
    let purged = store.get(DEFAULT_TENANT, &h.id).await.expect("get");
    assert_eq!(purged.callback, None, "the number is the customer's");
}
