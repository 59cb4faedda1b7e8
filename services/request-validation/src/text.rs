//! The one rule table for request strings. Every string a caller sends that
//! reaches a log line, a SIP header, an HTTP header or a screen pop (HTML) is
//! checked here, by its form and its length; the violation names the field
//! and never quotes the value.
//!
//! | form | what it allows | used for |
//! |---|---|---|
//! | [`Form::Line`] | one line: no control character (C0, DEL, C1), no Unicode line or paragraph separator, no bidirectional override or isolate | ids, names, tags, SIP call references, reasons, anything copied into a header or a log field |
//! | [`Form::Text`] | free text: tab, CR and LF allowed; no other control character (NUL, C0, DEL, C1) | summary, transcript, notes, details: escaped where shown, never put in a header |
//!
//! Structured values have their own checks beside the field (E.164 numbers,
//! SIP URIs, queue and route names, BCP 47 tags, UUIDs).

use crate::Limits;

/// How a string may be written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Form {
    /// A single line; see the module documentation.
    Line,
    /// Free text, several lines; see the module documentation.
    Text,
}

/// The most a field may hold.
#[derive(Debug, Clone, Copy)]
pub enum Max {
    /// Bytes of UTF-8.
    Bytes(usize),
    /// Unicode scalar values.
    Chars(usize),
    /// A configured limit, in bytes.
    Configured(&'static str, fn(&Limits) -> usize),
}

/// One string field of a request: its path (`[]` for any index), its form
/// and its length limit.
#[derive(Debug, Clone, Copy)]
pub struct StringField {
    pub path: &'static str,
    pub form: Form,
    pub max: Max,
}

const fn line(path: &'static str, max_bytes: usize) -> StringField {
    StringField {
        path,
        form: Form::Line,
        max: Max::Bytes(max_bytes),
    }
}

const fn text(path: &'static str, max_bytes: usize) -> StringField {
    StringField {
        path,
        form: Form::Text,
        max: Max::Bytes(max_bytes),
    }
}

const fn configured(
    path: &'static str,
    key: &'static str,
    max: fn(&Limits) -> usize,
) -> StringField {
    StringField {
        path,
        form: Form::Text,
        max: Max::Configured(key, max),
    }
}

/// Longest name, type, tag or reference.
pub const MAX_NAME_BYTES: usize = 128;
/// Longest detail, recommendation or message.
pub const MAX_DETAIL_BYTES: usize = 1024;
/// Longest SIP call reference or platform contact id.
pub const MAX_CALL_REFERENCE_BYTES: usize = 256;
/// Longest cancel reason: it reaches logs, events and connectors.
pub const MAX_CANCEL_REASON_BYTES: usize = 512;

pub const REQUEST_ID: StringField = StringField {
    path: "request_id",
    form: Form::Line,
    max: Max::Chars(128),
};
pub const SIP_CALL_ID: StringField =
    line("conversation.call.sip_call_id", MAX_CALL_REFERENCE_BYTES);
pub const SIP_FROM_TAG: StringField =
    line("conversation.call.sip_from_tag", MAX_CALL_REFERENCE_BYTES);
pub const SIP_TO_TAG: StringField = line("conversation.call.sip_to_tag", MAX_CALL_REFERENCE_BYTES);
pub const CALLER_NUMBER: StringField =
    line("conversation.call.caller_number", MAX_CALL_REFERENCE_BYTES);
pub const PLATFORM_CONTACT_ID: StringField = line(
    "conversation.call.platform_contact_id",
    MAX_CALL_REFERENCE_BYTES,
);
pub const SUMMARY: StringField = configured("context.summary", "limits.max_summary_bytes", |l| {
    l.max_summary_bytes
});
pub const INTENT_NAME: StringField = line("context.intent.name", MAX_NAME_BYTES);
pub const ENTITY_NAME: StringField = line("context.entities[].name", MAX_NAME_BYTES);
pub const ENTITY_TYPE: StringField = line("context.entities[].type", MAX_NAME_BYTES);
pub const ENTITY_VALUE: StringField = configured(
    "context.entities[].value",
    "limits.max_entity_value_bytes",
    |l| l.max_entity_value_bytes,
);
pub const TURN_TEXT: StringField =
    configured("context.transcript[].text", "limits.max_turn_bytes", |l| {
        l.max_turn_bytes
    });
pub const ATTEMPT_ACTION: StringField = line("context.attempts[].action", MAX_DETAIL_BYTES);
pub const ATTEMPT_DETAIL: StringField = text("context.attempts[].detail", MAX_DETAIL_BYTES);
pub const REASON_DETAIL: StringField = text("context.reason.detail", MAX_DETAIL_BYTES);
pub const AGENT_NOTES: StringField =
    configured("context.agent_notes", "limits.max_notes_bytes", |l| {
        l.max_notes_bytes
    });
pub const FIRED_EVIDENCE: StringField = text("decision.fired[].evidence", MAX_DETAIL_BYTES);
pub const RECOMMENDATION: StringField = text("decision.recommendations[]", MAX_DETAIL_BYTES);
pub const SUGGESTED_ROUTE: StringField = line("decision.suggested_route", MAX_NAME_BYTES);
pub const CUSTOMER_MESSAGE: StringField = text("decision.customer_message", MAX_DETAIL_BYTES);

/// Every free-form string of CreateHandoffRequest (structured ones such as
/// targets, SIP URIs and the language have their own checks).
pub const CREATE_HANDOFF: &[StringField] = &[
    REQUEST_ID,
    SIP_CALL_ID,
    SIP_FROM_TAG,
    SIP_TO_TAG,
    CALLER_NUMBER,
    PLATFORM_CONTACT_ID,
    SUMMARY,
    INTENT_NAME,
    ENTITY_NAME,
    ENTITY_TYPE,
    ENTITY_VALUE,
    TURN_TEXT,
    ATTEMPT_ACTION,
    ATTEMPT_DETAIL,
    REASON_DETAIL,
    AGENT_NOTES,
    FIRED_EVIDENCE,
    RECOMMENDATION,
    SUGGESTED_ROUTE,
    CUSTOMER_MESSAGE,
];

pub const CANCEL_REASON: StringField = line("reason", MAX_CANCEL_REASON_BYTES);
pub const REVEAL_ENTITY_NAME: StringField = line("entity_name", MAX_NAME_BYTES);
pub const CONVERSATION_ID: StringField = StringField {
    path: "conversation_id",
    form: Form::Line,
    max: Max::Chars(128),
};
pub const EVALUATED_INTENT_NAME: StringField = line("intent.name", MAX_NAME_BYTES);
pub const EVALUATED_TURN_TEXT: StringField =
    configured("turns[].text", "limits.max_turn_bytes", |l| {
        l.max_turn_bytes
    });
pub const ENTITY_TYPES: StringField = line("entity_types[]", MAX_NAME_BYTES);

/// Every free-form string of the other calls.
pub const OTHER_CALLS: &[StringField] = &[
    CANCEL_REASON,
    REVEAL_ENTITY_NAME,
    CONVERSATION_ID,
    EVALUATED_INTENT_NAME,
    EVALUATED_TURN_TEXT,
    ENTITY_TYPES,
];

/// Whether `c` may appear in a value of `form`.
pub fn allowed(form: Form, c: char) -> bool {
    match form {
        Form::Line => !(c.is_control() || breaks_a_line(c)),
        Form::Text => matches!(c, '\t' | '\n' | '\r') || !c.is_control(),
    }
}

/// Characters that are not control characters but still end or reorder a
/// line where it is shown: line and paragraph separators, and bidirectional
/// embeddings, overrides and isolates (text that reads other than it is).
fn breaks_a_line(c: char) -> bool {
    matches!(c, '\u{2028}' | '\u{2029}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}')
}

impl StringField {
    /// What is wrong with `value` for this field, if anything: its length
    /// first, then a character its form does not allow.
    pub fn problems(&self, value: &str, limits: &Limits) -> Vec<String> {
        let mut problems = Vec::new();
        match self.max {
            Max::Bytes(max) if value.len() > max => {
                problems.push(format!("is {} bytes; the limit is {max}", value.len()))
            }
            Max::Chars(max) if value.chars().count() > max => {
                problems.push(format!("is longer than {max} characters"))
            }
            Max::Configured(key, max) if value.len() > max(limits) => problems.push(format!(
                "is {} bytes; the limit is {key} = {}",
                value.len(),
                max(limits)
            )),
            _ => {}
        }
        if !value.chars().all(|c| allowed(self.form, c)) {
            problems.push(match self.form {
                Form::Line => "must be one line: contains a control, line-breaking or bidirectional-override character".into(),
                Form::Text => "contains a control character other than tab, CR or LF".into(),
            });
        }
        problems
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_refuse_what_breaks_a_header_or_a_log_line() {
        for bad in [
            "a\r\nb",
            "a\nb",
            "a\0b",
            "a\u{7f}",
            "a\u{85}b",
            "a\u{2028}b",
            "a\u{202E}b",
            "a\u{2067}",
        ] {
            assert!(!bad.chars().all(|c| allowed(Form::Line, c)), "{bad:?}");
        }
        for good in ["call-42@gw.example.com", "Zoë Ōsaka", "عربى", "a\u{200F}b"] {
            assert!(good.chars().all(|c| allowed(Form::Line, c)), "{good:?}");
        }
    }

    #[test]
    fn text_keeps_its_lines_but_no_other_control_character() {
        assert!("one\r\ntwo\tthree".chars().all(|c| allowed(Form::Text, c)));
        for bad in ["a\0b", "a\u{1b}[31m", "a\u{7}", "a\u{9b}"] {
            assert!(!bad.chars().all(|c| allowed(Form::Text, c)), "{bad:?}");
        }
    }

    #[test]
    fn problems_name_the_limit() {
        let limits = Limits::default();
        assert_eq!(
            SUMMARY.problems(&"s".repeat(5000), &limits),
            ["is 5000 bytes; the limit is limits.max_summary_bytes = 4096"]
        );
        assert_eq!(REQUEST_ID.problems("ok", &limits), Vec::<String>::new());
        assert_eq!(REQUEST_ID.problems("a\nb", &limits).len(), 1);
        assert_eq!(REQUEST_ID.problems(&"é".repeat(129), &limits).len(), 1);
        assert_eq!(REQUEST_ID.problems(&"é".repeat(128), &limits).len(), 0);
    }
}
