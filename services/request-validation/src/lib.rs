//! Validation of `CreateHandoff` requests. Every problem is reported with
//! the path of the field that is wrong, and never with the field's value
//! (which may be personal data).
//!
//! Plain Rust over the prost messages: no gRPC, so that the control service
//! maps the violations to `INVALID_ARGUMENT` at its edge
//! (`baton_service_kit::status::invalid_argument`), and the fuzz target
//! `create_request` (tests/fuzz) builds this crate alone.

use std::collections::HashSet;
use std::time::Duration;

use baton_proto::handoff::v1::CreateHandoffRequest;
use baton_proto::types::v1 as pb;
use prost::Message;
use serde::Deserialize;

/// One invalid field of a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldViolation {
    /// The field's path, e.g. `target.phone_number` or `context.entities[2].name`.
    pub field: String,
    /// What is wrong with it. Never contains the field's value.
    pub description: String,
}

impl FieldViolation {
    pub fn new(field: impl Into<String>, description: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            description: description.into(),
        }
    }
}

/// Size limits on what a handoff may carry.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Limits {
    /// Largest encoded CreateHandoff request, in bytes.
    pub max_request_bytes: usize,
    /// Longest summary, in bytes.
    pub max_summary_bytes: usize,
    /// Most transcript turns.
    pub max_transcript_turns: usize,
    /// Longest transcript turn, in bytes.
    pub max_turn_bytes: usize,
    /// Most entities.
    pub max_entities: usize,
    /// Longest entity value, in bytes.
    pub max_entity_value_bytes: usize,
    /// Most attempts listed.
    pub max_attempts: usize,
    /// Longest agent notes, in bytes.
    pub max_notes_bytes: usize,
    /// Most WatchHandoff streams one tenant may have open at once.
    pub max_watch_streams_per_tenant: usize,
    /// Most WatchHandoff streams open at once on one replica; beyond it
    /// WatchHandoff answers RESOURCE_EXHAUSTED with RetryInfo.
    pub max_watch_streams: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_request_bytes: 256 * 1024,
            max_summary_bytes: 4 * 1024,
            max_transcript_turns: 500,
            max_turn_bytes: 4 * 1024,
            max_entities: 100,
            max_entity_value_bytes: 1024,
            max_attempts: 50,
            max_notes_bytes: 8 * 1024,
            max_watch_streams_per_tenant: 100,
            max_watch_streams: 10_000,
        }
    }
}

const MAX_REQUEST_ID_CHARS: usize = 128;
const MAX_NAME_BYTES: usize = 128;
const MAX_DETAIL_BYTES: usize = 1024;
const MAX_PRIORITY: u32 = 9;

/// Checks a create request against `limits` and `max_timeout`; returns every
/// violation found, not only the first.
pub fn validate_create(
    request: &CreateHandoffRequest,
    limits: &Limits,
    max_timeout: Duration,
) -> Result<(), Vec<FieldViolation>> {
    let mut v = Violations::default();

    let size = request.encoded_len();
    if size > limits.max_request_bytes {
        v.add(
            "",
            format!(
                "request is {size} bytes; the limit is {}",
                limits.max_request_bytes
            ),
        );
    }

    if request.request_id.trim().is_empty() {
        v.add(
            "request_id",
            "is required (an idempotency key chosen by the caller)",
        );
    } else if request.request_id.chars().count() > MAX_REQUEST_ID_CHARS {
        v.add(
            "request_id",
            format!("is longer than {MAX_REQUEST_ID_CHARS} characters"),
        );
    } else if request.request_id.chars().any(char::is_control) {
        v.add("request_id", "contains control characters");
    }

    match &request.conversation {
        None => v.add("conversation", "is required"),
        Some(conversation) => validate_conversation(conversation, &mut v),
    }
    match &request.context {
        None => v.add("context", "is required"),
        Some(context) => validate_context(context, limits, &mut v),
    }
    match &request.target {
        None => v.add("target", "is required"),
        Some(target) => validate_target(target, "target", &mut v),
    }
    if let Some(decision) = &request.decision {
        validate_decision(decision, &mut v);
    }
    if pb::TransferMode::try_from(request.mode).is_err() {
        v.add("mode", "is not a known transfer mode");
    }
    if let Some(timeout) = &request.timeout {
        match Duration::try_from(*timeout) {
            Ok(timeout) if timeout.is_zero() => v.add("timeout", "must be positive"),
            Ok(timeout) if timeout > max_timeout => v.add(
                "timeout",
                format!("must be at most {}s", max_timeout.as_secs()),
            ),
            Ok(_) => {}
            Err(_) => v.add("timeout", "must be positive"),
        }
    }
    v.finish()
}

