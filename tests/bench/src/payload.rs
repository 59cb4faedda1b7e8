//! A CreateHandoffRequest shaped like a real escalation (context, entities,
//! transcript), the payload of the API scenarios.

use baton_proto::handoff::v1::CreateHandoffRequest;
use baton_proto::types::v1 as pb;

/// A request for `queue`, idempotency key `request_id`.
pub fn create_request(request_id: String, queue: &str) -> CreateHandoffRequest {
    CreateHandoffRequest {
        request_id,
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
        target: Some(pb::Target {
            kind: Some(pb::target::Kind::Queue(pb::QueueTarget {
                name: queue.into(),
                skills: vec![],
            })),
        }),
        mode: pb::TransferMode::Warm as i32,
        timeout: None,
        decision: None,
    }
}
