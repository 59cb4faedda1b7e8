//! Validation of `CreateHandoff` requests. Every problem is reported with
//! the path of the field that is wrong, and never with the field's value
//! (which may be personal data).
//!
//! Plain Rust over the prost messages: no gRPC, so that the control service
//! maps the violations to `INVALID_ARGUMENT` at its edge
//! (`baton_service_kit::status::invalid_argument`), and the fuzz target
//! `create_request` (tests/fuzz) builds this crate alone.

mod calls;
pub mod rules;
pub mod text;
mod time;
mod update;

pub use calls::{validate_cancel_reason, validate_entity_name, validate_evaluation};
pub use rules::{
    Limits, RESPONSE_HEADROOM_BYTES, is_e164, is_language_tag, is_name, is_sip_uri, mask_number,
};
pub use text::{Form, StringField};
pub use update::{validate_update, validate_updated_context};

use std::collections::HashSet;
use std::time::Duration;

use baton_proto::handoff::v1::CreateHandoffRequest;
use baton_proto::types::v1 as pb;
use prost::Message;

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

const MAX_PRIORITY: u32 = 9;

/// Checks a create request against `limits` and `max_timeout`; returns every
/// violation found, not only the first.
pub fn validate_create(
    request: &CreateHandoffRequest,
    limits: &Limits,
    max_timeout: Duration,
) -> Result<(), Vec<FieldViolation>> {
    let mut v = Violations::default();
    v.check_request(request.encoded_len(), &request.request_id, limits);

    match &request.conversation {
        None => v.add("conversation", "is required"),
        Some(conversation) => validate_conversation(conversation, limits, &mut v),
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
        validate_decision(decision, limits, &mut v);
    }
    if pb::TransferMode::try_from(request.mode).is_err() {
        v.add("mode", "is not a known transfer mode");
    }
    if let Some(callback) = &request.callback {
        validate_callback(callback, &mut v);
    }
    if let Some(timeout) = &request.timeout {
        if !(0..1_000_000_000).contains(&timeout.nanos) {
            v.add("timeout", "nanos must be 0 to 999,999,999");
        }
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

/// A callback's own fields; whether its window is still ahead is the
/// control service's to judge, with its clock.
fn validate_callback(callback: &pb::Callback, v: &mut Violations) {
    if !is_e164(&callback.number) {
        // Never quoted: the number is the customer's.
        v.add(
            "callback.number",
            "must be an E.164 number (+ and up to 15 digits)",
        );
    }
    if !callback.consent {
        v.add(
            "callback.consent",
            "must be true: the customer agreed to be called back at this number",
        );
    }
    if let Some(start) = &callback.window_start {
        time::check_timestamp("callback.window_start", start, v);
    }
    match (&callback.window_start, &callback.window_end) {
        (Some(_), None) => v.add(
            "callback.window_end",
            "is required with window_start: the window needs an end",
        ),
        (start, Some(end)) => {
            time::check_timestamp("callback.window_end", end, v);
            if start
                .as_ref()
                .is_some_and(|start| (end.seconds, end.nanos) <= (start.seconds, start.nanos))
            {
                v.add("callback.window_end", "must be after window_start");
            }
        }
        (None, None) => {}
    }
}

const MAX_DECISION_ITEMS: usize = 16;

fn validate_decision(
    decision: &baton_proto::handoff::v1::EscalationDecision,
    limits: &Limits,
    v: &mut Violations,
) {
    if decision.fired.len() > MAX_DECISION_ITEMS {
        v.add(
            "decision.fired",
            format!("has more than {MAX_DECISION_ITEMS} triggers"),
        );
    }
    for (i, fired) in decision.fired.iter().enumerate() {
        v.check(
            &text::FIRED_EVIDENCE,
            &format!("decision.fired[{i}].evidence"),
            &fired.evidence,
            limits,
        );
    }
    if decision.recommendations.len() > MAX_DECISION_ITEMS {
        v.add(
            "decision.recommendations",
            format!("has more than {MAX_DECISION_ITEMS} items"),
        );
    }
    for (i, text) in decision.recommendations.iter().enumerate() {
        v.check(
            &text::RECOMMENDATION,
            &format!("decision.recommendations[{i}]"),
            text,
            limits,
        );
    }
    v.check(
        &text::SUGGESTED_ROUTE,
        "decision.suggested_route",
        &decision.suggested_route,
        limits,
    );
    v.check(
        &text::CUSTOMER_MESSAGE,
        "decision.customer_message",
        &decision.customer_message,
        limits,
    );
}

fn validate_conversation(conversation: &pb::Conversation, limits: &Limits, v: &mut Violations) {
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
            (&text::SIP_CALL_ID, &call.sip_call_id),
            (&text::SIP_FROM_TAG, &call.sip_from_tag),
            (&text::SIP_TO_TAG, &call.sip_to_tag),
            (&text::CALLER_NUMBER, &call.caller_number),
            (&text::PLATFORM_CONTACT_ID, &call.platform_contact_id),
        ] {
            v.check(field, field.path, value, limits);
        }
        if !call.sip_gateway_uri.is_empty() && !is_sip_uri(&call.sip_gateway_uri) {
            v.add(
                "conversation.call.sip_gateway_uri",
                "must be a sip: or sips: URI",
            );
        }
    }
}

