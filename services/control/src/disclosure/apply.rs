//! The data policy applied to a handoff's context (and the caller's
//! number in its conversation) as it goes to one connector. At the edge
//! with the envelope: both are kept encoded, so this decodes them, applies
//! the forms field by field and encodes them again.

use std::collections::BTreeMap;

use baton_redaction::PiiKind;

use super::{Form, Rules};
use crate::convert::context::{
    context as decode_context, conversation as decode_conversation, encode_context,
    encode_conversation,
};
use crate::domain::{EncodedContext, EncodedConversation};

/// The caller's number's path, as the disclosure and `omitted_fields`
/// name it.
pub const CALLER_NUMBER: &str = "conversation.call.caller_number";

/// What replaces a sensitive entity's value in which nothing was
/// recognised, when the policy says `redacted`.
pub const MASKED_ENTITY: &str = "[redacted]";

/// A context fitted to one connector's data policy.
#[derive(Debug, Clone, PartialEq)]
pub struct Disclosed {
    /// The context as it may go to the connector.
    pub context: EncodedContext,
    /// The conversation as it may go: the caller's number in its form.
    pub conversation: EncodedConversation,
    /// The fields it carries no value of (`reference`), as the envelope's
    /// `omitted_fields` name them: `summary`, `transcript`,
    /// `entities.<name>`…
    pub withheld: Vec<String>,
    /// Each field present in the context and its form.
    pub fields: BTreeMap<String, Form>,
    /// Values masked in the fields sent `redacted`, by kind.
    pub masked: BTreeMap<PiiKind, usize>,
}

/// `context` and `conversation` in the forms `rules` say.
pub fn disclose(
    context: &EncodedContext,
    conversation: &EncodedConversation,
    rules: &Rules,
) -> Disclosed {
    let mut context = decode_context(context);
    let mut conversation = decode_conversation(conversation);
    let mut disclosure = Disclosure::default();
    if let Some(call) = conversation.call.as_mut() {
        call.caller_number =
            disclosure.caller_number(std::mem::take(&mut call.caller_number), rules.caller_number);
    }
    let summary = std::mem::take(&mut context.summary);
    context.summary = disclosure.text("summary", summary, rules.summary);
    let notes = std::mem::take(&mut context.agent_notes);
    context.agent_notes = disclosure.text("agent_notes", notes, rules.agent_notes);
    if let Some(reason) = context.reason.as_mut() {
        let detail = std::mem::take(&mut reason.detail);
        reason.detail = disclosure.text("reason_detail", detail, rules.attempts);
    }

    if !context.transcript.is_empty() {
        disclosure.field("transcript", rules.transcript);
        if matches!(rules.transcript, Form::Reference | Form::Withheld) {
            context.transcript.clear();
        }
        for turn in &mut context.transcript {
            turn.text = disclosure.redact(&turn.text, rules.transcript);
        }
    }
    if !context.attempts.is_empty() {
        disclosure.field("attempts", rules.attempts);
        if matches!(rules.attempts, Form::Reference | Form::Withheld) {
            context.attempts.clear();
        }
        for attempt in &mut context.attempts {
            attempt.action = disclosure.redact(&attempt.action, rules.attempts);
            attempt.detail = disclosure.redact(&attempt.detail, rules.attempts);
        }
    }
    let entities = std::mem::take(&mut context.entities);
    for mut entity in entities {
        let form = rules.entity(&entity.r#type, entity.sensitive);
        disclosure.field(&format!("entities.{}", entity.name), form);
        match form {
            Form::Clear => {}
            Form::Reference | Form::Withheld => continue,
            Form::Redacted => {
                let redacted = disclosure.redact(&entity.value, form);
                // A sensitive value nothing in which was recognised (an
                // account number) still never leaves in clear.
                entity.value = if entity.sensitive && redacted == entity.value {
                    MASKED_ENTITY.into()
                } else {
                    redacted
                };
            }
        }
        context.entities.push(entity);
    }
    Disclosed {
        context: encode_context(&context),
        conversation: encode_conversation(&conversation),
        withheld: disclosure.withheld,
        fields: disclosure.fields,
        masked: disclosure.masked,
    }
}

#[derive(Default)]
struct Disclosure {
    withheld: Vec<String>,
    fields: BTreeMap<String, Form>,
    masked: BTreeMap<PiiKind, usize>,
}

impl Disclosure {
    fn field(&mut self, name: &str, form: Form) {
        self.fields.insert(name.to_owned(), form);
        if matches!(form, Form::Reference | Form::Withheld) {
            self.withheld.push(name.to_owned());
        }
    }

    /// The caller's number: as is, masked whole (it is a phone number
    /// even where the detector would not say so), or left out.
    fn caller_number(&mut self, number: String, form: Form) -> String {
        if number.is_empty() {
            return number;
        }
        self.field(CALLER_NUMBER, form);
        match form {
            Form::Clear => number,
            Form::Redacted => {
                *self.masked.entry(PiiKind::Phone).or_insert(0) += 1;
                PiiKind::Phone.placeholder().to_owned()
            }
            Form::Reference | Form::Withheld => String::new(),
        }
    }

    /// A free-text field: empty stays empty (and is not named).
    fn text(&mut self, name: &str, text: String, form: Form) -> String {
        if text.is_empty() {
            return text;
        }
        self.field(name, form);
        match form {
            Form::Reference | Form::Withheld => String::new(),
            form => self.redact(&text, form),
        }
    }

    fn redact(&mut self, text: &str, form: Form) -> String {
        if form != Form::Redacted {
            return text.to_owned();
        }
        let redacted = baton_redaction::redact(text);
        for (kind, count) in redacted.masked {
            *self.masked.entry(kind).or_insert(0) += count;
        }
        redacted.text
    }
}

#[cfg(test)]
mod tests;