const MAX_DECISION_ITEMS: usize = 16;

fn validate_decision(decision: &baton_proto::handoff::v1::EscalationDecision, v: &mut Violations) {
    if decision.fired.len() > MAX_DECISION_ITEMS {
        v.add(
            "decision.fired",
            format!("has more than {MAX_DECISION_ITEMS} triggers"),
        );
    }
    for (i, fired) in decision.fired.iter().enumerate() {
        v.check_max(
            &format!("decision.fired[{i}].evidence"),
            &fired.evidence,
            MAX_DETAIL_BYTES,
        );
    }
    if decision.recommendations.len() > MAX_DECISION_ITEMS {
        v.add(
            "decision.recommendations",
            format!("has more than {MAX_DECISION_ITEMS} items"),
        );
    }
    for (i, text) in decision.recommendations.iter().enumerate() {
        v.check_max(
            &format!("decision.recommendations[{i}]"),
            text,
            MAX_DETAIL_BYTES,
        );
    }
    v.check_token(
        "decision.suggested_route",
        &decision.suggested_route,
        MAX_NAME_BYTES,
    );
    v.check_max(
        "decision.customer_message",
        &decision.customer_message,
        MAX_DETAIL_BYTES,
    );
}

fn validate_conversation(conversation: &pb::Conversation, v: &mut Violations) {
    if pb::Channel::try_from(conversation.channel).is_err() {
        v.add("conversation.channel", "is not a known channel");
    }
    if !conversation.language.is_empty() && !is_language_tag(&conversation.language) {
        v.add(
            "conversation.language",
            "must be a BCP 47 tag such as \"en-US\"",
        );
    }
    if let Some(call) = &conversation.call {
        for (field, value) in [
            ("conversation.call.sip_call_id", &call.sip_call_id),
            ("conversation.call.sip_from_tag", &call.sip_from_tag),
            ("conversation.call.sip_to_tag", &call.sip_to_tag),
            ("conversation.call.caller_number", &call.caller_number),
            (
                "conversation.call.platform_contact_id",
                &call.platform_contact_id,
            ),
        ] {
            v.check_token(field, value, 256);
        }
        if !call.sip_gateway_uri.is_empty() && !is_sip_uri(&call.sip_gateway_uri) {
            v.add(
                "conversation.call.sip_gateway_uri",
                "must be a sip: or sips: URI",
            );
        }
    }
}

