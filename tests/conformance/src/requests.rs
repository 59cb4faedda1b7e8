//! The requests the kit sends, built as the control service builds them:
//! an envelope fitted to the connector's advertised context mechanisms,
//! and variants filled exactly to, or just beyond, each limit.

use std::time::SystemTime;

use baton_proto::connector::v1::{
    ContextCapability, ContextEnvelope, ContextMechanism, ContextPayload, ContextReference,
    StartTransferRequest,
};
use baton_proto::types::v1 as pb;
use prost::Message;

/// The tenant of every request the kit sends, unless a check says
/// otherwise: a connector under test serves it (shared, or dedicated to
/// it with `--tenant`).
pub const TENANT: &str = "conformance";

/// A fresh handoff id, so that no two checks share a transfer (and a rerun
/// against the same connector never meets an old one).
pub fn new_handoff_id() -> String {
    format!("conformance-{}", uuid::Uuid::now_v7().simple())
}

/// A well-formed target of `kind` that reaches no one: for requests that
/// must be refused before anything is dialled.
pub fn synthesized_target(kind: pb::TargetKind) -> Option<pb::target::Kind> {
    match kind {
        pb::TargetKind::Queue => Some(pb::target::Kind::Queue(pb::QueueTarget {
            name: "conformance-refused".into(),
            skills: Vec::new(),
        })),
        // 555-01xx numbers are reserved for fiction.
        pb::TargetKind::PhoneNumber => Some(pb::target::Kind::PhoneNumber("+15555550100".into())),
        // The discard port on loopback.
        pb::TargetKind::SipUri => Some(pb::target::Kind::SipUri(
            "sip:conformance@127.0.0.1:9".into(),
        )),
        _ => None,
    }
}

pub const TARGET_KINDS: [pb::TargetKind; 3] = [
    pb::TargetKind::Queue,
    pb::TargetKind::PhoneNumber,
    pb::TargetKind::SipUri,
];

pub const TRANSFER_MODES: [pb::TransferMode; 3] = [
    pb::TransferMode::Warm,
    pb::TransferMode::Blind,
    pb::TransferMode::Attended,
];

/// The context a handoff carries, non-trivial in every field.
pub fn sample_context() -> pb::HandoffContext {
    pb::HandoffContext {
        summary: "Customer was charged twice for the March invoice".into(),
        intent: Some(pb::Intent {
            name: "billing.dispute".into(),
            confidence: 0.92,
        }),
        entities: vec![
            pb::Entity {
                name: "account_number".into(),
                value: "ACC-00000000".into(),
                r#type: "account".into(),
                sensitive: true,
            },
            pb::Entity {
                name: "issue_type".into(),
                value: "double charge".into(),
                r#type: "string".into(),
                sensitive: false,
            },
        ],
        transcript: vec![
            pb::Turn {
                speaker: pb::Speaker::Customer as i32,
                text: "I was charged twice, I want to talk to a person".into(),
                at: None,
            },
            pb::Turn {
                speaker: pb::Speaker::Ai as i32,
                text: "I'm connecting you with a specialist.".into(),
                at: None,
            },
        ],
        attempts: Vec::new(),
        reason: Some(pb::EscalationReason {
            kind: pb::EscalationKind::ExplicitRequest as i32,
            detail: "asked for a person".into(),
        }),
        agent_notes: String::new(),
        priority: 3,
    }
}

/// The envelope for a connector advertising `capabilities`: the reference
/// always, the structured context when STRUCTURED is advertised, one
/// compact payload per other mechanism, each within its limit.
pub fn envelope(
    handoff_id: &str,
    capabilities: &[ContextCapability],
    sip_gateway_uri: Option<&str>,
) -> ContextEnvelope {
    let token = format!("cf.{}", &uuid::Uuid::now_v7().simple().to_string()[..20]);
    let base = format!("http://127.0.0.1:9/v1/handoffs/{handoff_id}");
    let reference = ContextReference {
        handoff_id: handoff_id.into(),
        token: token.clone(),
        context_url: format!("{base}/context?token={token}"),
        screen_pop_url: format!("{base}/screen-pop?token={token}"),
    };
    let conversation = pb::Conversation {
        channel: pb::Channel::Voice as i32,
        language: "en-US".into(),
        call: Some(pb::CallReference {
            sip_call_id: format!("{handoff_id}@conformance.invalid"),
            caller_number: "+15555550123".into(),
            sip_gateway_uri: sip_gateway_uri.unwrap_or_default().into(),
            ..Default::default()
        }),
    };
    let mut envelope = ContextEnvelope {
        reference: Some(reference),
        conversation: Some(conversation),
        ..Default::default()
    };
    for capability in capabilities {
        match ContextMechanism::try_from(capability.mechanism) {
            Ok(ContextMechanism::Structured) => envelope.context = Some(sample_context()),
            Ok(ContextMechanism::Unspecified) | Err(_) => {}
            Ok(mechanism) => envelope.payloads.push(ContextPayload {
                mechanism: mechanism as i32,
                content: compact_payload(mechanism, &token, capability.max_bytes as usize),
                omitted_fields: vec!["summary".into(), "transcript".into()],
            }),
        }
    }
    envelope
}

