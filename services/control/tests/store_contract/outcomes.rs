//! Outcomes: a handoff's judgements are stored once, only after a human
//! had the customer and the handoff ended; the wrap-up's judgements are the
//! outcome too, and every outcome outlives the retention purge; the window
//! GetOutcomeMetrics counts is a tenant's handoffs by creation time, page
//! by page, each with the time it first connected.

use baton_control::domain::outcome::{OutcomeSource, RecordedOutcome};
use baton_control::domain::{DEFAULT_TENANT, EventKind, Handoff, NewEvent, Outcome, WrapUp};
use baton_control::store::{HandoffStore, OutcomeWindow};

use crate::{Backend, advance, handoff, now_ms, read_again, unique};

contract_suite!(
    an_outcome_is_recorded_once_after_a_human_had_the_customer,
    the_window_is_a_tenants_handoffs_by_creation_page_by_page,
    wrap_up_judgements_are_the_outcome_and_outlive_the_purge,
);

fn recorded(context_sufficient: bool) -> RecordedOutcome {
    RecordedOutcome {
        judgements: Outcome {
            context_sufficient: Some(context_sufficient),
            customer_repeated: Some(false),
            escalation_needed: None,
        },
        source: OutcomeSource::Recorded,
        recorded_at_ms: 1_700_000_000_123,
    }
}

/// Appends `kinds` to `h`'s log, the last one carrying `wrap_up`.
async fn run(store: &dyn HandoffStore, h: &Handoff, kinds: &[EventKind], wrap_up: Option<WrapUp>) {
    let (last, before) = kinds.split_last().expect("at least one kind");
    let attempt = advance(store, h, before).await;
    let event = NewEvent {
        wrap_up,
        ..NewEvent::new(*last).attempt(attempt)
    };
    store
        .append(&h.tenant, &h.id, event)
        .await
        .unwrap_or_else(|e| panic!("{last:?}: {e}"));
}

/// Whether `store` stored `outcome` on the handoff.
async fn records(
    store: &dyn HandoffStore,
    tenant: &str,
    id: &str,
    outcome: RecordedOutcome,
) -> bool {
    store
        .record_outcome(tenant, id, &outcome)
        .await
        .expect("record")
}

async fn an_outcome_is_recorded_once_after_a_human_had_the_customer(backend: &impl Backend) {
    let store = backend.open().await;
    let h = handoff(&unique("outcome"));
    store.create(h.clone(), None, None).await.expect("create");
    assert!(
        !records(&*store, DEFAULT_TENANT, &h.id, recorded(true)).await,
        "nobody judges a handoff before a human had the customer"
    );
    run(
        &*store,
        &h,
        &[EventKind::TargetStarted, EventKind::Connected],
        None,
    )
    .await;
    assert!(
        !records(&*store, DEFAULT_TENANT, &h.id, recorded(true)).await,
        "nor while the human has them"
    );
    run(&*store, &h, &[EventKind::Completed], None).await;
    assert!(
        !records(&*store, "another-tenant", &h.id, recorded(true)).await,
        "another tenant's handoff is out of reach"
    );
    assert!(records(&*store, DEFAULT_TENANT, &h.id, recorded(true)).await);
    assert!(
        !records(&*store, DEFAULT_TENANT, &h.id, recorded(false)).await,
        "an outcome is stored once"
    );
    let read = read_again(backend, &h).await;
    assert_eq!(read.recorded_outcome, Some(recorded(true)));
    assert_eq!(read.outcome(), Some(recorded(true)));
}

async fn the_window_is_a_tenants_handoffs_by_creation_page_by_page(backend: &impl Backend) {
    let store = backend.open().await;
    let tenant = unique("window");
    let base = now_ms() - 60_000;
    let mut created = Vec::new();
    for offset in [0, 10, 10, 20, 30] {
        let mut h = handoff(&unique("window"));
        h.tenant = tenant.clone();
        h.created_at_ms = base + offset;
        h.updated_at_ms = h.created_at_ms;
        store.create(h.clone(), None, None).await.expect("create");
        created.push(h);
    }
    // Another tenant's handoff in the same window is never counted.
    let mut other = handoff(&unique("window"));
    other.created_at_ms = base + 10;
    store.create(other, None, None).await.expect("create");
    run(
        &*store,
        &created[1],
        &[EventKind::TargetStarted, EventKind::Connected],
        None,
    )
    .await;

    // [base, base + 30): the last one is outside; two per page.
    let mut window = OutcomeWindow {
        tenant: tenant.clone(),
        since_ms: base,
        until_ms: base + 30,
        after: None,
    };
    let mut seen = Vec::new();
    loop {
        let page = store.outcome_page(&window, 2).await.expect("page");
        assert!(page.len() <= 2);
        seen.extend(page.iter().cloned());
        if page.len() < 2 {
            break;
        }
        let last = &page.last().expect("a full page").0;
        window.after = Some((last.created_at_ms, last.id.clone()));
    }
    let mut expected: Vec<&Handoff> = created[..4].iter().collect();
    expected.sort_by(|a, b| (a.created_at_ms, &a.id).cmp(&(b.created_at_ms, &b.id)));
    let ids = |handoffs: Vec<&Handoff>| handoffs.iter().map(|h| h.id.clone()).collect::<Vec<_>>();
    assert_eq!(
        ids(seen.iter().map(|(h, _)| h).collect()),
        ids(expected),
        "oldest first, each once, within the window, the tenant's only"
    );
    for (h, connected_at_ms) in &seen {
        if h.id == created[1].id {
            let connected = connected_at_ms.expect("the connected one has its time");
            assert!(connected >= h.created_at_ms);
        } else {
            assert_eq!(*connected_at_ms, None, "{} never connected", h.id);
        }
    }
}

async fn wrap_up_judgements_are_the_outcome_and_outlive_the_purge(backend: &impl Backend) {
    let store = backend.open().await;
    let h = handoff(&unique("wrapped"));
    store.create(h.clone(), None, None).await.expect("create");
    let judgements = Outcome {
        context_sufficient: Some(false),
        customer_repeated: Some(true),
        escalation_needed: Some(true),
    };
    let wrap_up = WrapUp {
        disposition: "refund".into(),
        notes: "asked for the invoice number again".into(),
        instruction: String::new(),
        outcome: judgements,
    };
    run(
        &*store,
        &h,
        &[
            EventKind::TargetStarted,
            EventKind::Connected,
            EventKind::Completed,
        ],
        Some(wrap_up),
    )
    .await;
    let ended = store.get(DEFAULT_TENANT, &h.id).await.expect("get");
    let outcome = ended.recorded_outcome.expect("the wrap-up's judgements");
    assert_eq!(outcome.judgements, judgements);
    assert_eq!(outcome.source, OutcomeSource::WrapUp);
    assert_eq!(outcome.recorded_at_ms, ended.updated_at_ms);
    assert!(
        !records(&*store, DEFAULT_TENANT, &h.id, recorded(true)).await,
        "the human's wrap-up judged it already"
    );

    let mut purged = 0;
    loop {
        let n = store
            .purge_contexts(now_ms() + 1_000, 1000)
            .await
            .expect("purge");
        if n == 0 {
            break;
        }
        purged += n;
    }
    assert!(purged > 0);
    let read = read_again(backend, &h).await;
    assert_eq!(read.wrap_up, None, "the notes are purged");
    assert_eq!(read.recorded_outcome, Some(outcome), "the judgements stay");
}
