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
        context: Some(context()),
        target: Some(pb::Target { kind: Some(target) }),
        mode: pb::TransferMode::Warm as i32,
        timeout: None,
        decision: None,
        callback: None,
    }
}

/// The conformance kit's sample context, with a known account number,
/// what the AI tried and a note for the human.
fn context() -> pb::HandoffContext {
    let mut context = baton_conformance::requests::sample_context();
    context.entities[0].value = "ACC-99887766".into();
    context.attempts = vec![pb::Attempt {
        action: "looked up the invoice".into(),
        outcome: pb::AttemptOutcome::Partial as i32,
        detail: "two payments found".into(),
    }];
    context.agent_notes = "Refund likely".into();
    context
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