/// A sample's `platform_contact_id` for one handoff: `{handoff_hex}`
/// becomes the hex digits of the handoff id (see [`new_handoff_id`]).
pub fn platform_contact_id(template: &str, handoff_id: &str) -> String {
    let hex = handoff_id
        .strip_prefix("conformance-")
        .unwrap_or(handoff_id);
    template.replace("{handoff_hex}", hex)
}

/// The token alone for User-to-User; a small JSON object otherwise, or the
/// token alone when that does not fit.
fn compact_payload(mechanism: ContextMechanism, token: &str, limit: usize) -> String {
    if mechanism == ContextMechanism::SipUserToUser {
        return token.into();
    }
    let full = serde_json::json!({
        "token": token,
        "intent": "billing.dispute",
        "reason": "explicit_request",
        "language": "en-US",
        "priority": 3,
    })
    .to_string();
    if limit == 0 || full.len() <= limit {
        full
    } else {
        serde_json::json!({ "token": token }).to_string()
    }
}

/// Content of exactly `limit` bytes for `mechanism`: JSON padded with a
/// `pad` field where JSON fits, else the token padded with zeros.
pub fn content_of_size(mechanism: ContextMechanism, token: &str, limit: usize) -> String {
    if mechanism != ContextMechanism::SipUserToUser {
        let empty = serde_json::json!({ "token": token, "pad": "" }).to_string();
        if empty.len() <= limit {
            let pad = "x".repeat(limit - empty.len());
            return serde_json::json!({ "token": token, "pad": pad }).to_string();
        }
    }
    let mut content: String = token.chars().take(limit).collect();
    while content.len() < limit {
        content.push('0');
    }
    content
}

/// The sample context with notes padded until its encoding is exactly
/// `limit` bytes, or just over it when an exact size cannot be reached.
pub fn context_of_size(limit: usize) -> pb::HandoffContext {
    let mut context = sample_context();
    if context.encoded_len() + 4 > limit {
        // A limit smaller than the sample: a summary alone, padded.
        context = pb::HandoffContext {
            summary: "Charged twice".into(),
            ..Default::default()
        };
    }
    let base = context.encoded_len();
    // A string field costs its tag, its length's varint and its bytes.
    let mut notes = limit.saturating_sub(base + 4);
    for _ in 0..16 {
        context.agent_notes = "n".repeat(notes);
        if context.encoded_len() >= limit {
            break;
        }
        notes += limit - context.encoded_len();
    }
    context
}

/// Every size-limited mechanism of `capabilities` (max_bytes > 0).
pub fn limited(capabilities: &[ContextCapability]) -> Vec<(ContextMechanism, usize)> {
    capabilities
        .iter()
        .filter(|c| c.max_bytes > 0)
        .filter_map(|c| {
            ContextMechanism::try_from(c.mechanism)
                .ok()
                .filter(|m| *m != ContextMechanism::Unspecified)
                .map(|m| (m, c.max_bytes as usize))
        })
        .collect()
}

/// Sets the payload (or structured context) of `mechanism` to `size` bytes.
pub fn resize(envelope: &mut ContextEnvelope, mechanism: ContextMechanism, size: usize) {
    if mechanism == ContextMechanism::Structured {
        envelope.context = Some(context_of_size(size));
        return;
    }
    let token = envelope
        .reference
        .as_ref()
        .map(|r| r.token.clone())
        .unwrap_or_default();
    let content = content_of_size(mechanism, &token, size);
    match envelope
        .payloads
        .iter_mut()
        .find(|p| p.mechanism == mechanism as i32)
    {
        Some(payload) => payload.content = content,
        None => envelope.payloads.push(ContextPayload {
            mechanism: mechanism as i32,
            content,
            omitted_fields: Vec::new(),
        }),
    }
}

