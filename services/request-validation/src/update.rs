//! Validation of `UpdateHandoff` requests: the same rules and limits as the
//! context of a create, applied to what the update adds (each problem named
//! by its path in the update request), then to the context the update
//! makes (a transcript, entity list or notes grown past a limit is named by
//! the update's field that grows it).

use baton_proto::handoff::v1::UpdateHandoffRequest;
use baton_proto::types::v1 as pb;
use prost::Message;

use super::{
    FieldViolation, Limits, Violations, check_entities, check_turns, text, validate_context,
};

/// Checks what an update request adds; every violation found.
pub fn validate_update(
    request: &UpdateHandoffRequest,
    limits: &Limits,
) -> Result<(), Vec<FieldViolation>> {
    let mut v = Violations::default();
    v.check_request(request.encoded_len(), &request.request_id, limits);
    if request.expected_context_version == 0 {
        v.add(
            "expected_context_version",
            "is required: the Handoff.context_version the update was made against",
        );
    }
    if request.turns.is_empty() && request.entities.is_empty() && request.notes.is_empty() {
        v.add("turns", "nothing to update: give turns, entities or notes");
    }
    check_turns("turns", &request.turns, limits, &mut v);
    check_entities("entities", &request.entities, limits, &mut v);
    v.check(&text::AGENT_NOTES, "notes", &request.notes, limits);
    v.finish()
}

/// Checks the context an update makes against the limits of a create's;
/// a violation of a part the update grows is named by the update's field.
pub fn validate_updated_context(
    context: &pb::HandoffContext,
    limits: &Limits,
) -> Result<(), Vec<FieldViolation>> {
    let mut v = Violations::default();
    validate_context(context, limits, &mut v);
    v.finish().map_err(|violations| {
        violations
            .into_iter()
            .map(|violation| FieldViolation {
                field: update_field(&violation.field),
                description: format!("{} once updated", violation.description),
            })
            .collect()
    })
}

/// The update's field that grows the context's `field`.
fn update_field(field: &str) -> String {
    for (context, update) in [
        ("context.transcript", "turns"),
        ("context.entities", "entities"),
        ("context.agent_notes", "notes"),
    ] {
        if field == context || field.starts_with(&format!("{context}[")) {
            return update.to_owned();
        }
    }
    field.to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn update() -> UpdateHandoffRequest {
        UpdateHandoffRequest {
            handoff_id: "h".into(),
            request_id: "u1".into(),
            expected_context_version: 1,
            turns: vec![pb::Turn {
                speaker: pb::Speaker::Customer as i32,
                text: "also my card was blocked".into(),
                at: None,
            }],
            ..Default::default()
        }
    }

    fn fields(result: Result<(), Vec<FieldViolation>>) -> Vec<String> {
        result
            .err()
            .unwrap_or_default()
            .into_iter()
            .map(|v| v.field)
            .collect()
    }

    #[test]
    fn a_turn_is_an_update() {
        assert_eq!(validate_update(&update(), &Limits::default()), Ok(()));
    }

    #[test]
    fn each_bad_part_is_named_by_its_path_in_the_update() {
        let mut request = update();
        request.request_id.clear();
        request.expected_context_version = 0;
        request.turns[0].speaker = 0;
        request.entities = vec![
            pb::Entity {
                name: "account".into(),
                ..Default::default()
            },
            pb::Entity {
                name: "account".into(),
                ..Default::default()
            },
        ];
        request.notes = "bell \u{7}".into();
        assert_eq!(
            fields(validate_update(&request, &Limits::default())),
            [
                "request_id",
                "expected_context_version",
                "turns[0].speaker",
                "entities[1].name",
                "notes"
            ]
        );
    }

    #[test]
    fn an_empty_update_is_refused() {
        let mut request = update();
        request.turns.clear();
        assert_eq!(
            fields(validate_update(&request, &Limits::default())),
            ["turns"]
        );
    }

    #[test]
    fn a_context_grown_past_a_limit_names_the_update_field_that_grew_it() {
        let limits = Limits::default();
        let context = pb::HandoffContext {
            summary: "s".into(),
            transcript: vec![
                pb::Turn {
                    speaker: pb::Speaker::Customer as i32,
                    text: "t".into(),
                    at: None,
                };
                limits.max_transcript_turns + 1
            ],
            ..Default::default()
        };
        assert_eq!(
            fields(validate_updated_context(&context, &limits)),
            ["turns"]
        );
    }
}
