//! The message posted to an endpoint: a Standard Webhooks JSON body
//! (`type`, `timestamp`, `data`) holding the handoff's reference, target,
//! conversation references and the context the control service rendered
//! for the WEBHOOK mechanism. Sensitive values are never in it: sensitive
//! entities are left out by the control service (and named in
//! `omitted_fields`), and the caller's number, marked sensitive, is left
//! out here; the receiver fetches them through `reference.context_url`
//! with the token when it is allowed to.

use std::time::SystemTime;

use baton_connector_sdk::{ContextMechanism, Transfer, TransferMode};
use baton_proto::types::v1::Channel;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

/// The `type` of every message this connector sends.
pub const MESSAGE_TYPE: &str = "baton.handoff.transfer";

/// The `webhook-id` of a transfer's message: derived from the handoff and
/// attempt, so that it stays the same on retries and also when a restarted
/// connector delivers the same transfer again; receivers deduplicate on it.
pub fn message_id(handoff_id: &str, attempt: u32) -> String {
    let digest = Sha256::digest(format!("{handoff_id}\n{attempt}"));
    let hex: String = digest[..16].iter().map(|b| format!("{b:02x}")).collect();
    format!("msg_{hex}")
}

/// Where the receiving system answers the connector about a transfer.
#[derive(Debug, Clone, Copy, Default)]
pub struct Links<'a> {
    /// When the endpoint reports the transfer's progress.
    pub report_url: Option<&'a str>,
    /// When the endpoint takes the transfer's chat: where the platform
    /// posts the human's side.
    pub chat_reply_url: Option<&'a str>,
}

/// The JSON body for a transfer to `queue`, posted to `endpoint`.
pub fn body(
    transfer: &Transfer,
    queue: &str,
    skills: &[String],
    created: SystemTime,
    endpoint: &str,
    links: Links<'_>,
) -> Vec<u8> {
    let envelope = &transfer.envelope;
    let reference = envelope.reference.clone().unwrap_or_default();
    let payload = envelope
        .payloads
        .iter()
        .find(|p| p.mechanism == ContextMechanism::Webhook as i32);
    // The payload is the control service's compact JSON; an unreadable one
    // is replaced by the reference alone rather than sent half-parsed.
    let context = payload
        .and_then(|p| serde_json::from_str::<Value>(&p.content).ok())
        .filter(Value::is_object)
        .unwrap_or_else(
            || json!({ "token": reference.token, "context_url": reference.context_url }),
        );
    let mut omitted: Vec<String> = payload
        .map(|p| p.omitted_fields.clone())
        .unwrap_or_else(|| vec!["*".into()]);
    let conversation = envelope.conversation.clone().unwrap_or_default();
    let call = conversation.call.clone().unwrap_or_default();
    if !call.caller_number.is_empty() {
        omitted.push("conversation.call.caller_number".into());
    }
    let channel = match Channel::try_from(conversation.channel) {
        Ok(Channel::Chat) => "chat",
        _ => "voice",
    };
    let mode = match transfer.mode {
        TransferMode::Blind => "blind",
        TransferMode::Attended => "attended",
        _ => "warm",
    };
    let message = json!({
        "type": MESSAGE_TYPE,
        "timestamp": humantime_serde::re::humantime::format_rfc3339_millis(created).to_string(),
        "data": {
            "handoff_id": transfer.handoff_id,
            "attempt": transfer.attempt,
            "mode": mode,
            "target": { "queue": queue, "skills": skills },
            "reference": {
                "token": reference.token,
                "context_url": reference.context_url,
                "screen_pop_url": reference.screen_pop_url,
            },
            "conversation": {
                "channel": channel,
                "language": conversation.language,
                "call": {
                    "sip_call_id": call.sip_call_id,
                    "platform_contact_id": call.platform_contact_id,
                    "sip_gateway_uri": call.sip_gateway_uri,
                },
            },
            "context": context,
            "omitted_fields": omitted,
            "endpoint": endpoint,
        }
    });
    let mut message = message;
    if let Some(url) = links.report_url {
        message["data"]["report_url"] = json!(url);
    }
    if let Some(url) = links.chat_reply_url {
        message["data"]["chat"] = json!({ "reply_url": url });
    }
    message.to_string().into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;
    use baton_connector_sdk::{ContextEnvelope, ContextPayload, ContextReference, TransferTarget};
    use baton_proto::types::v1::{CallReference, Conversation};

    fn transfer() -> Transfer {
        Transfer {
            tenant: "acme".into(),
            handoff_id: "h1".into(),
            attempt: 2,
            target: TransferTarget::Queue {
                name: "billing".into(),
                skills: vec!["spanish".into()],
            },
            mode: TransferMode::Warm,
            envelope: ContextEnvelope {
                reference: Some(ContextReference {
                    handoff_id: "h1".into(),
                    token: "tok".into(),
                    context_url: "https://baton/v1/handoffs/h1/context?token=tok".into(),
                    screen_pop_url: "https://baton/v1/handoffs/h1/screen-pop?token=tok".into(),
                }),
                conversation: Some(Conversation {
                    channel: Channel::Voice as i32,
                    call: Some(CallReference {
                        sip_call_id: "abc@gw".into(),
                        caller_number: "+14155550100".into(),
                        ..Default::default()
                    }),
                    language: "en-US".into(),
                }),
                payloads: vec![ContextPayload {
                    mechanism: ContextMechanism::Webhook as i32,
                    content: r#"{"token":"tok","summary":"Charged twice","entities":{"issue":"double charge"}}"#.into(),
                    omitted_fields: vec!["entities.card".into()],
                }],
                ..Default::default()
            },
            deadline: SystemTime::now(),
            remembered: None,
            disclosure: None,
            callback: None,
        }
    }

    #[test]
    fn the_body_carries_the_rendered_context_and_names_what_was_left_out() {
        let body = body(
            &transfer(),
            "billing",
            &["spanish".into()],
            SystemTime::UNIX_EPOCH,
            "crm",
            Links {
                report_url: Some("https://baton/v1/reports"),
                chat_reply_url: None,
            },
        );
        let value: Value = serde_json::from_slice(&body).expect("JSON");
        assert_eq!(value["type"], MESSAGE_TYPE);
        assert_eq!(value["timestamp"], "1970-01-01T00:00:00.000Z");
        let data = &value["data"];
        assert_eq!(data["attempt"], 2);
        assert_eq!(data["endpoint"], "crm");
        assert_eq!(data["report_url"], "https://baton/v1/reports");
        assert_eq!(data["target"]["queue"], "billing");
        assert_eq!(data["context"]["summary"], "Charged twice");
        assert_eq!(data["reference"]["token"], "tok");
        assert_eq!(data["conversation"]["call"]["sip_call_id"], "abc@gw");
        assert_eq!(
            data["omitted_fields"],
            json!(["entities.card", "conversation.call.caller_number"])
        );
        let text = String::from_utf8(body).expect("UTF-8");
        assert!(
            !text.contains("+14155550100"),
            "the caller's number is sensitive"
        );
    }

    #[test]
    fn the_message_id_is_stable_per_transfer_and_distinct_between_transfers() {
        assert_eq!(message_id("h1", 1), message_id("h1", 1));
        assert_ne!(message_id("h1", 1), message_id("h1", 2));
        assert_ne!(message_id("h1", 1), message_id("h2", 1));
        let id = message_id("h1", 1);
        assert!(id.starts_with("msg_") && id.len() == 36, "{id}");
    }
}
