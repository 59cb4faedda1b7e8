//! The rule triggers: complexity, compliance and repeated failure.

use super::*;

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

// Compliance.

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

// Repeated failure.

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
