//! Unit tests of `evaluate` and the config, one section per trigger.

use crate::*;

fn convo(texts: &[&str]) -> Conversation {
    Conversation {
        language: "en".into(),
        turns: texts.iter().map(|t| Turn::customer(*t)).collect(),
        ..Default::default()
    }
}

fn all_off() -> PolicyConfig {
    let mut c = PolicyConfig::default();
    c.distress.enabled = false;
    c.complexity.enabled = false;
    c.compliance.enabled = false;
    c.repeated_failure.enabled = false;
    c
}

fn triggers(d: &Decision) -> Vec<Trigger> {
    d.fired.iter().map(|f| f.trigger).collect()
}

// ---- explicit request ----

#[test]
fn explicit_request_escalates_with_every_other_trigger_disabled() {
    let d = evaluate(&all_off(), &convo(&["I want to talk to a real person"]));
    assert!(d.escalate);
    assert_eq!(triggers(&d), [Trigger::ExplicitRequest]);
    assert_eq!(d.fired[0].evidence, "\"want to talk to a real person\"");
    assert_eq!(
        d.customer_message.as_deref(),
        Some("I'm connecting you with a member of our team now.")
    );
}

#[test]
fn explicit_request_cannot_be_switched_off_in_config() {
    let err = PolicyConfig::from_json(r#"{"explicit_request": {"enabled": false}}"#)
        .expect_err("must be rejected");
    assert!(err.contains("unknown field `enabled`"), "{err}");
}

#[test]
fn runtime_flag_escalates_whatever_the_words() {
    let mut c = convo(&["yes"]);
    c.flags.explicit_request = true;
    let d = evaluate(&all_off(), &c);
    assert_eq!(d.fired[0].evidence, "flagged by the runtime");
}

#[test]
fn request_in_an_earlier_turn_still_counts() {
    let d = evaluate(
        &all_off(),
        &convo(&["agent", "hello?", "what is my balance"]),
    );
    assert!(d.escalate);
}

#[test]
fn negation_and_quotes_do_not_escalate() {
    for t in [
        "I don't need a person",
        "no quiero un agente",
        "my friend said \"talk to an agent\"",
        "je ne veux pas parler à un conseiller",
        "Ich brauche keinen Mitarbeiter",
    ] {
        assert!(!evaluate(&all_off(), &convo(&[t])).escalate, "{t}");
    }
}

#[test]
fn accents_are_optional() {
    for t in [
        "Pásame con un humano",
        "Pasame con un humano",
        "PÁSAME CON UN HUMANO",
        "Quero falar com alguém",
        "Quero falar com alguem",
    ] {
        assert!(evaluate(&all_off(), &convo(&[t])).escalate, "{t}");
    }
}

#[test]
fn mentions_of_a_human_are_not_requests() {
    for t in [
        "My call with the operator was cut",
        "Your agent promised a callback",
        "The representative was helpful, thanks",
        "Did a real person approve my loan?",
        "Can agents see my payment details?",
    ] {
        assert!(!evaluate(&all_off(), &convo(&[t])).escalate, "{t}");
    }
    assert!(
        evaluate(
            &all_off(),
            &convo(&["Could someone from your team call me?"])
        )
        .escalate
    );
}

#[test]
fn extra_phrases_from_config() {
    let mut c = all_off();
    c.explicit_request.extra_phrases = vec!["Baton Care".into()];
    assert!(evaluate(&c, &convo(&["put me through to baton care"])).escalate);
    assert!(!evaluate(&c, &convo(&["I don't want baton care"])).escalate);
}

#[test]
fn a_human_turn_clears_what_came_before() {
    let mut c = convo(&["agent please"]);
    c.turns.push(Turn {
        speaker: Speaker::Human,
        text: "Hi, Maria here".into(),
        distress_score: None,
        ai_outcome: None,
    });
    c.turns.push(Turn::customer("thanks, it's about my bill"));
    assert!(!evaluate(&PolicyConfig::default(), &c).escalate);
}

/// Evidence quotes the customer's words as written, not the tokens they
/// were split into (which lose hyphens, apostrophes, accents and case).
#[test]
fn evidence_is_the_span_of_the_original_text() {
    for (text, evidence) in [
        (
            "Bonjour. Passez-moi quelqu'un, vite !",
            "\"Passez-moi quelqu'un\"",
        ),
        (
            "I can't do this, I want to talk to a RÉAL person",
            "\"want to talk to a RÉAL person\"",
        ),
        ("AGENT, please", "\"AGENT\""),
    ] {
        let d = evaluate(&all_off(), &convo(&[text]));
        assert!(d.escalate, "{text}");
        assert_eq!(d.fired[0].evidence, evidence, "{text}");
    }
}

#[test]
fn evidence_never_carries_digits() {
    let d = evaluate(&all_off(), &convo(&["transfer 4111 me to a human"]));
    for f in &d.fired {
        assert!(
            !f.evidence.chars().any(|c| c.is_ascii_digit()),
            "{}",
            f.evidence
        );
    }
}

// ---- distress ----

#[test]
fn runtime_distress_score_is_used_against_the_threshold() {
    let mut c = PolicyConfig::default();
    c.distress.threshold = 0.8;
    let mut conv = convo(&["ok"]);
    conv.turns[0].distress_score = Some(0.8);
    let d = evaluate(&c, &conv);
    assert_eq!(triggers(&d), [Trigger::Distress]);
    assert_eq!(d.fired[0].score, Some(0.8));
    assert_eq!(d.fired[0].threshold, Some(0.8));
    assert!(d.fired[0].evidence.contains("runtime score"));
    conv.turns[0].distress_score = Some(0.7);
    let d = evaluate(&c, &conv);
    assert!(!d.escalate);
    assert_eq!(
        d.near_misses,
        ["distress 0.70 is close to threshold 0.80 (runtime score)"]
    );
}

#[test]
fn built_in_scorer_fires_on_anger_and_not_on_calm() {
    let c = PolicyConfig::default();
    let d = evaluate(&c, &convo(&["This is RIDICULOUS!!! I am FURIOUS"]));
    assert_eq!(triggers(&d), [Trigger::Distress]);
    assert!(
        d.fired[0].evidence.contains("ridiculous"),
        "{}",
        d.fired[0].evidence
    );
    assert!(!evaluate(&c, &convo(&["Thanks, that's all I needed."])).escalate);
}

#[test]
fn distress_can_be_disabled() {
    let mut c = PolicyConfig::default();
    c.distress.enabled = false;
    assert!(!evaluate(&c, &convo(&["This is RIDICULOUS!!! I am FURIOUS"])).escalate);
}

#[test]
fn rising_frustration_across_turns_fires() {
    let d = evaluate(
        &PolicyConfig::default(),
        &convo(&[
            "where is my order",
            "this is annoying",
            "this is ridiculous, seriously!!",
        ]),
    );
    assert_eq!(triggers(&d), [Trigger::Distress]);
    assert!(
        d.fired[0].evidence.contains("rising"),
        "{}",
        d.fired[0].evidence
    );
}

// ---- complexity ----

fn with_intent(name: &str, confidence: f32) -> Conversation {
    Conversation {
        intent: Some(Intent {
            name: name.into(),
            confidence,
        }),
        ..convo(&["hello"])
    }
}

#[test]
fn intent_outside_capabilities_or_unsure_fires() {
    let mut c = PolicyConfig::default();
    c.complexity.capabilities = vec!["billing.*".into(), "faq.hours".into()];
    assert!(!evaluate(&c, &with_intent("billing.refund", 0.9)).escalate);
    assert!(!evaluate(&c, &with_intent("billing", 0.9)).escalate);
    assert!(!evaluate(&c, &with_intent("FAQ.hours", 0.9)).escalate);
    assert!(evaluate(&c, &with_intent("billingx.refund", 0.9)).escalate);
    let d = evaluate(&c, &with_intent("mortgage.restructure", 0.9));
    assert_eq!(
        d.fired[0].evidence,
        "intent 'mortgage.restructure' is not in the capability list"
    );
    let d = evaluate(&c, &with_intent("billing.refund", 0.3));
    assert_eq!(d.fired[0].evidence, "intent confidence 0.30 < minimum 0.50");
    let d = evaluate(&c, &with_intent("billing.refund", 0.55));
    assert!(!d.escalate);
    assert_eq!(
        d.near_misses,
        ["intent confidence 0.55 is close to the minimum 0.50"]
    );
}

#[test]
fn runtime_complexity_flags_fire_unless_switched_off() {
    let mut conv = convo(&["hello"]);
    conv.flags.multi_party_dispute = true;
    let mut c = PolicyConfig::default();
    assert_eq!(triggers(&evaluate(&c, &conv)), [Trigger::Complexity]);
    c.complexity.multi_party_dispute = false;
    assert!(!evaluate(&c, &conv).escalate);
    conv.flags.novel_scenario = true;
    assert!(evaluate(&c, &conv).escalate);
    c.complexity.enabled = false;
    assert!(!evaluate(&c, &conv).escalate);
}

// ---- compliance ----

fn compliance_config() -> PolicyConfig {
    PolicyConfig::from_json(
        r#"{
          "default_route": "support",
          "distress": {"route": "care"},
          "compliance": {"rules": [
            {"name": "advice", "route": "licensed-advisor", "intents": ["investments.advice"]},
            {"name": "medical", "route": "nurse", "entity_types": ["diagnosis"]},
            {"name": "poa", "route": "legal", "phrases": ["power of attorney", "procuração"]}
          ]}
        }"#,
    )
    .expect("valid config")
}