/// A StartTransfer request.
pub fn start_request(
    handoff_id: &str,
    attempt: u32,
    target: pb::target::Kind,
    mode: pb::TransferMode,
    envelope: ContextEnvelope,
    deadline: SystemTime,
) -> StartTransferRequest {
    StartTransferRequest {
        tenant: TENANT.into(),
        handoff_id: handoff_id.into(),
        attempt,
        target: Some(pb::Target { kind: Some(target) }),
        mode: mode as i32,
        envelope: Some(envelope),
        deadline: Some(prost_types::Timestamp::from(deadline)),
        disclosure: Some(disclosure()),
        callback: None,
    }
}

/// The record a control service sends along with every transfer (what of
/// the context went in which form): a connector that shows handoffs to a
/// supervisor may show it, any other ignores it and must not refuse it.
pub fn disclosure() -> baton_proto::connector::v1::Disclosure {
    use baton_proto::connector::v1::{DisclosedField, DisclosureForm};
    let field = |field: &str, form: DisclosureForm| DisclosedField {
        field: field.into(),
        form: form as i32,
    };
    baton_proto::connector::v1::Disclosure {
        fields: vec![
            field("summary", DisclosureForm::Redacted),
            field("transcript", DisclosureForm::Redacted),
            field("conversation.call.caller_number", DisclosureForm::Clear),
        ],
        route: String::new(),
        masked: Default::default(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn capabilities() -> Vec<ContextCapability> {
        [
            (ContextMechanism::Structured, 4096),
            (ContextMechanism::SipUserToUser, 128),
            (ContextMechanism::SipHeaders, 64),
            (ContextMechanism::ScreenPopUrl, 0),
        ]
        .map(|(m, max)| ContextCapability {
            mechanism: m as i32,
            max_bytes: max,
        })
        .to_vec()
    }

    #[test]
    fn the_envelope_follows_the_advertised_mechanisms_within_limits() {
        let envelope = envelope("h1", &capabilities(), Some("sip:gw@127.0.0.1"));
        assert!(envelope.context.is_some());
        assert_eq!(envelope.payloads.len(), 3);
        for payload in &envelope.payloads {
            let limit = capabilities()
                .iter()
                .find(|c| c.mechanism == payload.mechanism)
                .map(|c| c.max_bytes as usize)
                .expect("advertised");
            assert!(limit == 0 || payload.content.len() <= limit, "{payload:?}");
        }
        let token = envelope.reference.expect("reference").token;
        assert!(token.len() <= 64);
        assert_eq!(
            envelope
                .conversation
                .expect("conversation")
                .call
                .expect("call")
                .sip_gateway_uri,
            "sip:gw@127.0.0.1"
        );
    }

    #[test]
    fn sized_content_is_exact() {
        for (mechanism, size) in [
            (ContextMechanism::SipHeaders, 1024),
            (ContextMechanism::SipHeaders, 10),
            (ContextMechanism::SipUserToUser, 129),
            (ContextMechanism::TaskAttributes, 32 * 1024 + 1),
        ] {
            assert_eq!(
                content_of_size(mechanism, "cf.0123456789", size).len(),
                size
            );
        }
        for size in [100, 300, 4096, 4097, 65536, 256 * 1024 + 1] {
            let length = context_of_size(size).encoded_len();
            assert!(length == size || length == size + 1, "{size}: {length}");
        }
    }

    #[test]
    fn resizing_replaces_one_mechanism() {
        let mut envelope = envelope("h1", &capabilities(), None);
        resize(&mut envelope, ContextMechanism::SipHeaders, 65);
        let headers = envelope
            .payloads
            .iter()
            .find(|p| p.mechanism == ContextMechanism::SipHeaders as i32)
            .expect("payload");
        assert_eq!(headers.content.len(), 65);
        resize(&mut envelope, ContextMechanism::Structured, 4097);
        assert!(envelope.context.expect("context").encoded_len() > 4096);
        assert_eq!(limited(&capabilities()).len(), 3);
    }
}
