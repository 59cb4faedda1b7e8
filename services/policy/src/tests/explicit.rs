//! The explicit request for a human, through `evaluate`.

use super::*;

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