/// Each turn of a transcript (`path[i]`): who spoke, the text, the time.
fn check_turns(path: &str, turns: &[pb::Turn], limits: &Limits, v: &mut Violations) {
    for (i, turn) in turns.iter().enumerate() {
        let field = format!("{path}[{i}]");
        match pb::Speaker::try_from(turn.speaker) {
            Ok(pb::Speaker::Unspecified) | Err(_) => {
                v.add(format!("{field}.speaker"), "must say who spoke")
            }
            Ok(_) => {}
        }
        v.check(
            &text::TURN_TEXT,
            &format!("{field}.text"),
            &turn.text,
            limits,
        );
        if let Some(at) = &turn.at {
            time::check_timestamp(&format!("{field}.at"), at, v);
        }
    }
}

/// Each entity of a list (`path[i]`): a name given once, and every field
/// within its limit.
fn check_entities(path: &str, entities: &[pb::Entity], limits: &Limits, v: &mut Violations) {
    let mut names = HashSet::new();
    for (i, entity) in entities.iter().enumerate() {
        let field = format!("{path}[{i}]");
        if entity.name.trim().is_empty() {
            v.add(format!("{field}.name"), "is required");
        } else if !names.insert(entity.name.as_str()) {
            v.add(format!("{field}.name"), "repeats an earlier entity's name");
        }
        for (rule, name, value) in [
            (&text::ENTITY_NAME, "name", &entity.name),
            (&text::ENTITY_TYPE, "type", &entity.r#type),
            (&text::ENTITY_VALUE, "value", &entity.value),
        ] {
            v.check(rule, &format!("{field}.{name}"), value, limits);
        }
    }
}

fn validate_context(context: &pb::HandoffContext, limits: &Limits, v: &mut Violations) {
    if context.summary.trim().is_empty() {
        v.add("context.summary", "is required: the human reads it first");
    }
    v.check(&text::SUMMARY, "context.summary", &context.summary, limits);
    if let Some(intent) = &context.intent {
        v.check(
            &text::INTENT_NAME,
            "context.intent.name",
            &intent.name,
            limits,
        );
        if !(0.0..=1.0).contains(&intent.confidence) {
            v.add("context.intent.confidence", "must be between 0.0 and 1.0");
        }
    }

    v.at_most(
        "context.entities",
        context.entities.len(),
        limits.max_entities,
        "entities",
    );
    check_entities("context.entities", &context.entities, limits, v);

    v.at_most(
        "context.transcript",
        context.transcript.len(),
        limits.max_transcript_turns,
        "turns",
    );
    check_turns("context.transcript", &context.transcript, limits, v);

    v.at_most(
        "context.attempts",
        context.attempts.len(),
        limits.max_attempts,
        "attempts",
    );
    for (i, attempt) in context.attempts.iter().enumerate() {
        let field = format!("context.attempts[{i}]");
        if attempt.action.trim().is_empty() {
            v.add(format!("{field}.action"), "is required");
        }
        v.check(
            &text::ATTEMPT_ACTION,
            &format!("{field}.action"),
            &attempt.action,
            limits,
        );
        v.check(
            &text::ATTEMPT_DETAIL,
            &format!("{field}.detail"),
            &attempt.detail,
            limits,
        );
        if pb::AttemptOutcome::try_from(attempt.outcome).is_err() {
            v.add(format!("{field}.outcome"), "is not a known outcome");
        }
    }

    if let Some(reason) = &context.reason {
        if pb::EscalationKind::try_from(reason.kind).is_err() {
            v.add("context.reason.kind", "is not a known escalation kind");
        }
        v.check(
            &text::REASON_DETAIL,
            "context.reason.detail",
            &reason.detail,
            limits,
        );
    }
    v.check(
        &text::AGENT_NOTES,
        "context.agent_notes",
        &context.agent_notes,
        limits,
    );
    if context.priority > MAX_PRIORITY {
        v.add("context.priority", format!("must be 0 to {MAX_PRIORITY}"));
    }
}

/// What a queue, skill or route name must be ([`is_name`]).
const NAME_RULE: &str = "must be 1-128 letters, digits, '.', '_' or '-'";

/// Checks a target; `field` is its path in the request.
pub fn validate_target(target: &pb::Target, field: &str, v: &mut Violations) {
    match &target.kind {
        None => v.add(field, "must name a queue, phone_number, sip_uri or route"),
        Some(pb::target::Kind::Queue(queue)) => {
            v.require(
                is_name(&queue.name),
                format!("{field}.queue.name"),
                NAME_RULE,
            );
            for (i, skill) in queue.skills.iter().enumerate() {
                v.require(
                    is_name(skill),
                    format!("{field}.queue.skills[{i}]"),
                    NAME_RULE,
                );
            }
        }
        Some(pb::target::Kind::PhoneNumber(number)) => v.require(
            is_e164(number),
            format!("{field}.phone_number"),
            "must be an E.164 number such as +14155550100",
        ),
        Some(pb::target::Kind::SipUri(uri)) => v.require(
            is_sip_uri(uri),
            format!("{field}.sip_uri"),
            "must be a sip: or sips: URI such as sip:agent@pbx.example.com",
        ),
        Some(pb::target::Kind::Route(route)) => {
            v.require(is_name(route), format!("{field}.route"), NAME_RULE)
        }
    }
}

/// Collects violations.
#[derive(Debug, Default)]
pub struct Violations(Vec<FieldViolation>);

impl Violations {
    pub fn add(&mut self, field: impl Into<String>, description: impl Into<String>) {
        self.0.push(FieldViolation::new(field, description));
    }

    /// Adds a violation of `field` when it holds more than `max` `items`.
    pub fn at_most(&mut self, field: &str, count: usize, max: usize, items: &str) {
        if count > max {
            self.add(field, format!("has {count} {items}; the limit is {max}"));
        }
    }

    /// Adds the violation unless `holds`.
    pub fn require(
        &mut self,
        holds: bool,
        field: impl Into<String>,
        description: impl Into<String>,
    ) {
        if !holds {
            self.add(field, description);
        }
    }

    /// Checks what every request that changes a handoff carries: its
    /// encoded `size` and its idempotency key, `request_id`.
    pub fn check_request(&mut self, size: usize, request_id: &str, limits: &Limits) {
        if size > limits.max_request_bytes {
            self.add(
                "",
                format!(
                    "request is {size} bytes; the limit is {}",
                    limits.max_request_bytes
                ),
            );
        }
        if request_id.trim().is_empty() {
            self.add(
                "request_id",
                "is required (an idempotency key chosen by the caller)",
            );
        } else {
            self.check(&text::REQUEST_ID, "request_id", request_id, limits);
        }
    }

    /// Checks `value`, at `path`, against the rule of `field` (the table in
    /// [`text`]).
    pub fn check(&mut self, field: &StringField, path: &str, value: &str, limits: &Limits) {
        for problem in field.problems(value, limits) {
            self.add(path, problem);
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
            callback: None,
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
    fn a_callback_needs_a_number_consent_and_a_window_that_ends_after_it_starts() {
        let at = |seconds| prost_types::Timestamp { seconds, nanos: 0 };
        let mut request = valid();
        request.callback = Some(pb::Callback {
            number: "+15550100123".into(),
            window_start: Some(at(1_900_000_000)),
            window_end: Some(at(1_900_003_600)),
            consent: true,
        });
        assert_eq!(fields(&request), Vec::<String>::new());
        request.callback = Some(pb::Callback {
            number: "555 0100".into(),
            window_start: Some(at(1_900_003_600)),
            window_end: Some(at(1_900_000_000)),
            consent: false,
        });
        assert_eq!(
            fields(&request),
            ["callback.number", "callback.consent", "callback.window_end"]
        );
        request.callback = Some(pb::Callback {
            number: "+15550100123".into(),
            window_start: Some(at(1_900_000_000)),
            window_end: None,
            consent: true,
        });
        assert_eq!(fields(&request), ["callback.window_end"]);
    }

    #[test]
    fn numbers_are_masked_but_for_their_last_four_digits() {
        assert_eq!(mask_number("+15550100123"), "+•••••••0123");
        assert_eq!(mask_number("+123"), "+123");
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

    /// Puts `value` into the field at `path` of a valid request (index 0
    /// for `[]`), creating what holds it.
    fn set(request: &mut CreateHandoffRequest, path: &str, value: String) {
        let context = request.context.as_mut().expect("context");
        let call = || pb::CallReference::default();
        let decision = || baton_proto::handoff::v1::EscalationDecision::default();
        match path {
            "request_id" => request.request_id = value,
            "conversation.call.sip_call_id"
            | "conversation.call.sip_from_tag"
            | "conversation.call.sip_to_tag"
            | "conversation.call.caller_number"
            | "conversation.call.platform_contact_id" => {
                let conversation = request.conversation.as_mut().expect("conversation");
                let call = conversation.call.get_or_insert_with(call);
                *match path.rsplit('.').next() {
                    Some("sip_call_id") => &mut call.sip_call_id,
                    Some("sip_from_tag") => &mut call.sip_from_tag,
                    Some("sip_to_tag") => &mut call.sip_to_tag,
                    Some("caller_number") => &mut call.caller_number,
                    _ => &mut call.platform_contact_id,
                } = value;
            }
            "context.summary" => context.summary = value,
            "context.intent.name" => context.intent.as_mut().expect("intent").name = value,
            "context.entities[].name" => context.entities[0].name = value,
            "context.entities[].type" => context.entities[0].r#type = value,
            "context.entities[].value" => context.entities[0].value = value,
            "context.transcript[].text" => context.transcript[0].text = value,
            "context.attempts[].action" | "context.attempts[].detail" => {
                context.attempts.push(pb::Attempt {
                    action: "looked up the invoice".into(),
                    ..Default::default()
                });
                if path.ends_with("action") {
                    context.attempts[0].action = value;
                } else {
                    context.attempts[0].detail = value;
                }
            }
            "context.reason.detail" => {
                context.reason = Some(pb::EscalationReason {
                    detail: value,
                    ..Default::default()
                })
            }
            "context.agent_notes" => context.agent_notes = value,
            "decision.fired[].evidence" => {
                request.decision.get_or_insert_with(decision).fired =
                    vec![baton_proto::handoff::v1::FiredTrigger {
                        evidence: value,
                        ..Default::default()
                    }]
            }
            "decision.recommendations[]" => {
                request
                    .decision
                    .get_or_insert_with(decision)
                    .recommendations = vec![value]
            }
            "decision.suggested_route" => {
                request
                    .decision
                    .get_or_insert_with(decision)
                    .suggested_route = value
            }
            "decision.customer_message" => {
                request
                    .decision
                    .get_or_insert_with(decision)
                    .customer_message = value
            }
            other => panic!("no setter for {other}: add one beside the table entry"),
        }
    }

    /// Every string field in the table is checked where the request holds
    /// it: a value too long, one with NUL, and (for one-line fields) one
    /// with CR LF are each refused naming that field and nothing else.
    #[test]
    fn every_string_field_of_the_table_is_checked() {
        let limits = Limits::default();
        for field in text::CREATE_HANDOFF {
            let path = field.path.replace("[]", "[0]");
            let too_long = match field.max {
                text::Max::Bytes(n) | text::Max::Chars(n) => n + 1,
                text::Max::Configured(_, max) => max(&limits) + 1,
            };
            let mut bad_values = vec!["x".repeat(too_long), "a\0b".into()];
            if field.form == Form::Line {
                bad_values.push("a\r\nVia: injected".into());
            } else {
                let mut request = valid();
                set(&mut request, field.path, "line one\r\nline two\t.".into());
                assert_eq!(
                    fields(&request),
                    Vec::<String>::new(),
                    "{path}: text keeps lines"
                );
            }
            for bad in bad_values {
                let mut request = valid();
                set(&mut request, field.path, bad.clone());
                let named: Vec<String> = fields(&request)
                    .into_iter()
                    .filter(|f| !f.is_empty())
                    .collect();
                assert_eq!(
                    named,
                    std::slice::from_ref(&path),
                    "{path} with {:?}",
                    &bad[..bad.len().min(20)]
                );
            }
        }
    }

    #[test]
    fn transcript_times_are_checked() {
        let mut request = valid();
        let context = request.context.as_mut().expect("context");
        context.transcript.push(context.transcript[0].clone());
        context.transcript[0].at = Some(prost_types::Timestamp {
            seconds: 1_767_225_600,
            nanos: 0,
        });
        context.transcript[1].at = Some(prost_types::Timestamp {
            seconds: i64::MAX,
            nanos: 0,
        });
        assert_eq!(fields(&request), ["context.transcript[1].at"]);
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
        request.timeout = Some(prost_types::Duration {
            seconds: 10,
            nanos: 2_000_000_000,
        });
        assert_eq!(fields(&request), ["timeout"]);
    }
}