#[test]
fn compliance_rules_match_intent_entity_and_phrase_and_route_first() {
    let c = compliance_config();
    let d = evaluate(&c, &with_intent("investments.advice", 0.9));
    assert_eq!(d.route.as_deref(), Some("licensed-advisor"));
    assert_eq!(d.fired[0].rule.as_deref(), Some("advice"));
    let mut conv = convo(&["hello"]);
    conv.entity_types = vec!["DIAGNOSIS".into()];
    assert_eq!(evaluate(&c, &conv).route.as_deref(), Some("nurse"));
    // Compliance route wins over distress's, phrase folded.
    let d = evaluate(
        &c,
        &convo(&["Tenho uma PROCURACAO e estou FURIOSA, que RAIVA!!!"]),
    );
    assert_eq!(triggers(&d), [Trigger::Distress, Trigger::Compliance]);
    assert_eq!(d.route.as_deref(), Some("legal"));
    // Without compliance, the first fired trigger with a route, then the default.
    let d = evaluate(&c, &convo(&["I am FURIOUS, this is RIDICULOUS!!!"]));
    assert_eq!(d.route.as_deref(), Some("care"));
    let d = evaluate(&c, &convo(&["agent"]));
    assert_eq!(d.route.as_deref(), Some("support"));
}

// ---- repeated failure ----

