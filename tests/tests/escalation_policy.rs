//! EvaluateEscalation through gRPC: explicit requests always escalate,
//! turn-by-turn state counts repeated failures, bad input is named, and a
//! handoff records the decision that led to it.

mod common;

use baton_proto::handoff::v1::*;
use baton_proto::types::v1 as pb;
use common::*;
use tonic_types::StatusExt;

fn customer(text: &str) -> EvaluatedTurn {
    EvaluatedTurn {
        speaker: pb::Speaker::Customer as i32,
        text: text.into(),
        distress_score: None,
        ai_outcome: AiOutcome::Unspecified as i32,
    }
}

fn ai(text: &str, outcome: AiOutcome) -> EvaluatedTurn {
    EvaluatedTurn {
        speaker: pb::Speaker::Ai as i32,
        text: text.into(),
        distress_score: None,
        ai_outcome: outcome as i32,
    }
}

fn whole(turns: Vec<EvaluatedTurn>, language: &str) -> EvaluateEscalationRequest {
    EvaluateEscalationRequest {
        whole_conversation: true,
        language: language.into(),
        turns,
        ..Default::default()
    }
}

#[tokio::test]
async fn an_explicit_request_escalates_at_once_in_any_supported_language() {
    let stack = Stack::start().await;
    let mut client = stack.client().await;
    for (text, language) in [
        ("I want to talk to a real person", "en"),
        ("quiero hablar con un agente, por favor", "es"),
        ("je veux parler à un conseiller humain", "fr"),
        ("Ich möchte mit einem Mitarbeiter sprechen", "de"),
        ("quero falar com um atendente", "pt"),
    ] {
        let decision = client
            .evaluate_escalation(whole(vec![customer(text)], language))
            .await
            .expect("evaluate")
            .into_inner()
            .decision
            .expect("decision");
        assert!(decision.escalate, "{text}");
        assert_eq!(
            decision.fired[0].kind(),
            pb::EscalationKind::ExplicitRequest,
            "{text}"
        );
        assert!(!decision.fired[0].evidence.is_empty());
        assert!(!decision.customer_message.is_empty());
    }
    // The evidence quotes what the customer wrote, not normalised tokens.
    let decision = client
        .evaluate_escalation(whole(
            vec![customer("Bonjour. Passez-moi quelqu'un, vite !")],
            "fr-FR",
        ))
        .await
        .expect("evaluate")
        .into_inner()
        .decision
        .expect("decision");
    assert_eq!(
        decision.fired.first().map(|f| f.evidence.as_str()),
        Some("\"Passez-moi quelqu'un\"")
    );
    let decision = client
        .evaluate_escalation(whole(
            vec![customer("I don't need a person, just tell me my balance")],
            "en",
        ))
        .await
        .expect("evaluate")
        .into_inner()
        .decision
        .expect("decision");
    assert!(!decision.escalate, "{decision:?}");
    assert!(decision.customer_message.is_empty());
}

#[tokio::test]
async fn failures_are_counted_across_turns_sent_one_at_a_time() {
    let stack = Stack::start().await;
    let mut client = stack.client().await;
    let turn = |turns: Vec<EvaluatedTurn>| EvaluateEscalationRequest {
        conversation_id: "call-7".into(),
        language: "en".into(),
        turns,
        ..Default::default()
    };
    let first = client
        .evaluate_escalation(turn(vec![
            customer("my router blinks orange"),
            ai("Sorry, could you rephrase?", AiOutcome::NotUnderstood),
        ]))
        .await
        .expect("first")
        .into_inner()
        .decision
        .expect("decision");
    assert!(!first.escalate);
    assert!(!first.recommendations.is_empty(), "a near miss is reported");

    let second = client
        .evaluate_escalation(turn(vec![
            customer("it BLINKS ORANGE"),
            ai("Sorry, I didn't get that.", AiOutcome::NotUnderstood),
        ]))
        .await
        .expect("second")
        .into_inner()
        .decision
        .expect("decision");
    assert!(second.escalate, "{second:?}");
    let repeated = second
        .fired
        .iter()
        .find(|f| f.kind() == pb::EscalationKind::RepeatedFailure)
        .expect("repeated failure fired");
    assert_eq!(repeated.count, 2);

    // Another conversation id starts from nothing.
    let other = client
        .evaluate_escalation(EvaluateEscalationRequest {
            conversation_id: "call-8".into(),
            turns: vec![ai("Sorry?", AiOutcome::NotUnderstood)],
            ..Default::default()
        })
        .await
        .expect("other")
        .into_inner()
        .decision
        .expect("decision");
    assert!(!other.escalate);
}

#[tokio::test]
async fn bad_evaluation_input_is_named() {
    let stack = Stack::start().await;
    let mut client = stack.client().await;
    let mut request = EvaluateEscalationRequest {
        turns: vec![customer("hello")],
        ..Default::default()
    };
    request.turns[0].distress_score = Some(3.0);
    let status = client
        .evaluate_escalation(request)
        .await
        .expect_err("invalid");
    let fields: Vec<String> = status
        .get_details_bad_request()
        .expect("details")
        .field_violations
        .into_iter()
        .map(|v| v.field)
        .collect();
    assert_eq!(fields, ["conversation_id", "turns[0].distress_score"]);
}

#[tokio::test]
async fn a_handoff_records_the_decision_that_led_to_it() {
    let stack = Stack::start().await;
    let mut client = stack.client().await;
    let decision = client
        .evaluate_escalation(whole(vec![customer("operator! operator!")], "en"))
        .await
        .expect("evaluate")
        .into_inner()
        .decision
        .expect("decision");
    assert!(decision.escalate);
    let mut with_options = request("with-decision", queue("hold"));
    with_options.decision = Some(decision.clone());
    let id = create(&mut client, with_options).await;
    let stored = baton_tests::get_handoff(&mut client, id).await;
    assert_eq!(stored.decision, Some(decision));
}
