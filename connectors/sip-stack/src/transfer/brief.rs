//! The brief the human hears on an attended transfer's consult leg: the
//! configured template filled from the context the connector received,
//! and only from what the route's disclosure rules let go. A field the
//! disclosure withholds or sends by reference only, a field the control
//! service left out, and a sensitive entity that did not go in clear are
//! never spoken.

use std::collections::HashMap;

use baton_connector_sdk::{ContextMechanism, Transfer};
use baton_proto::connector::v1::DisclosureForm;

use crate::config::ConsultConfig;

/// The most characters of one spoken value, and of the whole brief: a
/// brief is a few sentences, and the TTS time grows with it.
const MAX_VALUE_CHARS: usize = 300;
const MAX_BRIEF_CHARS: usize = 1000;

/// The brief of `transfer` as text, and the TTS voice to speak it with.
pub(super) fn brief(config: &ConsultConfig, transfer: &Transfer) -> (String, String) {
    let language = transfer
        .envelope
        .conversation
        .as_ref()
        .map(|c| c.language.as_str())
        .unwrap_or_default();
    let (template, voice) = config.brief_for(language);
    let mut values = disclosed_values(transfer);
    values.insert("accept_digit", config.accept_digit.to_string());
    values.insert("decline_digit", config.decline_digit.to_string());
    (render(template, &values), voice.to_owned())
}

/// The values of the context a brief may speak, by placeholder.
fn disclosed_values(transfer: &Transfer) -> HashMap<&'static str, String> {
    let envelope = &transfer.envelope;
    let may_speak = |field: &str| {
        let omitted = envelope.omitted_fields.iter().any(|f| f == field);
        let form = transfer
            .disclosure
            .as_ref()
            .and_then(|d| d.fields.iter().find(|f| f.field == field).map(|f| f.form()));
        !omitted
            && !matches!(
                form,
                Some(DisclosureForm::Withheld | DisclosureForm::Reference)
            )
    };
    // What the signalling carries (intent, reason), when the structured
    // context does not.
    let signalled: serde_json::Map<String, serde_json::Value> = envelope
        .payloads
        .iter()
        .find(|p| p.mechanism == ContextMechanism::SipHeaders as i32)
        .and_then(|p| serde_json::from_str(&p.content).ok())
        .unwrap_or_default();
    let signalled_text = |key: &str| match signalled.get(key) {
        Some(serde_json::Value::String(s)) => s.clone(),
        _ => String::new(),
    };
    let context = envelope.context.clone().unwrap_or_default();
    let mut values = HashMap::new();
    let mut put = |placeholder: &'static str, field: &str, value: String| {
        let value = speakable(&value);
        if !value.is_empty() && may_speak(field) {
            values.insert(placeholder, value);
        }
    };
    put("summary", "summary", context.summary.clone());
    let intent = context
        .intent
        .as_ref()
        .map(|i| i.name.clone())
        .unwrap_or_else(|| signalled_text("intent"));
    put("intent", "intent", words(&intent));
    let reason = context
        .reason
        .as_ref()
        .map(|r| reason_words(r.kind))
        .unwrap_or_else(|| words(&signalled_text("reason")));
    put("reason", "reason", reason);
    if let Some(entity) = context.entities.iter().find(|e| e.name == "customer_name") {
        // A sensitive entity is spoken only when it went in clear.
        let clear = transfer.disclosure.as_ref().is_some_and(|d| {
            d.fields
                .iter()
                .any(|f| f.field == "entities.customer_name" && f.form() == DisclosureForm::Clear)
        });
        if !entity.sensitive || clear {
            put(
                "customer_name",
                "entities.customer_name",
                entity.value.clone(),
            );
        }
    }
    values
}

/// `billing.dispute` → `billing dispute`.
fn words(name: &str) -> String {
    name.replace(['.', '_', '-'], " ")
}

fn reason_words(kind: i32) -> String {
    use baton_proto::types::v1::EscalationKind as K;
    match K::try_from(kind) {
        Ok(K::ExplicitRequest) => "the customer asked for a person",
        Ok(K::Distress) => "the customer is distressed",
        Ok(K::Complexity) => "the request is too complex",
        Ok(K::Compliance) => "compliance",
        Ok(K::RepeatedFailure) => "repeated failure",
        _ => "",
    }
    .to_owned()
}

/// One line of plain text, bounded.
fn speakable(value: &str) -> String {
    value
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .take(MAX_VALUE_CHARS)
        .collect::<String>()
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
}

/// Fills `template`: `{name}` takes its value; a `[…]` part is left out
/// when a placeholder in it has none (its brackets never spoken).
pub(super) fn render(template: &str, values: &HashMap<&str, String>) -> String {
    let mut out = String::new();
    let mut part = String::new();
    let mut in_part = false;
    let mut part_complete = true;
    let mut rest = template;
    while let Some(c) = rest.chars().next() {
        rest = &rest[c.len_utf8()..];
        let target = if in_part { &mut part } else { &mut out };
        match c {
            '[' if !in_part => {
                in_part = true;
                part_complete = true;
                part.clear();
            }
            ']' if in_part => {
                in_part = false;
                if part_complete {
                    out.push_str(&part);
                }
            }
            '{' => match rest.split_once('}') {
                Some((name, after)) => {
                    rest = after;
                    match values.get(name) {
                        Some(value) => target.push_str(value),
                        None => part_complete = false,
                    }
                }
                None => target.push(c),
            },
            _ => target.push(c),
        }
    }
    speakable(&out).chars().take(MAX_BRIEF_CHARS).collect()
}

