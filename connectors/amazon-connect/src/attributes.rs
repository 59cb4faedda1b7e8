//! The handoff context as Amazon Connect contact attributes: string keys of
//! letters, digits, `-` and `_`, string values, at most 32,768 UTF-8 bytes
//! across all of a contact's attributes. The agent workspace shows them (and
//! flows, Lambdas and step-by-step guides read them) when the contact
//! reaches the human.

use std::collections::BTreeMap;

use baton_connector_sdk::{ContextEnvelope, ContextMechanism};
use serde_json::Value;

/// Amazon Connect's limit for all of a contact's attributes, keys and values.
pub const MAX_ATTRIBUTES_BYTES: usize = 32_768;
/// What the connector advertises for TASK_ATTRIBUTES: the rest of the
/// 32 KB holds the reference and routing attributes added here and the
/// contact's own attributes.
pub const MAX_TASK_ATTRIBUTES_BYTES: u32 = 24_576;
/// The prefix of every attribute the connector sets.
pub const PREFIX: &str = "baton_";

/// The attributes' size as Amazon Connect counts it.
pub fn size(attributes: &BTreeMap<String, String>) -> usize {
    attributes.iter().map(|(k, v)| k.len() + v.len()).sum()
}

/// A key Connect accepts: letters, digits, `-` and `_`; anything else
/// becomes `_`.
pub fn key(name: &str) -> String {
    let cleaned: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect();
    format!("{PREFIX}{cleaned}")
}

fn text(value: &Value) -> String {
    match value {
        Value::String(text) => text.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

/// The reference every transfer sets: enough for the agent's screen pop to
/// fetch the whole context.
pub fn reference(handoff_id: &str, envelope: &ContextEnvelope) -> BTreeMap<String, String> {
    let reference = envelope.reference.clone().unwrap_or_default();
    let mut attributes = BTreeMap::new();
    attributes.insert(key("handoff_id"), handoff_id.to_owned());
    attributes.insert(key("token"), reference.token);
    attributes.insert(key("screen_pop_url"), reference.screen_pop_url);
    attributes.insert(key("context_url"), reference.context_url);
    attributes.retain(|_, v| !v.is_empty());
    attributes
}

/// The control service's TASK_ATTRIBUTES rendering, flattened: each field
/// its own attribute (`baton_summary`, `baton_intent`…), each entity
/// `baton_entity_<name>`, the transcript as `speaker: text` lines.
pub fn context(envelope: &ContextEnvelope) -> BTreeMap<String, String> {
    let mut attributes = BTreeMap::new();
    let Some(payload) = envelope
        .payloads
        .iter()
        .find(|p| p.mechanism == ContextMechanism::TaskAttributes as i32)
    else {
        return attributes;
    };
    let object = match serde_json::from_str::<Value>(&payload.content) {
        Ok(Value::Object(object)) => object,
        // Not the control service's JSON: carried as it came.
        _ => {
            attributes.insert(key("context"), payload.content.clone());
            return attributes;
        }
    };
    for (name, value) in object {
        match (name.as_str(), value) {
            ("entities", Value::Object(entities)) => {
                for (entity, value) in entities {
                    attributes.insert(key(&format!("entity_{entity}")), text(&value));
                }
            }
            ("transcript", Value::Array(turns)) => {
                let lines: Vec<String> = turns
                    .iter()
                    .map(|turn| match turn {
                        Value::Object(turn) => format!(
                            "{}: {}",
                            turn.get("speaker").map(text).unwrap_or_default(),
                            turn.get("text").map(text).unwrap_or_default()
                        ),
                        other => text(other),
                    })
                    .collect();
                attributes.insert(key("transcript"), lines.join("\n"));
            }
            (_, value) => {
                attributes.insert(key(&name), text(&value));
            }
        }
    }
    attributes
}

#[cfg(test)]
mod tests {
    use super::*;
    use baton_connector_sdk::{ContextPayload, ContextReference};

    fn envelope(content: &str) -> ContextEnvelope {
        ContextEnvelope {
            reference: Some(ContextReference {
                handoff_id: "h-1".into(),
                token: "tok".into(),
                context_url: "https://b.example/c".into(),
                screen_pop_url: "https://b.example/s".into(),
            }),
            payloads: vec![ContextPayload {
                mechanism: ContextMechanism::TaskAttributes as i32,
                content: content.into(),
                omitted_fields: vec![],
            }],
            ..Default::default()
        }
    }

    #[test]
    fn the_rendering_is_flattened_into_string_attributes_with_safe_keys() {
        let attributes = context(&envelope(
            r#"{"token":"tok","intent":"billing.dispute","priority":3,"summary":"Charged twice","entities":{"issue type":"double charge"},"transcript":[{"speaker":"customer","text":"a person please"},{"speaker":"ai","text":"connecting you"}]}"#,
        ));
        assert_eq!(attributes["baton_intent"], "billing.dispute");
        assert_eq!(attributes["baton_priority"], "3");
        assert_eq!(attributes["baton_summary"], "Charged twice");
        assert_eq!(attributes["baton_entity_issue_type"], "double charge");
        assert_eq!(
            attributes["baton_transcript"],
            "customer: a person please\nai: connecting you"
        );
        assert!(attributes.keys().all(|k| {
            k.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        }));
    }

    #[test]
    fn content_that_is_not_json_travels_as_it_came() {
        let attributes = context(&envelope("tok0000"));
        assert_eq!(attributes["baton_context"], "tok0000");
    }

    #[test]
    fn the_reference_names_the_handoff_and_its_screen_pop() {
        let attributes = reference("h-1", &envelope("{}"));
        assert_eq!(attributes["baton_handoff_id"], "h-1");
        assert_eq!(attributes["baton_screen_pop_url"], "https://b.example/s");
        assert_eq!(
            size(&attributes),
            attributes
                .iter()
                .map(|(k, v)| k.len() + v.len())
                .sum::<usize>()
        );
    }
}
