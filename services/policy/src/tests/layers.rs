//! Rules and model together, as `evaluate` runs them in production.

use super::*;

fn both(texts: &[&str]) -> Decision {
    crate::evaluate(&all_off(), &convo(texts))
}

#[test]
fn a_request_the_rules_refuse_or_quote_stays_refused() {
    for t in [
        "I don't need a person",
        "no quiero un agente",
        "my friend said \"talk to an agent\"",
        "je ne veux pas parler à un conseiller",
        "Ich brauche keinen Mitarbeiter",
    ] {
        let d = both(&[t]);
        assert!(!d.escalate, "{t}: {:?}", d.fired);
    }
}

#[test]
fn the_rules_fire_first_and_the_model_adds_what_they_miss() {
    let d = both(&["I want to talk to a real person"]);
    assert_eq!(d.fired[0].layer, Layer::Rules);
    // No lexicon has Japanese; the model reads it.
    let d = both(&["担当の方に代わっていただけますか"]);
    assert_eq!(
        triggers(&d),
        [Trigger::ExplicitRequest],
        "{:?}",
        d.ambiguous
    );
    let fired = &d.fired[0];
    assert_eq!(fired.layer, Layer::Model);
    assert!(
        fired.evidence.starts_with("model: \""),
        "{}",
        fired.evidence
    );
    assert!(fired.score >= fired.threshold);
}

#[test]
fn a_tenant_threshold_moves_the_model_and_never_the_rules() {
    let mut strict = all_off();
    strict.model.explicit_request_threshold = Some(1.0);
    strict.model.ambiguous_margin = 0.0;
    let japanese = convo(&["担当の方に代わっていただけますか"]);
    assert!(!crate::evaluate(&strict, &japanese).escalate);
    let english = convo(&["I want to talk to a real person"]);
    assert!(crate::evaluate(&strict, &english).escalate, "rules always");
    let mut off = all_off();
    off.model.enabled = false;
    assert!(!crate::evaluate(&off, &japanese).escalate);
}

#[test]
fn an_unsure_model_lists_the_turn_for_a_judge_and_the_judge_can_add_it() {
    let mut config = all_off();
    config.model.explicit_request_threshold = Some(1.0);
    config.model.ambiguous_margin = 1.0;
    config.explicit_request.route = Some("humans".into());
    let conversation = convo(&["hmm, ok"]);
    let mut d = crate::evaluate(&config, &conversation);
    assert!(!d.escalate);
    let unsure = d
        .ambiguous
        .iter()
        .find(|a| a.trigger == Trigger::ExplicitRequest)
        .expect("ambiguous");
    assert_eq!(unsure.turn, 0);
    d.add_judged(
        &config,
        "en",
        Trigger::ExplicitRequest,
        "asks for card 4111",
    );
    assert!(d.escalate);
    assert_eq!(d.fired[0].layer, Layer::Judge);
    assert_eq!(d.fired[0].evidence, "judge: asks for card ####");
    assert_eq!(d.route.as_deref(), Some("humans"));
    assert!(d.customer_message.is_some());
    assert!(
        d.ambiguous
            .iter()
            .all(|a| a.trigger != Trigger::ExplicitRequest)
    );
}