#[cfg(test)]
mod tests {
    use baton_connector_sdk::{ContextEnvelope, ContextPayload, TransferMode, TransferTarget};
    use baton_proto::connector::v1::{DisclosedField, Disclosure};
    use baton_proto::types::v1 as pb;

    use super::*;

    fn transfer(disclosure: Option<Disclosure>, omitted: &[&str]) -> Transfer {
        Transfer {
            tenant: "acme".into(),
            handoff_id: "h1".into(),
            attempt: 1,
            target: TransferTarget::SipUri("sip:agent@127.0.0.1".into()),
            mode: TransferMode::Attended,
            envelope: ContextEnvelope {
                conversation: Some(pb::Conversation {
                    language: "en-US".into(),
                    ..Default::default()
                }),
                context: Some(pb::HandoffContext {
                    summary: "Charged twice\r\nfor March".into(),
                    intent: Some(pb::Intent {
                        name: "billing.dispute".into(),
                        confidence: 0.9,
                    }),
                    reason: Some(pb::EscalationReason {
                        kind: pb::EscalationKind::ExplicitRequest as i32,
                        detail: "never spoken".into(),
                    }),
                    entities: vec![pb::Entity {
                        name: "customer_name".into(),
                        value: "Ada Lovelace".into(),
                        r#type: "string".into(),
                        sensitive: true,
                    }],
                    ..Default::default()
                }),
                omitted_fields: omitted.iter().map(|f| f.to_string()).collect(),
                ..Default::default()
            },
            deadline: std::time::SystemTime::now(),
            remembered: None,
            disclosure,
            callback: None,
        }
    }

    fn disclosure(fields: &[(&str, DisclosureForm)]) -> Disclosure {
        Disclosure {
            fields: fields
                .iter()
                .map(|(field, form)| DisclosedField {
                    field: field.to_string(),
                    form: *form as i32,
                })
                .collect(),
            ..Default::default()
        }
    }

    #[test]
    fn the_default_brief_speaks_what_was_disclosed_in_clear() {
        let config = ConsultConfig::default();
        let disclosed = disclosure(&[
            ("entities.customer_name", DisclosureForm::Clear),
            ("summary", DisclosureForm::Redacted),
        ]);
        let (text, voice) = brief(&config, &transfer(Some(disclosed), &[]));
        assert_eq!(
            text,
            "Transfer from the AI agent. Customer: Ada Lovelace. Intent: billing dispute. \
             Reason: the customer asked for a person. Summary: Charged twice for March. \
             Press 1 to take the call, or 2 to decline."
        );
        assert_eq!(voice, "en-us");
    }

    #[test]
    fn withheld_referenced_omitted_and_sensitive_fields_are_never_spoken() {
        let config = ConsultConfig::default();
        let disclosed = disclosure(&[
            ("summary", DisclosureForm::Withheld),
            ("intent", DisclosureForm::Reference),
        ]);
        // The customer's name is a sensitive entity without a clear form.
        let (text, _) = brief(&config, &transfer(Some(disclosed), &["reason"]));
        assert_eq!(
            text,
            "Transfer from the AI agent. Press 1 to take the call, or 2 to decline."
        );
        for secret in ["Ada", "Charged", "billing", "person", "never spoken"] {
            assert!(!text.contains(secret), "{secret} in {text}");
        }
    }

    #[test]
    fn without_structured_context_the_signalled_intent_and_reason_are_spoken() {
        let mut transfer = transfer(None, &[]);
        transfer.envelope.context = None;
        transfer.envelope.payloads = vec![ContextPayload {
            mechanism: ContextMechanism::SipHeaders as i32,
            content: r#"{"token":"t","intent":"billing.dispute","reason":"explicit_request"}"#
                .into(),
            omitted_fields: vec!["summary".into()],
        }];
        let (text, _) = brief(&ConsultConfig::default(), &transfer);
        assert_eq!(
            text,
            "Transfer from the AI agent. Intent: billing dispute. Reason: explicit request. \
             Press 1 to take the call, or 2 to decline."
        );
    }

    #[test]
    fn a_language_of_its_own_takes_its_template_and_voice() {
        let mut config = ConsultConfig::default();
        config.languages.insert(
            "de".into(),
            crate::config::LanguageBrief {
                brief_template: Some("Übergabe[ wegen {intent}]. Taste {accept_digit}.".into()),
                voice: Some("de".into()),
            },
        );
        let mut transfer = transfer(None, &[]);
        if let Some(c) = transfer.envelope.conversation.as_mut() {
            c.language = "de-DE".into();
        }
        assert_eq!(
            brief(&config, &transfer),
            (
                "Übergabe wegen billing dispute. Taste 1.".into(),
                "de".into()
            )
        );
    }

    #[test]
    fn render_leaves_out_parts_without_values_and_bounds_the_text() {
        let values: HashMap<&str, String> = [("a", "x".to_owned())].into();
        assert_eq!(render("A[ {a}][ {b}] end {b}", &values), "A x end");
        let long: HashMap<&str, String> = [("a", "y ".repeat(2000))].into();
        assert!(render("{a}{a}", &long).chars().count() <= MAX_BRIEF_CHARS);
    }
}
