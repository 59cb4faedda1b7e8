use super::*;
use crate::convert::context::{encode_context, encode_conversation};
use domain::ContextMechanism as Mechanism;

fn reference() -> domain::ContextReference {
    domain::ContextReference {
        handoff_id: "h1".into(),
        token: "t".repeat(51),
        context_url: "http://127.0.0.1:8080/v1/handoffs/h1/context?token=x".into(),
        screen_pop_url: "http://127.0.0.1:8080/v1/handoffs/h1/screen-pop?token=x".into(),
    }
}

fn context(turns: usize) -> pb::HandoffContext {
    pb::HandoffContext {
        summary: "Double charge on the March invoice".into(),
        intent: Some(pb::Intent {
            name: "billing.dispute".into(),
            confidence: 0.8,
        }),
        entities: vec![
            pb::Entity {
                name: "card".into(),
                value: "4111111111111111".into(),
                r#type: "card".into(),
                sensitive: true,
            },
            pb::Entity {
                name: "issue_type".into(),
                value: "double charge".into(),
                r#type: "string".into(),
                sensitive: false,
            },
        ],
        transcript: (0..turns)
            .map(|i| pb::Turn {
                speaker: 1,
                text: format!("turn number {i} with some words"),
                at: None,
            })
            .collect(),
        attempts: vec![pb::Attempt {
            action: "looked up the March invoice".into(),
            outcome: pb::AttemptOutcome::Failed as i32,
            detail: "two charges, refund needs a human".into(),
        }],
        ..Default::default()
    }
}

fn capability(mechanism: Mechanism, max_bytes: u32) -> domain::ContextCapability {
    domain::ContextCapability {
        mechanism,
        max_bytes,
    }
}

fn envelope(
    conversation: &pb::Conversation,
    context: &pb::HandoffContext,
    capabilities: &[domain::ContextCapability],
) -> ContextEnvelope {
    build_envelope(
        &reference(),
        &encode_conversation(conversation),
        &encode_context(context),
        &[],
        capabilities,
    )
}

#[test]
fn structured_context_drops_oldest_turns_and_says_so() {
    let envelope = envelope(
        &pb::Conversation::default(),
        &context(100),
        &[capability(Mechanism::Structured, 1024)],
    );
    let fitted = envelope.context.expect("context");
    assert!(fitted.encoded_len() <= 1024);
    let dropped = 100 - fitted.transcript.len();
    assert!(dropped > 0);
    assert_eq!(
        envelope.omitted_fields,
        [format!("transcript[0..{dropped}]")]
    );
    assert_eq!(
        fitted.transcript.last().expect("turn").text,
        "turn number 99 with some words"
    );
}

#[test]
fn unlimited_structured_context_is_whole() {
    let envelope = envelope(
        &pb::Conversation::default(),
        &context(100),
        &[capability(Mechanism::Structured, 0)],
    );
    assert_eq!(envelope.context.expect("context").transcript.len(), 100);
    assert!(envelope.omitted_fields.is_empty());
}

#[test]
fn payloads_fit_their_limits_and_never_carry_sensitive_values() {
    let envelope = envelope(
        &pb::Conversation {
            language: "en".into(),
            ..Default::default()
        },
        &context(50),
        &[
            capability(Mechanism::SipUserToUser, 128),
            capability(Mechanism::SipHeaders, 1024),
            capability(Mechanism::TaskAttributes, 600),
        ],
    );
    assert_eq!(envelope.payloads.len(), 3);
    let uui = &envelope.payloads[0];
    assert_eq!(uui.content, reference().token);
    for payload in &envelope.payloads {
        assert!(!payload.content.contains("4111111111111111"));
        assert!(
            payload
                .omitted_fields
                .contains(&"entities.card".to_string())
                || payload.mechanism == ContextMechanism::SipUserToUser as i32
        );
    }
    let headers = &envelope.payloads[1];
    assert!(headers.content.len() <= 1024);
    assert!(headers.content.contains("billing.dispute"));
    assert!(!headers.content.contains("Double charge"));
    let attributes = &envelope.payloads[2];
    assert!(
        attributes.content.len() <= 600,
        "{}",
        attributes.content.len()
    );
    assert!(attributes.content.contains("Double charge"));
    assert!(
        attributes
            .omitted_fields
            .contains(&"transcript".to_string())
    );
}

/// Every top-level field of the context is either in a payload or named
/// as omitted: a receiver can tell "not sent" from "not known".
#[test]
fn every_context_field_a_payload_leaves_out_is_named() {
    let fields = [
        "summary",
        "intent",
        "entities",
        "transcript",
        "attempts",
        "reason",
        "reason_detail",
        "agent_notes",
        "priority",
    ];
    let mut context = context(2);
    context.reason = Some(pb::EscalationReason {
        kind: pb::EscalationKind::Complexity as i32,
        detail: "refund over the AI's limit".into(),
    });
    context.agent_notes = "prefers email".into();
    for mechanism in [
        Mechanism::SipHeaders,
        Mechanism::TaskAttributes,
        Mechanism::Webhook,
    ] {
        for limit in [0, 300, 700] {
            let envelope = envelope(
                &pb::Conversation::default(),
                &context,
                &[capability(mechanism, limit)],
            );
            let payload = &envelope.payloads[0];
            let carried: Value = serde_json::from_str(&payload.content).expect("json");
            for field in fields {
                assert!(
                    carried.get(field).is_some()
                        || payload.omitted_fields.iter().any(|o| o == field),
                    "{mechanism:?} at {limit} bytes neither carries nor names {field}: {payload:?}"
                );
            }
            if mechanism != Mechanism::SipHeaders && limit == 0 {
                assert!(payload.content.contains("looked up the March invoice"));
            }
        }
    }
}

/// What the data policy left out is named like what did not fit, and
/// no payload carries an empty stand-in for it.
#[test]
fn fields_the_data_policy_withheld_are_named_as_omitted() {
    let mut context = context(2);
    context.summary.clear();
    let withheld = ["summary".to_string(), "entities.issue_type".to_string()];
    context.entities.retain(|e| e.name != "issue_type");
    let envelope = build_envelope(
        &reference(),
        &encode_conversation(&pb::Conversation::default()),
        &encode_context(&context),
        &withheld,
        &[
            capability(Mechanism::Structured, 0),
            capability(Mechanism::Webhook, 0),
        ],
    );
    assert_eq!(envelope.omitted_fields, withheld);
    let webhook = &envelope.payloads[0];
    let carried: Value = serde_json::from_str(&webhook.content).expect("json");
    assert!(carried.get("summary").is_none(), "{carried}");
    for field in &withheld {
        assert!(webhook.omitted_fields.contains(field), "{webhook:?}");
    }
}