fn validate_context(context: &pb::HandoffContext, limits: &Limits, v: &mut Violations) {
    if context.summary.trim().is_empty() {
        v.add("context.summary", "is required: the human reads it first");
    }
    v.check_max(
        "context.summary",
        &context.summary,
        limits.max_summary_bytes,
    );
    if let Some(intent) = &context.intent {
        v.check_token("context.intent.name", &intent.name, MAX_NAME_BYTES);
        if !(0.0..=1.0).contains(&intent.confidence) {
            v.add("context.intent.confidence", "must be between 0.0 and 1.0");
        }
    }

    if context.entities.len() > limits.max_entities {
        v.add(
            "context.entities",
            format!(
                "has {} entities; the limit is {}",
                context.entities.len(),
                limits.max_entities
            ),
        );
    }
    let mut names = HashSet::new();
    for (i, entity) in context.entities.iter().enumerate() {
        let field = format!("context.entities[{i}]");
        if entity.name.trim().is_empty() {
            v.add(format!("{field}.name"), "is required");
        } else if !names.insert(entity.name.as_str()) {
            v.add(format!("{field}.name"), "repeats an earlier entity's name");
        }
        v.check_token(&format!("{field}.name"), &entity.name, MAX_NAME_BYTES);
        v.check_token(&format!("{field}.type"), &entity.r#type, MAX_NAME_BYTES);
        v.check_max(
            &format!("{field}.value"),
            &entity.value,
            limits.max_entity_value_bytes,
        );
    }

    if context.transcript.len() > limits.max_transcript_turns {
        v.add(
            "context.transcript",
            format!(
                "has {} turns; the limit is {}",
                context.transcript.len(),
                limits.max_transcript_turns
            ),
        );
    }
    for (i, turn) in context.transcript.iter().enumerate() {
        let field = format!("context.transcript[{i}]");
        match pb::Speaker::try_from(turn.speaker) {
            Ok(pb::Speaker::Unspecified) | Err(_) => {
                v.add(format!("{field}.speaker"), "must say who spoke")
            }
            Ok(_) => {}
        }
        v.check_max(&format!("{field}.text"), &turn.text, limits.max_turn_bytes);
    }

    if context.attempts.len() > limits.max_attempts {
        v.add(
            "context.attempts",
            format!(
                "has {} attempts; the limit is {}",
                context.attempts.len(),
                limits.max_attempts
            ),
        );
    }
    for (i, attempt) in context.attempts.iter().enumerate() {
        let field = format!("context.attempts[{i}]");
        if attempt.action.trim().is_empty() {
            v.add(format!("{field}.action"), "is required");
        }
        v.check_max(
            &format!("{field}.action"),
            &attempt.action,
            MAX_DETAIL_BYTES,
        );
        v.check_max(
            &format!("{field}.detail"),
            &attempt.detail,
            MAX_DETAIL_BYTES,
        );
        if pb::AttemptOutcome::try_from(attempt.outcome).is_err() {
            v.add(format!("{field}.outcome"), "is not a known outcome");
        }
    }

    if let Some(reason) = &context.reason {
        if pb::EscalationKind::try_from(reason.kind).is_err() {
            v.add("context.reason.kind", "is not a known escalation kind");
        }
        v.check_max("context.reason.detail", &reason.detail, MAX_DETAIL_BYTES);
    }
    v.check_max(
        "context.agent_notes",
        &context.agent_notes,
        limits.max_notes_bytes,
    );
    if context.priority > MAX_PRIORITY {
        v.add("context.priority", format!("must be 0 to {MAX_PRIORITY}"));
    }
}

/// Checks a target; `field` is its path in the request.
pub fn validate_target(target: &pb::Target, field: &str, v: &mut Violations) {
    match &target.kind {
        None => v.add(field, "must name a queue, phone_number, sip_uri or route"),
        Some(pb::target::Kind::Queue(queue)) => {
            if !is_name(&queue.name) {
                v.add(
                    format!("{field}.queue.name"),
                    "must be 1-128 letters, digits, '.', '_' or '-'",
                );
            }
            for (i, skill) in queue.skills.iter().enumerate() {
                if !is_name(skill) {
                    v.add(
                        format!("{field}.queue.skills[{i}]"),
                        "must be 1-128 letters, digits, '.', '_' or '-'",
                    );
                }
            }
        }
        Some(pb::target::Kind::PhoneNumber(number)) => {
            if !is_e164(number) {
                v.add(
                    format!("{field}.phone_number"),
                    "must be an E.164 number such as +14155550100",
                );
            }
        }
        Some(pb::target::Kind::SipUri(uri)) => {
            if !is_sip_uri(uri) {
                v.add(
                    format!("{field}.sip_uri"),
                    "must be a sip: or sips: URI such as sip:agent@pbx.example.com",
                );
            }
        }
        Some(pb::target::Kind::Route(route)) => {
            if !is_name(route) {
                v.add(
                    format!("{field}.route"),
                    "must be 1-128 letters, digits, '.', '_' or '-'",
                );
            }
        }
    }
}

/// `+` then 2 to 15 digits, the first not zero (ITU-T E.164).
pub fn is_e164(number: &str) -> bool {
    let Some(digits) = number.strip_prefix('+') else {
        return false;
    };
    (2..=15).contains(&digits.len())
        && digits.bytes().all(|b| b.is_ascii_digit())
        && !digits.starts_with('0')
}

/// A `sip:`/`sips:` URI with a host, parsed by rsip, with nothing in it that
/// could break a SIP message it is copied into.
pub fn is_sip_uri(uri: &str) -> bool {
    let lower = uri.to_ascii_lowercase();
    if !(lower.starts_with("sip:") || lower.starts_with("sips:")) || uri.len() > 512 {
        return false;
    }
    if uri
        .chars()
        .any(|c| c.is_control() || c.is_whitespace() || matches!(c, '<' | '>' | '"'))
    {
        return false;
    }
    match rsip::Uri::try_from(uri) {
        Ok(parsed) => !parsed.host_with_port.host.to_string().is_empty(),
        Err(_) => false,
    }
}

fn is_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= MAX_NAME_BYTES
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

fn is_language_tag(tag: &str) -> bool {
    tag.len() <= 35
        && tag.split('-').all(|part| {
            (1..=8).contains(&part.len()) && part.bytes().all(|b| b.is_ascii_alphanumeric())
        })
}

/// Collects violations.
#[derive(Debug, Default)]
pub struct Violations(Vec<FieldViolation>);

impl Violations {
    pub fn add(&mut self, field: impl Into<String>, description: impl Into<String>) {
        self.0.push(FieldViolation::new(field, description));
    }

    fn check_max(&mut self, field: &str, value: &str, max_bytes: usize) {
        if value.len() > max_bytes {
            self.add(
                field,
                format!("is {} bytes; the limit is {max_bytes}", value.len()),
            );
        }
    }

    /// A short single-line value: no control characters, bounded length.
    fn check_token(&mut self, field: &str, value: &str, max_bytes: usize) {
        self.check_max(field, value, max_bytes);
        if value.chars().any(char::is_control) {
            self.add(field, "contains control characters");
        }
    }

    pub fn finish(self) -> Result<(), Vec<FieldViolation>> {
        if self.0.is_empty() {
            Ok(())
        } else {
            Err(self.0)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn valid() -> CreateHandoffRequest {
        CreateHandoffRequest {
            request_id: "req-1".into(),
            conversation: Some(pb::Conversation {
                channel: pb::Channel::Voice as i32,
                language: "en-US".into(),
                call: None,
            }),
            context: Some(pb::HandoffContext {
                summary: "Customer disputes a double charge.".into(),
                intent: Some(pb::Intent {
                    name: "billing.dispute".into(),
                    confidence: 0.9,
                }),
                entities: vec![pb::Entity {
                    name: "account_number".into(),
                    value: "12345678".into(),
                    r#type: "account".into(),
                    sensitive: true,
                }],
                transcript: vec![pb::Turn {
                    speaker: pb::Speaker::Customer as i32,
                    text: "I was charged twice".into(),
                    at: None,
                }],
                ..Default::default()
            }),
            target: Some(pb::Target {
                kind: Some(pb::target::Kind::PhoneNumber("+14155550100".into())),
            }),
            mode: 0,
            timeout: None,
            decision: None,
        }
    }

    fn fields(request: &CreateHandoffRequest) -> Vec<String> {
        match validate_create(request, &Limits::default(), Duration::from_secs(900)) {
            Ok(()) => vec![],
            Err(violations) => violations.into_iter().map(|v| v.field).collect(),
        }
    }

    #[test]
    fn a_complete_request_is_valid() {
        assert_eq!(fields(&valid()), Vec::<String>::new());
    }

    #[test]
    fn each_bad_field_is_named() {
        let mut request = valid();
        request.request_id.clear();
        request.target = Some(pb::Target {
            kind: Some(pb::target::Kind::PhoneNumber("0044 20 7946".into())),
        });
        let context = request.context.as_mut().expect("context");
        context.summary = "   ".into();
        context.entities.push(context.entities[0].clone());
        context.intent.as_mut().expect("intent").confidence = 1.5;
        context.transcript[0].speaker = 0;
        assert_eq!(
            fields(&request),
            [
                "request_id",
                "context.summary",
                "context.intent.confidence",
                "context.entities[1].name",
                "context.transcript[0].speaker",
                "target.phone_number",
            ]
        );
    }

    #[test]
    fn limits_are_enforced() {
        let mut request = valid();
        let context = request.context.as_mut().expect("context");
        context.transcript = vec![context.transcript[0].clone(); 501];
        context.entities[0].value = "x".repeat(1025);
        assert_eq!(
            fields(&request),
            ["context.entities[0].value", "context.transcript"]
        );
        let mut huge = valid();
        huge.context.as_mut().expect("context").agent_notes = "n".repeat(300 * 1024);
        assert_eq!(fields(&huge), ["", "context.agent_notes"]);
    }

    #[test]
    fn e164_numbers() {
        for good in ["+14155550100", "+442079460000", "+49"] {
            assert!(is_e164(good), "{good}");
        }
        for bad in [
            "14155550100",
            "+0123",
            "+1",
            "+1415555010012345",
            "+1 415",
            "",
        ] {
            assert!(!is_e164(bad), "{bad}");
        }
    }

    #[test]
    fn sip_uris() {
        for good in [
            "sip:agent@pbx.example.com",
            "sips:agent@10.0.0.1:5061",
            "sip:+14155550100@trunk.example.com;user=phone",
            "sip:queue@127.0.0.1:5070;transport=tcp",
        ] {
            assert!(is_sip_uri(good), "{good}");
        }
        for bad in [
            "http://example.com",
            "agent@pbx",
            "sip:agent@pbx\r\nVia: injected",
            "sip:<agent@pbx>",
            "sip:",
        ] {
            assert!(!is_sip_uri(bad), "{bad}");
        }
    }

    #[test]
    fn timeout_is_bounded() {
        let mut request = valid();
        request.timeout = Some(prost_types::Duration {
            seconds: 3600,
            nanos: 0,
        });
        assert_eq!(fields(&request), ["timeout"]);
        request.timeout = Some(prost_types::Duration {
            seconds: -1,
            nanos: 0,
        });
        assert_eq!(fields(&request), ["timeout"]);
    }
}
