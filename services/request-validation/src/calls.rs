//! Validation of the calls other than CreateHandoff that carry strings:
//! EvaluateEscalation, CancelHandoff's reason and RevealEntity's name. Their
//! strings follow the same table ([`crate::text`]).

use baton_proto::handoff::v1::{AiOutcome, EvaluateEscalationRequest};
use baton_proto::types::v1::Speaker;

use crate::text::{self, MAX_NAME_BYTES};
use crate::{FieldViolation, Limits, Violations, is_language_tag};

const MAX_ENTITY_TYPES: usize = 64;

/// Checks an EvaluateEscalation request; returns every violation found.
pub fn validate_evaluation(
    request: &EvaluateEscalationRequest,
    limits: &Limits,
) -> Result<(), Vec<FieldViolation>> {
    let mut v = Violations::default();
    if request.conversation_id.is_empty() && !request.whole_conversation {
        v.add(
            "conversation_id",
            "is required unless whole_conversation is true",
        );
    }
    v.check(
        &text::CONVERSATION_ID,
        "conversation_id",
        &request.conversation_id,
        limits,
    );
    // Chooses the policy's word lists and the customer message; logged.
    if !request.language.is_empty() && !is_language_tag(&request.language) {
        v.add("language", "must be a BCP 47 tag such as \"en-US\"");
    }
    if let Some(intent) = &request.intent {
        if !(0.0..=1.0).contains(&intent.confidence) {
            v.add("intent.confidence", "must be between 0.0 and 1.0");
        }
        v.check(
            &text::EVALUATED_INTENT_NAME,
            "intent.name",
            &intent.name,
            limits,
        );
    }
    if request.turns.len() > limits.max_transcript_turns {
        v.add(
            "turns",
            format!(
                "has {} turns; the limit is limits.max_transcript_turns = {}",
                request.turns.len(),
                limits.max_transcript_turns
            ),
        );
    }
    for (i, turn) in request.turns.iter().enumerate() {
        v.check(
            &text::EVALUATED_TURN_TEXT,
            &format!("turns[{i}].text"),
            &turn.text,
            limits,
        );
        match Speaker::try_from(turn.speaker) {
            Ok(Speaker::Unspecified) | Err(_) => {
                v.add(format!("turns[{i}].speaker"), "must say who spoke")
            }
            Ok(_) => {}
        }
        if turn
            .distress_score
            .is_some_and(|s| !(0.0..=1.0).contains(&s))
        {
            v.add(
                format!("turns[{i}].distress_score"),
                "must be between 0.0 and 1.0",
            );
        }
        if AiOutcome::try_from(turn.ai_outcome).is_err() {
            v.add(format!("turns[{i}].ai_outcome"), "is not a known outcome");
        }
    }
    if request.entity_types.len() > MAX_ENTITY_TYPES {
        v.add(
            "entity_types",
            format!("has more than {MAX_ENTITY_TYPES} types"),
        );
    }
    for (i, entity_type) in request.entity_types.iter().enumerate() {
        v.check(
            &text::ENTITY_TYPES,
            &format!("entity_types[{i}]"),
            entity_type,
            limits,
        );
    }
    v.finish()
}

/// CancelHandoff's reason: it reaches logs, events and connectors.
pub fn validate_cancel_reason(reason: &str, limits: &Limits) -> Result<(), Vec<FieldViolation>> {
    let mut v = Violations::default();
    v.check(&text::CANCEL_REASON, "reason", reason, limits);
    v.finish()
}

/// RevealEntity's entity name: required, one line.
pub fn validate_entity_name(name: &str, limits: &Limits) -> Result<(), Vec<FieldViolation>> {
    let mut v = Violations::default();
    if name.is_empty() {
        v.add(
            "entity_name",
            format!("is required (1 to {MAX_NAME_BYTES} bytes)"),
        );
    }
    v.check(&text::REVEAL_ENTITY_NAME, "entity_name", name, limits);
    v.finish()
}

#[cfg(test)]
mod tests {
    use super::*;
    use baton_proto::handoff::v1::EvaluatedTurn;

    fn fields(request: &EvaluateEscalationRequest) -> Vec<String> {
        match validate_evaluation(request, &Limits::default()) {
            Ok(()) => vec![],
            Err(violations) => violations.into_iter().map(|v| v.field).collect(),
        }
    }

    fn valid() -> EvaluateEscalationRequest {
        EvaluateEscalationRequest {
            conversation_id: "call-42".into(),
            language: "fr-CA".into(),
            turns: vec![EvaluatedTurn {
                speaker: Speaker::Customer as i32,
                text: "passez-moi quelqu'un\\nvite".into(),
                ..Default::default()
            }],
            entity_types: vec!["account".into()],
            ..Default::default()
        }
    }

    #[test]
    fn the_language_is_a_bcp47_tag() {
        assert_eq!(fields(&valid()), Vec::<String>::new());
        for bad in ["en\r\nX-Injected: 1", "en US", "fr_FR", "e\u{0}n", "x-éé"] {
            let mut request = valid();
            request.language = bad.into();
            assert_eq!(fields(&request), ["language"], "{bad:?}");
        }
    }

    #[test]
    fn strings_follow_the_table() {
        let mut request = valid();
        request.conversation_id = "a\nb".into();
        request.entity_types.push("x\u{202E}".into());
        request.turns[0].text = "nul\0".into();
        assert_eq!(
            fields(&request),
            ["conversation_id", "turns[0].text", "entity_types[1]"]
        );
        assert!(validate_cancel_reason("customer hung up", &Limits::default()).is_ok());
        assert!(validate_cancel_reason("a\r\nb", &Limits::default()).is_err());
        assert!(validate_entity_name("", &Limits::default()).is_err());
        assert!(validate_entity_name("card\u{85}", &Limits::default()).is_err());
    }
}
