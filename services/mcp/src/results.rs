//! The tools' results: JSON an LLM reads (states and reasons by name,
//! never enum numbers), and the control service's refusals as tool errors
//! that name the field or the reason, so the model can correct its call.

use baton_proto::handoff::v1 as handoff;
use baton_proto::types::v1 as types;
use rmcp::ErrorData;
use rmcp::model::{CallToolResult, ContentBlock};
use serde_json::{Value, json};
use tonic_types::StatusExt;

/// The tool's result: the JSON, or the refusal as a tool error.
pub fn respond(outcome: Result<Value, tonic::Status>) -> Result<CallToolResult, ErrorData> {
    match outcome {
        Ok(value) => Ok(CallToolResult::success(vec![ContentBlock::json(value)?])),
        Err(status) => Ok(CallToolResult::error(vec![ContentBlock::json(refusal(
            &status,
        ))?])),
    }
}

/// A refusal: the gRPC code, Baton's reason, every bad field, the message.
fn refusal(status: &tonic::Status) -> Value {
    let details = status.get_error_details();
    let reason = details
        .error_info()
        .map(|info| info.reason.clone())
        .unwrap_or_default();
    let fields: Vec<Value> = details
        .bad_request()
        .map(|bad| {
            bad.field_violations
                .iter()
                .map(|v| json!({"field": v.field, "description": v.description}))
                .collect()
        })
        .unwrap_or_default();
    json!({
        "error": format!("{:?}", status.code()),
        "reason": reason,
        "message": status.message(),
        "invalid_fields": fields,
    })
}

pub fn decision(decision: handoff::EscalationDecision) -> Value {
    let triggers: Vec<Value> = decision
        .fired
        .iter()
        .map(|fired| {
            json!({
                "kind": short(types::EscalationKind::try_from(fired.kind).map_or("", |k| k.as_str_name()), "ESCALATION_KIND_"),
                "evidence": fired.evidence,
            })
        })
        .collect();
    json!({
        "escalate": decision.escalate,
        "triggers": triggers,
        "suggested_route": decision.suggested_route,
        "say": if decision.escalate { decision.customer_message } else { String::new() },
    })
}

pub fn created(handoff: handoff::Handoff, created: bool) -> Value {
    let mut value = status(&handoff);
    value["created"] = json!(created);
    value["say"] = json!(handoff.customer_message);
    value
}

/// A handoff as the LLM needs it; `say` only while the customer waits.
pub fn status(handoff: &handoff::Handoff) -> Value {
    use handoff::HandoffState as S;
    let state = S::try_from(handoff.state).unwrap_or(S::Unspecified);
    let ended = matches!(
        state,
        S::Completed | S::Failed | S::Cancelled | S::HandedBack
    );
    let waiting = !ended && !matches!(state, S::Connected);
    let queue = handoff.queue_status.as_ref();
    let failure = handoff.failure.as_ref();
    json!({
        "handoff_id": handoff.id,
        "state": short(state.as_str_name(), "HANDOFF_STATE_"),
        "connected": state == S::Connected,
        "ended": ended,
        "say": if waiting { handoff.customer_message.as_str() } else { "" },
        "queue_position": queue.map(|q| q.position),
        "estimated_wait_seconds": queue.and_then(|q| q.estimated_wait.as_ref()).map(|d| d.seconds),
        "failure_reason": failure.map(|f| short(types::FailureReason::try_from(f.reason).map_or("", |r| r.as_str_name()), "FAILURE_REASON_")),
        "failure_detail": failure.map(|f| f.detail.as_str()),
    })
}

/// An enum value's name without its type's prefix (`QUEUED`).
fn short(name: &str, prefix: &str) -> String {
    name.strip_prefix(prefix).unwrap_or(name).to_owned()
}
