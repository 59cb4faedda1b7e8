//! The data policy applied to a handoff's context as it goes to one
//! connector, and what the audit log says went. At the edge with the
//! envelope: the context is kept encoded, so this decodes it, applies the
//! forms field by field and encodes it again.

use std::collections::BTreeMap;

use baton_redaction::PiiKind;
use serde_json::{Value, json};

use super::{Form, Rules};
use crate::convert::context::{context as decode_context, encode_context};
use crate::domain::{ConcreteTarget, ContextCapability, ContextMechanism, EncodedContext};

/// What replaces a sensitive entity's value in which nothing was
/// recognised, when the policy says `redacted`.
pub const MASKED_ENTITY: &str = "[redacted]";

/// A context fitted to one connector's data policy.
#[derive(Debug, Clone, PartialEq)]
pub struct Disclosed {
    /// The context as it may go to the connector.
    pub context: EncodedContext,
    /// The fields it carries no value of (`reference`), as the envelope's
    /// `omitted_fields` name them: `summary`, `transcript`,
    /// `entities.<name>`…
    pub withheld: Vec<String>,
    /// Each field present in the context and its form.
    pub fields: BTreeMap<String, Form>,
    /// Values masked in the fields sent `redacted`, by kind.
    pub masked: BTreeMap<PiiKind, usize>,
}

/// `context` in the forms `rules` say.
pub fn disclose(context: &EncodedContext, rules: &Rules) -> Disclosed {
    let mut context = decode_context(context);
    let mut disclosure = Disclosure::default();
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
        if rules.transcript == Form::Reference {
            context.transcript.clear();
        }
        for turn in &mut context.transcript {
            turn.text = disclosure.redact(&turn.text, rules.transcript);
        }
    }
    if !context.attempts.is_empty() {
        disclosure.field("attempts", rules.attempts);
        if rules.attempts == Form::Reference {
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
            Form::Reference => continue,
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
        if form == Form::Reference {
            self.withheld.push(name.to_owned());
        }
    }

    /// A free-text field: empty stays empty (and is not named).
    fn text(&mut self, name: &str, text: String, form: Form) -> String {
        if text.is_empty() {
            return text;
        }
        self.field(name, form);
        match form {
            Form::Reference => String::new(),
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

/// Whether a connector with `capabilities` carries any field of the
/// context beyond the reference: the structured context and the platform
/// payloads do; SIP headers, User-to-User and a screen-pop URL carry the
/// token, intent, reason and priority only.
pub fn carries_fields(capabilities: &[ContextCapability]) -> bool {
    capabilities.iter().any(|c| {
        matches!(
            c.mechanism,
            ContextMechanism::Structured
                | ContextMechanism::TaskAttributes
                | ContextMechanism::Webhook
        )
    })
}

/// The audit record's detail of a disclosure (JSON, never a value): the
/// attempt, the target, the mechanisms, each field's form and what was
/// masked. A connector whose mechanisms carry no field gets every field
/// by reference only.
pub fn audit_detail(
    disclosed: &Disclosed,
    attempt: u32,
    target: &ConcreteTarget,
    capabilities: &[ContextCapability],
) -> String {
    let carried = carries_fields(capabilities);
    let fields: serde_json::Map<String, Value> = disclosed
        .fields
        .iter()
        .map(|(name, form)| {
            let form = if carried { *form } else { Form::Reference };
            (name.clone(), json!(form.name()))
        })
        .collect();
    let masked: serde_json::Map<String, Value> = disclosed
        .masked
        .iter()
        .filter(|_| carried)
        .map(|(kind, count)| (kind.name().to_owned(), json!(count)))
        .collect();
    let mechanisms: Vec<&str> = capabilities
        .iter()
        .map(|c| mechanism_name(c.mechanism))
        .collect();
    json!({
        "attempt": attempt,
        "target": target_name(target),
        "mechanisms": mechanisms,
        "fields": fields,
        "masked": masked,
    })
    .to_string()
}

fn target_name(target: &ConcreteTarget) -> String {
    match target {
        ConcreteTarget::Queue { name, .. } => format!("queue:{name}"),
        ConcreteTarget::PhoneNumber { number } => format!("phone_number:{number}"),
        ConcreteTarget::SipUri { uri } => format!("sip_uri:{uri}"),
    }
}

fn mechanism_name(mechanism: ContextMechanism) -> &'static str {
    match mechanism {
        ContextMechanism::SipUserToUser => "sip_user_to_user",
        ContextMechanism::SipHeaders => "sip_headers",
        ContextMechanism::ScreenPopUrl => "screen_pop_url",
        ContextMechanism::TaskAttributes => "task_attributes",
        ContextMechanism::Webhook => "webhook",
        ContextMechanism::Structured => "structured",
    }
}

#[cfg(test)]
mod tests;