fn failures(outcomes: &[AiOutcome]) -> Conversation {
    let mut c = convo(&[]);
    for o in outcomes {
        c.turns.push(Turn::customer("change my delivery slot"));
        c.turns.push(Turn::ai("sorry?", *o));
    }
    c
}

#[test]
fn repeated_failure_counts_consecutive_failures_and_resolved_resets() {
    use AiOutcome::*;
    let c = PolicyConfig::default();
    let d = evaluate(&c, &failures(&[NotUnderstood]));
    assert!(!d.escalate);
    assert_eq!(
        d.near_misses,
        ["one more failed attempt escalates (1 of 2)"]
    );
    let d = evaluate(&c, &failures(&[NotUnderstood, Failed]));
    assert_eq!(triggers(&d), [Trigger::RepeatedFailure]);
    assert_eq!(d.fired[0].count, Some(2));
    assert_eq!(d.fired[0].evidence, "2 failures in a row (threshold 2)");
    assert!(!evaluate(&c, &failures(&[Failed, Resolved, Failed])).escalate);
    let mut c3 = PolicyConfig::default();
    c3.repeated_failure.threshold = 3;
    assert!(!evaluate(&c3, &failures(&[Failed, Failed])).escalate);
    assert!(evaluate(&c3, &failures(&[Failed, Failed, NotUnderstood])).escalate);
}

