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
mod tests;
