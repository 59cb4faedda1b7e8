//! A hand-back to the AI is a terminal outcome like any other: the handoff
//! stops being in flight (no replica dispatches it again after a restart),
//! its wrap-up keeps the instruction for the AI, a store opened again
//! reads the same, and retention purges it with the other ended handoffs.

use baton_control::domain::{DEFAULT_TENANT, EventKind, HandoffState, NewEvent, Outcome, WrapUp};

use crate::{Backend, advance, handoff, now_ms, unique};

contract_suite!(a_hand_back_ends_the_handoff_and_keeps_the_instruction);

async fn a_hand_back_ends_the_handoff_and_keeps_the_instruction(backend: &impl Backend) {
    let store = backend.open().await;
    let h = handoff(&unique("hand-back"));
    store.create(h.clone(), None, None).await.expect("create");
    let attempt = advance(
        &*store,
        &h,
        &[EventKind::TargetStarted, EventKind::Connected],
    )
    .await;
    let wrap_up = WrapUp {
        disposition: "verified".into(),
        notes: "checked the date of birth".into(),
        instruction: "customer verified; finish the address change".into(),
        outcome: Outcome {
            context_sufficient: Some(true),
            customer_repeated: Some(false),
            escalation_needed: None,
        },
    };
    let (returned, record) = store
        .append(
            DEFAULT_TENANT,
            &h.id,
            NewEvent {
                wrap_up: Some(wrap_up.clone()),
                ..NewEvent::new(EventKind::HandedBack).attempt(attempt.clone())
            },
        )
        .await
        .expect("hand back");
    assert_eq!(returned.state, HandoffState::HandedBack);
    assert_eq!(record.state, HandoffState::HandedBack);
    assert_eq!(returned.wrap_up.as_ref(), Some(&wrap_up));
    assert_eq!(record.wrap_up.as_ref(), Some(&wrap_up));

    // Another store on the same data (a restarted or second replica).
    let again = backend.open().await;
    let read = again.get(DEFAULT_TENANT, &h.id).await.expect("get");
    assert_eq!(read, returned);
    let events = again
        .events_after(DEFAULT_TENANT, &h.id, 0, 10)
        .await
        .expect("events");
    let last = events.last().expect("events");
    assert_eq!(
        (last.kind, last.state),
        (EventKind::HandedBack, HandoffState::HandedBack)
    );
    assert_eq!(last.wrap_up.as_ref(), Some(&wrap_up));
    assert!(
        !again
            .in_flight()
            .await
            .expect("in flight")
            .iter()
            .any(|x| x.id == h.id),
        "a handed-back handoff is not dispatched again"
    );
    assert!(
        again
            .append(DEFAULT_TENANT, &h.id, NewEvent::new(EventKind::Cancelled))
            .await
            .is_err(),
        "nothing follows a hand-back"
    );

    // Retention treats it as ended: its context and wrap-up go. The
    // handoff itself is checked after every batch, the last one included.
    let mut purged = false;
    for _ in 0..100 {
        let removed = again
            .purge_contexts(now_ms() + 1_000, 1000)
            .await
            .expect("purge");
        purged = again
            .context_access(&h.id)
            .await
            .expect("access")
            .context_purged_at_ms
            .is_some();
        if purged || removed == 0 {
            break;
        }
    }
    assert!(purged, "the purge reached the handed-back handoff");
    let after = again.get(DEFAULT_TENANT, &h.id).await.expect("get");
    assert_eq!(after.wrap_up, None, "the notes and instruction are purged");
}
