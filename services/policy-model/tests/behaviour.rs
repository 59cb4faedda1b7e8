//! Behaviour of the trained weights on obvious turns. Not a measure of
//! quality (that is `baton-policy-eval` on the held-out split); a guard
//! against weights that are wired backwards or trained on nothing.

use baton_policy_model::{Label, Model};

fn fires(text: &str, label: Label) -> bool {
    let model = Model::embedded();
    model.predict(text).get(label) >= model.default_threshold(label)
}

#[test]
fn plain_requests_for_a_human_fire() {
    for text in [
        "I want to talk to a human",
        "Can I speak to a real person please?",
        "put me through to a live agent",
        "Je veux parler à un conseiller",
        "quiero hablar con una persona",
        "Ich möchte mit einem Mitarbeiter sprechen",
    ] {
        assert!(
            fires(text, Label::ExplicitRequest),
            "{text:?} {:?}",
            Model::embedded().predict(text)
        );
    }
}

#[test]
fn ordinary_questions_do_not_ask_for_a_human() {
    for text in [
        "what is my balance",
        "how do I reset my password",
        "thanks, that worked",
        "quel est mon solde",
    ] {
        assert!(
            !fires(text, Label::ExplicitRequest),
            "{text:?} {:?}",
            Model::embedded().predict(text)
        );
    }
}

#[test]
fn a_request_scores_above_a_balance_question() {
    let model = Model::embedded();
    let label = Label::ExplicitRequest;
    let request = model.predict("I want to talk to a human").get(label);
    let balance = model.predict("what is my balance").get(label);
    assert!(request > balance + 0.5, "{request} vs {balance}");
}

#[test]
fn the_explanation_names_the_evidence() {
    let evidence =
        Model::embedded().explain("I want to talk to a human", Label::ExplicitRequest, 3);
    assert!(!evidence.is_empty());
    let names: Vec<&str> = evidence.iter().map(|(f, _)| f.trim()).collect();
    assert!(
        names
            .iter()
            .any(|f| "i want to talk to a human".contains(f)),
        "{evidence:?}"
    );
}