// ---- config ----

#[test]
fn empty_config_is_the_documented_default_and_valid() {
    let c = PolicyConfig::from_json("{}").expect("valid");
    assert_eq!(c, PolicyConfig::default());
    assert_eq!(c.distress.threshold, 0.7);
    assert_eq!(c.repeated_failure.threshold, 2);
    assert_eq!(c.complexity.min_confidence, 0.5);
}

#[test]
fn bad_values_name_the_key() {
    for (json, key) in [
        (
            r#"{"distress": {"threshold": 1.5}}"#,
            "distress.threshold: must be between 0 and 1",
        ),
        (
            r#"{"distress": {"threshold": -0.1}}"#,
            "distress.threshold: must be between 0 and 1",
        ),
        (
            r#"{"complexity": {"min_confidence": 2}}"#,
            "complexity.min_confidence: must be between 0 and 1",
        ),
        (
            r#"{"complexity": {"capabilities": ["bill*ing"]}}"#,
            "complexity.capabilities[0]:",
        ),
        (
            r#"{"repeated_failure": {"threshold": 1}}"#,
            "repeated_failure.threshold: must be between 2 and 20",
        ),
        (
            r#"{"compliance": {"rules": [{"name": "x", "route": "", "phrases": ["a"]}]}}"#,
            "compliance.rules[0].route:",
        ),
        (
            r#"{"compliance": {"rules": [{"name": "x", "route": "r"}]}}"#,
            "compliance.rules[0]: needs at least one",
        ),
        (
            r#"{"compliance": {"rules": [{"name": "x", "route": "r", "intents": ["*x"]}]}}"#,
            "compliance.rules[0].intents[0]:",
        ),
        (
            r#"{"distress": {"route": " "}}"#,
            "distress.route: must not be empty",
        ),
        (
            r#"{"customer_messages": {"fr": ""}}"#,
            "customer_messages.fr: must not be empty",
        ),
        (
            r#"{"distress": {"treshold": 0.5}}"#,
            "unknown field `treshold`",
        ),
    ] {
        let err = PolicyConfig::from_json(json).expect_err("must be rejected");
        assert!(err.contains(key), "{json}: {err}");
    }
}

#[test]
fn customer_message_follows_the_language() {
    let c = PolicyConfig::default();
    assert!(
        c.customer_message("pt-BR")
            .is_some_and(|m| m.starts_with("Vou transferir"))
    );
    assert!(
        c.customer_message("es")
            .is_some_and(|m| m.starts_with("Le comunico"))
    );
    assert!(
        c.customer_message("ja")
            .is_some_and(|m| m.starts_with("I'm connecting"))
    );
}

// ---- state ----

mod state {
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
}

#[test]
fn odd_text_never_panics() {
    let long = "agent ".repeat(5000);
    for t in [
        "",
        " ",
        "!!!",
        "\"",
        "'",
        "«",
        "\"unclosed quote agent",
        "'''",
        "😡😡😡 AGENT 😡",
        "מה זה",
        "ǅǆ İstanbul ﬁ",
        "0.0.0",
        "0,0,0",
        "..0..",
        &long,
    ] {
        let mut c = convo(&[t]);
        c.intent = Some(Intent {
            name: t.into(),
            confidence: f32::NAN,
        });
        c.turns[0].distress_score = Some(f32::NAN);
        let _ = evaluate(&PolicyConfig::default(), &c);
    }
}
