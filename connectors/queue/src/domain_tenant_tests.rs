//! The queue's tenant scope: a queue name is per tenant, and an agent is
//! offered only their tenant's customers.

use std::time::Duration;

use super::tests::{SECOND, contact_of, offered_to, queues, sign_in_to};
use super::*;

#[test]
fn an_agent_is_offered_only_their_own_tenants_customers() {
    let mut q = queues();
    sign_in_to(&mut q, "acme", "ann", &["support"], 0);
    // Nobody of globex is signed in: globex's customer is not queued for
    // acme's agent, however idle she is.
    assert_eq!(
        q.enqueue(contact_of("globex", "g1", "support"), SECOND),
        Err(NotAdmitted::Refused(Refusal::NoAgents))
    );
    q.enqueue(contact_of("acme", "a1", "support"), SECOND)
        .expect("acme's customer");
    q.route(SECOND);
    assert_eq!(offered_to(&q, "a1").as_deref(), Some("ann"));

    sign_in_to(&mut q, "globex", "gil", &["support"], 0);
    q.set_state("gil", AgentState::Away, SECOND).expect("away");
    q.enqueue(contact_of("globex", "g1", "support"), 2 * SECOND)
        .expect("globex's customer waits for gil");
    q.decline("ann", "a1", 3 * SECOND).expect("decline");
    q.route(3 * SECOND);
    assert_eq!(offered_to(&q, "g1"), None, "ann is free, but not globex's");
    q.set_state("gil", AgentState::Available, 4 * SECOND)
        .expect("back");
    q.route(4 * SECOND);
    assert_eq!(offered_to(&q, "g1").as_deref(), Some("gil"));
    assert_eq!(offered_to(&q, "a1"), None, "declined by acme's only agent");
}

#[test]
fn same_named_queues_of_two_tenants_have_their_own_lines_and_estimates() {
    let mut q = queues();
    sign_in_to(&mut q, "acme", "ann", &["support"], 0);
    sign_in_to(&mut q, "globex", "gil", &["support"], 0);
    for agent in ["ann", "gil"] {
        q.set_state(agent, AgentState::Away, 0).expect("away");
    }
    for id in ["a1", "a2", "a3"] {
        q.enqueue(contact_of("acme", id, "support"), SECOND)
            .expect("acme");
    }
    q.enqueue(contact_of("globex", "g1", "support"), 2 * SECOND)
        .expect("globex");
    assert_eq!(q.standing("a3").map(|s| s.position), Some(3));
    assert_eq!(
        q.standing("g1").map(|s| s.position),
        Some(1),
        "first in globex's support, whatever acme's line"
    );

    // Handle times are kept per tenant's queue.
    q.set_state("ann", AgentState::Available, 3 * SECOND)
        .expect("back");
    q.route(3 * SECOND);
    q.accept("ann", "a1", 3 * SECOND).expect("accept");
    q.wrap_up("ann", "a1", "resolved", "", 303 * SECOND)
        .expect("wrap up");
    let acme = QueueKey::new("acme", "support");
    let globex = QueueKey::new("globex", "support");
    assert_eq!(q.average_handle_time(&acme), Duration::from_secs(300));
    assert_eq!(
        q.average_handle_time(&globex),
        Duration::from_secs(60),
        "still the initial handle time"
    );
    assert_eq!(
        q.handle_times().keys().collect::<Vec<_>>(),
        vec![&acme],
        "recorded under acme's queue only"
    );
}

#[test]
fn a_tenants_own_queue_overrides_the_shared_one_of_the_name() {
    let mut shared = QueueSpec::new("support");
    shared.skills = vec!["support".into()];
    let mut globex = QueueSpec::new("support");
    globex.tenant = Some("globex".into());
    globex.skills = vec!["german".into()];
    let mut vip = QueueSpec::new("vip");
    vip.tenant = Some("acme".into());
    let mut q = Queues::new(Policy::default(), [shared, globex, vip]);

    let names = |tenant: &str| {
        q.tenant_queues(tenant)
            .iter()
            .map(|s| format!("{}:{:?}", s.name, s.skills))
            .collect::<Vec<_>>()
    };
    assert_eq!(names("acme"), ["support:[\"support\"]", "vip:[]"]);
    assert_eq!(names("globex"), ["support:[\"german\"]"]);
    assert_eq!(names("initech"), ["support:[\"support\"]"]);

    sign_in_to(&mut q, "globex", "gil", &["support"], 0);
    assert_eq!(
        q.enqueue(contact_of("globex", "g1", "support"), SECOND),
        Err(NotAdmitted::Refused(Refusal::NoAgents)),
        "globex's support needs german"
    );
    assert_eq!(
        q.enqueue(contact_of("globex", "g1", "vip"), SECOND),
        Err(NotAdmitted::Refused(Refusal::UnknownQueue)),
        "vip is acme's"
    );
    sign_in_to(&mut q, "globex", "gus", &["german"], 0);
    q.enqueue(contact_of("globex", "g1", "support"), SECOND)
        .expect("gus speaks german");
    q.route(SECOND);
    assert_eq!(offered_to(&q, "g1").as_deref(), Some("gus"));
    assert_eq!(
        q.tenants().into_iter().collect::<Vec<_>>(),
        ["acme", "globex"]
    );
}

#[test]
fn a_handoff_here_for_one_tenant_is_not_taken_over_by_another() {
    let mut q = queues();
    sign_in_to(&mut q, "acme", "ann", &["support"], 0);
    sign_in_to(&mut q, "globex", "gil", &["support"], 0);
    q.enqueue(contact_of("acme", "h1", "support"), SECOND)
        .expect("acme");
    let later = NewContact {
        attempt: 2,
        ..contact_of("globex", "h1", "support")
    };
    assert_eq!(q.enqueue(later, 2 * SECOND), Err(NotAdmitted::OtherTenant));
    let contact = q.contact("h1").expect("kept");
    assert_eq!((contact.tenant.as_str(), contact.attempt), ("acme", 1));
}

#[test]
fn an_agent_moved_to_another_tenant_gives_back_the_offer_they_held() {
    let mut q = queues();
    sign_in_to(&mut q, "acme", "ann", &["support"], 0);
    sign_in_to(&mut q, "acme", "bob", &["support"], 5 * SECOND);
    q.enqueue(contact_of("acme", "a1", "support"), 6 * SECOND)
        .expect("acme");
    q.route(6 * SECOND);
    assert_eq!(offered_to(&q, "a1").as_deref(), Some("ann"));
    sign_in_to(&mut q, "globex", "ann", &["support"], 7 * SECOND);
    q.route(7 * SECOND);
    assert_eq!(offered_to(&q, "a1").as_deref(), Some("bob"));
    assert_eq!(q.agent("ann").map(|a| a.tenant.as_str()), Some("globex"));
}
