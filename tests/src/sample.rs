//! The escalation every cross-service test and benchmark sends: a voice
//! call whose customer was charged twice, with intent, entities (one
//! sensitive), transcript, what the AI tried and why it escalates. A test
//! that needs another shape overrides fields of it.

use baton_proto::handoff::v1::CreateHandoffRequest;
use baton_proto::types::v1 as pb;

/// The sample escalation to `target`, idempotency key `request_id`.
pub fn sample_request(request_id: &str, target: pb::target::Kind) -> CreateHandoffRequest {
    CreateHandoffRequest {
        request_id: request_id.into(),
        conversation: Some(pb::Conversation {
            channel: pb::Channel::Voice as i32,
            language: "en-US".into(),
            call: Some(pb::CallReference {
                sip_call_id: "a84b4c76e66710@gw.example.com".into(),
                caller_number: "+14155550123".into(),
                ..Default::default()
            }),
        }),
        context: Some(pb::HandoffContext {
            summary: "Customer was charged twice for the March invoice".into(),
            intent: Some(pb::Intent {
                name: "billing.dispute".into(),
                confidence: 0.92,
            }),
            entities: vec![
                pb::Entity {
                    name: "account_number".into(),
                    value: "ACC-99887766".into(),
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
            attempts: vec![pb::Attempt {
                action: "looked up the invoice".into(),
                outcome: pb::AttemptOutcome::Partial as i32,
                detail: "two payments found".into(),
            }],
            reason: Some(pb::EscalationReason {
                kind: pb::EscalationKind::ExplicitRequest as i32,
                detail: "asked for a person".into(),
            }),
            agent_notes: "Refund likely".into(),
            priority: 3,
        }),
        target: Some(pb::Target { kind: Some(target) }),
        mode: pb::TransferMode::Warm as i32,
        timeout: None,
        decision: None,
        callback: None,
    }
}

/// The escalation the SIP connector's phone scenarios check in each
/// INVITE (caller, summary and intent in User-to-User), to `target`.
pub fn sip_request(request_id: &str, target: pb::target::Kind) -> CreateHandoffRequest {
    let mut request = sample_request(request_id, target);
    if let Some(call) = request.conversation.as_mut().and_then(|c| c.call.as_mut()) {
        call.sip_call_id.clear();
    }
    request.context = Some(pb::HandoffContext {
        summary: "Charged twice for the March invoice".into(),
        intent: Some(pb::Intent {
            name: "billing.dispute".into(),
            confidence: 0.9,
        }),
        priority: 2,
        ..Default::default()
    });
    request
}
