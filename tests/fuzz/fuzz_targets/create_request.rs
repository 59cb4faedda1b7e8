//! Arbitrary bytes decoded as a CreateHandoff request and validated: never
//! a panic, whatever the nesting, sizes or strings; a violation never
//! quotes a value; an accepted request holds no string that breaks its
//! field's rule (the table in request-validation's `text` module) and no
//! transcript time outside the window. The same bytes also go through the
//! EvaluateEscalation, cancel-reason and entity-name checks.

#![no_main]

use std::time::Duration;

use baton_proto::handoff::v1::{CreateHandoffRequest, EvaluateEscalationRequest};
use baton_request_validation::text::{self, Form, Max, StringField};
use baton_request_validation::{
    Limits, is_language_tag, validate_cancel_reason, validate_create, validate_entity_name,
    validate_evaluation,
};
use libfuzzer_sys::fuzz_target;
use prost::Message;

/// What the free text is replaced with: no description has a run of it.
const MARKER: char = '~';
const MARKER_RUN: &str = "~~~~~~~~";

fuzz_target!(|data: &[u8]| {
    let Ok(mut request) = CreateHandoffRequest::decode(data) else {
        return;
    };
    let limits = Limits::default();
    let max_timeout = Duration::from_secs(600);
    match validate_create(&request, &limits, max_timeout) {
        Err(violations) => assert!(!violations.is_empty()),
        Ok(()) => accepted_strings_follow_the_table(&request, &limits),
    }
    other_calls(data, &limits);

    // The summary and the entity values (free text, possibly personal) are
    // replaced with a marker of the same length, which keeps every length
    // check as it was; no violation may then quote the marker. (Checking for
    // the original text instead would fail whenever the fuzzer makes it a
    // piece of a fixed description, such as "contains control characters".)
    let Some(context) = request.context.as_mut() else {
        return;
    };
    let mut marked = context.summary.len() >= MARKER_RUN.len();
    context.summary = MARKER.to_string().repeat(context.summary.len());
    for entity in &mut context.entities {
        marked |= entity.value.len() >= MARKER_RUN.len();
        entity.value = MARKER.to_string().repeat(entity.value.len());
    }
    if !marked {
        return;
    }
    if let Err(violations) = validate_create(&request, &limits, max_timeout) {
        for violation in &violations {
            assert!(!violation.description.contains(MARKER_RUN), "{violation:?}");
        }
    }
});

/// `value` obeys `field`'s rule, as an accepted request's strings must.
fn obeys(field: &StringField, value: &str, limits: &Limits) {
    let max = match field.max {
        Max::Bytes(n) => n,
        Max::Chars(n) => n * 4,
        Max::Configured(_, max) => max(limits),
    };
    assert!(value.len() <= max, "{}: {} bytes", field.path, value.len());
    assert!(
        value.chars().all(|c| text::allowed(field.form, c)),
        "{} accepted a character its form refuses",
        field.path
    );
    if field.form == Form::Line {
        assert!(!value.contains(['\r', '\n', '\0']), "{}", field.path);
    } else {
        assert!(!value.contains('\0'), "{}", field.path);
    }
}

fn accepted_strings_follow_the_table(request: &CreateHandoffRequest, limits: &Limits) {
    obeys(&text::REQUEST_ID, &request.request_id, limits);
    if let Some(conversation) = &request.conversation {
        assert!(conversation.language.is_empty() || is_language_tag(&conversation.language));
        if let Some(call) = &conversation.call {
            obeys(&text::SIP_CALL_ID, &call.sip_call_id, limits);
            obeys(&text::SIP_FROM_TAG, &call.sip_from_tag, limits);
            obeys(&text::SIP_TO_TAG, &call.sip_to_tag, limits);
            obeys(&text::CALLER_NUMBER, &call.caller_number, limits);
            obeys(
                &text::PLATFORM_CONTACT_ID,
                &call.platform_contact_id,
                limits,
            );
        }
    }
    if let Some(context) = &request.context {
        obeys(&text::SUMMARY, &context.summary, limits);
        obeys(&text::AGENT_NOTES, &context.agent_notes, limits);
        if let Some(intent) = &context.intent {
            obeys(&text::INTENT_NAME, &intent.name, limits);
        }
        for entity in &context.entities {
            obeys(&text::ENTITY_NAME, &entity.name, limits);
            obeys(&text::ENTITY_TYPE, &entity.r#type, limits);
            obeys(&text::ENTITY_VALUE, &entity.value, limits);
        }
        for turn in &context.transcript {
            obeys(&text::TURN_TEXT, &turn.text, limits);
            if let Some(at) = &turn.at {
                assert!((0..1_000_000_000).contains(&at.nanos));
                assert!((946_684_800..4_102_444_800).contains(&at.seconds));
            }
        }
        for attempt in &context.attempts {
            obeys(&text::ATTEMPT_ACTION, &attempt.action, limits);
            obeys(&text::ATTEMPT_DETAIL, &attempt.detail, limits);
        }
        if let Some(reason) = &context.reason {
            obeys(&text::REASON_DETAIL, &reason.detail, limits);
        }
    }
    if let Some(decision) = &request.decision {
        for fired in &decision.fired {
            obeys(&text::FIRED_EVIDENCE, &fired.evidence, limits);
        }
        for recommendation in &decision.recommendations {
            obeys(&text::RECOMMENDATION, recommendation, limits);
        }
        obeys(&text::SUGGESTED_ROUTE, &decision.suggested_route, limits);
        obeys(&text::CUSTOMER_MESSAGE, &decision.customer_message, limits);
    }
}

/// The same bytes as an EvaluateEscalation request, and as the one-line
/// strings of CancelHandoff and RevealEntity.
fn other_calls(data: &[u8], limits: &Limits) {
    if let Ok(request) = EvaluateEscalationRequest::decode(data)
        && validate_evaluation(&request, limits).is_ok()
    {
        assert!(request.language.is_empty() || is_language_tag(&request.language));
        assert!(
            request
                .language
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        );
        obeys(&text::CONVERSATION_ID, &request.conversation_id, limits);
        for turn in &request.turns {
            obeys(&text::EVALUATED_TURN_TEXT, &turn.text, limits);
        }
        for entity_type in &request.entity_types {
            obeys(&text::ENTITY_TYPES, entity_type, limits);
        }
    }
    if let Ok(line) = std::str::from_utf8(data) {
        if validate_cancel_reason(line, limits).is_ok() {
            obeys(&text::CANCEL_REASON, line, limits);
        }
        if validate_entity_name(line, limits).is_ok() {
            obeys(&text::REVEAL_ENTITY_NAME, line, limits);
        }
    }
}
