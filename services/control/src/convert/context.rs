//! The conversation and context a handoff keeps encoded
//! (`domain::context`), encoded from a request and decoded where a field
//! is read, and the names their enums have in JSON and on pages.

use baton_proto::types::v1 as pb;
use prost::Message;

use crate::domain::{EncodedContext, EncodedConversation};

pub fn encode_conversation(conversation: &pb::Conversation) -> EncodedConversation {
    EncodedConversation::from_bytes(conversation.encode_to_vec())
}

pub fn encode_context(context: &pb::HandoffContext) -> EncodedContext {
    EncodedContext::from_bytes(context.encode_to_vec())
}

/// The conversation; bytes that do not decode (the store checks them as
/// it reads them, so only a bug gets here) read as an empty one.
pub fn conversation(encoded: &EncodedConversation) -> pb::Conversation {
    pb::Conversation::decode(encoded.as_bytes()).unwrap_or_else(|error| {
        tracing::error!(%error, "a handoff's conversation does not decode");
        pb::Conversation::default()
    })
}

/// The context; as [`conversation`], bytes that do not decode read as an
/// empty one.
pub fn context(encoded: &EncodedContext) -> pb::HandoffContext {
    pb::HandoffContext::decode(encoded.as_bytes()).unwrap_or_else(|error| {
        tracing::error!(%error, "a handoff's context does not decode");
        pb::HandoffContext::default()
    })
}

pub fn reason_name(kind: i32) -> &'static str {
    match pb::EscalationKind::try_from(kind) {
        Ok(pb::EscalationKind::ExplicitRequest) => "explicit_request",
        Ok(pb::EscalationKind::Distress) => "distress",
        Ok(pb::EscalationKind::Complexity) => "complexity",
        Ok(pb::EscalationKind::Compliance) => "compliance",
        Ok(pb::EscalationKind::RepeatedFailure) => "repeated_failure",
        _ => "other",
    }
}

pub fn attempt_outcome_name(outcome: i32) -> &'static str {
    match pb::AttemptOutcome::try_from(outcome) {
        Ok(pb::AttemptOutcome::Partial) => "partial",
        Ok(pb::AttemptOutcome::Failed) => "failed",
        Ok(pb::AttemptOutcome::NotUnderstood) => "not_understood",
        Ok(pb::AttemptOutcome::Refused) => "refused",
        Ok(pb::AttemptOutcome::Succeeded) => "succeeded",
        _ => "unspecified",
    }
}

pub fn speaker_name(speaker: i32) -> &'static str {
    match pb::Speaker::try_from(speaker) {
        Ok(pb::Speaker::Customer) => "customer",
        Ok(pb::Speaker::Ai) => "ai",
        Ok(pb::Speaker::Human) => "human",
        Ok(pb::Speaker::System) => "system",
        _ => "unknown",
    }
}
