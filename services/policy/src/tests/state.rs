//! Conversations kept one turn at a time.

use super::*;
use std::time::{Duration, Instant};

fn limits() -> StateLimits {
    StateLimits {
        max_conversations: 2,
        max_turns: 3,
        ttl: Duration::from_secs(60),
    }
}

#[test]
fn turns_accumulate_and_evaluate() {
    let s = ConversationStates::new(limits());
    let t0 = Instant::now();
    let c = PolicyConfig::default();
    let d = s.append_and_evaluate(
        &c,
        "acme",
        "c1",
        TurnUpdate::new(Turn::ai("Sorry?", AiOutcome::NotUnderstood)),
        t0,
    );
    assert!(!d.escalate);
    let d = s.append_and_evaluate(
        &c,
        "acme",
        "c1",
        TurnUpdate::new(Turn::ai("Sorry?", AiOutcome::Failed)),
        t0,
    );
    assert_eq!(triggers(&d), [Trigger::RepeatedFailure]);
}

#[test]
fn turns_are_bounded_but_a_request_for_a_human_is_not_forgotten() {
    let s = ConversationStates::new(limits());
    let t0 = Instant::now();
    s.append(
        "acme",
        "c1",
        TurnUpdate::new(Turn::customer("agent please")),
        t0,
    );
    for i in 0..5 {
        s.append(
            "acme",
            "c1",
            TurnUpdate::new(Turn::customer(format!("turn {i}"))),
            t0,
        );
    }
    let c = s.get("acme", "c1", t0).expect("kept");
    assert_eq!(c.turns.len(), 3);
    assert!(c.flags.explicit_request);
    assert!(evaluate(&PolicyConfig::default(), &c).escalate);
}

#[test]
fn conversations_expire_after_ttl() {
    let s = ConversationStates::new(limits());
    let t0 = Instant::now();
    s.append("acme", "c1", TurnUpdate::new(Turn::customer("hi")), t0);
    assert!(s.get("acme", "c1", t0 + Duration::from_secs(59)).is_some());
    assert!(s.get("acme", "c1", t0 + Duration::from_secs(60)).is_none());
    // A late turn starts afresh.
    let c = s.append(
        "acme",
        "c1",
        TurnUpdate::new(Turn::customer("again")),
        t0 + Duration::from_secs(61),
    );
    assert_eq!(c.turns.len(), 1);
    assert_eq!(s.purge_expired(t0 + Duration::from_secs(200)), 1);
    assert!(s.is_empty());
}

#[test]
fn least_recently_seen_is_evicted_when_full_and_tenants_are_separate() {
    let s = ConversationStates::new(limits());
    let t0 = Instant::now();
    s.append("acme", "c1", TurnUpdate::new(Turn::customer("one")), t0);
    s.append(
        "globex",
        "c1",
        TurnUpdate::new(Turn::customer("two")),
        t0 + Duration::from_secs(1),
    );
    assert_eq!(
        s.get("acme", "c1", t0)
            .map(|c| c.turns[0].text.clone())
            .as_deref(),
        Some("one")
    );
    s.append(
        "acme",
        "c1",
        TurnUpdate::new(Turn::customer("one again")),
        t0 + Duration::from_secs(2),
    );
    s.append(
        "acme",
        "c2",
        TurnUpdate::new(Turn::customer("three")),
        t0 + Duration::from_secs(3),
    );
    assert_eq!(s.len(), 2);
    assert!(s.get("globex", "c1", t0 + Duration::from_secs(3)).is_none());
    assert!(s.get("acme", "c1", t0 + Duration::from_secs(3)).is_some());
}

#[test]
fn updates_merge_flags_intent_and_entities() {
    let s = ConversationStates::new(StateLimits::default());
    let t0 = Instant::now();
    let mut u = TurnUpdate::new(Turn::customer("hi"));
    u.flags.novel_scenario = true;
    u.entity_types = vec!["ssn".into()];
    u.language = Some("de".into());
    s.append("acme", "c1", u, t0);
    let mut u = TurnUpdate::new(Turn::customer("more"));
    u.intent = Some(Intent {
        name: "billing.refund".into(),
        confidence: 0.9,
    });
    u.entity_types = vec!["ssn".into(), "iban".into()];
    let c = s.append("acme", "c1", u, t0);
    assert!(c.flags.novel_scenario);
    assert_eq!(c.entity_types, ["ssn", "iban"]);
    assert_eq!(c.language, "de");
    assert_eq!(c.intent.map(|i| i.name).as_deref(), Some("billing.refund"));
}

#[test]
fn is_shared_across_threads() {
    let s = std::sync::Arc::new(ConversationStates::new(StateLimits::default()));
    let t0 = Instant::now();
    let handles: Vec<_> = (0..4)
        .map(|i| {
            let s = s.clone();
            std::thread::spawn(move || {
                for j in 0..50 {
                    s.append(
                        "acme",
                        &format!("c{i}"),
                        TurnUpdate::new(Turn::customer(format!("{j}"))),
                        t0,
                    );
                }
            })
        })
        .collect();
    for h in handles {
        h.join().expect("thread");
    }
    assert_eq!(s.len(), 4);
    assert_eq!(s.get("acme", "c0", t0).map(|c| c.turns.len()), Some(50));
}
