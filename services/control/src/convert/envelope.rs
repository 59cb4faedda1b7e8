//! The context envelope: what a connector's mechanisms can carry of a
//! handoff's context. A signed reference to the full context always travels;
//! then as much of the context as fits each mechanism's limit, with what was
//! left out named, never cut silently.
//!
//! The context arrives in the forms the data policy gives the connector
//! (`disclosure`): what it leaves out (`withheld`) is named as omitted
//! like what does not fit.
//!
//! This is the domain's rule (what fits, what is left out, that sensitive
//! entity values never go into a payload), but it lives at the edge: the
//! limits are counted in the contract's encoded bytes and the structured
//! context is cut in its message form, so it needs the generated types.

use baton_proto::connector::v1::{
    ContextEnvelope, ContextMechanism, ContextPayload, ContextReference,
};
use baton_proto::types::v1 as pb;
use prost::Message;
use serde_json::{Map, Value, json};

use super::context::{attempt_outcome_name, reason_name, speaker_name};
use crate::domain;

/// Builds the envelope for a connector with `capabilities`, from the
/// context its data policy lets go and the fields it `withheld`.
pub fn build_envelope(
    reference: &domain::ContextReference,
    conversation: &domain::EncodedConversation,
    context: &domain::EncodedContext,
    withheld: &[String],
    capabilities: &[domain::ContextCapability],
) -> ContextEnvelope {
    let reference = super::types::reference(reference);
    let conversation = super::context::conversation(conversation);
    let context = super::context::context(context);
    let mut envelope = ContextEnvelope {
        reference: Some(reference.clone()),
        conversation: Some(conversation.clone()),
        ..Default::default()
    };
    for capability in capabilities {
        let limit = capability.max_bytes as usize;
        match super::types::mechanism(capability.mechanism) {
            ContextMechanism::Structured => {
                let (fitted, omitted) = fit_structured(&context, limit);
                envelope.context = Some(fitted);
                envelope.omitted_fields = withheld.iter().cloned().chain(omitted).collect();
            }
            mechanism => {
                let mut payload = render_payload(
                    mechanism,
                    &reference,
                    &conversation,
                    &context,
                    withheld,
                    limit,
                );
                for field in withheld {
                    if !payload.omitted_fields.contains(field) {
                        payload.omitted_fields.push(field.clone());
                    }
                }
                envelope.payloads.push(payload);
            }
        }
    }
    envelope
}

/// The structured context, with the oldest transcript turns, then attempts,
/// then notes removed until it fits `limit` (0: no limit).
fn fit_structured(context: &pb::HandoffContext, limit: usize) -> (pb::HandoffContext, Vec<String>) {
    let mut fitted = context.clone();
    let mut omitted = Vec::new();
    if limit == 0 || fitted.encoded_len() <= limit {
        return (fitted, omitted);
    }
    let turns = fitted.transcript.len();
    let mut dropped = 0;
    while fitted.encoded_len() > limit && !fitted.transcript.is_empty() {
        fitted.transcript.remove(0);
        dropped += 1;
    }
    if dropped > 0 {
        omitted.push(if dropped == turns {
            "transcript".to_string()
        } else {
            format!("transcript[0..{dropped}]")
        });
    }
    if fitted.encoded_len() > limit && !fitted.attempts.is_empty() {
        fitted.attempts.clear();
        omitted.push("attempts".into());
    }
    if fitted.encoded_len() > limit && !fitted.agent_notes.is_empty() {
        fitted.agent_notes.clear();
        omitted.push("agent_notes".into());
    }
    if fitted.encoded_len() > limit && !fitted.entities.is_empty() {
        fitted.entities.clear();
        omitted.push("entities".into());
    }
    (fitted, omitted)
}

/// Compact JSON for a size-limited mechanism. SIP mechanisms carry only what
/// is safe in signalling: the token, then the intent, reason, language and
/// priority. Platform mechanisms (task attributes, webhooks) may also carry
/// the summary, non-sensitive entities, notes, what the AI tried and the
/// transcript. Sensitive entity values never go into a payload. Every field
/// of the context a payload does not carry is named in `omitted_fields`.
fn render_payload(
    mechanism: ContextMechanism,
    reference: &ContextReference,
    conversation: &pb::Conversation,
    context: &pb::HandoffContext,
    withheld: &[String],
    limit: usize,
) -> ContextPayload {
    let mut omitted = Vec::new();
    // User-to-User carries the token alone: carriers allow about 128 bytes.
    if mechanism == ContextMechanism::SipUserToUser {
        return ContextPayload {
            mechanism: mechanism as i32,
            content: reference.token.clone(),
            omitted_fields: vec!["*".into()],
        };
    }
    let mut object = Map::new();
    object.insert("token".into(), json!(reference.token));
    let signalling = matches!(
        mechanism,
        ContextMechanism::SipHeaders | ContextMechanism::ScreenPopUrl
    );
    let sensitive_entities: Vec<_> = context
        .entities
        .iter()
        .filter(|e| e.sensitive)
        .map(|e| format!("entities.{}", e.name))
        .collect();

    let mut candidates: Vec<(&str, Value)> = vec![("context_url", json!(reference.context_url))];
    if let Some(intent) = &context.intent {
        candidates.push(("intent", json!(intent.name)));
        candidates.push(("confidence", json!(intent.confidence)));
    }
    if let Some(reason) = &context.reason {
        candidates.push(("reason", json!(reason_name(reason.kind))));
    }
    candidates.push(("language", json!(conversation.language)));
    candidates.push(("priority", json!(context.priority)));
    let reason_detail = context
        .reason
        .as_ref()
        .map(|r| r.detail.as_str())
        .filter(|d| !d.is_empty());
    if signalling {
        omitted.extend(reason_detail.map(|_| "reason_detail".to_string()));
        omitted.extend(
            [
                "summary",
                "entities",
                "transcript",
                "attempts",
                "agent_notes",
            ]
            .map(String::from),
        );
    } else {
        candidates.push(("summary", json!(context.summary)));
        if let Some(detail) = reason_detail {
            candidates.push(("reason_detail", json!(detail)));
        }
        let entities: Map<String, Value> = context
            .entities
            .iter()
            .filter(|e| !e.sensitive)
            .map(|e| (e.name.clone(), json!(e.value)))
            .collect();
        candidates.push(("entities", Value::Object(entities)));
        candidates.push(("agent_notes", json!(context.agent_notes)));
        let attempts: Vec<Value> = context
            .attempts
            .iter()
            .map(|a| {
                json!({"action": a.action, "outcome": attempt_outcome_name(a.outcome), "detail": a.detail})
            })
            .collect();
        candidates.push(("attempts", Value::Array(attempts)));
        let turns: Vec<Value> = context
            .transcript
            .iter()
            .map(|t| json!({"speaker": speaker_name(t.speaker), "text": t.text}))
            .collect();
        candidates.push(("transcript", Value::Array(turns)));
    }
    for (key, value) in candidates {
        if withheld.iter().any(|w| w == key) {
            continue;
        }
        object.insert(key.into(), value);
        if limit > 0 && Value::Object(object.clone()).to_string().len() > limit {
            object.remove(key);
            omitted.push(key.to_string());
        }
    }
    omitted.extend(sensitive_entities);
    ContextPayload {
        mechanism: mechanism as i32,
        content: Value::Object(object).to_string(),
        omitted_fields: omitted,
    }
}

#[cfg(test)]
mod tests {
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
}
